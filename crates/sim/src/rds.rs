use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{
    Databases, DbConfig, DbGroupKind, DbInstance, DeleteDbRequest, FinishRestoreRequest,
    MasterUserSecret, RestoreDbRequest, Snapshot, Snapshots, Tags,
};

use crate::world::{SimAws, WorldState};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SimSnapshot {
    pub id: String,
    pub db_instance_id: String,
    pub engine: String,
    pub engine_version: String,
    pub allocated_storage_gib: i32,
    pub tags: Tags,
    pub created_at: DateTime<Utc>,
    pub available_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Deletion {
    pub gone_at: DateTime<Utc>,
    pub final_snapshot_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SimInstance {
    pub id: String,
    pub instance_class: String,
    pub engine: String,
    pub engine_version: String,
    pub allocated_storage_gib: i32,
    pub tags: Tags,
    pub created_at: DateTime<Utc>,
    pub backing_up_at: DateTime<Utc>,
    pub available_at: DateTime<Utc>,
    pub deletion: Option<Deletion>,
    /// The instance is `modifying` until then (ModifyDBInstance applied immediately).
    #[serde(default)]
    pub modified_at: Option<DateTime<Utc>>,
    /// Set once RDS manages the master password: the secret's ARN; it is `creating` until the
    /// modification is through, then `active`.
    #[serde(default)]
    pub master_user_secret_arn: Option<String>,
    /// The migration commands that ran to completion against it, in order: what its schema
    /// went through since it was created.
    #[serde(default)]
    pub migrations: Vec<String>,
    /// Its setup, every field as RDS reports it (defaults filled in at creation).
    #[serde(default)]
    pub config: DbConfig,
}

/// What RDS gives an instance restored without asking: the engine's default parameter and
/// option groups, one zone, no deletion protection, a day of backups, gp2.
pub(crate) fn default_config(engine: &str, engine_version: &str) -> DbConfig {
    let major = engine_version.split('.').next().unwrap_or(engine_version);
    DbConfig {
        parameter_group: Some(format!("default.{engine}{major}")),
        option_group: Some(format!("default:{engine}-{major}")),
        multi_az: Some(false),
        storage_type: Some("gp2".into()),
        iops: None,
        storage_throughput: None,
        deletion_protection: Some(false),
        backup_retention_days: Some(1),
        backup_window: Some("03:00-03:30".into()),
        iam_database_authentication: Some(false),
        copy_tags_to_snapshot: Some(false),
        publicly_accessible: Some(false),
        auto_minor_version_upgrade: Some(true),
        ca_certificate: Some("rds-ca-rsa2048-g1".into()),
        cloudwatch_logs_exports: Some(Vec::new()),
        maintenance_window: Some("sun:05:00-sun:05:30".into()),
        monitoring_interval_seconds: Some(0),
        monitoring_role_arn: None,
        performance_insights: Some(false),
        performance_insights_retention_days: None,
        performance_insights_kms_key_id: None,
    }
}

/// How long RDS takes, roughly: a snapshot reads every block once, a restore creates the
/// instance and then takes its first automated backup.
fn snapshot_duration(gib: i32) -> Duration {
    Duration::seconds(120 + 10 * i64::from(gib))
}
fn restore_duration(gib: i32) -> (Duration, Duration) {
    (
        Duration::seconds(360 + 5 * i64::from(gib)),
        Duration::seconds(180),
    )
}
const DELETE_DURATION: Duration = Duration::seconds(240);
const FINAL_SNAPSHOT_DURATION: Duration = Duration::seconds(120);

const DELETABLE: &[&str] = &[
    "available",
    "failed",
    "storage-full",
    "incompatible-restore",
];

impl SimSnapshot {
    fn status(&self, now: DateTime<Utc>) -> &'static str {
        if now < self.available_at {
            "creating"
        } else {
            "available"
        }
    }

    fn view(&self, now: DateTime<Utc>) -> Snapshot {
        Snapshot {
            id: self.id.clone(),
            db_instance_id: self.db_instance_id.clone(),
            status: self.status(now).into(),
            created_at: Some(self.created_at),
            allocated_storage_gib: self.allocated_storage_gib,
            engine: self.engine.clone(),
            engine_version: self.engine_version.clone(),
            tags: self.tags.clone(),
        }
    }
}

impl SimInstance {
    pub(crate) fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.deletion.is_some() {
            "deleting"
        } else if now < self.backing_up_at {
            "creating"
        } else if now < self.available_at {
            "backing-up"
        } else if self.modified_at.is_some_and(|at| now < at) {
            "modifying"
        } else {
            "available"
        }
    }

    pub(crate) fn endpoint(&self, region: &str) -> String {
        format!("{}.c0ffee0sim.{region}.rds.amazonaws.com", self.id)
    }

    fn view(&self, now: DateTime<Utc>, region: &str) -> DbInstance {
        let status = self.status(now);
        // RDS publishes the endpoint once the instance has been created.
        let has_endpoint = status != "creating";
        DbInstance {
            id: self.id.clone(),
            status: status.into(),
            endpoint: has_endpoint.then(|| self.endpoint(region)),
            port: has_endpoint.then_some(5432),
            instance_class: self.instance_class.clone(),
            engine: self.engine.clone(),
            engine_version: self.engine_version.clone(),
            allocated_storage_gib: self.allocated_storage_gib,
            created_at: Some(self.created_at),
            tags: self.tags.clone(),
            config: self.config.clone(),
            master_user_secret: self
                .master_user_secret_arn
                .as_ref()
                .map(|arn| MasterUserSecret {
                    secret_arn: arn.clone(),
                    status: if self.modified_at.is_some_and(|at| now < at) {
                        "creating".into()
                    } else {
                        "active".into()
                    },
                }),
        }
    }
}

