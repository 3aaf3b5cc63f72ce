//! A seeded random campaign on the embedded world: deploys, promotions, upgrades, sweeps and
//! unlocks, each with 0–3 injected faults (a rollback fault after an earlier one among them),
//! under reused and odd execution names and policies that randomly allow, deny or break. After
//! every operation the invariants are checked ([`switchyard_core::invariants`]), and so is what
//! needs a before and after: a deploy that succeeded moved its pointer onto its new database,
//! one that failed left the pointer where it was, and no namespace the operation was not about
//! changed. `switchyard campaign --seed S --operations N` runs it; CI runs it through
//! `tests/campaign.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use serde_json::json;
use switchyard_asl::ExecutionStatus;
use switchyard_core::dispatch::Stage;
use switchyard_core::invariants::{self, Violation, rule};
use switchyard_core::policy::{
    Decision, Evaluation, PluginFailure, PolicyContext, PolicyEngine, Verdict,
};
use switchyard_core::ports::{Databases, Services, tag};
use switchyard_core::records::{ParameterLayout, PolicyBinding, PolicyCatalog, Records};
use switchyard_core::{Namespace, identity};
use switchyard_core::{tenants, upgrades};
use switchyard_sim::{Fault, FaultKind, World};

use crate::backend::Backend;
use crate::deploy::{self, DEPLOY_MACHINE, DeployReport, FromExecution, SWEEP_MACHINE};

/// What to run.
/// How many of a namespace's latest runs the campaign expects its records to remember by name
/// (Parameter Store keeps 100 versions of the deploy record; each run writes it once, when it releases its lock).
const RECALLED: usize = 40;

#[derive(Debug, Clone, Copy)]
pub struct Campaign {
    pub seed: u64,
    pub operations: usize,
}

/// What it found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CampaignReport {
    pub seed: u64,
    pub operations: usize,
    /// Per kind of operation and outcome (`deploy SUCCEEDED`, `promote FAILED InvalidInput`).
    pub outcomes: BTreeMap<String, usize>,
    pub faults_injected: usize,
    /// Every broken promise, with the operation after which it was seen.
    pub violations: Vec<String>,
    /// Databases orphaned at the end.
    pub orphans: usize,
}

impl CampaignReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.orphans == 0
    }
}

const TENANTS: [&str; 5] = [
    "xy-0146-dev",
    "xy-0146-qa",
    "xy-0146-prod",
    "ab-0201-dev",
    "ab-0201-prod",
];

/// Releases of the demo catalog an upgrade may aim at (older ones and the current are refused
/// by name: NoUpgradePath).
const RELEASES: [&str; 5] = ["1.3.3", "1.4.0", "1.4.2", "2.0.0", "2.0.1"];

const IMAGES: [&str; 8] = [
    "1.3.3",
    "1.4.0",
    "1.4.1",
    "2.0.0",
    "2.0.1",
    "v2.1.0",
    "\"1.3.3\"",
    "repo/app:2.0.1",
];

const ODD_NAMES: [&str; 5] = ["", "has space", "slash/name", "ü-unicode", "a:b"];

/// What an operator does after releasing a lock an upgrade's incomplete rollback kept, as
/// `doctor` says: a service left frozen is scaled back (the demo's run two tasks).
async fn operator_thaw(
    aws: &switchyard_sim::SimAws,
    records: &Records<'_>,
    ns: &Namespace,
) -> anyhow::Result<()> {
    let settings = records.settings(ns).await?;
    if let Ok(service) = aws
        .describe_service(&settings.cluster, &settings.service)
        .await
        && service.desired_count == 0
    {
        aws.set_desired_count(&settings.cluster, &settings.service, 2)
            .await?;
    }
    Ok(())
}

/// Policies that allow, deny or fail at random (from the campaign's seed): every path of the
/// gate is taken, and a deny or a broken plugin is one more fault.
struct ChaosPolicies {
    rng: Mutex<StdRng>,
}

