//! An in-memory AWS for Switchyard: RDS snapshots and instances, Parameter Store and ECS, that
//! behave as AWS documents them. Resources move through their real states on a virtual clock
//! (`creating` -> `backing-up` -> `available`, `deleting` -> gone; ECS deployments
//! `IN_PROGRESS` -> `COMPLETED` or `FAILED`), calls fail with AWS's error semantics, and
//! parameters keep versions. A 15-minute restore takes no real time: time moves only when the
//! runner waits. The world persists to a JSON file between commands, and can be told to fail a
//! pipeline stage on purpose.

mod ecs;
mod faults;
mod rds;
mod seed;
mod ssm;
mod world;

pub use ecs::SIM_EXIT_CODE;
pub use faults::{Fault, FaultKind};
pub use seed::{DemoTenant, demo_release_catalog, demo_tenants};
pub use world::{SimAws, SimError, World, WorldState};