/// How long ModifyDBInstance keeps an instance `modifying`.
const MODIFY_DURATION: Duration = Duration::seconds(90);

fn not_found(kind: ResourceKind, id: &str) -> AwsError {
    AwsError::NotFound {
        kind,
        id: id.to_owned(),
    }
}

impl WorldState {
    pub(crate) fn settle_rds(&mut self) {
        let now = self.now;
        let gone: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.deletion.as_ref().is_some_and(|d| d.gone_at <= now))
            .map(|i| i.id.clone())
            .collect();
        for id in gone {
            self.instances.remove(&id);
        }
    }

    pub(crate) fn insert_instance(&mut self, instance: SimInstance) {
        self.instances.insert(instance.id.clone(), instance);
    }

    pub(crate) fn instance_view(&self, id: &str) -> Option<DbInstance> {
        self.instances
            .get(id)
            .map(|i| i.view(self.now, &self.region))
    }
}

#[async_trait]
impl Snapshots for SimAws {
    async fn create_snapshot(
        &self,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &Tags,
    ) -> Result<Snapshot, AwsError> {
        self.call("CreateDBSnapshot", |s| {
            let now = s.now;
            let instance = s
                .instances
                .get(db_instance_id)
                .ok_or_else(|| not_found(ResourceKind::DbInstance, db_instance_id))?;
            if instance.status(now) != "available" {
                return Err(AwsError::InvalidState {
                    kind: ResourceKind::DbInstance,
                    id: db_instance_id.to_owned(),
                    message: format!("instance is {}", instance.status(now)),
                });
            }
            if s.snapshots.contains_key(snapshot_id) {
                return Err(AwsError::AlreadyExists {
                    kind: ResourceKind::DbSnapshot,
                    id: snapshot_id.to_owned(),
                });
            }
            let snapshot = SimSnapshot {
                id: snapshot_id.to_owned(),
                db_instance_id: db_instance_id.to_owned(),
                engine: instance.engine.clone(),
                engine_version: instance.engine_version.clone(),
                allocated_storage_gib: instance.allocated_storage_gib,
                tags: tags.clone(),
                created_at: now,
                available_at: now + snapshot_duration(instance.allocated_storage_gib),
            };
            let view = snapshot.view(now);
            s.snapshots.insert(snapshot_id.to_owned(), snapshot);
            Ok(view)
        })
    }

