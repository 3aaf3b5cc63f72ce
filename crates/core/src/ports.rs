//! Narrow ports onto the AWS capabilities Switchyard needs. Two adapters implement them: the AWS
//! SDK one (`switchyard-aws`) and the simulated world (`switchyard-sim`). Nothing here knows about
//! `SdkError`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{AwsError, ResourceKind};

pub type Tags = BTreeMap<String, String>;

/// Tag keys Switchyard puts on everything it creates.
pub mod tag {
    /// Every tag Switchyard sets starts so; the others are the owner's (and carried over).
    pub const PREFIX: &str = "switchyard:";
    pub const MANAGED_BY: &str = "switchyard:managed-by";
    pub const NAMESPACE: &str = "switchyard:namespace";
    pub const SNAPSHOT: &str = "switchyard:snapshot";
    pub const TIMESTAMP: &str = "switchyard:timestamp";
    pub const EXECUTION: &str = "switchyard:execution";
    /// When that execution started (RFC 3339): with the execution id, the proof that a
    /// resource is this run's own work, since an id alone can be reused.
    pub const EXECUTION_START: &str = "switchyard:execution-start";
    pub const DB_INSTANCE: &str = "switchyard:db-instance";
    pub const PREVIOUS_TASK_DEFINITION: &str = "switchyard:previous-task-definition";
    /// The names of the variables and secrets a revision carries from the tenant's settings
    /// (space-separated): a setting removed from the catalog is removed from the next revision.
    pub const APP_SETTINGS: &str = "switchyard:app-settings";
    pub const MANAGED_BY_VALUE: &str = "switchyard";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub db_instance_id: String,
    /// RDS's own words: `creating`, `available`, `failed`, ...
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    pub allocated_storage_gib: i32,
    pub engine: String,
    pub engine_version: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbInstance {
    pub id: String,
    /// RDS's own words: `creating`, `backing-up`, `available`, `deleting`, ...
    pub status: String,
    pub endpoint: Option<String>,
    pub port: Option<i32>,
    pub instance_class: String,
    pub engine: String,
    pub engine_version: String,
    pub allocated_storage_gib: i32,
    pub created_at: Option<DateTime<Utc>>,
    pub tags: Tags,
    /// The master password RDS keeps in Secrets Manager for this instance, if it manages one.
    #[serde(default)]
    pub master_user_secret: Option<MasterUserSecret>,
    /// How it is set up beyond its data and class (as RDS describes it).
    #[serde(default)]
    pub config: DbConfig,
}

/// How a database is set up beyond its data, class and network: what a restore from a snapshot
/// does not carry over unless asked (RDS restores onto the default parameter and option groups,
/// single-AZ, without deletion protection). A restore asks for what the database it replaces
/// has, and the namespace's `database` settings override any of it. `None` leaves RDS's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    /// `gp2`, `gp3`, `io1`, `io2`, `standard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
    /// Provisioned IOPS (io1/io2, or gp3 of 400 GiB and more: below that RDS refuses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i32>,
    /// MiB/s (gp3 of 400 GiB and more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_throughput: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_retention_days: Option<i32>,
    /// `hh24:mi-hh24:mi`, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_database_authentication: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_tags_to_snapshot: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publicly_accessible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_minor_version_upgrade: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// The logs exported to CloudWatch Logs (`postgresql`, `upgrade`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch_logs_exports: Option<Vec<String>>,
    // A restore takes none of the following: they are set on the new instance afterwards
    // (ModifyDBInstance, before it takes traffic; see `after_restore`).
    /// `ddd:hh24:mi-ddd:hh24:mi`, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_window: Option<String>,
    /// Enhanced Monitoring's interval in seconds (0: off; 1, 5, 10, 15, 30 or 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring_interval_seconds: Option<i32>,
    /// The role Enhanced Monitoring publishes with (required when the interval is not 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_insights: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_insights_retention_days: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_insights_kms_key_id: Option<String>,
}