#[async_trait::async_trait]
impl PolicyEngine for ChaosPolicies {
    async fn evaluate(
        &self,
        plugin: &str,
        context: &PolicyContext,
    ) -> Result<Option<Evaluation>, PluginFailure> {
        let roll: u32 = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            rng.random_range(0..100)
        };
        let verdict = match roll {
            0..2 => {
                return Err(PluginFailure::Trapped {
                    plugin: plugin.to_owned(),
                    detail: "chaos".into(),
                });
            }
            2..5 => Verdict::Deny(vec![format!("chaos says no to {}", context.step)]),
            _ => Verdict::Allow,
        };
        Ok(Some(Evaluation {
            plugin: plugin.to_owned(),
            version: "0.0.0".into(),
            digest: String::new(),
            decision: Decision {
                verdict,
                warnings: Vec::new(),
            },
            elapsed: Duration::ZERO,
        }))
    }
}

/// What must not change in a namespace an operation was not about.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    pointer: Option<(String, i64)>,
    service: Option<String>,
    /// The service's desired count: an upgrade's freeze must be undone, whatever happens.
    desired: Option<i32>,
    lock: Option<String>,
    tracked: BTreeSet<String>,
    databases: BTreeSet<String>,
}

struct Run<'a> {
    world: World,
    backend: Arc<Backend>,
    layout: ParameterLayout,
    policies: Arc<dyn PolicyEngine>,
    rng: StdRng,
    checkout: &'a Path,
    names: Vec<String>,
    snapshots: Vec<String>,
    /// Namespaces whose lock an execution kept after `RollbackIncomplete`, for an operator.
    kept_locks: BTreeSet<String>,
    /// The name of the run that keeps each such lock.
    lock_holders: BTreeMap<String, String>,
    /// Namespaces an incomplete rollback left for an operator to repair: the service may not
    /// run on the pointer's database until a deploy into it succeeds.
    needs_repair: BTreeSet<String>,
    /// The names of the deploys that succeeded, by namespace: each is in the pointer's history.
    succeeded: BTreeMap<String, Vec<String>>,
    /// Every execution run into a namespace, in order.
    runs: BTreeMap<String, Vec<String>>,
    /// The violations seen after the last operation.
    standing: BTreeSet<String>,
    report: CampaignReport,
}

/// Runs the campaign on a fresh demo world.
pub async fn run(
    campaign: Campaign,
    checkout: &Path,
    progress: &mut dyn FnMut(String),
) -> anyhow::Result<CampaignReport> {
    let world = crate::backend::demo_world()?;
    let layout = ParameterLayout::default();
    world.seed_policy_catalog(
        &layout,
        &PolicyCatalog {
            bindings: vec![PolicyBinding::new("chaos")],
        },
    )?;
    let backend = Arc::new(Backend::Embedded {
        world: world.clone(),
        path: checkout.join(".switchyard/campaign-unused.json"),
    });
    let mut run = Run {
        world,
        backend,
        layout,
        policies: Arc::new(ChaosPolicies {
            rng: Mutex::new(StdRng::seed_from_u64(campaign.seed ^ 0x00c4_a05e)),
        }),
        rng: StdRng::seed_from_u64(campaign.seed),
        checkout,
        names: Vec::new(),
        snapshots: Vec::new(),
        kept_locks: BTreeSet::new(),
        lock_holders: BTreeMap::new(),
        needs_repair: BTreeSet::new(),
        succeeded: BTreeMap::new(),
        runs: BTreeMap::new(),
        standing: BTreeSet::new(),
        report: CampaignReport {
            seed: campaign.seed,
            operations: campaign.operations,
            ..CampaignReport::default()
        },
    };
    for index in 0..campaign.operations {
        let minutes = run.rng.random_range(1..=600);
        run.world.advance(Duration::from_secs(minutes * 60));
        let line = run.operation(index).await?;
        if index % 50 == 0 || !run.report.violations.is_empty() {
            progress(format!("{index:>5}  {line}"));
        }
    }
    run.settle().await?;
    Ok(run.report)
}

