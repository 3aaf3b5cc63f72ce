//! The orphan sweep: finds the databases and snapshots Switchyard made that nothing accounts
//! for any more (no pointer names them, no deploy tracks them, no execution holding a lock made
//! them, no task uses them), reports them, and deletes them only when asked to (`apply`), only
//! under the namespace's lock, and only after the policies allow each delete.
//!
//! Leftovers of this kind come from outside Switchyard's own paths: a deploy whose rollback was
//! stopped by hand, a namespace unlocked with `switchyard unlock`, a snapshot that was taken for
//! a promotion that never happened. The deploy's own clean-up handles everything it tracks.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Env;
use super::gate::{self, Gate};
use super::sweep::{in_use, lift_deletion_protection};
use crate::error::{AwsError, StepError};
use crate::names::{self, Namespace, Timestamp};
use crate::policy::{DatabaseFacts, PolicyContext, PolicyStep, SnapshotFacts};
use crate::ports::{DbInstance, DeleteDbRequest, Snapshot, Tags, tag};
use crate::records::{LockRecord, NamespaceSettings};

/// A database younger than this is never an orphan: it may be a restore whose deploy has not yet
/// written its tracking record.
pub const DEFAULT_MIN_AGE_HOURS: u32 = 6;
/// An unreferenced snapshot is kept this long: it may be waiting to be promoted to a higher tier.
pub const DEFAULT_SNAPSHOT_RETENTION_DAYS: u32 = 14;
/// At most this many kept resources are listed one by one (the rest are counted): the report
/// travels in the execution's state, which Step Functions caps at 256 KiB, and final snapshots
/// are kept for good.
pub const MAX_KEPT_LISTED: usize = 200;

/// The sweep machine's input, and the document its steps add to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrphanSweep {
    /// `$$.Execution.Id`, kept by the machine's first state: the sweep takes each namespace's
    /// lock under this name while it deletes.
    #[serde(default)]
    pub execution: Option<SweepExecution>,
    /// Delete what was found. Without it the sweep only reports.
    #[serde(default)]
    pub apply: bool,
    #[serde(default)]
    pub min_age_hours: Option<u32>,
    #[serde(default)]
    pub snapshot_retention_days: Option<u32>,
    /// Written by `find-orphans`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<OrphanReport>,
    /// Written by `delete-orphans`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<DeleteReport>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepExecution {
    pub id: String,
    /// `$$.Execution.StartTime`: a lock taken under this id before then is another run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceType {
    Database,
    Snapshot,
}

