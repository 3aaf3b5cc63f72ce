//! One module per command, as the CLI grows; `main.rs` parses and dispatches.

pub mod campaign;
pub mod doctor;
pub mod dry_run;
pub mod fleet;
pub mod release;
pub mod tenant;
