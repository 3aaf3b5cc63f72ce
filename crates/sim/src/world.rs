use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchyard_core::dispatch::Stage;
use switchyard_core::error::AwsError;
use switchyard_core::ports::Clock;

use crate::ecs::{SimService, SimTask, SimTaskDefinition};
use crate::faults::{Fault, Faults};
use crate::rds::{SimInstance, SimSnapshot};
use crate::ssm::ParameterVersion;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read world file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("world file {path} is not a switchyard world: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write world file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything the simulated account holds; what the world file stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldState {
    pub now: DateTime<Utc>,
    pub region: String,
    pub account: String,
    pub(crate) snapshots: BTreeMap<String, SimSnapshot>,
    pub(crate) instances: BTreeMap<String, SimInstance>,
    pub(crate) parameters: BTreeMap<String, Vec<ParameterVersion>>,
    /// Family -> revisions, revision n at index n - 1.
    pub(crate) task_definitions: BTreeMap<String, Vec<SimTaskDefinition>>,
    pub(crate) clusters: Vec<String>,
    /// `cluster/service` -> service.
    pub(crate) services: BTreeMap<String, SimService>,
    /// Task ARN -> one-off task (RunTask).
    #[serde(default)]
    pub(crate) tasks: BTreeMap<String, SimTask>,
    /// DB parameter groups made besides the engines' `default.*` ones.
    #[serde(default)]
    pub(crate) parameter_groups: std::collections::BTreeSet<String>,
    /// DB subnet groups (RDS has no default one a restore could fall back to by name).
    #[serde(default)]
    pub(crate) subnet_groups: std::collections::BTreeSet<String>,
    pub(crate) next_id: u64,
    /// The time the world was last settled at, while nothing has changed since: a call at that
    /// same time has nothing to settle. Any write, and any direct change, clears it.
    #[serde(skip)]
    pub(crate) settled_at: Option<DateTime<Utc>>,
}

impl WorldState {
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Applies every transition due by `now`: resources move on only as time does.
    pub(crate) fn settle(&mut self) {
        self.settle_rds();
        self.settle_ecs();
        self.settled_at = Some(self.now);
    }

    /// [`WorldState::settle`], unless nothing can be due: the world was settled at this very
    /// time and nothing changed since (a fleet of thousands asks thousands of questions a
    /// second; each need not walk every resource).
    fn settle_if_due(&mut self) {
        if self.settled_at != Some(self.now) {
            self.settle();
        }
    }
}

/// A shared handle on one simulated account. Cheap to clone; clones see the same world.
#[derive(Clone)]
pub struct World {
    state: Arc<Mutex<WorldState>>,
    faults: Arc<Mutex<Faults>>,
}

impl World {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self::from_state(WorldState {
            now,
            region: "eu-west-1".into(),
            account: "000000000000".into(),
            snapshots: BTreeMap::new(),
            instances: BTreeMap::new(),
            parameters: BTreeMap::new(),
            task_definitions: BTreeMap::new(),
            clusters: Vec::new(),
            services: BTreeMap::new(),
            tasks: BTreeMap::new(),
            parameter_groups: Default::default(),
            subnet_groups: Default::default(),
            next_id: 0,
            settled_at: None,
        })
    }

    fn from_state(state: WorldState) -> Self {
        World {
            state: Arc::new(Mutex::new(state)),
            faults: Arc::new(Mutex::new(Faults::default())),
        }
    }

    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.to_owned(),
            source,
        })?;
        let state = serde_json::from_str(&text).map_err(|source| SimError::Corrupt {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::from_state(state))
    }

    /// Written whole to a temporary file and renamed, so a crash never leaves half a world.
    pub fn save(&self, path: &Path) -> Result<(), SimError> {
        let write_err = |source| SimError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let text = serde_json::to_string_pretty(&self.snapshot_state()).map_err(|source| {
            SimError::Corrupt {
                path: path.to_owned(),
                source,
            }
        })?;
        // A name of its own per save: two processes saving at once never write into one file.
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let save = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".{}-{save}.tmp", std::process::id()));
        let temporary = path.with_file_name(name);
        std::fs::write(&temporary, text).map_err(write_err)?;
        std::fs::rename(&temporary, path).map_err(|err| {
            let _ = std::fs::remove_file(&temporary);
            write_err(err)
        })
    }

    /// The state, for a change made directly (seeding, tests): whatever it changes, the next
    /// call settles the world again.
    pub(crate) fn lock(&self) -> MutexGuard<'_, WorldState> {
        let mut state = self.state_lock();
        state.settled_at = None;
        state
    }

    fn state_lock(&self) -> MutexGuard<'_, WorldState> {
        // A panic while holding the lock cannot leave the state half-written in a way later
        // readers could not cope with, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of everything, settled to the current time.
    pub fn snapshot_state(&self) -> WorldState {
        let mut state = self.lock();
        state.settle();
        state.clone()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.state_lock().now
    }

    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        state.settle();
    }

    /// Virtual time never runs behind the wall clock between commands, so names made from it
    /// look like today.
    pub fn catch_up(&self, wall: DateTime<Utc>) {
        let mut state = self.lock();
        if wall > state.now {
            state.now = wall;
        }
        state.settle();
    }

    /// The migration commands that completed against a database, in order.
    pub fn migrations_of(&self, db_instance_id: &str) -> Vec<String> {
        let mut state = self.lock();
        state.settle();
        state
            .instances
            .get(db_instance_id)
            .map(|db| db.migrations.clone())
            .unwrap_or_default()
    }

    pub fn inject(&self, fault: Fault) {
        self.faults().arm(fault);
    }

    /// Lets `writes` AWS writes through, from any caller, then fails the next one, once.
    pub fn fail_write_after(&self, writes: u32) {
        self.faults().fail_write_after(writes);
    }

    /// Disarms every injected fault (a fault is meant for one execution).
    pub fn clear_faults(&self) {
        *self.faults() = Faults::default();
    }

    /// AWS as seen by no particular stage: faults never fire.
    pub fn aws(&self) -> SimAws {
        self.aws_for(None)
    }

    /// AWS as seen by the functions serving `stage`: that stage's faults fire.
    pub fn aws_for(&self, stage: Option<Stage>) -> SimAws {
        SimAws {
            world: self.clone(),
            stage,
        }
    }
}

/// The ports onto the simulated world, for one stage's calls.
#[derive(Clone)]
pub struct SimAws {
    pub(crate) world: World,
    stage: Option<Stage>,
}

impl SimAws {
    /// Runs one API call: faults first, then the world settled to now, then the operation.
    pub(crate) fn call<T>(
        &self,
        operation: &str,
        f: impl FnOnce(&mut WorldState) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        self.world.faults().before_call(self.stage, operation)?;
        let result = {
            let mut state = self.world.state_lock();
            state.settle_if_due();
            let result = f(&mut state);
            if crate::faults::is_write(operation) {
                state.settled_at = None;
            }
            result?
        };
        self.world.faults().after_call(self.stage, operation)?;
        Ok(result)
    }

    pub(crate) fn take_task_failure(&self) -> bool {
        self.world.faults().take_task_failure(self.stage)
    }

    pub(crate) fn take_rollout_failure(&self) -> bool {
        self.stage.is_some() && self.world.faults().take_rollout_failure()
    }
}

impl Clock for SimAws {
    fn now(&self) -> DateTime<Utc> {
        self.world.now()
    }

    fn region(&self) -> String {
        self.world.state_lock().region.clone()
    }
}