/// A database or snapshot nothing accounts for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orphan {
    pub resource: ResourceType,
    pub id: String,
    pub namespace: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// A Switchyard resource the sweep saw and leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    pub resource: ResourceType,
    pub id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrphanReport {
    /// Whether the sweep goes on to delete them (the request's `apply`): the machine's choice.
    pub apply: bool,
    pub orphans: Vec<Orphan>,
    /// The namespaces of the orphans, each once: the locks a failed sweep releases.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Left alone for a reason worth reading (in flight, too young, tracked, ...); what a pointer
    /// names is not listed. At most [`MAX_KEPT_LISTED`].
    pub kept: Vec<Kept>,
    /// Kept, and not listed above.
    #[serde(default)]
    pub kept_not_listed: usize,
    pub databases_seen: usize,
    pub snapshots_seen: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeleteReport {
    /// Deletes RDS accepted (databases go on `deleting` for a few minutes).
    pub deleted: Vec<String>,
    pub final_snapshots: Vec<String>,
    /// Found orphaned, not deleted now, and why (a policy said no, the namespace is locked, it
    /// is no longer an orphan, ...).
    pub kept: Vec<Kept>,
}

/// What the sweep knows of every registered namespace, read once.
struct Accounts {
    settings: BTreeMap<Namespace, NamespaceSettings>,
    /// Databases that a pointer names, a deploy tracks, or a service uses, in any namespace (a
    /// database is accounted for wherever it is named, whatever its tags say).
    databases: BTreeMap<String, &'static str>,
    /// Every snapshot id a pointer names, or an existing database was restored from.
    snapshots: BTreeSet<String>,
    /// Who holds each locked namespace: what that execution made is in flight.
    locks: BTreeMap<Namespace, String>,
    /// The database each namespace's pointer names (what the policies see as current).
    pointers: BTreeMap<Namespace, String>,
    /// The version each namespace runs, as its pointer records it (the policies' current one).
    versions: BTreeMap<Namespace, String>,
}

const ACTIVE: &str = "active";

impl Accounts {
    async fn read(env: Env<'_>) -> Result<Accounts, StepError> {
        let records = env.records();
        let mut accounts = Accounts {
            settings: BTreeMap::new(),
            databases: BTreeMap::new(),
            snapshots: BTreeSet::new(),
            locks: BTreeMap::new(),
            pointers: BTreeMap::new(),
            versions: BTreeMap::new(),
        };
        for ns in records.namespaces().await? {
            let settings = records.settings(&ns).await?;
            for db in in_use(env, &settings).await? {
                accounts.databases.insert(db, "in use by a service");
            }
            for tracked in records.tracked(&ns).await? {
                accounts.databases.insert(
                    tracked.db_instance_id,
                    "tracked: a deploy's clean-up owns it",
                );
            }
            if let Some((pointer, _)) = records.pointer(&ns).await? {
                accounts
                    .databases
                    .insert(pointer.db_instance_id.clone(), ACTIVE);
                accounts.snapshots.extend(pointer.snapshot_id);
                if let Some(version) = pointer.app_version {
                    accounts.versions.insert(ns.clone(), version);
                }
                accounts.pointers.insert(ns.clone(), pointer.db_instance_id);
            }
            if let Some(lock) = records.lock(&ns).await? {
                accounts.locks.insert(ns.clone(), lock.execution_id);
            }
            accounts.settings.insert(ns, settings);
        }
        Ok(accounts)
    }

    /// What the accounted-for databases were restored from: a snapshot behind a database that
    /// is active, tracked or in use is no leftover (an orphaned database's snapshot may be one).
    fn note_sources(&mut self, databases: &[DbInstance]) {
        let sources: Vec<String> = databases
            .iter()
            .filter(|db| self.databases.contains_key(&db.id))
            .filter_map(|db| db.tags.get(tag::SNAPSHOT).cloned())
            .collect();
        self.snapshots.extend(sources);
    }

    fn in_flight(&self, execution: &str) -> bool {
        self.locks.values().any(|holder| holder == execution)
    }
}

/// Why a resource is not an orphan, or `None` when it is one.
enum Judgement {
    Orphan(Namespace),
    /// Worth a line in the report.
    Kept(String),
    /// Named by a pointer: not worth one.
    Referenced,
    /// Not Switchyard's.
    Foreign,
}

struct Rules {
    now: DateTime<Utc>,
    min_age: Duration,
    snapshot_retention: Duration,
    /// The sweep's own execution: the locks it holds are no deploy's.
    sweep: Option<String>,
}

impl Rules {
    fn of(request: &OrphanSweep, now: DateTime<Utc>) -> Rules {
        let hours = request.min_age_hours.unwrap_or(DEFAULT_MIN_AGE_HOURS);
        let days = request
            .snapshot_retention_days
            .unwrap_or(DEFAULT_SNAPSHOT_RETENTION_DAYS);
        Rules {
            now,
            min_age: Duration::hours(i64::from(hours)),
            snapshot_retention: Duration::days(i64::from(days)),
            sweep: request.execution.as_ref().map(|e| e.id.clone()),
        }
    }

    /// The namespace a resource's tags give, if Switchyard made it and the namespace is one the
    /// catalog knows. A namespace missing from the catalog is never swept: a wrong parameter
    /// root would otherwise make every database in the account look orphaned.
    fn owner(&self, tags: &Tags, accounts: &Accounts) -> Result<Namespace, Judgement> {
        if tags.get(tag::MANAGED_BY).map(String::as_str) != Some(tag::MANAGED_BY_VALUE) {
            return Err(Judgement::Foreign);
        }
        let Some(name) = tags.get(tag::NAMESPACE) else {
            return Err(Judgement::Kept(format!("no {} tag", tag::NAMESPACE)));
        };
        match name.parse::<Namespace>() {
            Ok(ns) if accounts.settings.contains_key(&ns) => Ok(ns),
            Ok(ns) => Err(Judgement::Kept(format!(
                "namespace {ns} is not in the catalog: never swept"
            ))),
            Err(_) => Err(Judgement::Kept(format!("invalid namespace tag {name:?}"))),
        }
    }

    fn in_flight(&self, tags: &Tags, accounts: &Accounts) -> Option<String> {
        tags.get(tag::EXECUTION)
            .filter(|execution| accounts.in_flight(execution))
            .map(|execution| format!("in flight: made by {execution}, which holds a lock"))
    }

    fn younger_than(&self, created_at: Option<DateTime<Utc>>, age: Duration) -> bool {
        // No creation time: RDS has not finished creating it.
        created_at.is_none_or(|at| self.now - at < age)
    }

    fn database(&self, db: &DbInstance, accounts: &Accounts) -> Judgement {
        let ns = match self.owner(&db.tags, accounts) {
            Ok(ns) => ns,
            Err(judgement) => return judgement,
        };
        match accounts.databases.get(&db.id) {
            Some(&ACTIVE) => return Judgement::Referenced,
            Some(reason) => return Judgement::Kept((*reason).to_owned()),
            None => {}
        }
        if let Some(reason) = self.in_flight(&db.tags, accounts) {
            return Judgement::Kept(reason);
        }
        if db.status != "available" {
            return Judgement::Kept(format!("status {}", db.status));
        }
        if self.younger_than(db.created_at, self.min_age) {
            return Judgement::Kept(format!("younger than {} h", self.min_age.num_hours()));
        }
        Judgement::Orphan(ns)
    }

    fn snapshot(&self, snapshot: &Snapshot, accounts: &Accounts) -> Judgement {
        let ns = match self.owner(&snapshot.tags, accounts) {
            Ok(ns) => ns,
            Err(judgement) => return judgement,
        };
        if accounts.snapshots.contains(&snapshot.id) {
            return Judgement::Referenced;
        }
        if let Some(reason) = self.in_flight(&snapshot.tags, accounts) {
            return Judgement::Kept(reason);
        }
        // A snapshot is promoted across the tiers of one customer's project: while a deploy of
        // one of them runs, it may be restoring this one (it holds its own tier's lock, not the
        // snapshot's).
        if let Some((deploying, holder)) = accounts.locks.iter().find(|(locked, holder)| {
            locked.customer() == ns.customer()
                && locked.project() == ns.project()
                && Some(holder.as_str()) != self.sweep.as_deref()
        }) {
            return Judgement::Kept(format!(
                "a deploy of {deploying} is running ({holder}): it may be restoring this snapshot"
            ));
        }
        if snapshot.id.contains("-final-") {
            // Kept on purpose when a production database was deleted: a backup, not a leftover.
            return Judgement::Kept("final snapshot of a deleted database".to_owned());
        }
        if snapshot.status != "available" {
            return Judgement::Kept(format!("status {}", snapshot.status));
        }
        if self.younger_than(snapshot.created_at, self.snapshot_retention) {
            return Judgement::Kept(format!(
                "within the {} day retention",
                self.snapshot_retention.num_days()
            ));
        }
        Judgement::Orphan(ns)
    }
}

/// Lists every Switchyard database and snapshot nothing accounts for. Changes nothing.
pub async fn find_orphans(env: Env<'_>, request: &OrphanSweep) -> Result<OrphanReport, StepError> {
    // What the steps write is theirs alone: an input that brought a report would steer them.
    if request.found.is_some() || request.deleted.is_some() {
        return Err(StepError::invalid(
            "the sweep's input may not set `found` or `deleted`: the sweep's own steps write them",
        ));
    }
    let mut accounts = Accounts::read(env).await?;
    let rules = Rules::of(request, env.now());
    let databases = env.aws.list_dbs().await?;
    let snapshots = env.aws.list_snapshots().await?;
    accounts.note_sources(&databases);
    let mut report = OrphanReport {
        apply: request.apply,
        databases_seen: databases.len(),
        snapshots_seen: snapshots.len(),
        ..OrphanReport::default()
    };
    let judged = databases
        .iter()
        .map(|db| {
            (
                ResourceType::Database,
                &db.id,
                db.created_at,
                rules.database(db, &accounts),
            )
        })
        .chain(snapshots.iter().map(|s| {
            (
                ResourceType::Snapshot,
                &s.id,
                s.created_at,
                rules.snapshot(s, &accounts),
            )
        }));
    for (resource, id, created_at, judgement) in judged {
        match judgement {
            Judgement::Orphan(ns) => {
                tracing::info!(namespace = %ns, ?resource, id, "orphan found");
                report.orphans.push(Orphan {
                    resource,
                    id: id.clone(),
                    namespace: ns.to_string(),
                    created_at,
                });
            }
            Judgement::Kept(_) if report.kept.len() >= MAX_KEPT_LISTED => {
                report.kept_not_listed += 1;
            }
            Judgement::Kept(reason) => report.kept.push(Kept {
                resource,
                id: id.clone(),
                reason,
            }),
            Judgement::Referenced | Judgement::Foreign => {}
        }
    }
    let namespaces: BTreeSet<&str> = report
        .orphans
        .iter()
        .map(|o| o.namespace.as_str())
        .collect();
    report.namespaces = namespaces.into_iter().map(str::to_owned).collect();
    Ok(report)
}

/// Deletes what `find-orphans` reported, namespace by namespace under its lock, judging each
/// again just before its delete (a deploy may have adopted nothing in between, but may have
/// started) and asking the policies bound to the namespace (step `cleanup`). Never deletes what
/// was not reported. A policy's "no", a locked namespace or a resource that is no longer an
/// orphan only keeps it; a plugin that cannot decide keeps it and fails the sweep at the end.
pub async fn delete_orphans(
    env: Env<'_>,
    request: &OrphanSweep,
) -> Result<DeleteReport, StepError> {
    if !request.apply {
        return Err(StepError::invalid(
            "delete-orphans needs `apply: true`: without it the sweep only reports",
        ));
    }
    let execution_id = request
        .execution
        .as_ref()
        .map(|execution| execution.id.as_str())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| StepError::invalid("missing `execution.id` in the sweep input"))?;
    let started_at = request
        .execution
        .as_ref()
        .and_then(|execution| execution.started_at);
    let found = request
        .found
        .as_ref()
        .ok_or_else(|| StepError::invalid("missing `found`: run find-orphans first"))?;
    let mut by_namespace: BTreeMap<&str, Vec<&Orphan>> = BTreeMap::new();
    for orphan in &found.orphans {
        by_namespace
            .entry(&orphan.namespace)
            .or_default()
            .push(orphan);
    }
    let records = env.records();
    let mut report = DeleteReport::default();
    let mut failed: Option<StepError> = None;
    for (name, orphans) in by_namespace {
        let ns: Namespace = name.parse()?;
        let record = LockRecord {
            execution_id: execution_id.to_owned(),
            acquired_at: env.now(),
            execution_started_at: started_at,
        };
        match records.try_lock(&ns, &record).await? {
            Ok(()) => {}
            Err(holder)
                if holder.execution_id == execution_id
                    && match (holder.execution_started_at, started_at) {
                        (Some(held), Some(started)) => held == started,
                        _ => started_at.is_none_or(|started| {
                            holder.acquired_at >= started - crate::state::CLOCK_SKEW
                        }),
                    } => {}
            Err(holder) => {
                for orphan in orphans {
                    report.kept.push(Kept {
                        resource: orphan.resource,
                        id: orphan.id.clone(),
                        reason: format!("namespace {ns} is locked by {}", holder.execution_id),
                    });
                }
                continue;
            }
        }
        let result = delete_in(env, request, execution_id, &ns, &orphans, &mut report).await;
        // Released whatever happened: a sweep must never keep a deploy out.
        let released = records.unlock(&ns).await;
        match result {
            Ok(()) => {}
            Err(err @ StepError::PolicyFailed { .. }) => {
                failed.get_or_insert(err);
            }
            Err(err) => return Err(err),
        }
        released?;
    }
    match failed {
        Some(err) => Err(err),
        None => Ok(report),
    }
}

