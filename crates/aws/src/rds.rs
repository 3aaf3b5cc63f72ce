//! Snapshots and databases on RDS.

use async_trait::async_trait;
use aws_sdk_rds::operation::create_db_snapshot::CreateDBSnapshotError;
use aws_sdk_rds::operation::delete_db_instance::DeleteDBInstanceError;
use aws_sdk_rds::operation::delete_db_snapshot::DeleteDBSnapshotError;
use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
use aws_sdk_rds::operation::describe_db_parameter_groups::DescribeDBParameterGroupsError;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDBSnapshotsError;
use aws_sdk_rds::operation::describe_db_subnet_groups::DescribeDBSubnetGroupsError;
use aws_sdk_rds::operation::modify_db_instance::ModifyDBInstanceError;
use aws_sdk_rds::operation::modify_db_instance::builders::ModifyDBInstanceFluentBuilder;
use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::RestoreDBInstanceFromDBSnapshotError;
use aws_sdk_rds::types::{DbInstance as SdkDbInstance, DbSnapshot, Tag};
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{
    Databases, DbConfig, DbGroupKind, DbInstance, DeleteDbRequest, FinishRestoreRequest,
    MasterUserSecret, RestoreDbRequest, Snapshot, Snapshots, Tags,
};

use crate::SdkAws;
use crate::convert::timestamp;
use crate::error::{already_exists, invalid_state, map_sdk_error, missing_in_response, not_found};

impl SdkAws {
    /// ModifyDBInstance with what `change` sets, applied immediately.
    async fn modify_db(
        &self,
        db_instance_id: &str,
        change: impl FnOnce(ModifyDBInstanceFluentBuilder) -> ModifyDBInstanceFluentBuilder,
    ) -> Result<DbInstance, AwsError> {
        let request = self
            .rds
            .modify_db_instance()
            .db_instance_identifier(db_instance_id)
            .apply_immediately(true);
        let output = change(request).send().await.map_err(|err| {
            map_sdk_error(err, |err| match err {
                ModifyDBInstanceError::DbInstanceNotFoundFault(_) => {
                    not_found(ResourceKind::DbInstance, db_instance_id)
                }
                ModifyDBInstanceError::InvalidDbInstanceStateFault(fault) => {
                    invalid_state(ResourceKind::DbInstance, db_instance_id, fault)
                }
                _ => None,
            })
        })?;
        output.db_instance.map(to_db_instance).ok_or_else(|| {
            missing_in_response("ModifyDBInstance", ResourceKind::DbInstance, db_instance_id)
        })
    }

    /// One instance as RDS describes it; `NotFound` when there is none.
    async fn describe_sdk_db(&self, db_instance_id: &str) -> Result<SdkDbInstance, AwsError> {
        let output = self
            .rds
            .describe_db_instances()
            .db_instance_identifier(db_instance_id)
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    DescribeDBInstancesError::DbInstanceNotFoundFault(_) => {
                        not_found(ResourceKind::DbInstance, db_instance_id)
                    }
                    _ => None,
                })
            })?;
        output
            .db_instances
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| AwsError::NotFound {
                kind: ResourceKind::DbInstance,
                id: db_instance_id.to_owned(),
            })
    }
}