    async fn describe_snapshot(&self, snapshot_id: &str) -> Result<Snapshot, AwsError> {
        self.call("DescribeDBSnapshots", |s| {
            s.snapshots
                .get(snapshot_id)
                .map(|snap| snap.view(s.now))
                .ok_or_else(|| not_found(ResourceKind::DbSnapshot, snapshot_id))
        })
    }

    async fn list_snapshots(&self) -> Result<Vec<Snapshot>, AwsError> {
        self.call("DescribeDBSnapshots", |s| {
            Ok(s.snapshots.values().map(|snap| snap.view(s.now)).collect())
        })
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), AwsError> {
        self.call("DeleteDBSnapshot", |s| {
            let snapshot = s
                .snapshots
                .get(snapshot_id)
                .ok_or_else(|| not_found(ResourceKind::DbSnapshot, snapshot_id))?;
            let status = snapshot.status(s.now);
            if status != "available" {
                // RDS: InvalidDBSnapshotState.
                return Err(AwsError::InvalidState {
                    kind: ResourceKind::DbSnapshot,
                    id: snapshot_id.to_owned(),
                    message: format!("snapshot is {status}"),
                });
            }
            // A restore reads the snapshot only while it is being created: deleting it now
            // leaves every instance restored from it intact, as in RDS.
            s.snapshots.remove(snapshot_id);
            Ok(())
        })
    }
}

#[async_trait]
impl Databases for SimAws {
    async fn restore_db_from_snapshot(
        &self,
        request: &RestoreDbRequest,
    ) -> Result<DbInstance, AwsError> {
        self.call("RestoreDBInstanceFromDBSnapshot", |s| {
            let now = s.now;
            let snapshot = s
                .snapshots
                .get(&request.snapshot_id)
                .ok_or_else(|| not_found(ResourceKind::DbSnapshot, &request.snapshot_id))?;
            if snapshot.status(now) != "available" {
                return Err(AwsError::InvalidState {
                    kind: ResourceKind::DbSnapshot,
                    id: request.snapshot_id.clone(),
                    message: "snapshot is not available".into(),
                });
            }
            if !request.instance_class.starts_with("db.") {
                return Err(AwsError::Rejected {
                    code: "InvalidParameterValue".into(),
                    message: format!("invalid db instance class {:?}", request.instance_class),
                });
            }
            if s.instances.contains_key(&request.db_instance_id) {
                return Err(AwsError::AlreadyExists {
                    kind: ResourceKind::DbInstance,
                    id: request.db_instance_id.clone(),
                });
            }
            if let Some(group) = &request.subnet_group
                && !s.subnet_groups.contains(group)
            {
                return Err(AwsError::NotFound {
                    kind: ResourceKind::DbSubnetGroup,
                    id: group.clone(),
                });
            }
            if let Some(group) = &request.config.parameter_group
                && !group.starts_with("default.")
                && !s.parameter_groups.contains(group)
            {
                return Err(AwsError::NotFound {
                    kind: ResourceKind::DbParameterGroup,
                    id: group.clone(),
                });
            }
            if matches!(
                request.config.storage_type.as_deref(),
                Some("gp2" | "standard")
            ) && request.config.iops.is_some()
            {
                return Err(AwsError::Rejected {
                    code: "InvalidParameterCombination".into(),
                    message: "you can't specify IOPS for this storage type".into(),
                });
            }
            // A restore takes no maintenance window, monitoring or Performance Insights: the
            // instance gets RDS's defaults for them, whatever the request says.
            let config = default_config(&snapshot.engine, &snapshot.engine_version)
                .overridden_by(&request.config.for_restore());
            let (creating, backing_up) = restore_duration(snapshot.allocated_storage_gib);
            let instance = SimInstance {
                id: request.db_instance_id.clone(),
                instance_class: request.instance_class.clone(),
                engine: snapshot.engine.clone(),
                engine_version: snapshot.engine_version.clone(),
                allocated_storage_gib: snapshot.allocated_storage_gib,
                tags: request.tags.clone(),
                created_at: now,
                backing_up_at: now + creating,
                available_at: now + creating + backing_up,
                deletion: None,
                modified_at: None,
                master_user_secret_arn: None,
                migrations: Vec::new(),
                config,
            };
            let view = instance.view(now, &s.region);
            s.insert_instance(instance);
            Ok(view)
        })
    }

