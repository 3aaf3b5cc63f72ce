//! Switchyard's core: the naming rules, the records kept in Parameter Store, the ports onto AWS,
//! and every step of the deploy pipeline. Lambda binaries and the local runner both call
//! [`dispatch::run_step`]; all logic lives here and is tested here.

pub mod dispatch;
pub mod error;
pub mod fleet;
pub mod identity;
pub mod invariants;
pub mod names;
pub mod policy;
pub mod ports;
pub mod records;
pub mod report;
pub mod state;
pub mod status;
pub mod steps;
pub mod tenants;
pub mod upgrades;

pub use dispatch::{Step, run_step};
pub use error::{AwsError, ResourceKind, StepError};
pub use names::{Namespace, Timestamp};
pub use records::{ActivePointer, LockRecord, NamespaceSettings, ParameterLayout, TrackedDb};
pub use state::DeployState;