async fn delete_in(
    env: Env<'_>,
    request: &OrphanSweep,
    execution_id: &str,
    ns: &Namespace,
    orphans: &[&Orphan],
    report: &mut DeleteReport,
) -> Result<(), StepError> {
    // Read again under the lock: what is judged now cannot change until the lock is released.
    // Every namespace is read again, not only this one: a database is accounted for wherever it
    // is named. (A cost of one read per namespace with orphans.)
    let mut accounts = Accounts::read(env).await?;
    accounts.note_sources(&env.aws.list_dbs().await?);
    let rules = Rules::of(request, env.now());
    let Some(settings) = accounts.settings.get(ns) else {
        return Ok(());
    };
    let gate = Gate::load(env, ns).await?;
    let mut failed: Option<StepError> = None;
    for orphan in orphans {
        let kept = |reason: String| Kept {
            resource: orphan.resource,
            id: orphan.id.clone(),
            reason,
        };
        // The database as read under the lock: judged, and unprotected if it is deleted.
        let mut database = None;
        let (judgement, mut facts) = match orphan.resource {
            ResourceType::Database => match env.aws.describe_db(&orphan.id).await {
                // A retry finding its own delete under way (the reply to it was lost): done.
                Ok(db) if db.status == "deleting" => {
                    report.deleted.push(orphan.id.clone());
                    continue;
                }
                Ok(db) => {
                    let judged = (rules.database(&db, &accounts), database_facts(&db));
                    database = Some(db);
                    judged
                }
                Err(AwsError::NotFound { .. }) => {
                    report.kept.push(kept("already gone".to_owned()));
                    continue;
                }
                Err(err) => return Err(err.into()),
            },
            ResourceType::Snapshot => match env.aws.describe_snapshot(&orphan.id).await {
                Ok(snapshot) => (
                    rules.snapshot(&snapshot, &accounts),
                    snapshot_facts(&snapshot),
                ),
                Err(AwsError::NotFound { .. }) => {
                    report.kept.push(kept("already gone".to_owned()));
                    continue;
                }
                Err(err) => return Err(err.into()),
            },
        };
        match judgement {
            Judgement::Orphan(owner) if &owner == ns => {}
            Judgement::Kept(reason) => {
                report
                    .kept
                    .push(kept(format!("no longer an orphan: {reason}")));
                continue;
            }
            _ => {
                report.kept.push(kept("no longer an orphan".to_owned()));
                continue;
            }
        }
        facts.execution_id = execution_id.to_owned();
        // As read under the lock above: nothing can have moved it since.
        facts.current_pointer = accounts.pointers.get(ns).cloned();
        facts.current_version = accounts.versions.get(ns).cloned();
        let final_snapshot_id = match orphan.resource {
            ResourceType::Database if settings.keeps_final_snapshot(ns) => Some(
                names::final_snapshot_id(&orphan.id, Timestamp::from_datetime(env.now()))?,
            ),
            _ => None,
        };
        if let Some(db) = &mut facts.target_db {
            db.final_snapshot = final_snapshot_id.is_some();
        }
        if !gate.is_empty() {
            match gate.check(settings, facts).await {
                Ok(_) => {}
                Err(err @ StepError::PolicyDenied { .. }) => {
                    report.kept.push(kept(err.to_string()));
                    continue;
                }
                Err(err @ StepError::PolicyFailed { .. }) => {
                    report.kept.push(kept(err.to_string()));
                    failed.get_or_insert(err);
                    continue;
                }
                Err(err) => return Err(err),
            }
        }
        let outcome = match orphan.resource {
            // A leftover restore carries the deletion protection of the database it was to
            // replace: lifted on it alone, once the policies allowed the delete.
            ResourceType::Database => {
                async {
                    if let Some(db) = &database {
                        lift_deletion_protection(env, db).await?;
                    }
                    env.aws
                        .delete_db(&DeleteDbRequest {
                            db_instance_id: orphan.id.clone(),
                            final_snapshot_id: final_snapshot_id.clone(),
                        })
                        .await
                        .map(|_| ())
                }
                .await
            }
            ResourceType::Snapshot => env.aws.delete_snapshot(&orphan.id).await,
        };
        match outcome {
            Ok(()) => {
                tracing::warn!(namespace = %ns, resource = ?orphan.resource, id = %orphan.id, "orphan deleted");
                report.deleted.push(orphan.id.clone());
                report.final_snapshots.extend(final_snapshot_id);
            }
            Err(AwsError::NotFound { .. }) => report.kept.push(kept("already gone".to_owned())),
            Err(err) if err.is_transient() => return Err(err.into()),
            Err(err) => report.kept.push(kept(format!("delete refused: {err}"))),
        }
    }
    match failed {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

fn database_facts(db: &DbInstance) -> PolicyContext {
    PolicyContext {
        step: PolicyStep::Cleanup,
        target_db: Some(DatabaseFacts {
            // Judged above: neither active nor made by an execution in flight.
            active: false,
            in_flight: false,
            ..gate::instance_facts(db)
        }),
        ..PolicyContext::default()
    }
}

fn snapshot_facts(snapshot: &Snapshot) -> PolicyContext {
    PolicyContext {
        step: PolicyStep::Cleanup,
        snapshot: Some(SnapshotFacts {
            id: snapshot.id.clone(),
            source_db: snapshot.db_instance_id.clone(),
            created_at: snapshot.created_at.map_or(0, |at| at.timestamp()),
            age_seconds: 0,
            allocated_storage_gib: u32::try_from(snapshot.allocated_storage_gib).unwrap_or(0),
            engine: snapshot.engine.clone(),
            engine_version: snapshot.engine_version.clone(),
            taken_by_this_execution: false,
        }),
        ..PolicyContext::default()
    }
}