#[async_trait]
impl Snapshots for SdkAws {
    async fn create_snapshot(
        &self,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &Tags,
    ) -> Result<Snapshot, AwsError> {
        let output = self
            .rds
            .create_db_snapshot()
            .db_instance_identifier(db_instance_id)
            .db_snapshot_identifier(snapshot_id)
            .set_tags(to_sdk_tags(tags))
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    CreateDBSnapshotError::DbSnapshotAlreadyExistsFault(_) => {
                        already_exists(ResourceKind::DbSnapshot, snapshot_id)
                    }
                    CreateDBSnapshotError::DbInstanceNotFoundFault(_) => {
                        not_found(ResourceKind::DbInstance, db_instance_id)
                    }
                    CreateDBSnapshotError::InvalidDbInstanceStateFault(fault) => {
                        invalid_state(ResourceKind::DbInstance, db_instance_id, fault)
                    }
                    _ => None,
                })
            })?;
        output.db_snapshot.map(to_snapshot).ok_or_else(|| {
            missing_in_response("CreateDBSnapshot", ResourceKind::DbSnapshot, snapshot_id)
        })
    }

    async fn describe_snapshot(&self, snapshot_id: &str) -> Result<Snapshot, AwsError> {
        let output = self
            .rds
            .describe_db_snapshots()
            .db_snapshot_identifier(snapshot_id)
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    DescribeDBSnapshotsError::DbSnapshotNotFoundFault(_) => {
                        not_found(ResourceKind::DbSnapshot, snapshot_id)
                    }
                    _ => None,
                })
            })?;
        // RDS filters by the id (or ARN) given, so the first entry is the one; an empty list,
        // not a fault, is what some endpoints answer for an unknown id.
        output
            .db_snapshots
            .unwrap_or_default()
            .into_iter()
            .map(to_snapshot)
            .next()
            .ok_or_else(|| AwsError::NotFound {
                kind: ResourceKind::DbSnapshot,
                id: snapshot_id.to_owned(),
            })
    }

    async fn list_snapshots(&self) -> Result<Vec<Snapshot>, AwsError> {
        // Manual only: automated snapshots belong to RDS's retention, not to Switchyard.
        let mut items = self
            .rds
            .describe_db_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .items()
            .send();
        let mut snapshots = Vec::new();
        while let Some(snapshot) = items
            .try_next()
            .await
            .map_err(|err| map_sdk_error(err, |_| None))?
        {
            snapshots.push(to_snapshot(snapshot));
        }
        Ok(snapshots)
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), AwsError> {
        self.rds
            .delete_db_snapshot()
            .db_snapshot_identifier(snapshot_id)
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    DeleteDBSnapshotError::DbSnapshotNotFoundFault(_) => {
                        not_found(ResourceKind::DbSnapshot, snapshot_id)
                    }
                    DeleteDBSnapshotError::InvalidDbSnapshotStateFault(fault) => {
                        invalid_state(ResourceKind::DbSnapshot, snapshot_id, fault)
                    }
                    _ => None,
                })
            })?;
        Ok(())
    }
}

