use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use switchyard_core::dispatch::Stage;
use switchyard_core::error::AwsError;

/// How an injected fault behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Every AWS call of the stage fails for good.
    Error,
    /// The stage's first calls are throttled, then succeed: Step Functions' Retry must absorb it.
    Throttle,
    /// The ECS rollout the deploy starts fails and the circuit breaker rolls it back.
    RolloutFailed,
    /// The stage's first writes are applied, but their answers are lost (the connection drops):
    /// the retry must find its own work done and not repeat it.
    LostReply,
    /// The `hop`-th migration task the stage starts (1-based) exits 1: the migration fails.
    TaskFailed { hop: u32 },
}

/// `STAGE:KIND`, e.g. `create-db:error`, `wait-stable:rollout-failed` or
/// `migrate:task-failed@2` (the second migration exits 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub stage: Stage,
    pub kind: FaultKind,
}

/// How many calls a throttle fault refuses before it lets calls through.
pub const THROTTLED_CALLS: u32 = 2;

impl FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (stage, kind) = text.split_once(':').ok_or_else(|| {
            format!("invalid fault {text:?}: expected STAGE:KIND, e.g. create-db:error")
        })?;
        let stage: Stage = stage.parse().map_err(|e| format!("{e}"))?;
        let kind = match kind {
            "error" => FaultKind::Error,
            "throttle" => FaultKind::Throttle,
            "rollout-failed" => FaultKind::RolloutFailed,
            "lost-reply" => FaultKind::LostReply,
            "task-failed" => FaultKind::TaskFailed { hop: 1 },
            other => match other.strip_prefix("task-failed@").map(str::parse::<u32>) {
                Some(Ok(hop)) if hop > 0 => FaultKind::TaskFailed { hop },
                _ => {
                    return Err(format!(
                        "invalid fault kind {other:?}: expected error, throttle, lost-reply, rollout-failed or task-failed[@HOP]"
                    ));
                }
            },
        };
        if kind == FaultKind::RolloutFailed && stage != Stage::WaitStable {
            return Err(format!(
                "invalid fault {text:?}: rollout-failed applies to wait-stable only"
            ));
        }
        if matches!(kind, FaultKind::TaskFailed { .. }) && stage != Stage::Migrate {
            return Err(format!(
                "invalid fault {text:?}: task-failed applies to migrate only"
            ));
        }
        Ok(Fault { stage, kind })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FaultKind::Error => "error".to_owned(),
            FaultKind::Throttle => "throttle".to_owned(),
            FaultKind::RolloutFailed => "rollout-failed".to_owned(),
            FaultKind::LostReply => "lost-reply".to_owned(),
            FaultKind::TaskFailed { hop: 1 } => "task-failed".to_owned(),
            FaultKind::TaskFailed { hop } => format!("task-failed@{hop}"),
        };
        write!(f, "{}:{kind}", self.stage)
    }
}

/// Faults armed for this process (not persisted: a fault is for one command).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    armed: Vec<(Fault, u32)>,
    /// How many more writes succeed before one fails (whoever makes it): a fault in the middle
    /// of a multi-write command, which must leave nothing half-written.
    writes_before_failure: Option<u32>,
    /// ECS tasks started by a stage's calls so far (`task-failed@N` counts them).
    tasks_started: u32,
}

/// The operations that change something.
const WRITES: [&str; 9] = [
    "Create", "Restore", "Delete", "Put", "Register", "Update", "Modify", "AddTags", "RunTask",
];

pub(crate) fn is_write(operation: &str) -> bool {
    WRITES.iter().any(|w| operation.starts_with(w))
}

impl Faults {
    pub(crate) fn arm(&mut self, fault: Fault) {
        self.armed.push((fault, THROTTLED_CALLS));
    }

    /// Lets `writes` writes through, then fails the next one, once.
    pub(crate) fn fail_write_after(&mut self, writes: u32) {
        self.writes_before_failure = Some(writes);
    }

