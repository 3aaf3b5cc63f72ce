//! A local interpreter of the Amazon States Language: it loads the same `*.asl.json`
//! definitions that deploy to AWS Step Functions and runs them against a [`TaskInvoker`],
//! recording a history close enough to AWS's to compare executions.
//!
//! Supported: Task, Pass, Choice, Wait, Succeed, Fail, Parallel and Map states, inline or
//! Distributed (each item a child execution with its own history, tolerated failures counted,
//! `States.ExceedToleratedFailureThreshold` past them); the JSONPath data flow (InputPath,
//! Parameters, ResultSelector, ResultPath, OutputPath, context object, intrinsic functions);
//! Retry and Catch; the 256 KiB payload quota, the history event limit and the machine's
//! TimeoutSeconds. Not supported (rejected at load): JSONata, variables (`Assign`), a
//! Distributed Map's `ItemReader`, `ItemBatcher` and `ResultWriter`, `States.Hash`.

mod base64;
mod choice;
mod clock;
mod error;
mod history;
mod intrinsic;
mod model;
mod path;
mod rng;
mod runner;
mod substitute;
mod template;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::AslError;
pub use history::{Execution, ExecutionStatus, HistoryEvent, HistoryEventKind};
pub use model::StateMachine;
pub use runner::{
    DEFAULT_MAX_HISTORY_EVENTS, DEFAULT_STATE_MACHINE_ARN, LOCAL_ROLE_ARN, MAX_PAYLOAD_BYTES,
    Observer, Runner, TaskContext, TaskFailure, TaskInvoker,
};
pub use substitute::substitute;