impl Run<'_> {
    async fn operation(&mut self, index: usize) -> anyhow::Result<String> {
        let roll = self.rng.random_range(0..100);
        match roll {
            0..28 => self.deploy(index, "deploy").await,
            28..40 => self.deploy(index, "promote").await,
            40..50 => self.deploy(index, "upgrade").await,
            // The tenant's own data to a release of the catalog: freeze, migrate, thaw.
            50..59 => self.deploy(index, "release").await,
            // A change to the tenant's settings, rolled out keeping the database.
            59..65 => self.deploy(index, "settings").await,
            65..75 => self.sweep(index).await,
            75..85 => self.unlock(index).await,
            85..92 => self.deploy(index, "reused-name").await,
            _ => self.deploy(index, "odd-name").await,
        }
    }

    fn pick<'t>(&mut self, from: &[&'t str]) -> &'t str {
        from[self.rng.random_range(0..from.len())]
    }

    fn faults(&mut self) -> Vec<Fault> {
        let count = self.rng.random_range(0..=3);
        let mut faults = Vec::new();
        for _ in 0..count {
            let stage = Stage::ALL[self.rng.random_range(0..Stage::ALL.len())];
            let kind = match self.rng.random_range(0..4) {
                0 => FaultKind::Error,
                1 => FaultKind::Throttle,
                2 => FaultKind::LostReply,
                _ if stage == Stage::WaitStable => FaultKind::RolloutFailed,
                _ if stage == Stage::Migrate => FaultKind::TaskFailed {
                    hop: self.rng.random_range(1..=3),
                },
                _ => FaultKind::Error,
            };
            faults.push(Fault { stage, kind });
        }
        // A rollback that fails after an earlier fault: the incomplete path.
        if !faults.is_empty() && self.rng.random_bool(0.15) {
            faults.push(Fault {
                stage: Stage::Rollback,
                kind: FaultKind::Error,
            });
        }
        faults
    }

    async fn deploy(&mut self, index: usize, kind: &str) -> anyhow::Result<String> {
        let mut target = self.pick(&TENANTS);
        // Half the reused names are those of runs that kept a lock for an operator, reused in
        // that namespace: the next run under such a name must not take the lock for its own.
        let mut holder_name = None;
        if kind == "reused-name" && !self.lock_holders.is_empty() && self.rng.random_bool(0.5) {
            let at = self.rng.random_range(0..self.lock_holders.len());
            if let Some((namespace, name)) = self.lock_holders.iter().nth(at) {
                target = TENANTS
                    .iter()
                    .copied()
                    .find(|t| t == namespace)
                    .unwrap_or(target);
                holder_name = Some(name.clone());
            }
        }
        let ns: Namespace = target.parse()?;
        let mut input = json!({ "namespace": target });
        let mut source_ns = None;
        match kind {
            "settings" => {
                let value = self.rng.random_range(1..1000);
                let aws = self.backend.aws_for(None);
                tenants::set(
                    aws.as_ref(),
                    &self.layout,
                    &ns,
                    &[format!("app_environment.MAX_USERS={value}")],
                )
                .await?;
                input["settings_only"] = json!(true);
            }
            "release" => {
                // Mostly a release ahead of the tenant's schema; sometimes any (an older one
                // or the current must be refused by name).
                let aws = self.backend.aws_for(None);
                let records = Records {
                    params: aws.as_ref(),
                    layout: &self.layout,
                };
                let current = records
                    .pointer(&ns)
                    .await?
                    .and_then(|(p, _)| upgrades::recorded_schema(&p))
                    .and_then(|v| upgrades::parse_version(&v).ok());
                let ahead: Vec<&str> = RELEASES
                    .iter()
                    .copied()
                    .filter(|r| {
                        current
                            .as_ref()
                            .is_none_or(|c| upgrades::parse_version(r).is_ok_and(|r| r > *c))
                    })
                    .collect();
                let to = if !ahead.is_empty() && self.rng.random_bool(0.9) {
                    ahead[self.rng.random_range(0..ahead.len())]
                } else {
                    self.pick(&RELEASES)
                };
                input["upgrade_to"] = json!(to);
            }
            "promote" if !self.snapshots.is_empty() => {
                let at = self.rng.random_range(0..self.snapshots.len());
                input["snapshot_id"] = json!(self.snapshots[at]);
            }
            _ => {
                // Mostly a sibling tier; sometimes another customer's, which must be refused.
                let siblings: Vec<&str> = TENANTS
                    .iter()
                    .copied()
                    .filter(|t| {
                        *t != target && (self.rng.random_bool(0.05) || t[..7] == target[..7])
                    })
                    .collect();
                let source = if siblings.is_empty() {
                    "xy-0146-dev"
                } else {
                    siblings[self.rng.random_range(0..siblings.len())]
                };
                input["source_namespace"] = json!(source);
                source_ns = Some(source.to_owned());
            }
        }
        if kind == "upgrade" {
            input["image"] = json!(self.pick(&IMAGES));
        }
        let name = match kind {
            "reused-name" if holder_name.is_some() => holder_name.clone().unwrap_or_default(),
            "reused-name" if !self.names.is_empty() => {
                self.names[self.rng.random_range(0..self.names.len())].clone()
            }
            "odd-name" => {
                // An invalid name, or one a deploy into this namespace already had: both must
                // be refused before anything runs.
                // Parameter Store keeps a parameter's last 100 versions, so the namespace's
                // records remember the names of its last deploys, not of every one ever (each
                // deploy writes its record once): a name from before that is not
                // refused by the records, and need not be, since every step tells runs apart by
                // their id and start time. The names a refusal is owed to are those of the last
                // RECALLED runs.
                let recent: Vec<String> = self
                    .runs
                    .get(target)
                    .map(|runs| runs.iter().rev().take(RECALLED).cloned().collect())
                    .unwrap_or_default();
                let used: Vec<String> = self
                    .succeeded
                    .get(target)
                    .map(|names| {
                        names
                            .iter()
                            .filter(|name| recent.contains(name))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let name = if self.rng.random_bool(0.5) || used.is_empty() {
                    self.pick(&ODD_NAMES).to_owned()
                } else {
                    used[self.rng.random_range(0..used.len())].clone()
                };
                // As the CLI does: refused before anything runs.
                let aws = self.backend.aws_for(None);
                let refused = match identity::check_execution_name(&name) {
                    Err(_) => true,
                    Ok(()) => identity::name_used_in(aws.as_ref(), &self.layout, &ns, &name)
                        .await?
                        .is_some(),
                };
                let outcome = if refused { "refused" } else { "accepted" };
                *self
                    .report
                    .outcomes
                    .entry(format!("odd-name {outcome}"))
                    .or_default() += 1;
                if !refused {
                    self.report
                        .violations
                        .push(format!("#{index}: the name {name:?} was not refused"));
                }
                return Ok(format!("odd-name {name:?} {outcome}"));
            }
            _ => format!("op{index}-{}", self.rng.random_range(0..1_000_000u32)),
        };
        self.names.push(name.clone());

        let faults = self.faults();
        self.report.faults_injected += faults.len();
        let kept_for_operator = self.kept_locks.contains(target);
        let before = self.fingerprints().await?;
        for fault in &faults {
            self.world.inject(fault.clone());
        }
        let machine = deploy::load_machine(&self.checkout.join(DEPLOY_MACHINE), &self.backend)?;
        let execution = deploy::run_machine(
            self.backend.clone(),
            &self.layout,
            self.policies.clone(),
            machine,
            &name,
            input,
            None,
        )
        .await;
        self.world.clear_faults();
        self.runs
            .entry(target.to_owned())
            .or_default()
            .push(name.clone());
        let report = DeployReport::from_execution(&execution);
        if let Some(snapshot) = &report.snapshot_id
            && report.snapshot_taken
        {
            self.snapshots.push(snapshot.clone());
        }
        let outcome = match &execution.error {
            Some(error) => format!("{} {error}", execution.status.as_str()),
            None => execution.status.as_str().to_owned(),
        };
        *self
            .report
            .outcomes
            .entry(format!("{kind} {outcome}"))
            .or_default() += 1;
        let incomplete = execution.error.as_deref() == Some("RollbackIncomplete");
        if incomplete {
            self.kept_locks.insert(target.to_owned());
            self.needs_repair.insert(target.to_owned());
            self.lock_holders.insert(target.to_owned(), name.clone());
        }
        if execution.status == ExecutionStatus::Succeeded {
            self.needs_repair.remove(target);
            self.succeeded
                .entry(target.to_owned())
                .or_default()
                .push(name.clone());
        }

        let after = self.fingerprints().await?;
        let mut broken = Vec::new();
        let went_past_the_lock = execution.history.iter().any(|event| {
            matches!(&event.kind, switchyard_asl::HistoryEventKind::StateEntered { name, .. } if name == "Preflight")
        });
        if kept_for_operator && went_past_the_lock {
            broken.push(format!(
                "{outcome}: it ran though {target}'s lock was kept for an operator"
            ));
        }
        if !incomplete && before[target].desired != after[target].desired {
            broken.push(format!(
                "{outcome} but the service's desired count went {:?} -> {:?}",
                before[target].desired, after[target].desired
            ));
        }
        let (was, now) = (&before[target].pointer, &after[target].pointer);
        match execution.status {
            ExecutionStatus::Succeeded => {
                let moved = match (was, now) {
                    // A settings-only deploy keeps the database: the pointer must not move.
                    _ if kind == "settings" => was.is_some() && was == now,
                    (Some((_, v0)), Some((db, v1))) => {
                        v1 > v0 && report.new_db.as_ref() == Some(db)
                    }
                    (None, Some((db, _))) => report.new_db.as_ref() == Some(db),
                    _ => false,
                };
                if !moved {
                    broken.push(format!(
                        "SUCCEEDED but the pointer went {was:?} -> {now:?} (new db {:?})",
                        report.new_db
                    ));
                }
            }
            _ if !incomplete => {
                let same = was.as_ref().map(|(db, _)| db) == now.as_ref().map(|(db, _)| db);
                if !same {
                    broken.push(format!(
                        "{outcome} but the pointer moved: {was:?} -> {now:?}"
                    ));
                }
                if after[target].lock.is_some() && !self.kept_locks.contains(target) {
                    broken.push(format!("{outcome} and the lock is still held"));
                }
            }
            _ => {}
        }
        for (namespace, print) in &before {
            if namespace != target && after.get(namespace) != Some(print) {
                broken.push(format!(
                    "{namespace} changed though the deploy was into {target} (from {source_ns:?}): {print:?} -> {:?}",
                    after.get(namespace)
                ));
            }
        }
        self.record(index, &format!("{kind} {target} {name}"), broken)
            .await?;
        Ok(format!(
            "{kind:<11} {target:<13} {outcome:<32} faults {}",
            faults
                .iter()
                .map(|f| format!("{}:{:?}", f.stage, f.kind))
                .collect::<Vec<_>>()
                .join(",")
        ))
    }

    async fn sweep(&mut self, index: usize) -> anyhow::Result<String> {
        let apply = self.rng.random_bool(0.5);
        let faults: Vec<Fault> = (0..self.rng.random_range(0..=1))
            .map(|_| Fault {
                stage: Stage::Sweep,
                kind: [FaultKind::Error, FaultKind::Throttle, FaultKind::LostReply]
                    [self.rng.random_range(0..3)],
            })
            .collect();
        self.report.faults_injected += faults.len();
        let before = self.fingerprints().await?;
        for fault in &faults {
            self.world.inject(fault.clone());
        }
        let machine = deploy::load_machine(&self.checkout.join(SWEEP_MACHINE), &self.backend)?;
        let name = format!("sweep{index}-{}", self.rng.random_range(0..1_000_000u32));
        let execution = deploy::run_machine(
            self.backend.clone(),
            &self.layout,
            self.policies.clone(),
            machine,
            &name,
            json!({ "apply": apply }),
            None,
        )
        .await;
        self.world.clear_faults();
        let outcome = match &execution.error {
            Some(error) => format!("{} {error}", execution.status.as_str()),
            None => execution.status.as_str().to_owned(),
        };
        *self
            .report
            .outcomes
            .entry(format!("sweep {outcome}"))
            .or_default() += 1;
        let after = self.fingerprints().await?;
        let mut broken = Vec::new();
        for (namespace, print) in &before {
            let now = &after[namespace];
            if now.pointer != print.pointer || now.service != print.service {
                broken.push(format!(
                    "the sweep moved {namespace}'s pointer or service: {print:?} -> {now:?}"
                ));
            }
            if now.lock != print.lock {
                broken.push(format!(
                    "the sweep left {namespace}'s lock changed: {:?} -> {:?}",
                    print.lock, now.lock
                ));
            }
        }
        self.record(index, &format!("sweep apply={apply}"), broken)
            .await?;
        Ok(format!("sweep       apply={apply:<5}     {outcome}"))
    }

    async fn unlock(&mut self, index: usize) -> anyhow::Result<String> {
        let Some(target) = self.kept_locks.pop_first() else {
            return self.deploy(index, "deploy").await;
        };
        self.lock_holders.remove(&target);
        let aws = self.world.aws();
        let records = Records {
            params: &aws,
            layout: &self.layout,
        };
        let ns: Namespace = target.parse()?;
        records.unlock(&ns).await?;
        operator_thaw(&aws, &records, &ns).await?;
        *self.report.outcomes.entry("unlock".into()).or_default() += 1;
        self.record(index, &format!("unlock {target}"), Vec::new())
            .await?;
        Ok(format!("unlock      {target}"))
    }

    /// Checks the invariants after an operation. Allowed: the lock of a namespace an execution
    /// kept for an operator, and, until a deploy into it succeeds, a service that an incomplete
    /// rollback left off its pointer's database.
    async fn record(
        &mut self,
        index: usize,
        operation: &str,
        mut broken: Vec<String>,
    ) -> anyhow::Result<()> {
        let aws = self.world.aws();
        for violation in invariants::check(&aws, &self.layout, None).await? {
            if self.allowed(&violation) {
                continue;
            }
            broken.push(violation.to_string());
        }
        // A standing violation is reported once, at the operation after which it appeared.
        let now: BTreeSet<String> = broken.into_iter().collect();
        for what in now.difference(&self.standing) {
            self.report
                .violations
                .push(format!("#{index} {operation}: {what}"));
        }
        self.standing = now;
        Ok(())
    }

    fn allowed(&self, violation: &Violation) -> bool {
        match violation.rule {
            rule::LOCK_HELD => self.kept_locks.contains(&violation.namespace),
            rule::SERVICE_NOT_ON_POINTER => self.needs_repair.contains(&violation.namespace),
            _ => false,
        }
    }

    async fn fingerprints(&self) -> anyhow::Result<BTreeMap<String, Fingerprint>> {
        let aws = self.world.aws();
        let records = Records {
            params: &aws,
            layout: &self.layout,
        };
        let instances = aws.list_dbs().await?;
        let mut prints = BTreeMap::new();
        for tenant in TENANTS {
            let ns: Namespace = tenant.parse()?;
            let settings = records.settings(&ns).await?;
            let described = aws
                .describe_service(&settings.cluster, &settings.service)
                .await
                .ok();
            let desired = described.as_ref().map(|s| s.desired_count);
            let service = described.map(|s| s.task_definition_arn);
            prints.insert(
                tenant.to_owned(),
                Fingerprint {
                    pointer: records
                        .pointer(&ns)
                        .await?
                        .map(|(p, v)| (p.db_instance_id, v)),
                    service,
                    desired,
                    lock: records.lock(&ns).await?.map(|l| l.execution_id),
                    tracked: records
                        .tracked(&ns)
                        .await?
                        .into_iter()
                        .map(|t| t.db_instance_id)
                        .collect(),
                    databases: instances
                        .iter()
                        .filter(|i| i.tags.get(tag::NAMESPACE).map(String::as_str) == Some(tenant))
                        .filter(|i| i.status != "deleting")
                        .map(|i| i.id.clone())
                        .collect(),
                },
            );
        }
        Ok(prints)
    }

    /// Ends the campaign as an operator would: every lock kept for an operator released, a
    /// fault-free deploy of each such namespace, a day for deletions to finish; then every
    /// invariant must hold everywhere, with nothing allowed.
    async fn settle(&mut self) -> anyhow::Result<()> {
        let kept = std::mem::take(&mut self.kept_locks);
        self.lock_holders.clear();
        let repair = std::mem::take(&mut self.needs_repair);
        let aws = self.world.aws();
        for target in &kept {
            let ns: Namespace = target.parse()?;
            let records = Records {
                params: &aws,
                layout: &self.layout,
            };
            records.unlock(&ns).await?;
            operator_thaw(&aws, &records, &ns).await?;
        }
        // Policies that allow: the converging deploys are not part of the chaos.
        let calm: Arc<dyn PolicyEngine> = Arc::new(ChaosPolicies {
            rng: Mutex::new(StdRng::seed_from_u64(u64::MAX)),
        });
        for target in kept.union(&repair) {
            let source = TENANTS
                .iter()
                .find(|t| *t != target && t[..7] == target[..7])
                .copied()
                .unwrap_or("xy-0146-dev");
            for attempt in 0..5 {
                self.world.advance(Duration::from_secs(3600));
                let machine =
                    deploy::load_machine(&self.checkout.join(DEPLOY_MACHINE), &self.backend)?;
                let execution = deploy::run_machine(
                    self.backend.clone(),
                    &self.layout,
                    calm.clone(),
                    machine,
                    &format!("settle-{target}-{attempt}"),
                    json!({ "namespace": target, "source_namespace": source }),
                    None,
                )
                .await;
                if execution.status == ExecutionStatus::Succeeded {
                    break;
                }
            }
        }
        self.world.advance(Duration::from_secs(24 * 3600));
        let violations = invariants::check(&aws, &self.layout, None).await?;
        self.report.orphans = violations.iter().filter(|v| v.rule == rule::ORPHAN).count();
        for violation in violations {
            self.report
                .violations
                .push(format!("at the end: {violation}"));
        }
        Ok(())
    }
}

/// The outcome table, one line a kind of operation and outcome.
pub fn render(report: &CampaignReport) -> String {
    let mut out = format!(
        "campaign: seed {}, {} operations, {} faults injected\n",
        report.seed, report.operations, report.faults_injected
    );
    for (outcome, count) in &report.outcomes {
        out.push_str(&format!("  {count:>5}  {outcome}\n"));
    }
    out.push_str(&format!(
        "violations: {}, orphans at the end: {}\n",
        report.violations.len(),
        report.orphans
    ));
    for violation in &report.violations {
        out.push_str(&format!("  {violation}\n"));
    }
    out
}