    /// Called before every AWS call made on behalf of `stage`.
    pub(crate) fn before_call(
        &mut self,
        stage: Option<Stage>,
        operation: &str,
    ) -> Result<(), AwsError> {
        if is_write(operation)
            && let Some(remaining) = &mut self.writes_before_failure
        {
            if *remaining == 0 {
                self.writes_before_failure = None;
                return Err(AwsError::Rejected {
                    code: "InjectedFault".into(),
                    message: format!("{operation} failed: fault injected after the earlier writes"),
                });
            }
            *remaining -= 1;
        }
        let Some(stage) = stage else { return Ok(()) };
        for (fault, remaining) in &mut self.armed {
            if fault.stage != stage {
                continue;
            }
            match fault.kind {
                FaultKind::Error => {
                    return Err(AwsError::Rejected {
                        code: "InjectedFault".into(),
                        message: format!("{operation} failed: fault injected at stage {stage}"),
                    });
                }
                FaultKind::Throttle if *remaining > 0 => {
                    *remaining -= 1;
                    return Err(AwsError::Throttled {
                        code: "ThrottlingException".into(),
                        message: format!(
                            "rate exceeded for {operation} (injected at stage {stage})"
                        ),
                    });
                }
                FaultKind::Throttle
                | FaultKind::RolloutFailed
                | FaultKind::LostReply
                | FaultKind::TaskFailed { .. } => {}
            }
        }
        Ok(())
    }

    /// Called after a call made on behalf of `stage` took effect: a lost reply turns its answer
    /// into a transient failure, as a dropped connection would.
    pub(crate) fn after_call(
        &mut self,
        stage: Option<Stage>,
        operation: &str,
    ) -> Result<(), AwsError> {
        let Some(stage) = stage else { return Ok(()) };
        if !is_write(operation) {
            return Ok(());
        }
        for (fault, remaining) in &mut self.armed {
            if fault.stage == stage && fault.kind == FaultKind::LostReply && *remaining > 0 {
                *remaining -= 1;
                return Err(AwsError::Unavailable {
                    message: format!(
                        "connection reset after {operation} was applied (injected at stage {stage})"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether the migration task starting now must fail: the tasks started under `stage` are
    /// counted; the fault is consumed when its hop comes.
    pub(crate) fn take_task_failure(&mut self, stage: Option<Stage>) -> bool {
        let Some(stage) = stage else { return false };
        self.tasks_started = self.tasks_started.saturating_add(1);
        let started = self.tasks_started;
        let due = self.armed.iter().position(|(fault, _)| {
            fault.stage == stage && fault.kind == FaultKind::TaskFailed { hop: started }
        });
        match due {
            Some(index) => {
                self.armed.remove(index);
                true
            }
            None => false,
        }
    }

    /// Whether the next rollout must fail; consumed, so a rollback's own rollout succeeds.
    pub(crate) fn take_rollout_failure(&mut self) -> bool {
        let before = self.armed.len();
        let mut taken = false;
        self.armed.retain(|(fault, _)| {
            if !taken && fault.kind == FaultKind::RolloutFailed {
                taken = true;
                false
            } else {
                true
            }
        });
        before != self.armed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_faults() {
        let fault: Fault = "create-db:error".parse().unwrap();
        assert_eq!(fault.stage, Stage::CreateDb);
        assert_eq!(fault.kind, FaultKind::Error);
        assert_eq!(fault.to_string(), "create-db:error");
        assert!("wait-stable:rollout-failed".parse::<Fault>().is_ok());
        assert!("snapshot:rollout-failed".parse::<Fault>().is_err());
        assert!("create-db".parse::<Fault>().is_err());
        assert!(
            "nope:error"
                .parse::<Fault>()
                .unwrap_err()
                .contains("\"nope\"")
        );
        assert!(
            "cleanup:melt"
                .parse::<Fault>()
                .unwrap_err()
                .contains("\"melt\"")
        );
    }

    #[test]
    fn throttle_then_pass() {
        let mut faults = Faults::default();
        faults.arm("cleanup:throttle".parse().unwrap());
        assert!(faults.before_call(Some(Stage::Snapshot), "x").is_ok());
        assert!(faults.before_call(None, "x").is_ok());
        for _ in 0..THROTTLED_CALLS {
            let err = faults.before_call(Some(Stage::Cleanup), "x").unwrap_err();
            assert!(err.is_transient());
        }
        assert!(faults.before_call(Some(Stage::Cleanup), "x").is_ok());
    }

    #[test]
    fn error_is_for_good() {
        let mut faults = Faults::default();
        faults.arm("swap-pointer:error".parse().unwrap());
        for _ in 0..5 {
            let err = faults
                .before_call(Some(Stage::SwapPointer), "PutParameter")
                .unwrap_err();
            assert!(!err.is_transient());
        }
    }
}
