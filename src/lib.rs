//! The `switchyard` command: runs Switchyard's state machines locally, against the embedded
//! simulated AWS or any AWS-compatible endpoint, and shows every namespace's status.

pub mod backend;
pub mod campaign;
pub mod decisions;
pub mod deploy;
pub mod integrations;
pub mod policy;
pub mod progress;
pub mod remote;
pub mod status;
pub mod verify;
