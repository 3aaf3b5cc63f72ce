//! Errors, grouped by how the caller must react. The names returned by [`StepError::name`] are
//! the `Error` values Step Functions sees, so the state machines' `Retry` and `Catch` match them;
//! they are defined here once and never derived from Rust type names.

use std::fmt;

use lambda_runtime::Diagnostic;

use crate::policy::{PluginFailure, PolicyStep};

/// The error names the state machines match. Keep in step with `statemachines/*.asl.json`
/// (a test reads both).
pub mod names {
    /// AWS throttled or was unreachable; retry with backoff.
    pub const TRANSIENT: &str = "Transient";
    /// The event or the request is malformed or names something that does not exist.
    pub const INVALID_INPUT: &str = "InvalidInput";
    /// Another execution holds the namespace.
    pub const NAMESPACE_LOCKED: &str = "NamespaceLocked";
    /// The active pointer moved under us.
    pub const POINTER_CONFLICT: &str = "PointerConflict";
    /// A policy plugin said no: a normal answer, the step changed nothing.
    pub const POLICY_DENIED: &str = "PolicyDenied";
    /// A policy plugin could not decide (missing, unloadable, trapped, out of fuel, over a
    /// limit, invalid output): the step fails closed, having changed nothing.
    pub const POLICY_FAILED: &str = "PolicyFailed";
    /// A snapshot or database ended in a failed state.
    pub const RESOURCE_FAILED: &str = "ResourceFailed";
    /// The ECS rollout failed or was rolled back by its circuit breaker.
    pub const ROLLOUT_FAILED: &str = "RolloutFailed";
    /// A poll loop spent its budget without the resource becoming ready.
    pub const POLL_TIMEOUT: &str = "PollTimeout";
    /// AWS refused the request for good (permissions, limits, validation).
    pub const AWS_REJECTED: &str = "AwsRejected";
    /// A bug or an impossible state: stop and page someone.
    pub const INTERNAL: &str = "Internal";
    /// The release catalog (`{root}/releases`) is malformed, or a change would make it so
    /// (lines that do not order, a backport that points forward, ...).
    pub const INVALID_RELEASE_CATALOG: &str = "InvalidReleaseCatalog";
    /// No upgrade path leads from the tenant's version to the target: a downgrade, or a
    /// version the release catalog does not have.
    pub const NO_UPGRADE_PATH: &str = "NoUpgradePath";

    /// Every name a Switchyard function can raise.
    pub const ALL: &[&str] = &[
        TRANSIENT,
        INVALID_INPUT,
        NAMESPACE_LOCKED,
        POINTER_CONFLICT,
        POLICY_DENIED,
        POLICY_FAILED,
        RESOURCE_FAILED,
        ROLLOUT_FAILED,
        POLL_TIMEOUT,
        AWS_REJECTED,
        INTERNAL,
        INVALID_RELEASE_CATALOG,
        NO_UPGRADE_PATH,
    ];
}

/// What kind of AWS resource an [`AwsError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    DbInstance,
    DbSnapshot,
    DbParameterGroup,
    DbSubnetGroup,
    Parameter,
    Cluster,
    Service,
    TaskDefinition,
    Task,
    StateMachine,
    Execution,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::DbInstance => "db instance",
            ResourceKind::DbSnapshot => "db snapshot",
            ResourceKind::DbParameterGroup => "db parameter group",
            ResourceKind::DbSubnetGroup => "db subnet group",
            ResourceKind::Parameter => "parameter",
            ResourceKind::Cluster => "cluster",
            ResourceKind::Service => "service",
            ResourceKind::TaskDefinition => "task definition",
            ResourceKind::Task => "task",
            ResourceKind::StateMachine => "state machine",
            ResourceKind::Execution => "execution",
        })
    }
}