    async fn finish_restore(&self, request: &FinishRestoreRequest) -> Result<DbInstance, AwsError> {
        let db_instance_id = request.db_instance_id.as_str();
        self.call("ModifyDBInstance", |s| {
            let now = s.now;
            let region = s.region.clone();
            let account = s.account.clone();
            let suffix = s.next_id();
            let instance = s
                .instances
                .get_mut(db_instance_id)
                .ok_or_else(|| not_found(ResourceKind::DbInstance, db_instance_id))?;
            let status = instance.status(now);
            if status != "available" {
                return Err(AwsError::InvalidState {
                    kind: ResourceKind::DbInstance,
                    id: db_instance_id.to_owned(),
                    message: format!("instance is {status}"),
                });
            }
            let setup = request.setup.after_restore();
            if setup.monitoring_interval_seconds.is_some_and(|i| i > 0)
                && setup
                    .monitoring_role_arn
                    .as_ref()
                    .or(instance.config.monitoring_role_arn.as_ref())
                    .is_none()
            {
                return Err(AwsError::Rejected {
                    code: "InvalidParameterCombination".into(),
                    message: "a MonitoringRoleARN value is required if you specify a MonitoringInterval value other than 0".into(),
                });
            }
            let mut changed = false;
            // Managing it already: RDS answers with the instance as it is.
            if request.manage_master_password && instance.master_user_secret_arn.is_none() {
                instance.master_user_secret_arn = Some(format!(
                    "arn:aws:secretsmanager:{region}:{account}:secret:rds!db-{suffix:012}-sim"
                ));
                changed = true;
            }
            if !setup.is_empty() {
                let config = instance.config.overridden_by(&setup);
                changed |= config != instance.config;
                instance.config = config;
            }
            if changed {
                instance.modified_at = Some(now + MODIFY_DURATION);
            }
            Ok(instance.view(now, &region))
        })
    }

    async fn db_group_exists(&self, kind: DbGroupKind, name: &str) -> Result<bool, AwsError> {
        match kind {
            DbGroupKind::Subnet => self.call("DescribeDBSubnetGroups", |s| {
                Ok(s.subnet_groups.contains(name))
            }),
            DbGroupKind::Parameter => self.call("DescribeDBParameterGroups", |s| {
                Ok(name.starts_with("default.") || s.parameter_groups.contains(name))
            }),
        }
    }

    async fn set_deletion_protection(
        &self,
        db_instance_id: &str,
        enabled: bool,
    ) -> Result<DbInstance, AwsError> {
        self.call("ModifyDBInstance", |s| {
            let now = s.now;
            let region = s.region.clone();
            let instance = s
                .instances
                .get_mut(db_instance_id)
                .ok_or_else(|| not_found(ResourceKind::DbInstance, db_instance_id))?;
            if instance.deletion.is_some() {
                return Err(AwsError::InvalidState {
                    kind: ResourceKind::DbInstance,
                    id: db_instance_id.to_owned(),
                    message: "instance is deleting".into(),
                });
            }
            // Applied at once, without a `modifying` phase.
            instance.config.deletion_protection = Some(enabled);
            Ok(instance.view(now, &region))
        })
    }

    async fn tag_db(&self, db_instance_id: &str, tags: &Tags) -> Result<(), AwsError> {
        self.call("AddTagsToResource", |s| {
            let instance = s
                .instances
                .get_mut(db_instance_id)
                .ok_or_else(|| not_found(ResourceKind::DbInstance, db_instance_id))?;
            instance
                .tags
                .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(())
        })
    }

    async fn describe_db(&self, db_instance_id: &str) -> Result<DbInstance, AwsError> {
        self.call("DescribeDBInstances", |s| {
            s.instance_view(db_instance_id)
                .ok_or_else(|| not_found(ResourceKind::DbInstance, db_instance_id))
        })
    }