#[async_trait]
impl Databases for SdkAws {
    async fn restore_db_from_snapshot(
        &self,
        request: &RestoreDbRequest,
    ) -> Result<DbInstance, AwsError> {
        let db_id = request.db_instance_id.as_str();
        let snapshot_id = request.snapshot_id.as_str();
        // An empty list would be sent as such; leaving it out lets RDS apply the VPC's default.
        let security_groups =
            Some(request.security_group_ids.clone()).filter(|groups| !groups.is_empty());
        let config = &request.config;
        let output = self
            .rds
            .restore_db_instance_from_db_snapshot()
            .db_instance_identifier(db_id)
            .db_snapshot_identifier(snapshot_id)
            .db_instance_class(&request.instance_class)
            .set_db_subnet_group_name(request.subnet_group.clone())
            .set_vpc_security_group_ids(security_groups)
            .set_tags(to_sdk_tags(&request.tags))
            // What a restore does not carry over on its own (see DbConfig).
            .set_db_parameter_group_name(config.parameter_group.clone())
            .set_option_group_name(config.option_group.clone())
            .set_multi_az(config.multi_az)
            .set_storage_type(config.storage_type.clone())
            .set_iops(config.iops)
            .set_storage_throughput(config.storage_throughput)
            .set_deletion_protection(config.deletion_protection)
            .set_backup_retention_period(config.backup_retention_days)
            .set_preferred_backup_window(config.backup_window.clone())
            .set_enable_iam_database_authentication(config.iam_database_authentication)
            .set_copy_tags_to_snapshot(config.copy_tags_to_snapshot)
            .set_publicly_accessible(config.publicly_accessible)
            .set_auto_minor_version_upgrade(config.auto_minor_version_upgrade)
            .set_ca_certificate_identifier(config.ca_certificate.clone())
            .set_enable_cloudwatch_logs_exports(
                config
                    .cloudwatch_logs_exports
                    .clone()
                    .filter(|logs| !logs.is_empty()),
            )
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    RestoreDBInstanceFromDBSnapshotError::DbInstanceAlreadyExistsFault(_) => {
                        already_exists(ResourceKind::DbInstance, db_id)
                    }
                    RestoreDBInstanceFromDBSnapshotError::DbParameterGroupNotFoundFault(_) => {
                        not_found(
                            ResourceKind::DbParameterGroup,
                            config.parameter_group.as_deref().unwrap_or_default(),
                        )
                    }
                    RestoreDBInstanceFromDBSnapshotError::DbSubnetGroupNotFoundFault(_) => {
                        not_found(
                            ResourceKind::DbSubnetGroup,
                            request.subnet_group.as_deref().unwrap_or_default(),
                        )
                    }
                    RestoreDBInstanceFromDBSnapshotError::DbSnapshotNotFoundFault(_) => {
                        not_found(ResourceKind::DbSnapshot, snapshot_id)
                    }
                    RestoreDBInstanceFromDBSnapshotError::InvalidDbSnapshotStateFault(fault) => {
                        invalid_state(ResourceKind::DbSnapshot, snapshot_id, fault)
                    }
                    _ => None,
                })
            })?;
        output.db_instance.map(to_db_instance).ok_or_else(|| {
            missing_in_response(
                "RestoreDBInstanceFromDBSnapshot",
                ResourceKind::DbInstance,
                db_id,
            )
        })
    }

    async fn describe_db(&self, db_instance_id: &str) -> Result<DbInstance, AwsError> {
        self.describe_sdk_db(db_instance_id)
            .await
            .map(to_db_instance)
    }

    async fn delete_db(&self, request: &DeleteDbRequest) -> Result<DbInstance, AwsError> {
        let db_id = request.db_instance_id.as_str();
        let final_snapshot = request.final_snapshot_id.as_deref();
        let output = self
            .rds
            .delete_db_instance()
            .db_instance_identifier(db_id)
            .skip_final_snapshot(final_snapshot.is_none())
            .set_final_db_snapshot_identifier(final_snapshot.map(str::to_owned))
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    DeleteDBInstanceError::DbInstanceNotFoundFault(_) => {
                        not_found(ResourceKind::DbInstance, db_id)
                    }
                    DeleteDBInstanceError::InvalidDbInstanceStateFault(fault) => {
                        invalid_state(ResourceKind::DbInstance, db_id, fault)
                    }
                    DeleteDBInstanceError::DbSnapshotAlreadyExistsFault(_) => {
                        already_exists(ResourceKind::DbSnapshot, final_snapshot.unwrap_or_default())
                    }
                    _ => None,
                })
            })?;
        output
            .db_instance
            .map(to_db_instance)
            .ok_or_else(|| missing_in_response("DeleteDBInstance", ResourceKind::DbInstance, db_id))
    }

    async fn finish_restore(&self, request: &FinishRestoreRequest) -> Result<DbInstance, AwsError> {
        let setup = request.setup.after_restore();
        self.modify_db(&request.db_instance_id, |modify| {
            modify
                .set_manage_master_user_password(request.manage_master_password.then_some(true))
                .set_preferred_maintenance_window(setup.maintenance_window)
                .set_monitoring_interval(setup.monitoring_interval_seconds)
                .set_monitoring_role_arn(setup.monitoring_role_arn)
                .set_enable_performance_insights(setup.performance_insights)
                .set_performance_insights_retention_period(
                    setup.performance_insights_retention_days,
                )
                .set_performance_insights_kms_key_id(setup.performance_insights_kms_key_id)
        })
        .await
    }

    async fn db_group_exists(&self, kind: DbGroupKind, name: &str) -> Result<bool, AwsError> {
        let found = match kind {
            DbGroupKind::Subnet => self
                .rds
                .describe_db_subnet_groups()
                .db_subnet_group_name(name)
                .send()
                .await
                .map(|out| {
                    out.db_subnet_groups()
                        .iter()
                        .any(|g| g.db_subnet_group_name() == Some(name))
                })
                .map_err(|err| {
                    map_sdk_error(err, |err| match err {
                        DescribeDBSubnetGroupsError::DbSubnetGroupNotFoundFault(_) => {
                            not_found(ResourceKind::DbSubnetGroup, name)
                        }
                        _ => None,
                    })
                }),
            DbGroupKind::Parameter => self
                .rds
                .describe_db_parameter_groups()
                .db_parameter_group_name(name)
                .send()
                .await
                .map(|out| {
                    out.db_parameter_groups()
                        .iter()
                        .any(|g| g.db_parameter_group_name() == Some(name))
                })
                .map_err(|err| {
                    map_sdk_error(err, |err| match err {
                        DescribeDBParameterGroupsError::DbParameterGroupNotFoundFault(_) => {
                            not_found(ResourceKind::DbParameterGroup, name)
                        }
                        _ => None,
                    })
                }),
        };
        // RDS answers a missing name with its NotFound fault; moto with an empty list.
        match found {
            Ok(listed) => Ok(listed),
            Err(AwsError::NotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn set_deletion_protection(
        &self,
        db_instance_id: &str,
        enabled: bool,
    ) -> Result<DbInstance, AwsError> {
        self.modify_db(db_instance_id, |modify| modify.deletion_protection(enabled))
            .await
    }

    async fn tag_db(&self, db_instance_id: &str, tags: &Tags) -> Result<(), AwsError> {
        // AddTagsToResource takes the ARN, which only RDS knows for sure (partition, account).
        let arn = self
            .describe_sdk_db(db_instance_id)
            .await?
            .db_instance_arn
            .ok_or_else(|| {
                missing_in_response(
                    "DescribeDBInstances",
                    ResourceKind::DbInstance,
                    db_instance_id,
                )
            })?;
        self.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(to_sdk_tags(tags))
            .send()
            .await
            .map_err(|err| map_sdk_error(err, |_| None))?;
        Ok(())
    }

    async fn list_dbs(&self) -> Result<Vec<DbInstance>, AwsError> {
        let mut items = self
            .rds
            .describe_db_instances()
            .into_paginator()
            .items()
            .send();
        let mut dbs = Vec::new();
        while let Some(db) = items
            .try_next()
            .await
            .map_err(|err| map_sdk_error(err, |_| None))?
        {
            dbs.push(to_db_instance(db));
        }
        Ok(dbs)
    }
}

fn to_sdk_tags(tags: &Tags) -> Option<Vec<Tag>> {
    Some(
        tags.iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect(),
    )
}

fn from_sdk_tags(tags: Option<Vec<Tag>>) -> Tags {
    tags.unwrap_or_default()
        .into_iter()
        .filter_map(|tag| Some((tag.key?, tag.value.unwrap_or_default())))
        .collect()
}

fn to_snapshot(snapshot: DbSnapshot) -> Snapshot {
    Snapshot {
        id: snapshot.db_snapshot_identifier.unwrap_or_default(),
        db_instance_id: snapshot.db_instance_identifier.unwrap_or_default(),
        status: snapshot.status.unwrap_or_default(),
        created_at: snapshot.snapshot_create_time.as_ref().and_then(timestamp),
        allocated_storage_gib: snapshot.allocated_storage.unwrap_or_default(),
        engine: snapshot.engine.unwrap_or_default(),
        engine_version: snapshot.engine_version.unwrap_or_default(),
        tags: from_sdk_tags(snapshot.tag_list),
    }
}

fn to_db_instance(db: SdkDbInstance) -> DbInstance {
    let (endpoint, port) = match db.endpoint {
        Some(endpoint) => (endpoint.address, endpoint.port),
        None => (None, None),
    };
    DbInstance {
        id: db.db_instance_identifier.unwrap_or_default(),
        status: db.db_instance_status.unwrap_or_default(),
        endpoint,
        port,
        instance_class: db.db_instance_class.unwrap_or_default(),
        engine: db.engine.unwrap_or_default(),
        engine_version: db.engine_version.unwrap_or_default(),
        allocated_storage_gib: db.allocated_storage.unwrap_or_default(),
        created_at: db.instance_create_time.as_ref().and_then(timestamp),
        tags: from_sdk_tags(db.tag_list),
        master_user_secret: db.master_user_secret.and_then(|secret| {
            Some(MasterUserSecret {
                secret_arn: secret.secret_arn?,
                status: secret.secret_status.unwrap_or_default(),
            })
        }),
        config: DbConfig {
            parameter_group: db
                .db_parameter_groups
                .unwrap_or_default()
                .into_iter()
                .find_map(|group| group.db_parameter_group_name),
            option_group: db
                .option_group_memberships
                .unwrap_or_default()
                .into_iter()
                .find_map(|group| group.option_group_name),
            multi_az: db.multi_az,
            storage_type: db.storage_type,
            iops: db.iops,
            storage_throughput: db.storage_throughput,
            deletion_protection: db.deletion_protection,
            backup_retention_days: db.backup_retention_period,
            backup_window: db.preferred_backup_window,
            iam_database_authentication: db.iam_database_authentication_enabled,
            copy_tags_to_snapshot: db.copy_tags_to_snapshot,
            publicly_accessible: db.publicly_accessible,
            auto_minor_version_upgrade: db.auto_minor_version_upgrade,
            ca_certificate: db.ca_certificate_identifier,
            cloudwatch_logs_exports: db.enabled_cloudwatch_logs_exports,
            maintenance_window: db.preferred_maintenance_window,
            monitoring_interval_seconds: db.monitoring_interval,
            monitoring_role_arn: db.monitoring_role_arn,
            performance_insights: db.performance_insights_enabled,
            performance_insights_retention_days: db.performance_insights_retention_period,
            performance_insights_kms_key_id: db.performance_insights_kms_key_id,
        },
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::create_db_snapshot::CreateDbSnapshotOutput;
    use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
    use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::RestoreDbInstanceFromDbSnapshotOutput;
    use aws_sdk_rds::types::Endpoint;
    use aws_sdk_rds::types::error::{
        DbInstanceAlreadyExistsFault, DbInstanceNotFoundFault, DbSnapshotAlreadyExistsFault,
        DbSnapshotNotFoundFault, InvalidDbInstanceStateFault,
    };
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::testing::{self, meta, query_error};

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn sdk_snapshot() -> DbSnapshot {
        DbSnapshot::builder()
            .db_snapshot_identifier("snap-1")
            .db_instance_identifier("db-blue")
            .status("creating")
            .snapshot_create_time(aws_smithy_types::DateTime::from_secs(1_764_108_000))
            .allocated_storage(20)
            .engine("postgres")
            .engine_version("16.4")
            .tag_list(
                Tag::builder()
                    .key("switchyard:namespace")
                    .value("xy-0146-qa")
                    .build(),
            )
            .build()
    }

    fn sdk_db(id: &str) -> SdkDbInstance {
        SdkDbInstance::builder()
            .db_instance_identifier(id)
            .db_instance_status("available")
            .endpoint(
                Endpoint::builder()
                    .address(format!("{id}.abc.us-east-1.rds.amazonaws.com"))
                    .port(5432)
                    .build(),
            )
            .db_instance_class("db.t4g.micro")
            .engine("postgres")
            .engine_version("16.4")
            .allocated_storage(20)
            .instance_create_time(aws_smithy_types::DateTime::from_secs(1_764_108_000))
            .tag_list(
                Tag::builder()
                    .key("switchyard:managed-by")
                    .value("switchyard")
                    .build(),
            )
            .tag_list(Tag::builder().key("no-value").build())
            .build()
    }

    fn restore_request() -> RestoreDbRequest {
        RestoreDbRequest {
            db_instance_id: "db-green".into(),
            snapshot_id: "snap-1".into(),
            instance_class: "db.t4g.small".into(),
            subnet_group: Some("private".into()),
            security_group_ids: vec!["sg-1".into(), "sg-2".into()],
            tags: tags(&[("switchyard:namespace", "xy-0146-qa")]),
            config: DbConfig {
                parameter_group: Some("xy-0146-qa-postgres16".into()),
                multi_az: Some(true),
                deletion_protection: Some(true),
                backup_retention_days: Some(7),
                ..DbConfig::default()
            },
        }
    }

    #[tokio::test]
    async fn create_snapshot_sends_tags_and_maps_the_snapshot() {
        let rule = mock!(Client::create_db_snapshot)
            .match_requests(|req| {
                req.db_instance_identifier() == Some("db-blue")
                    && req.db_snapshot_identifier() == Some("snap-1")
                    && req.tags().len() == 1
                    && req.tags()[0].key() == Some("switchyard:namespace")
                    && req.tags()[0].value() == Some("xy-0146-qa")
            })
            .then_output(|| {
                CreateDbSnapshotOutput::builder()
                    .db_snapshot(sdk_snapshot())
                    .build()
            });
        let aws = testing::rds(&[&rule]);
        let snapshot = aws
            .create_snapshot(
                "db-blue",
                "snap-1",
                &tags(&[("switchyard:namespace", "xy-0146-qa")]),
            )
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(
            snapshot,
            Snapshot {
                id: "snap-1".into(),
                db_instance_id: "db-blue".into(),
                status: "creating".into(),
                created_at: chrono::DateTime::from_timestamp(1_764_108_000, 0),
                allocated_storage_gib: 20,
                engine: "postgres".into(),
                engine_version: "16.4".into(),
                tags: tags(&[("switchyard:namespace", "xy-0146-qa")]),
            }
        );
    }

    #[tokio::test]
    async fn create_snapshot_maps_its_faults() {
        let exists = mock!(Client::create_db_snapshot).then_error(|| {
            CreateDBSnapshotError::DbSnapshotAlreadyExistsFault(
                DbSnapshotAlreadyExistsFault::builder().build(),
            )
        });
        let err = testing::rds(&[&exists])
            .create_snapshot("db-blue", "snap-1", &Tags::new())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AwsError::AlreadyExists {
                kind: ResourceKind::DbSnapshot,
                id: "snap-1".into()
            }
        );

        let missing = mock!(Client::create_db_snapshot).then_error(|| {
            CreateDBSnapshotError::DbInstanceNotFoundFault(
                DbInstanceNotFoundFault::builder().build(),
            )
        });
        let err = testing::rds(&[&missing])
            .create_snapshot("db-blue", "snap-1", &Tags::new())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AwsError::NotFound {
                kind: ResourceKind::DbInstance,
                id: "db-blue".into()
            }
        );

        let busy = mock!(Client::create_db_snapshot).then_error(|| {
            CreateDBSnapshotError::InvalidDbInstanceStateFault(
                InvalidDbInstanceStateFault::builder()
                    .message("instance is backing-up")
                    .meta(meta("InvalidDBInstanceState", "instance is backing-up"))
                    .build(),
            )
        });
        let err = testing::rds(&[&busy])
            .create_snapshot("db-blue", "snap-1", &Tags::new())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AwsError::InvalidState {
                kind: ResourceKind::DbInstance,
                id: "db-blue".into(),
                message: "instance is backing-up".into()
            }
        );
    }

    #[tokio::test]
    async fn describe_snapshot_maps_not_found_and_empty_answers() {
        let found = mock!(Client::describe_db_snapshots)
            .match_requests(|req| req.db_snapshot_identifier() == Some("snap-1"))
            .then_output(|| {
                DescribeDbSnapshotsOutput::builder()
                    .db_snapshots(sdk_snapshot())
                    .build()
            });
        let fault = mock!(Client::describe_db_snapshots)
            .match_requests(|req| req.db_snapshot_identifier() == Some("snap-gone"))
            .then_error(|| {
                DescribeDBSnapshotsError::DbSnapshotNotFoundFault(
                    DbSnapshotNotFoundFault::builder().build(),
                )
            });
        let empty = mock!(Client::describe_db_snapshots)
            .match_requests(|req| req.db_snapshot_identifier() == Some("snap-empty"))
            .then_output(|| DescribeDbSnapshotsOutput::builder().build());
        let aws = testing::rds(&[&found, &fault, &empty]);

        let snapshot = aws.describe_snapshot("snap-1").await.unwrap();
        assert_eq!(snapshot.status, "creating");
        assert_eq!(
            snapshot.created_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2025-11-25T22:00:00+00:00")
        );
        for id in ["snap-gone", "snap-empty"] {
            assert_eq!(
                aws.describe_snapshot(id).await.unwrap_err(),
                AwsError::NotFound {
                    kind: ResourceKind::DbSnapshot,
                    id: id.into()
                }
            );
        }
    }

    #[tokio::test]
    async fn restore_sends_the_whole_request() {
        let rule = mock!(Client::restore_db_instance_from_db_snapshot)
            .match_requests(|req| {
                req.db_instance_identifier() == Some("db-green")
                    && req.db_snapshot_identifier() == Some("snap-1")
                    && req.db_instance_class() == Some("db.t4g.small")
                    && req.db_subnet_group_name() == Some("private")
                    && req.vpc_security_group_ids() == ["sg-1", "sg-2"]
                    && req.db_parameter_group_name() == Some("xy-0146-qa-postgres16")
                    && req.multi_az() == Some(true)
                    && req.deletion_protection() == Some(true)
                    && req.backup_retention_period() == Some(7)
                    && req.option_group_name().is_none()
                    && req.iops().is_none()
                    && req.tags().len() == 1
            })
            .then_output(|| {
                RestoreDbInstanceFromDbSnapshotOutput::builder()
                    .db_instance(
                        SdkDbInstance::builder()
                            .db_instance_identifier("db-green")
                            .db_instance_status("creating")
                            .build(),
                    )
                    .build()
            });
        let db = testing::rds(&[&rule])
            .restore_db_from_snapshot(&restore_request())
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(db.id, "db-green");
        assert_eq!(db.status, "creating");
        // Fields RDS has not filled in yet come back empty, not as a failure.
        assert_eq!((db.endpoint, db.port, db.created_at), (None, None, None));
        assert!(db.tags.is_empty());
    }

    #[tokio::test]
    async fn restore_maps_existing_db_and_missing_snapshot() {
        let exists = mock!(Client::restore_db_instance_from_db_snapshot).then_error(|| {
            RestoreDBInstanceFromDBSnapshotError::DbInstanceAlreadyExistsFault(
                DbInstanceAlreadyExistsFault::builder().build(),
            )
        });
        assert_eq!(
            testing::rds(&[&exists])
                .restore_db_from_snapshot(&restore_request())
                .await
                .unwrap_err(),
            AwsError::AlreadyExists {
                kind: ResourceKind::DbInstance,
                id: "db-green".into()
            }
        );
        let missing = mock!(Client::restore_db_instance_from_db_snapshot).then_error(|| {
            RestoreDBInstanceFromDBSnapshotError::DbSnapshotNotFoundFault(
                DbSnapshotNotFoundFault::builder().build(),
            )
        });
        assert_eq!(
            testing::rds(&[&missing])
                .restore_db_from_snapshot(&restore_request())
                .await
                .unwrap_err(),
            AwsError::NotFound {
                kind: ResourceKind::DbSnapshot,
                id: "snap-1".into()
            }
        );
    }

    #[tokio::test]
    async fn describe_db_maps_endpoint_and_tags() {
        let rule = mock!(Client::describe_db_instances)
            .match_requests(|req| req.db_instance_identifier() == Some("db-blue"))
            .then_output(|| {
                DescribeDbInstancesOutput::builder()
                    .db_instances(sdk_db("db-blue"))
                    .build()
            });
        let db = testing::rds(&[&rule]).describe_db("db-blue").await.unwrap();
        assert_eq!(
            db,
            DbInstance {
                id: "db-blue".into(),
                status: "available".into(),
                endpoint: Some("db-blue.abc.us-east-1.rds.amazonaws.com".into()),
                port: Some(5432),
                instance_class: "db.t4g.micro".into(),
                engine: "postgres".into(),
                engine_version: "16.4".into(),
                allocated_storage_gib: 20,
                created_at: chrono::DateTime::from_timestamp(1_764_108_000, 0),
                tags: tags(&[("no-value", ""), ("switchyard:managed-by", "switchyard")]),
                master_user_secret: None,
                config: DbConfig::default(),
            }
        );
    }

    #[tokio::test]
    async fn describe_db_maps_not_found() {
        let rule = mock!(Client::describe_db_instances).then_error(|| {
            DescribeDBInstancesError::DbInstanceNotFoundFault(
                DbInstanceNotFoundFault::builder().build(),
            )
        });
        assert_eq!(
            testing::rds(&[&rule])
                .describe_db("db-gone")
                .await
                .unwrap_err(),
            AwsError::NotFound {
                kind: ResourceKind::DbInstance,
                id: "db-gone".into()
            }
        );
    }

    #[tokio::test]
    async fn delete_db_without_final_snapshot_says_skip() {
        let rule = mock!(Client::delete_db_instance)
            .match_requests(|req| {
                req.db_instance_identifier() == Some("db-blue")
                    && req.skip_final_snapshot() == Some(true)
                    && req.final_db_snapshot_identifier().is_none()
            })
            .then_output(|| {
                DeleteDbInstanceOutput::builder()
                    .db_instance(
                        SdkDbInstance::builder()
                            .db_instance_identifier("db-blue")
                            .db_instance_status("deleting")
                            .build(),
                    )
                    .build()
            });
        let request = DeleteDbRequest {
            db_instance_id: "db-blue".into(),
            final_snapshot_id: None,
        };
        let db = testing::rds(&[&rule]).delete_db(&request).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(db.status, "deleting");
    }

    #[tokio::test]
    async fn delete_db_with_final_snapshot_names_it() {
        let rule = mock!(Client::delete_db_instance)
            .match_requests(|req| {
                req.skip_final_snapshot() == Some(false)
                    && req.final_db_snapshot_identifier() == Some("final-1")
            })
            .then_output(|| {
                DeleteDbInstanceOutput::builder()
                    .db_instance(sdk_db("db-blue"))
                    .build()
            });
        let request = DeleteDbRequest {
            db_instance_id: "db-blue".into(),
            final_snapshot_id: Some("final-1".into()),
        };
        testing::rds(&[&rule]).delete_db(&request).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn delete_db_maps_its_faults() {
        let request = DeleteDbRequest {
            db_instance_id: "db-blue".into(),
            final_snapshot_id: Some("final-1".into()),
        };
        let busy = mock!(Client::delete_db_instance).then_error(|| {
            DeleteDBInstanceError::InvalidDbInstanceStateFault(
                InvalidDbInstanceStateFault::builder()
                    .message("instance is modifying")
                    .meta(meta("InvalidDBInstanceState", "instance is modifying"))
                    .build(),
            )
        });
        assert_eq!(
            testing::rds(&[&busy])
                .delete_db(&request)
                .await
                .unwrap_err(),
            AwsError::InvalidState {
                kind: ResourceKind::DbInstance,
                id: "db-blue".into(),
                message: "instance is modifying".into()
            }
        );
        let taken = mock!(Client::delete_db_instance).then_error(|| {
            DeleteDBInstanceError::DbSnapshotAlreadyExistsFault(
                DbSnapshotAlreadyExistsFault::builder().build(),
            )
        });
        assert_eq!(
            testing::rds(&[&taken])
                .delete_db(&request)
                .await
                .unwrap_err(),
            AwsError::AlreadyExists {
                kind: ResourceKind::DbSnapshot,
                id: "final-1".into()
            }
        );
        let gone = mock!(Client::delete_db_instance).then_error(|| {
            DeleteDBInstanceError::DbInstanceNotFoundFault(
                DbInstanceNotFoundFault::builder().build(),
            )
        });
        assert_eq!(
            testing::rds(&[&gone])
                .delete_db(&request)
                .await
                .unwrap_err(),
            AwsError::NotFound {
                kind: ResourceKind::DbInstance,
                id: "db-blue".into()
            }
        );
    }

    #[tokio::test]
    async fn list_dbs_merges_every_page() {
        let first = mock!(Client::describe_db_instances)
            .match_requests(|req| req.marker().is_none())
            .then_output(|| {
                DescribeDbInstancesOutput::builder()
                    .db_instances(sdk_db("db-a"))
                    .db_instances(sdk_db("db-b"))
                    .marker("page-2")
                    .build()
            });
        let second = mock!(Client::describe_db_instances)
            .match_requests(|req| req.marker() == Some("page-2"))
            .then_output(|| {
                DescribeDbInstancesOutput::builder()
                    .db_instances(sdk_db("db-c"))
                    .build()
            });
        let dbs = testing::rds(&[&first, &second]).list_dbs().await.unwrap();
        let ids: Vec<_> = dbs.iter().map(|db| db.id.as_str()).collect();
        assert_eq!(ids, ["db-a", "db-b", "db-c"]);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn throttling_is_throttled_with_code_and_message() {
        let rule = mock!(Client::describe_db_instances)
            .then_http_response(|| query_error(400, "Throttling", "Rate exceeded"));
        assert_eq!(
            testing::rds(&[&rule])
                .describe_db("db-blue")
                .await
                .unwrap_err(),
            AwsError::Throttled {
                code: "Throttling".into(),
                message: "Rate exceeded".into()
            }
        );
    }

    #[tokio::test]
    async fn server_errors_are_unavailable_and_the_rest_rejected() {
        let outage = mock!(Client::describe_db_instances)
            .then_http_response(|| query_error(503, "ServiceUnavailable", "try later"));
        let err = testing::rds(&[&outage]).list_dbs().await.unwrap_err();
        assert_eq!(
            err,
            AwsError::Unavailable {
                message: "ServiceUnavailable: try later".into()
            }
        );
        let denied = mock!(Client::describe_db_instances).then_http_response(|| {
            query_error(
                403,
                "AccessDenied",
                "not authorized to rds:DescribeDBInstances",
            )
        });
        let err = testing::rds(&[&denied]).list_dbs().await.unwrap_err();
        assert_eq!(
            err,
            AwsError::Rejected {
                code: "AccessDenied".into(),
                message: "not authorized to rds:DescribeDBInstances".into()
            }
        );
    }
}