/// What an AWS call can fail with, in terms the core can act on. Adapters (the SDK one and the
/// simulation) translate their service's error codes into these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AwsError {
    #[error("{kind} {id} not found")]
    NotFound { kind: ResourceKind, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: ResourceKind, id: String },
    #[error("{kind} {id} is not in a state that allows this: {message}")]
    InvalidState {
        kind: ResourceKind,
        id: String,
        message: String,
    },
    #[error("throttled ({code}): {message}")]
    Throttled { code: String, message: String },
    #[error("aws unavailable: {message}")]
    Unavailable { message: String },
    #[error("aws rejected the request ({code}): {message}")]
    Rejected { code: String, message: String },
}

impl AwsError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AwsError::Throttled { .. } | AwsError::Unavailable { .. }
        )
    }
}

/// Why a step failed. Variants are grouped by the reaction they need, see [`names`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    #[error("transient aws failure: {0}")]
    Transient(AwsError),
    #[error("{0}")]
    InvalidInput(String),
    #[error(
        "namespace {namespace} is locked by execution {holder} since {since}; if that execution has ended, `switchyard unlock {namespace} --execution {holder}` releases it"
    )]
    NamespaceLocked {
        namespace: String,
        holder: String,
        since: String,
    },
    #[error("active pointer of {namespace} changed under this execution: {detail}")]
    PointerConflict { namespace: String, detail: String },
    /// Every plugin that said no, with its reasons; the step did not run.
    #[error("policy denied {step} for {namespace}: {}", show_denials(.denials))]
    PolicyDenied {
        step: PolicyStep,
        namespace: String,
        denials: Vec<Denial>,
    },
    /// A plugin gave no decision, so the step did not run (fails closed). `reason` is the
    /// [`PluginFailure`]'s message, which names the plugin too.
    #[error("policy check of {step} for {namespace} failed closed: {reason}")]
    PolicyFailed {
        step: PolicyStep,
        namespace: String,
        plugin: String,
        reason: String,
    },
    #[error("{kind} {id} is {status}")]
    ResourceFailed {
        kind: ResourceKind,
        id: String,
        status: String,
    },
    #[error("rollout of service {service} failed: {reason}")]
    RolloutFailed { service: String, reason: String },
    #[error("{what} not ready after {polls} polls")]
    PollTimeout { what: String, polls: u32 },
    #[error("{0}")]
    AwsRejected(AwsError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{0}")]
    InvalidReleaseCatalog(String),
    #[error("no upgrade path for {namespace}: {reason}")]
    NoUpgradePath { namespace: String, reason: String },
}

impl StepError {
    /// The stable name Step Functions matches in `Retry` and `Catch`.
    pub fn name(&self) -> &'static str {
        match self {
            StepError::Transient(_) => names::TRANSIENT,
            StepError::InvalidInput(_) => names::INVALID_INPUT,
            StepError::NamespaceLocked { .. } => names::NAMESPACE_LOCKED,
            StepError::PointerConflict { .. } => names::POINTER_CONFLICT,
            StepError::PolicyDenied { .. } => names::POLICY_DENIED,
            StepError::PolicyFailed { .. } => names::POLICY_FAILED,
            StepError::ResourceFailed { .. } => names::RESOURCE_FAILED,
            StepError::RolloutFailed { .. } => names::ROLLOUT_FAILED,
            StepError::PollTimeout { .. } => names::POLL_TIMEOUT,
            StepError::AwsRejected(_) => names::AWS_REJECTED,
            StepError::Internal(_) => names::INTERNAL,
            StepError::InvalidReleaseCatalog(_) => names::INVALID_RELEASE_CATALOG,
            StepError::NoUpgradePath { .. } => names::NO_UPGRADE_PATH,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        StepError::InvalidInput(message.into())
    }

    /// The plugin `failure` stopped `step` in `namespace`.
    pub fn policy_failed(step: PolicyStep, namespace: &str, failure: &PluginFailure) -> Self {
        StepError::PolicyFailed {
            step,
            namespace: namespace.to_owned(),
            plugin: failure.plugin().to_owned(),
            reason: failure.to_string(),
        }
    }
}