    async fn delete_db(&self, request: &DeleteDbRequest) -> Result<DbInstance, AwsError> {
        self.call("DeleteDBInstance", |s| {
            let now = s.now;
            let id = &request.db_instance_id;
            let instance = s
                .instances
                .get(id)
                .ok_or_else(|| not_found(ResourceKind::DbInstance, id))?;
            let status = instance.status(now);
            if !DELETABLE.contains(&status) {
                return Err(AwsError::InvalidState {
                    kind: ResourceKind::DbInstance,
                    id: id.clone(),
                    message: format!("instance is {status}"),
                });
            }
            if instance.config.deletion_protection == Some(true) {
                return Err(AwsError::Rejected {
                    code: "InvalidParameterCombination".into(),
                    message: "Cannot delete protected DB Instance, please disable deletion protection and try again.".into(),
                });
            }
            let mut gone_at = now + DELETE_DURATION;
            if let Some(final_id) = &request.final_snapshot_id {
                if s.snapshots.contains_key(final_id) {
                    return Err(AwsError::AlreadyExists {
                        kind: ResourceKind::DbSnapshot,
                        id: final_id.clone(),
                    });
                }
                let snapshot = SimSnapshot {
                    id: final_id.clone(),
                    db_instance_id: id.clone(),
                    engine: instance.engine.clone(),
                    engine_version: instance.engine_version.clone(),
                    allocated_storage_gib: instance.allocated_storage_gib,
                    tags: instance.tags.clone(),
                    created_at: now,
                    available_at: now + FINAL_SNAPSHOT_DURATION,
                };
                s.snapshots.insert(final_id.clone(), snapshot);
                gone_at += FINAL_SNAPSHOT_DURATION;
            }
            let region = s.region.clone();
            let instance = s
                .instances
                .get_mut(id)
                .ok_or_else(|| not_found(ResourceKind::DbInstance, id))?;
            instance.deletion = Some(Deletion {
                gone_at,
                final_snapshot_id: request.final_snapshot_id.clone(),
            });
            Ok(instance.view(now, &region))
        })
    }