impl DbConfig {
    /// This configuration, with every setting `overrides` gives put in its place.
    pub fn overridden_by(&self, overrides: &DbConfig) -> DbConfig {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.clone().or_else(|| base.clone())
        }
        DbConfig {
            parameter_group: pick(&self.parameter_group, &overrides.parameter_group),
            option_group: pick(&self.option_group, &overrides.option_group),
            multi_az: pick(&self.multi_az, &overrides.multi_az),
            storage_type: pick(&self.storage_type, &overrides.storage_type),
            iops: pick(&self.iops, &overrides.iops),
            storage_throughput: pick(&self.storage_throughput, &overrides.storage_throughput),
            deletion_protection: pick(&self.deletion_protection, &overrides.deletion_protection),
            backup_retention_days: pick(
                &self.backup_retention_days,
                &overrides.backup_retention_days,
            ),
            backup_window: pick(&self.backup_window, &overrides.backup_window),
            iam_database_authentication: pick(
                &self.iam_database_authentication,
                &overrides.iam_database_authentication,
            ),
            copy_tags_to_snapshot: pick(
                &self.copy_tags_to_snapshot,
                &overrides.copy_tags_to_snapshot,
            ),
            publicly_accessible: pick(&self.publicly_accessible, &overrides.publicly_accessible),
            auto_minor_version_upgrade: pick(
                &self.auto_minor_version_upgrade,
                &overrides.auto_minor_version_upgrade,
            ),
            ca_certificate: pick(&self.ca_certificate, &overrides.ca_certificate),
            cloudwatch_logs_exports: pick(
                &self.cloudwatch_logs_exports,
                &overrides.cloudwatch_logs_exports,
            ),
            maintenance_window: pick(&self.maintenance_window, &overrides.maintenance_window),
            monitoring_interval_seconds: pick(
                &self.monitoring_interval_seconds,
                &overrides.monitoring_interval_seconds,
            ),
            monitoring_role_arn: pick(&self.monitoring_role_arn, &overrides.monitoring_role_arn),
            performance_insights: pick(&self.performance_insights, &overrides.performance_insights),
            performance_insights_retention_days: pick(
                &self.performance_insights_retention_days,
                &overrides.performance_insights_retention_days,
            ),
            performance_insights_kms_key_id: pick(
                &self.performance_insights_kms_key_id,
                &overrides.performance_insights_kms_key_id,
            ),
        }
    }

    pub fn is_empty(&self) -> bool {
        self == &DbConfig::default()
    }

    /// This setup without what a restore cannot ask for (RDS would refuse or ignore it).
    pub fn for_restore(&self) -> DbConfig {
        DbConfig {
            maintenance_window: None,
            monitoring_interval_seconds: None,
            monitoring_role_arn: None,
            performance_insights: None,
            performance_insights_retention_days: None,
            performance_insights_kms_key_id: None,
            ..self.clone()
        }
    }

    /// The part of this setup a restore cannot ask for, set on the new instance afterwards.
    pub fn after_restore(&self) -> DbConfig {
        DbConfig {
            maintenance_window: self.maintenance_window.clone(),
            monitoring_interval_seconds: self.monitoring_interval_seconds,
            monitoring_role_arn: self.monitoring_role_arn.clone(),
            performance_insights: self.performance_insights,
            performance_insights_retention_days: self.performance_insights_retention_days,
            performance_insights_kms_key_id: self.performance_insights_kms_key_id.clone(),
            ..DbConfig::default()
        }
    }

    /// What of this after-restore setup `current` does not have yet: the change to ask for,
    /// empty when there is none (so that a retried step modifies nothing twice). Enhanced
    /// Monitoring and Performance Insights are compared as a whole, since RDS takes each one's
    /// fields together.
    pub fn after_restore_missing_from(&self, current: &DbConfig) -> DbConfig {
        let wanted = self.after_restore();
        let differs = |w: &Option<String>, c: &Option<String>| w.is_some() && w != c;
        let monitoring = (wanted.monitoring_interval_seconds.is_some()
            && wanted.monitoring_interval_seconds != current.monitoring_interval_seconds)
            || differs(&wanted.monitoring_role_arn, &current.monitoring_role_arn);
        let insights = (wanted.performance_insights.is_some()
            && wanted.performance_insights != current.performance_insights)
            || (wanted.performance_insights == Some(true)
                && ((wanted.performance_insights_retention_days.is_some()
                    && wanted.performance_insights_retention_days
                        != current.performance_insights_retention_days)
                    || differs(
                        &wanted.performance_insights_kms_key_id,
                        &current.performance_insights_kms_key_id,
                    )));
        DbConfig {
            maintenance_window: wanted
                .maintenance_window
                .clone()
                .filter(|_| differs(&wanted.maintenance_window, &current.maintenance_window)),
            monitoring_interval_seconds: wanted.monitoring_interval_seconds.filter(|_| monitoring),
            monitoring_role_arn: wanted.monitoring_role_arn.clone().filter(|_| monitoring),
            performance_insights: wanted.performance_insights.filter(|_| insights),
            performance_insights_retention_days: wanted
                .performance_insights_retention_days
                .filter(|_| insights),
            performance_insights_kms_key_id: wanted
                .performance_insights_kms_key_id
                .clone()
                .filter(|_| insights),
            ..DbConfig::default()
        }
    }

    /// What a restore can ask for of a described database's setup, on `allocated_gib` of
    /// storage: provisioned IOPS and throughput only where RDS takes them (io1/io2, and gp3 from
    /// 400 GiB on; below that gp3's baseline is reported but may not be asked for).
    pub fn to_carry_over(&self, allocated_gib: i32) -> DbConfig {
        let provisioned = match self.storage_type.as_deref() {
            Some("io1" | "io2") => (true, false),
            Some("gp3") if allocated_gib >= 400 => (true, true),
            _ => (false, false),
        };
        DbConfig {
            iops: self.iops.filter(|_| provisioned.0),
            storage_throughput: self.storage_throughput.filter(|_| provisioned.1),
            ..self.clone()
        }
    }
}