/// One plugin's "no" and its reasons (each a sentence naming the offending value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub plugin: String,
    pub reasons: Vec<String>,
}

/// `snapshot-freshness: snapshot x is 80h old, over the 24h limit; capacity: ...`.
fn show_denials(denials: &[Denial]) -> String {
    denials
        .iter()
        .map(|denial| {
            if denial.reasons.is_empty() {
                // A plugin may deny without saying why; the message still names it.
                format!("{}: no reason given", denial.plugin)
            } else {
                format!("{}: {}", denial.plugin, denial.reasons.join("; "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Without a more specific reading by the step, an AWS failure is transient or a rejection.
impl From<AwsError> for StepError {
    fn from(err: AwsError) -> Self {
        if err.is_transient() {
            StepError::Transient(err)
        } else {
            StepError::AwsRejected(err)
        }
    }
}

impl From<StepError> for Diagnostic {
    fn from(err: StepError) -> Self {
        Diagnostic {
            error_type: err.name().to_owned(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_carries_the_stable_name() {
        let err = StepError::NamespaceLocked {
            namespace: "xy-0146-qa".into(),
            holder: "exec-1".into(),
            since: "2026-11-25T22:00:00Z".into(),
        };
        let diagnostic = Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "NamespaceLocked");
        assert_eq!(
            diagnostic.error_message,
            "namespace xy-0146-qa is locked by execution exec-1 since 2026-11-25T22:00:00Z; if that execution has ended, `switchyard unlock xy-0146-qa --execution exec-1` releases it"
        );
    }

    #[test]
    fn aws_errors_split_into_transient_and_rejected() {
        let throttled = AwsError::Throttled {
            code: "Throttling".into(),
            message: "rate exceeded".into(),
        };
        assert_eq!(StepError::from(throttled).name(), names::TRANSIENT);
        let denied = AwsError::Rejected {
            code: "AccessDenied".into(),
            message: "no".into(),
        };
        assert_eq!(StepError::from(denied).name(), names::AWS_REJECTED);
    }

    #[test]
    fn policy_errors_name_every_plugin_and_reason() {
        let denied = StepError::PolicyDenied {
            step: PolicyStep::CreateDatabase,
            namespace: "xy-0146-prod".into(),
            denials: vec![
                Denial {
                    plugin: "snapshot-freshness".into(),
                    reasons: vec!["snapshot xy-0146-dev-20261101-000000 is 80h old".into()],
                },
                Denial {
                    plugin: "capacity".into(),
                    reasons: vec![
                        "db.r6g.4xlarge is over the plan".into(),
                        "500 gib too".into(),
                    ],
                },
                Denial {
                    plugin: "mute".into(),
                    reasons: vec![],
                },
            ],
        };
        assert_eq!(denied.name(), "PolicyDenied");
        assert_eq!(
            denied.to_string(),
            "policy denied create-database for xy-0146-prod: snapshot-freshness: snapshot \
             xy-0146-dev-20261101-000000 is 80h old; capacity: db.r6g.4xlarge is over the plan; \
             500 gib too; mute: no reason given"
        );
        let failure = PluginFailure::OutOfFuel {
            plugin: "capacity".into(),
            fuel: 1000,
        };
        let failed = StepError::policy_failed(PolicyStep::Cleanup, "xy-0146-qa", &failure);
        assert_eq!(failed.name(), "PolicyFailed");
        assert_eq!(
            failed.to_string(),
            "policy check of cleanup for xy-0146-qa failed closed: plugin capacity ran out of fuel after 1000 units"
        );
        assert!(
            matches!(failed, StepError::PolicyFailed { ref plugin, .. } if plugin == "capacity")
        );
    }

    #[test]
    fn names_are_unique_and_not_reserved() {
        let mut seen = std::collections::BTreeSet::new();
        for name in names::ALL {
            assert!(seen.insert(*name), "{name} twice");
            assert!(!name.starts_with("States."), "{name}");
        }
    }
}