    async fn list_dbs(&self) -> Result<Vec<DbInstance>, AwsError> {
        self.call("DescribeDBInstances", |s| {
            Ok(s.instances
                .values()
                .map(|i| i.view(s.now, &s.region))
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use switchyard_core::ports::{Databases, DeleteDbRequest, RestoreDbRequest, Snapshots, Tags};

    use crate::World;

    fn restore(id: &str, snapshot: &str) -> RestoreDbRequest {
        RestoreDbRequest {
            db_instance_id: id.into(),
            snapshot_id: snapshot.into(),
            instance_class: "db.t4g.micro".into(),
            subnet_group: None,
            security_group_ids: vec![],
            tags: Tags::new(),
            config: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_restore_gets_rds_defaults_unless_asked_and_protection_blocks_deletes() {
        let world = World::demo(chrono::Utc::now());
        let aws = world.aws();
        let source = crate::demo_tenants()[0].db_instance_id(&world);
        aws.create_snapshot(&source, "snap-1", &Tags::new())
            .await
            .unwrap();
        world.advance(StdDuration::from_secs(3600));
        let plain = aws
            .restore_db_from_snapshot(&restore("db-plain", "snap-1"))
            .await
            .unwrap();
        assert_eq!(plain.config.multi_az, Some(false));
        assert_eq!(
            plain.config.parameter_group.as_deref(),
            Some("default.postgres16")
        );
        assert_eq!(plain.config.deletion_protection, Some(false));
        let mut asked = restore("db-missing-group", "snap-1");
        asked.config.parameter_group = Some("nobody-made-it".into());
        let err = aws.restore_db_from_snapshot(&asked).await.unwrap_err();
        assert!(
            matches!(&err, switchyard_core::AwsError::NotFound { kind: switchyard_core::error::ResourceKind::DbParameterGroup, id } if id == "nobody-made-it"),
            "{err}"
        );
        let mut asked = restore("db-gp2-iops", "snap-1");
        asked.config.storage_type = Some("gp2".into());
        asked.config.iops = Some(3000);
        let err = aws.restore_db_from_snapshot(&asked).await.unwrap_err();
        assert!(
            err.to_string().contains("InvalidParameterCombination"),
            "{err}"
        );
        let mut asked = restore("db-protected", "snap-1");
        asked.config.multi_az = Some(true);
        asked.config.deletion_protection = Some(true);
        let protected = aws.restore_db_from_snapshot(&asked).await.unwrap();
        assert_eq!(protected.config.multi_az, Some(true));
        world.advance(StdDuration::from_secs(3600));
        let delete = DeleteDbRequest {
            db_instance_id: "db-protected".into(),
            final_snapshot_id: None,
        };
        let err = aws.delete_db(&delete).await.unwrap_err();
        assert!(
            err.to_string().contains("disable deletion protection"),
            "{err}"
        );
        aws.set_deletion_protection("db-protected", false)
            .await
            .unwrap();
        assert_eq!(aws.delete_db(&delete).await.unwrap().status, "deleting");
    }

    #[tokio::test]
    async fn lifecycle_follows_the_clock() {
        let world = World::demo(chrono::Utc::now());
        let aws = world.aws();
        let source = crate::demo_tenants()[0].db_instance_id(&world);
        let snap = aws
            .create_snapshot(&source, "snap-1", &Tags::new())
            .await
            .unwrap();
        assert_eq!(snap.status, "creating");
        let err = aws
            .restore_db_from_snapshot(&restore("db-1", "snap-1"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, switchyard_core::AwsError::InvalidState { .. }),
            "{err}"
        );
        world.advance(StdDuration::from_secs(3600));
        assert_eq!(
            aws.describe_snapshot("snap-1").await.unwrap().status,
            "available"
        );

        let db = aws
            .restore_db_from_snapshot(&restore("db-1", "snap-1"))
            .await
            .unwrap();
        assert_eq!(db.status, "creating");
        assert_eq!(db.endpoint, None);
        let again = aws
            .restore_db_from_snapshot(&restore("db-1", "snap-1"))
            .await
            .unwrap_err();
        assert!(matches!(
            again,
            switchyard_core::AwsError::AlreadyExists { .. }
        ));
        let delete = DeleteDbRequest {
            db_instance_id: "db-1".into(),
            final_snapshot_id: None,
        };
        assert!(matches!(
            aws.delete_db(&delete).await.unwrap_err(),
            switchyard_core::AwsError::InvalidState { .. }
        ));
        world.advance(StdDuration::from_secs(8 * 60));
        assert_eq!(aws.describe_db("db-1").await.unwrap().status, "backing-up");
        world.advance(StdDuration::from_secs(3 * 60));
        let ready = aws.describe_db("db-1").await.unwrap();
        assert_eq!(ready.status, "available");
        assert!(ready.endpoint.is_some());

        let final_snapshot = DeleteDbRequest {
            db_instance_id: "db-1".into(),
            final_snapshot_id: Some("db-1-final".into()),
        };
        assert_eq!(
            aws.delete_db(&final_snapshot).await.unwrap().status,
            "deleting"
        );
        assert_eq!(aws.describe_db("db-1").await.unwrap().status, "deleting");
        world.advance(StdDuration::from_secs(600));
        assert!(matches!(
            aws.describe_db("db-1").await.unwrap_err(),
            switchyard_core::AwsError::NotFound { .. }
        ));
        assert_eq!(
            aws.describe_snapshot("db-1-final").await.unwrap().status,
            "available"
        );
    }

    #[tokio::test]
    async fn errors_name_the_missing_thing() {
        let world = World::new(chrono::Utc::now());
        let aws = world.aws();
        let err = aws.describe_db("nope").await.unwrap_err();
        assert_eq!(err.to_string(), "db instance nope not found");
        let err = aws
            .restore_db_from_snapshot(&restore("x", "missing"))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "db snapshot missing not found");
        let err = aws
            .create_snapshot("nope", "s", &Tags::new())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "db instance nope not found");
    }
}
