//! The document that flows through `statemachines/deploy.asl.json`. The execution input holds
//! the request; each Task adds its result under its own key (its `ResultPath`). Every handler
//! reads the whole document, so a handler can be re-invoked with the same input (a Step
//! Functions retry) and decide from it, and from AWS, what is left to do.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StepError;
use crate::names::{Namespace, Timestamp};
use crate::records::{ActivePointer, LockRecord, NamespaceSettings};
use crate::steps::PreflightReport;

/// Read from `$$.Execution` by the machine's first state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionInfo {
    pub id: String,
    pub started_at: DateTime<Utc>,
}

/// The keys of the deploy document that the steps (and their `Catch`es) write, in the order of
/// [`DeployState`]'s fields: an execution input may not set them.
pub const STEP_KEYS: [&str; 13] = [
    "lock",
    "preflight",
    "freeze",
    "snapshot",
    "previous",
    "db",
    "credentials",
    "migrations",
    "swap",
    "service",
    "cleanup",
    "error",
    "rollback",
];

/// How far apart the clocks of Step Functions (the start time) and of a function (a record's
/// time) may be: a record stamped earlier than this before the execution started cannot be
/// its own work.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

impl ExecutionInfo {
    /// The value of the `switchyard:execution-start` tag on what this execution creates.
    pub fn start_tag(&self) -> String {
        self.started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// Whether a record stamped `at` under this execution's id can be this run's own: an id
    /// can be reused (a second run under the same name), a start time cannot.
    pub fn could_have_written(&self, execution_id: &str, at: DateTime<Utc>) -> bool {
        execution_id == self.id && at >= self.started_at - CLOCK_SKEW
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployState {
    /// The namespace to deploy into.
    pub namespace: String,
    /// Take a fresh snapshot of this namespace's active database...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
    /// ...or restore this existing snapshot (the artifact promoted dev -> qa -> prod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// ...or restore the snapshot this namespace's active database came from: the promotion of
    /// the data another stage approved (qa -> prod), its snapshot id never typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_from: Option<String>,
    /// With `promote_from`: the execution whose deploy there is being promoted (a pipeline's qa
    /// execution). If that namespace was deployed again since, the promotion is refused rather
    /// than taking data nobody approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_execution: Option<String>,
    /// A new image for the service's container (a full reference, or a tag for the current one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Keep the database: roll a new revision carrying the catalog's settings (and the image,
    /// if given) onto the active one. No data moves; the same rollback rules hold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub settings_only: bool,
    /// Upgrade the tenant's own data to this release (`switchyard upgrade`): writes frozen,
    /// its own active database snapshotted and restored beside, migrated along the release
    /// catalog's path, then the release's image rolled out. The image comes from the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_to: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<PreflightReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<FreezeReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PointerRead>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<DbRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations: Option<MigrationRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRollout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<SweepReport>,
    /// Set by a `Catch`: what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
}

/// Step Functions' error output, as a `Catch` places it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRef {
    pub snapshot_id: String,
    pub source_db_instance_id: String,
    pub timestamp: Timestamp,
    pub status: String,
    /// Whether this execution took the snapshot (as opposed to being given it).
    pub taken: bool,
    pub engine: String,
    pub engine_version: String,
    pub allocated_storage_gib: i32,
    #[serde(flatten)]
    pub poll: Poll,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointerRead {
    pub active: Option<ActivePointer>,
    /// The Parameter Store version read; the swap proves it is still current.
    pub version: Option<i64>,
    pub settings: NamespaceSettings,
}

/// The new database's own credentials: where RDS keeps its master password, never the password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialsRef {
    pub db_instance_id: String,
    /// `None` when the tenant's settings keep the snapshot's password.
    pub master_user_secret_arn: Option<String>,
    pub status: String,
    /// The after-restore setup (`DbRef::setup`) was asked for: not asked again, whatever form
    /// RDS reports the values in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub setup_asked: bool,
    #[serde(flatten)]
    pub poll: Poll,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbRef {
    pub db_instance_id: String,
    pub status: String,
    pub endpoint: Option<String>,
    pub port: Option<i32>,
    /// What of its setup a restore could not take (maintenance window, Enhanced Monitoring,
    /// Performance Insights): set by `set-credentials` before it takes traffic.
    #[serde(default, skip_serializing_if = "crate::ports::DbConfig::is_empty")]
    pub setup: crate::ports::DbConfig,
    #[serde(flatten)]
    pub poll: Poll,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwapReport {
    pub pointer: ActivePointer,
    pub version: i64,
    pub previous_version: Option<i64>,
    /// The database the swap replaced, now tracked for deletion.
    pub retired: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRollout {
    pub cluster: String,
    pub service: String,
    pub task_definition_arn: String,
    pub revision: i32,
    pub previous_task_definition_arn: String,
    pub rollout_state: String,
    pub running_count: i32,
    pub desired_count: i32,
    #[serde(flatten)]
    pub poll: Poll,
}

/// What a clean-up or rollback sweep did. It is re-run by the machine until `done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Delete requested (or already under way); not gone yet.
    pub deleting: Vec<String>,
    /// Gone, and untracked.
    pub deleted: Vec<String>,
    /// Final snapshots requested for deleted production databases.
    pub final_snapshots: Vec<String>,
    /// Tracked databases that were not touched, with why (e.g. it is the active one).
    pub kept: Vec<String>,
    pub done: bool,
    #[serde(flatten)]
    pub poll: Poll,
}

/// The upgrade's freeze: the service scaled to zero so that no write reaches the database
/// between its snapshot and the swap. Rollback and the rollout scale it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreezeReport {
    pub cluster: String,
    pub service: String,
    /// The desired count before the freeze (from Preflight's read), restored by the thaw.
    pub desired_count_before: i32,
    pub running_count: i32,
    #[serde(flatten)]
    pub poll: Poll,
}

/// What `prepare-migrations` registered for the `Migrate` map: one task definition per hop
/// (a copy of the service's, with the release's image and migration command, pointed at the new
/// database), and where the tasks run. `run` is ECS RunTask's own shape, as
/// `arn:aws:states:::ecs:runTask.sync` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationRun {
    pub db_instance_id: String,
    pub hops: Vec<MigrationHop>,
    pub run: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationHop {
    pub version: String,
    pub task_definition_arn: String,
    pub command: Vec<String>,
    /// RunTask's `clientToken` for this hop of this execution: a retried start is the same task.
    pub client_token: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RollbackReport {
    pub pointer_restored: bool,
    pub service_restored: bool,
    /// The upgrade's frozen service is back at its desired count.
    #[serde(default)]
    pub service_thawed: bool,
    pub service_stable: bool,
    #[serde(flatten)]
    pub sweep: SweepReport,
}

/// Poll bookkeeping for the machine's Wait -> Check -> Choice loops: the check handlers count
/// their polls and say how long to wait next, so the loop's cost is bounded against Step
/// Functions' 25,000-event history limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Poll {
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub polls: u32,
    #[serde(default)]
    pub wait_seconds: u32,
}

/// At most this many polls per loop: with the backoff below that is about four hours, and
/// about 2,200 history events.
pub const MAX_POLLS: u32 = 240;

/// The longest wait between two polls: a resource that becomes ready just after a poll is seen
/// at most this late. Measured on the demo deploy (`deploy xy-0146-qa --from xy-0146-dev`):
/// 26 min 45 s and 123 state transitions at 60 s, 28 min 45 s and 99 at 120 s; the 24 more
/// transitions (and 8 more Lambda invocations) cost about $0.60 per 1,000 deploys.
pub const MAX_WAIT_SECONDS: u32 = 60;

impl Poll {
    /// The next poll after `self` found the resource not ready yet: 15 s, 30 s, then every 60 s
    /// ([`MAX_WAIT_SECONDS`]); restores take minutes, so polling faster only spends state
    /// transitions.
    pub fn next(&self, what: &str) -> Result<Poll, StepError> {
        self.next_within(what, MAX_POLLS)
    }

    /// As [`Poll::next`], with a budget of its own (a wait that keeps a tenant down is short).
    pub fn next_within(&self, what: &str, max_polls: u32) -> Result<Poll, StepError> {
        let polls = self.polls.saturating_add(1);
        if polls > max_polls {
            return Err(StepError::PollTimeout {
                what: what.to_owned(),
                polls: self.polls,
            });
        }
        let wait_seconds = 15u32
            .saturating_mul(1 << self.polls.min(3))
            .min(MAX_WAIT_SECONDS);
        Ok(Poll {
            ready: false,
            polls,
            wait_seconds,
        })
    }

    pub fn ready(&self) -> Poll {
        Poll {
            ready: true,
            polls: self.polls.saturating_add(1),
            wait_seconds: 0,
        }
    }
}

impl DeployState {
    pub fn namespace(&self) -> Result<Namespace, StepError> {
        self.namespace.parse()
    }

    pub fn execution(&self) -> Result<&ExecutionInfo, StepError> {
        self.execution
            .as_ref()
            .ok_or_else(|| missing("execution", "the machine's first state"))
    }

    pub fn execution_id(&self) -> Result<&str, StepError> {
        Ok(&self.execution()?.id)
    }

    /// Whether `lock` is this run's: taken under its id by the run that started when this one
    /// did (or, for a lock that does not say when its run started, not before this run did).
    pub fn holds(&self, lock: &LockRecord) -> Result<bool, StepError> {
        let execution = self.execution()?;
        Ok(match lock.execution_started_at {
            Some(started) => lock.execution_id == execution.id && started == execution.started_at,
            None => execution.could_have_written(&lock.execution_id, lock.acquired_at),
        })
    }

    /// The pointer the service is rolled onto: the one the swap wrote or, when the deploy keeps
    /// the database, the active one step 2 read.
    pub fn rollout_pointer(&self) -> Result<&ActivePointer, StepError> {
        if self.settings_only {
            self.previous()?.active.as_ref().ok_or_else(|| {
                StepError::invalid(format!(
                    "namespace {} has no active database: a settings-only deploy keeps the database, so there must be one",
                    self.namespace
                ))
            })
        } else {
            Ok(&self.swap()?.pointer)
        }
    }

    /// The image the rollout brings: the request's, or the catalog's for the upgrade's target
    /// (which Preflight resolved).
    pub fn rollout_image(&self) -> Option<&str> {
        self.image.as_deref().or_else(|| {
            self.preflight
                .as_ref()
                .and_then(|p| p.schema.as_ref())
                .and_then(|schema| schema.image.as_deref())
        })
    }

    pub fn snapshot(&self) -> Result<&SnapshotRef, StepError> {
        self.snapshot
            .as_ref()
            .ok_or_else(|| missing("snapshot", "the snapshot step"))
    }

    pub fn previous(&self) -> Result<&PointerRead, StepError> {
        self.previous
            .as_ref()
            .ok_or_else(|| missing("previous", "the read-pointer step"))
    }

    pub fn db(&self) -> Result<&DbRef, StepError> {
        self.db
            .as_ref()
            .ok_or_else(|| missing("db", "the create-db step"))
    }

    pub fn swap(&self) -> Result<&SwapReport, StepError> {
        self.swap
            .as_ref()
            .ok_or_else(|| missing("swap", "the swap-pointer step"))
    }

    pub fn service(&self) -> Result<&ServiceRollout, StepError> {
        self.service
            .as_ref()
            .ok_or_else(|| missing("service", "the deploy-service step"))
    }
}

fn missing(field: &str, producer: &str) -> StepError {
    StepError::invalid(format!(
        "deploy state has no `{field}`: it is written by {producer}, which must run first"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_backoff_and_budget() {
        let mut poll = Poll::default();
        let mut waits = vec![];
        for _ in 0..5 {
            poll = poll.next("x").unwrap();
            waits.push(poll.wait_seconds);
        }
        assert_eq!(waits, [15, 30, 60, 60, 60]);
        let spent = Poll {
            polls: MAX_POLLS,
            ..Poll::default()
        };
        let err = spent.next("db instance a").unwrap_err();
        assert_eq!(err.name(), "PollTimeout");
        assert!(err.to_string().contains("db instance a"));
        assert!(spent.ready().ready);
    }

    #[test]
    fn missing_fields_are_named() {
        let state = DeployState {
            namespace: "xy-0146-qa".into(),
            ..DeployState::default()
        };
        let err = state.snapshot().unwrap_err();
        assert_eq!(err.name(), "InvalidInput");
        assert!(err.to_string().contains("`snapshot`"));
    }

    #[test]
    fn unknown_fields_from_callers_are_tolerated() {
        let state: DeployState = serde_json::from_str(
            r#"{"namespace":"xy-0146-qa","source_namespace":"xy-0146-dev","pipeline":{"run":"7"}}"#,
        )
        .unwrap();
        assert_eq!(state.source_namespace.as_deref(), Some("xy-0146-dev"));
    }
}
