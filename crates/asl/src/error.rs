//! Load-time errors ([`AslError`]) and the runtime failures an execution reports.

use thiserror::Error;

/// A definition that cannot be loaded, or a substitution that cannot be made.
#[derive(Debug, Error)]
pub enum AslError {
    /// The text is not JSON.
    #[error("invalid json: {0}")]
    Json(#[from] serde_json::Error),
    /// The definition breaks a rule of the Amazon States Language (or uses a feature this
    /// interpreter does not support); `location` names the state or part concerned.
    #[error("{location}: {message}")]
    Invalid {
        /// Where: `state machine`, `state "Name"`, `state "Name" branch 0`, ...
        location: String,
        /// What is wrong, naming the offending value.
        message: String,
    },
    /// `substitute` found a `${Name}` with no value.
    #[error("unresolved placeholder ${{{0}}}")]
    UnresolvedPlaceholder(String),
    /// `substitute` found a `${` with no closing `}`.
    #[error("unterminated placeholder at byte {0}")]
    UnterminatedPlaceholder(usize),
}

impl AslError {
    pub(crate) fn invalid(location: impl Into<String>, message: impl Into<String>) -> Self {
        AslError::Invalid {
            location: location.into(),
            message: message.into(),
        }
    }
}

/// Error names the Amazon States Language reserves.
pub(crate) mod names {
    pub const ALL: &str = "States.ALL";
    pub const RUNTIME: &str = "States.Runtime";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
}

/// A state's failure at run time: an error name and a cause, as Step Functions reports them.
/// An empty string stands for "none" (a Fail state may name neither).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub error: String,
    pub cause: String,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Failure {
            error: error.into(),
            cause: cause.into(),
        }
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        Failure::new(names::RUNTIME, cause)
    }

    pub fn intrinsic(cause: impl Into<String>) -> Self {
        Failure::new(names::INTRINSIC_FAILURE, cause)
    }
}

/// Whether an `ErrorEquals` entry matches an error name, following the AWS rules: `States.ALL`
/// matches everything but the terminal `States.Runtime` and `States.DataLimitExceeded`;
/// `States.TaskFailed` matches the same except `States.Timeout`; `States.Runtime` is never
/// matched, not even by its own name.
pub(crate) fn error_matches(pattern: &str, error: &str) -> bool {
    if error == names::RUNTIME {
        return false;
    }
    let terminal = error == names::DATA_LIMIT_EXCEEDED;
    match pattern {
        names::ALL => !terminal,
        names::TASK_FAILED => !terminal && error != names::TIMEOUT,
        _ => pattern == error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_the_aws_rules() {
        assert!(error_matches("States.ALL", "Lambda.Unknown"));
        assert!(error_matches("States.ALL", "States.Timeout"));
        assert!(!error_matches("States.ALL", "States.Runtime"));
        assert!(!error_matches("States.ALL", "States.DataLimitExceeded"));
        assert!(error_matches(
            "States.DataLimitExceeded",
            "States.DataLimitExceeded"
        ));
        assert!(!error_matches("States.Runtime", "States.Runtime"));
        assert!(error_matches("States.TaskFailed", "MyError"));
        assert!(!error_matches("States.TaskFailed", "States.Timeout"));
        assert!(error_matches("MyError", "MyError"));
        assert!(!error_matches("MyError", "MyErrorToo"));
    }

    #[test]
    fn messages_name_the_value() {
        let e = AslError::UnresolvedPlaceholder("FnArn".into());
        assert_eq!(e.to_string(), "unresolved placeholder ${FnArn}");
        let e = AslError::invalid("state \"A\"", "unknown Type \"Foo\"");
        assert_eq!(e.to_string(), "state \"A\": unknown Type \"Foo\"");
    }
}