/// RDS's `MasterUserSecret`: where the password is, never the password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterUserSecret {
    pub secret_arn: String,
    /// `creating`, `active`, `rotating`, `impaired`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreDbRequest {
    pub db_instance_id: String,
    pub snapshot_id: String,
    pub instance_class: String,
    pub subnet_group: Option<String>,
    pub security_group_ids: Vec<String>,
    pub tags: Tags,
    /// The setup asked for (the replaced database's, with the namespace's overrides).
    #[serde(default)]
    pub config: DbConfig,
}

/// The groups a restore names, which must exist beforehand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbGroupKind {
    Subnet,
    Parameter,
}

impl DbGroupKind {
    pub fn resource_kind(self) -> ResourceKind {
        match self {
            DbGroupKind::Subnet => ResourceKind::DbSubnetGroup,
            DbGroupKind::Parameter => ResourceKind::DbParameterGroup,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishRestoreRequest {
    pub db_instance_id: String,
    pub manage_master_password: bool,
    /// Only the after-restore fields are read.
    pub setup: DbConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteDbRequest {
    pub db_instance_id: String,
    /// `None` skips the final snapshot; RDS requires one or the other to be said explicitly.
    pub final_snapshot_id: Option<String>,
}

#[async_trait]
pub trait Snapshots: Send + Sync {
    async fn create_snapshot(
        &self,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &Tags,
    ) -> Result<Snapshot, AwsError>;
    async fn describe_snapshot(&self, snapshot_id: &str) -> Result<Snapshot, AwsError>;
    /// Every manual snapshot in the account and region, with tags.
    async fn list_snapshots(&self) -> Result<Vec<Snapshot>, AwsError>;
    /// Asks RDS to delete a manual snapshot; a snapshot still `creating` is
    /// [`AwsError::InvalidState`].
    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), AwsError>;
}

#[async_trait]
pub trait Databases: Send + Sync {
    async fn restore_db_from_snapshot(
        &self,
        request: &RestoreDbRequest,
    ) -> Result<DbInstance, AwsError>;
    async fn describe_db(&self, db_instance_id: &str) -> Result<DbInstance, AwsError>;
    async fn delete_db(&self, request: &DeleteDbRequest) -> Result<DbInstance, AwsError>;
    /// Every instance in the account and region, with tags.
    async fn list_dbs(&self) -> Result<Vec<DbInstance>, AwsError>;
    /// Adds (or replaces) tags on an instance (`tenant import` marks what it adopted).
    async fn tag_db(&self, db_instance_id: &str, tags: &Tags) -> Result<(), AwsError>;
    /// Finishes a restored instance in one ModifyDBInstance, applied immediately: with
    /// `manage_master_password`, hands its master password to RDS and Secrets Manager (a new
    /// password nobody has seen, in a secret of the instance's own); and sets what of the
    /// setup a restore cannot take (`DbConfig::after_restore`: maintenance window, Enhanced
    /// Monitoring, Performance Insights).
    async fn finish_restore(&self, request: &FinishRestoreRequest) -> Result<DbInstance, AwsError>;
    /// Whether a DB subnet group or parameter group of this name exists
    /// (DescribeDBSubnetGroups / DescribeDBParameterGroups): what a restore will name, checked
    /// before anything is created.
    async fn db_group_exists(&self, kind: DbGroupKind, name: &str) -> Result<bool, AwsError>;
    /// Turns deletion protection on or off, at once (ModifyDBInstance, ApplyImmediately): a
    /// protected instance cannot be deleted.
    async fn set_deletion_protection(
        &self,
        db_instance_id: &str,
        enabled: bool,
    ) -> Result<DbInstance, AwsError>;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    pub value: String,
    pub version: i64,
    pub last_modified: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait Parameters: Send + Sync {
    /// `Ok(None)` when the parameter does not exist.
    async fn get_parameter(&self, name: &str) -> Result<Option<Parameter>, AwsError>;
    /// Returns the new version. With `overwrite == false` an existing parameter is
    /// [`AwsError::AlreadyExists`]: Parameter Store's only create-if-absent primitive.
    async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        overwrite: bool,
    ) -> Result<i64, AwsError>;
    /// `Ok(false)` when there was nothing to delete.
    async fn delete_parameter(&self, name: &str) -> Result<bool, AwsError>;
    /// Every parameter below `path`, recursively, all pages.
    async fn parameters_by_path(&self, path: &str) -> Result<Vec<Parameter>, AwsError>;
    /// Every stored version, oldest first.
    async fn parameter_history(&self, name: &str) -> Result<Vec<Parameter>, AwsError>;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    pub essential: bool,
    pub memory_mib: Option<i32>,
    pub environment: BTreeMap<String, String>,
    /// Environment name -> Parameter Store or Secrets Manager ARN.
    pub secrets: BTreeMap<String, String>,
    /// The command, when the definition overrides the image's (a migration's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinition {
    /// Set by ECS on registration.
    pub arn: Option<String>,
    pub family: String,
    pub revision: i32,
    pub containers: Vec<ContainerDefinition>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub network_mode: Option<String>,
    pub requires_compatibilities: Vec<String>,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    pub task_definition_arn: String,
    pub desired_count: i32,
    pub running_count: i32,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`.
    pub rollout_state: String,
    pub rollout_state_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub cluster: String,
    pub name: String,
    pub status: String,
    pub task_definition_arn: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub deployments: Vec<Deployment>,
    /// `FARGATE`, `EC2`, ...; `None` when the service uses a capacity provider strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    /// The service's `awsvpc` network: a one-off task of the tenant (a migration) runs in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<AwsVpcConfiguration>,
}

/// ECS's `awsvpcConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwsVpcConfiguration {
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_public_ip: Option<String>,
}

/// ECS RunTask, as much of it as a migration needs: the task definition carries the command,
/// the image and the database's coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTaskRequest {
    pub cluster: String,
    pub task_definition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<AwsVpcConfiguration>,
    /// ECS's `startedBy` (up to 128 characters): who ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// ECS's `clientToken` (up to 64 characters): a retried RunTask with the same token starts
    /// no second task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// One container of an ECS task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskContainer {
    pub name: String,
    pub last_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An ECS task, as DescribeTasks tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EcsTask {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    /// `PROVISIONING`, `PENDING`, `ACTIVATING`, `RUNNING`, `DEACTIVATING`, `STOPPING`,
    /// `DEPROVISIONING`, `STOPPED`.
    pub last_status: String,
    pub desired_status: String,
    /// `EssentialContainerExited`, `TaskFailedToStart`, `UserInitiated`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    pub containers: Vec<TaskContainer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
}

impl EcsTask {
    /// Stopped, with every container's exit code 0: what Step Functions' `runTask.sync` calls
    /// success.
    pub fn succeeded(&self) -> bool {
        self.last_status == "STOPPED"
            && !self.containers.is_empty()
            && self.containers.iter().all(|c| c.exit_code == Some(0))
    }
}

/// How a new task definition revision differs from the one it is derived from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionChange {
    /// The container whose environment and image change.
    pub container: String,
    /// Environment variables to set (added or replaced); the others are kept.
    pub environment: BTreeMap<String, String>,
    /// Secrets to set (name -> `valueFrom`, added or replaced), resolved by ECS at task start.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Variables and secrets to remove (settings the catalog no longer has).
    #[serde(default)]
    pub unset: Vec<String>,
    /// A new image reference for the container.
    pub image: Option<String>,
    /// Tags to set (added or replaced); tags under `switchyard:` not named here are dropped.
    pub tags: Tags,
    /// Register into this family instead of the base's (a migration's task definition is a copy
    /// of the service's, in a family of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// A new command for the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// A one-off task's definition (a migration): only `container` is kept, essential, without
    /// the base's entry point, dependencies, links or health check, so that the task is the
    /// command and ends when it does (a sidecar would keep it running, or fail it when stopped).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sole_container: bool,
}

#[async_trait]
pub trait Services: Send + Sync {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<Service, AwsError>;
    /// What `cluster` says of each service in `names`, keyed by the name asked for: a service
    /// it lacks is absent, one it could not describe is that service's error. A cluster that
    /// does not exist, or a call that fails as a whole, is the call's error. ECS describes ten
    /// a call (the AWS adapter batches); this default asks one at a time.
    async fn describe_services(
        &self,
        cluster: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, Result<Service, AwsError>>, AwsError> {
        let mut found = BTreeMap::new();
        for name in names {
            match self.describe_service(cluster, name).await {
                Ok(service) => {
                    found.insert(name.clone(), Ok(service));
                }
                Err(AwsError::NotFound {
                    kind: ResourceKind::Service,
                    ..
                }) => {}
                Err(err @ AwsError::NotFound { .. }) => return Err(err),
                Err(err) if err.is_transient() => return Err(err),
                Err(err) => {
                    found.insert(name.clone(), Err(err));
                }
            }
        }
        Ok(found)
    }
    /// With tags.
    async fn describe_task_definition(&self, arn: &str) -> Result<TaskDefinition, AwsError>;
    async fn register_task_definition(
        &self,
        definition: &TaskDefinition,
    ) -> Result<TaskDefinition, AwsError>;
    /// Registers a new revision of `base_arn`'s family that carries over everything of the base
    /// (every container setting, volumes, roles, placement, runtime platform, ...) with `change`
    /// applied. Copying in the adapter, not through [`TaskDefinition`], is what keeps settings
    /// this port does not model.
    async fn register_revision(
        &self,
        base_arn: &str,
        change: &RevisionChange,
    ) -> Result<TaskDefinition, AwsError>;
    /// The newest active revision of a family, with tags; `None` when it has none.
    async fn latest_task_definition(
        &self,
        family: &str,
    ) -> Result<Option<TaskDefinition>, AwsError>;
    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<Service, AwsError>;
    /// Changes only the service's desired count (UpdateService with `desiredCount`): the
    /// upgrade's freeze (0) and thaw.
    async fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired_count: i32,
    ) -> Result<Service, AwsError>;
    /// Starts one task (RunTask). A non-empty `failures` list is [`AwsError::Rejected`] with code
    /// `RunTaskFailure`.
    async fn run_task(&self, request: &RunTaskRequest) -> Result<EcsTask, AwsError>;
    /// DescribeTasks of one task.
    async fn describe_task(&self, cluster: &str, task_arn: &str) -> Result<EcsTask, AwsError>;
    /// The service's tasks that have not stopped yet: running ones, and those told to stop that
    /// still drain connections or wait out their stop timeout (ListTasks, then DescribeTasks).
    async fn live_service_tasks(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<EcsTask>, AwsError>;
}

/// One event of a Step Functions execution's history, as much of it as progress needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionEvent {
    /// 1-based, in order.
    pub id: i64,
    pub timestamp: DateTime<Utc>,
    /// Step Functions' own type name: `TaskStateEntered`, `ExecutionSucceeded`, ...
    pub event_type: String,
    /// The state's name, for state events.
    pub state_name: Option<String>,
    /// The state's input (`*StateEntered`) or the execution's (`ExecutionStarted`), as JSON text.
    pub input: Option<String>,
    /// The state's output (`*StateExited`) or the execution's (`ExecutionSucceeded`).
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// A state machine of the account and region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMachineRef {
    pub name: String,
    pub arn: String,
}

/// Starting and watching Step Functions executions: what `switchyard ... --remote` uses. Only
/// the AWS SDK adapter has it; a local run is its own execution.
#[async_trait]
pub trait Executions: Send + Sync {
    /// Every state machine, all pages.
    async fn list_state_machines(&self) -> Result<Vec<StateMachineRef>, AwsError>;
    /// Starts an execution; returns its ARN.
    async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<String, AwsError>;
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED` (or `PENDING_REDRIVE`).
    async fn execution_status(&self, execution_arn: &str) -> Result<String, AwsError>;
    /// The whole history so far, oldest first, all pages.
    async fn execution_history(&self, execution_arn: &str)
    -> Result<Vec<ExecutionEvent>, AwsError>;
}

/// The time as AWS sees it: the wall clock on AWS, the virtual clock in the simulated world;
/// and where the calls go.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// The AWS region the calls go to (`eu-west-1`), where every database Switchyard creates
    /// lives; empty when the adapter was configured without one.
    fn region(&self) -> String;
}

/// All the capabilities a deploy step may use.
pub trait Aws: Snapshots + Databases + Parameters + Services + Clock {}

impl<T: Snapshots + Databases + Parameters + Services + Clock> Aws for T {}

#[cfg(test)]
mod tests {
    use super::DbConfig;

    fn setup() -> DbConfig {
        DbConfig {
            maintenance_window: Some("tue:02:00-tue:02:30".into()),
            monitoring_interval_seconds: Some(60),
            monitoring_role_arn: Some("arn:aws:iam::1:role/rds-monitoring-role".into()),
            performance_insights: Some(true),
            performance_insights_retention_days: Some(7),
            multi_az: Some(true),
            ..DbConfig::default()
        }
    }

    #[test]
    fn a_restore_asks_only_for_what_it_takes_and_the_rest_comes_after() {
        let asked = setup();
        assert_eq!(asked.for_restore().multi_az, Some(true));
        assert!(asked.for_restore().after_restore().is_empty());
        let after = asked.after_restore();
        assert_eq!(after.multi_az, None);
        assert_eq!(after.monitoring_interval_seconds, Some(60));
    }

    #[test]
    fn only_what_the_instance_lacks_is_asked_for_and_each_feature_whole() {
        let wanted = setup();
        let fresh = DbConfig {
            maintenance_window: Some("sun:05:00-sun:05:30".into()),
            monitoring_interval_seconds: Some(0),
            performance_insights: Some(false),
            ..DbConfig::default()
        };
        assert_eq!(
            wanted.after_restore_missing_from(&fresh),
            wanted.after_restore()
        );
        // Done: nothing to ask again.
        assert!(wanted.after_restore_missing_from(&wanted).is_empty());
        // Only the role differs: monitoring is asked for whole, interval and role.
        let other_role = DbConfig {
            monitoring_role_arn: Some("arn:aws:iam::1:role/other".into()),
            ..wanted.clone()
        };
        let missing = wanted.after_restore_missing_from(&other_role);
        assert_eq!(missing.monitoring_interval_seconds, Some(60));
        assert_eq!(missing.monitoring_role_arn, wanted.monitoring_role_arn);
        assert_eq!(missing.maintenance_window, None);
        assert_eq!(missing.performance_insights, None);
        // A setting the database never had is not invented.
        assert!(
            DbConfig::default()
                .after_restore_missing_from(&fresh)
                .is_empty()
        );
    }
}
