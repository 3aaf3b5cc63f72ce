//! The deploy pipeline's steps. Each takes the whole [`DeployState`] and returns its own piece;
//! each is idempotent: run twice with the same input, it finds its own earlier work (by the
//! execution id and start time it tags everything with) and does not repeat it.

mod credentials;
mod database;
pub mod gate;
mod lock;
pub mod migrate;
pub mod orphans;
mod pointer;
pub mod preflight;
pub mod service;
mod snapshot;
mod sweep;

pub use credentials::set_credentials;
pub use database::{check_db, create_db};
pub use lock::{ReleaseReport, acquire_lock, release_lock};
pub use migrate::{freeze_service, prepare_migrations};
pub use orphans::{delete_orphans, find_orphans};
pub use pointer::{read_pointer, swap_pointer};
pub use preflight::{DeployPlan, PreflightReport, plan_deploy, preflight};
pub use service::{check_service, deploy_service};
pub use snapshot::{check_snapshot, snapshot};
pub use sweep::{SweepPolicy, cleanup, rollback, sweep};

use chrono::{DateTime, Utc};

use crate::policy::{NoPlugins, PolicyEngine};
use crate::ports::{Aws, Tags, tag};
use crate::records::{ParameterLayout, Records};
use crate::state::ExecutionInfo;

/// What a step runs against.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub aws: &'a dyn Aws,
    pub layout: &'a ParameterLayout,
    /// Runs the policy plugins the catalog binds to a namespace, before each mutating step.
    pub policies: &'a dyn PolicyEngine,
}

impl<'a> Env<'a> {
    /// With no policy engine: a namespace the catalog binds no plugin to runs unchecked, and one
    /// with bound plugins fails closed (every plugin is missing). [`Env::with_policies`] gives
    /// it the real one.
    pub fn new(aws: &'a dyn Aws, layout: &'a ParameterLayout) -> Self {
        Env {
            aws,
            layout,
            policies: &NoPlugins,
        }
    }

    pub fn with_policies(self, policies: &'a dyn PolicyEngine) -> Self {
        Env { policies, ..self }
    }

    pub fn records(&self) -> Records<'a> {
        Records {
            params: self.aws,
            layout: self.layout,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.aws.now()
    }
}

/// The tags every resource an execution creates carries.
fn execution_tags(namespace: &str, execution: &ExecutionInfo) -> Tags {
    Tags::from([
        (tag::MANAGED_BY.to_owned(), tag::MANAGED_BY_VALUE.to_owned()),
        (tag::NAMESPACE.to_owned(), namespace.to_owned()),
        (tag::EXECUTION.to_owned(), execution.id.clone()),
        (tag::EXECUTION_START.to_owned(), execution.start_tag()),
    ])
}

/// Whether a resource is this run's own work: its tags name this execution's id and its start.
/// The id alone is no proof (a name can be reused, locally at once, in Step Functions after 90
/// days), and taking another run's resource for one's own retry can lose a live database. A
/// resource without the start tag was made before it was written (a run in flight across an
/// upgrade of Switchyard): for it, the id is all there is.
fn made_by(tags: &Tags, execution: &ExecutionInfo) -> bool {
    tags.get(tag::EXECUTION) == Some(&execution.id)
        && tags
            .get(tag::EXECUTION_START)
            .is_none_or(|start| start == &execution.start_tag())
}
