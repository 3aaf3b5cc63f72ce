//! A rollout's record and its machine's document.
//!
//! The plan is kept in Parameter Store, not in the execution's state: Step Functions caps a
//! state at 256 KB, which a plan of a few hundred tenants already fills. Under
//! `{root}/rollouts/<rollout>` (the fleet execution's name) live:
//!
//! - `plan`: the outline (the release, each wave's size, mode and chunk count), written last, so
//!   its presence says the rest is complete;
//! - `waves/<wave>/<chunk>`: each wave's namespaces, in chunks that fit a standard parameter;
//! - `skipped/<chunk>`: who does not move, and why;
//! - `failed/<namespace>`: a tenant whose upgrade failed, with its deploy's own error;
//! - `progress`: what each judged wave did, and why the rollout stopped.
//!
//! The machine carries only the outline and the wave running now. A wave of up to
//! [`DEFAULT_DISTRIBUTED_ABOVE`] tenants runs as an inline Map whose items are in the state; a
//! larger one (or one asking for more than 40 at once) runs in Distributed mode, one child
//! execution per chunk that reads its own namespaces, so neither the state nor the rollout's
//! history grows with the wave.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FleetPlan, INLINE_MAX_CONCURRENCY, Skipped};
use crate::error::{AwsError, StepError};
use crate::identity::check_execution_name;
use crate::names::Namespace;
use crate::ports::Aws;
use crate::records::ParameterLayout;

/// Waves of more tenants than this run in Distributed mode. An inline wave puts about ten
/// events per tenant in the rollout's own history (25,000 at most, shared by every inline
/// wave: [`super::MAX_WAVES`] waves of 100 stay under it) and its items and results in the
/// state (about 100 bytes each, far from 256 KB).
pub const DEFAULT_DISTRIBUTED_ABOVE: usize = 100;

/// The largest `distributed_above` accepted: an inline wave of 200 tenants is some 2,000
/// history events.
const MAX_DISTRIBUTED_ABOVE: usize = 200;

/// Tenants in one chunk, at most: one Distributed child upgrades its chunk's tenants one after
/// another, about ten history events each, well inside its own 25,000.
const CHUNK_TENANTS: usize = 100;

/// A standard parameter holds 4 KB; chunks leave room to spare.
const CHUNK_BYTES: usize = 3_500;

/// Failures a wave's report in the state names; every one is in the record.
const REPORTED_FAILURES: usize = 20;

/// A failure's cause, as kept: the deploy's own cause is in its execution's history.
const CAUSE_CHARS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveMode {
    /// An inline Map over the tenants the state carries.
    Inline,
    /// A Distributed Map over the wave's chunks, each a child execution.
    Distributed,
}

/// A wave, as the state carries it: its size, not its tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveOutline {
    pub name: String,
    pub max_concurrency: u32,
    pub tolerated_failure_percentage: u32,
    pub tenants: usize,
    pub chunks: usize,
    pub mode: WaveMode,
}

/// The wave running now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentWave {
    /// Its place in `waves`.
    pub index: usize,
    pub name: String,
    pub mode: WaveMode,
    pub max_concurrency: u32,
    pub tolerated_failure_percentage: u32,
    /// Inline: the items of the Map (`{"namespace": ...}`).
    #[serde(default)]
    pub tenants: Vec<Value>,
    /// Distributed: the chunk numbers, one child execution each.
    #[serde(default)]
    pub chunks: Vec<usize>,
}

/// What a wave did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveReport {
    pub name: String,
    pub tenants: usize,
    pub moved: usize,
    pub failed_count: usize,
    /// The first failures (every one is in the rollout's record).
    #[serde(default)]
    pub failed: Vec<TenantResult>,
    pub failed_percentage: u32,
    pub tolerated_failure_percentage: u32,
    pub over_tolerance: bool,
}

/// How one tenant's upgrade ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantResult {
    pub namespace: String,
    /// `moved` or `failed`.
    pub outcome: String,
    /// The nested execution's own error name (`States.TaskFailed`'s cause says it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// The fleet machine's document: the outline, where the rollout is, what each wave did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetState {
    pub to: String,
    /// The rollout's record: `{root}/rollouts/<rollout>`.
    pub rollout: String,
    pub waves: Vec<WaveOutline>,
    /// How many tenants do not move (the record says who and why).
    #[serde(default)]
    pub skipped: usize,
    /// The index of the next wave to hand out.
    #[serde(default)]
    pub next: usize,
    /// The wave running now; `None` once the rollout is through or stopped.
    #[serde(default)]
    pub current: Option<CurrentWave>,
    /// Set by the machine when `current` ran (its Map's summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran: Option<Value>,
    #[serde(default)]
    pub reports: Vec<WaveReport>,
    /// The rollout stopped before a wave: the reason (the machine fails with
    /// `WaveOverTolerance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// The record's `plan`: what the rollout was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RolloutOutline {
    to: String,
    planned_at: DateTime<Utc>,
    waves: Vec<WaveOutline>,
    skipped: usize,
}

/// The record's `progress`: each judged wave, without its failures (they are under `failed/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Progress {
    waves: Vec<WaveReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stopped: Option<String>,
}

/// A failed tenant, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub wave: usize,
    pub error: String,
    #[serde(default)]
    pub cause: String,
}

/// One chunk of a wave, as a Distributed child asks for it (`fleet-chunk`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkRef {
    pub rollout: String,
    pub wave: usize,
    pub chunk: usize,
}

/// A tenant's failure as the map's `Catch` caught it (`fleet-failed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordFailure {
    pub rollout: String,
    pub wave: usize,
    pub namespace: String,
    /// `{"Error": ..., "Cause": ...}`, as caught.
    pub failure: Value,
}

struct Names {
    prefix: String,
}

impl Names {
    fn new(layout: &ParameterLayout, rollout: &str) -> Result<Self, StepError> {
        check_execution_name(rollout).map_err(|err| {
            StepError::invalid(format!("invalid rollout name {rollout:?}: {err}"))
        })?;
        Ok(Names {
            prefix: format!("{}/rollouts/{rollout}", layout.root()),
        })
    }
    fn plan(&self) -> String {
        format!("{}/plan", self.prefix)
    }
    fn progress(&self) -> String {
        format!("{}/progress", self.prefix)
    }
    fn waves(&self) -> String {
        format!("{}/waves", self.prefix)
    }
    fn chunk(&self, wave: usize, chunk: usize) -> String {
        format!("{}/waves/{wave}/{chunk}", self.prefix)
    }
    fn skipped_dir(&self) -> String {
        format!("{}/skipped", self.prefix)
    }
    fn skipped(&self, chunk: usize) -> String {
        format!("{}/skipped/{chunk}", self.prefix)
    }
    fn failed_dir(&self) -> String {
        format!("{}/failed", self.prefix)
    }
    fn failed(&self, ns: &str) -> String {
        format!("{}/failed/{ns}", self.prefix)
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StepError> {
    serde_json::to_string(value).map_err(|err| StepError::Internal(format!("serialize: {err}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(name: &str, text: &str) -> Result<T, StepError> {
    serde_json::from_str(text)
        .map_err(|err| StepError::invalid(format!("rollout record {name} is malformed: {err}")))
}

/// Splits `items` into chunks of at most `max_items` and [`CHUNK_BYTES`] of JSON each.
fn chunks<T: Serialize>(items: Vec<T>, max_items: usize) -> Result<Vec<Vec<T>>, StepError> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let size = to_json(&item)?.len() + 1;
        if size + 2 > CHUNK_BYTES {
            return Err(StepError::invalid(format!(
                "a rollout record entry of {size} bytes does not fit a parameter"
            )));
        }
        match out.last_mut() {
            Some(chunk) if chunk.len() < max_items && bytes + size + 2 <= CHUNK_BYTES => {
                bytes += size;
                chunk.push(item);
            }
            _ => {
                bytes = size;
                out.push(vec![item]);
            }
        }
    }
    Ok(out)
}

fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Keeps `plan` as rollout `rollout`'s record and returns the machine's first document. The
/// outline is written last: a record without one is incomplete and is written again.
pub async fn store_plan(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    rollout: &str,
    plan: &FleetPlan,
    distributed_above: Option<usize>,
) -> Result<FleetState, StepError> {
    let names = Names::new(layout, rollout)?;
    let distributed_above = distributed_above.unwrap_or(DEFAULT_DISTRIBUTED_ABOVE);
    if distributed_above == 0 || distributed_above > MAX_DISTRIBUTED_ABOVE {
        return Err(StepError::invalid(format!(
            "distributed_above is 1 to {MAX_DISTRIBUTED_ABOVE} tenants, got {distributed_above}"
        )));
    }
    let mut outlines = Vec::new();
    for (index, wave) in plan.waves.iter().enumerate() {
        let count = wave.tenants.len();
        let mode = if count > distributed_above || wave.max_concurrency > INLINE_MAX_CONCURRENCY {
            WaveMode::Distributed
        } else {
            WaveMode::Inline
        };
        // Distributed: at least as many chunks as tenants may run at once, since each child
        // upgrades its chunk one tenant after another.
        let per_chunk = match mode {
            WaveMode::Inline => CHUNK_TENANTS,
            WaveMode::Distributed => {
                let wanted = (wave.max_concurrency as usize).min(count).max(1);
                count.div_ceil(wanted).clamp(1, CHUNK_TENANTS)
            }
        };
        let namespaces: Vec<&str> = wave.tenants.iter().map(|t| t.namespace.as_str()).collect();
        let parts = chunks(namespaces, per_chunk)?;
        for (chunk, part) in parts.iter().enumerate() {
            aws.put_parameter(&names.chunk(index, chunk), &to_json(part)?, true)
                .await?;
        }
        outlines.push(WaveOutline {
            name: wave.name.clone(),
            max_concurrency: wave.max_concurrency,
            tolerated_failure_percentage: wave.tolerated_failure_percentage,
            tenants: count,
            chunks: parts.len(),
            mode,
        });
    }
    let skipped: Vec<Skipped> = plan
        .skipped
        .iter()
        .map(|s| Skipped {
            namespace: s.namespace.clone(),
            reason: s.reason.clone(),
            detail: truncate(&s.detail, 300),
        })
        .collect();
    let skipped_count = skipped.len();
    for (chunk, part) in chunks(skipped, usize::MAX)?.iter().enumerate() {
        aws.put_parameter(&names.skipped(chunk), &to_json(part)?, true)
            .await?;
    }
    let outline = RolloutOutline {
        to: plan.to.clone(),
        planned_at: aws.now(),
        waves: outlines,
        skipped: skipped_count,
    };
    match aws
        .put_parameter(&names.plan(), &to_json(&outline)?, false)
        .await
    {
        Ok(_) => Ok(first_state(rollout, outline)),
        // Another writer kept this rollout first: its record stands.
        Err(AwsError::AlreadyExists { .. }) => stored_state(aws, layout, rollout)
            .await?
            .ok_or_else(|| StepError::Internal(format!("rollout {rollout} vanished"))),
        Err(err) => Err(err.into()),
    }
}

fn first_state(rollout: &str, outline: RolloutOutline) -> FleetState {
    FleetState {
        to: outline.to,
        rollout: rollout.to_owned(),
        waves: outline.waves,
        skipped: outline.skipped,
        ..FleetState::default()
    }
}

async fn outline(aws: &dyn Aws, names: &Names) -> Result<Option<RolloutOutline>, StepError> {
    match aws.get_parameter(&names.plan()).await? {
        Some(p) => Ok(Some(from_json(&p.name, &p.value)?)),
        None => Ok(None),
    }
}

/// The first document of a rollout already recorded, if it is.
pub async fn stored_state(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    rollout: &str,
) -> Result<Option<FleetState>, StepError> {
    let names = Names::new(layout, rollout)?;
    Ok(outline(aws, &names)
        .await?
        .map(|outline| first_state(rollout, outline)))
}

/// The `fleet-chunk` step: the namespaces of one chunk, as the items of the child's Map.
pub async fn load_chunk(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    chunk: &ChunkRef,
) -> Result<Value, StepError> {
    let names = Names::new(layout, &chunk.rollout)?;
    let tenants = chunk_namespaces(aws, &names, chunk.wave, chunk.chunk).await?;
    Ok(serde_json::json!({ "tenants": items(tenants) }))
}

fn items(namespaces: Vec<String>) -> Vec<Value> {
    namespaces
        .into_iter()
        .map(|ns| serde_json::json!({ "namespace": ns }))
        .collect()
}

async fn chunk_namespaces(
    aws: &dyn Aws,
    names: &Names,
    wave: usize,
    chunk: usize,
) -> Result<Vec<String>, StepError> {
    let name = names.chunk(wave, chunk);
    match aws.get_parameter(&name).await? {
        Some(p) => from_json(&p.name, &p.value),
        None => Err(StepError::invalid(format!(
            "rollout record {name} is missing: was the rollout forgotten while it ran?"
        ))),
    }
}

/// The `fleet-failed` step: keeps a tenant's failure in the record, with its deploy's own error.
pub async fn record_failure(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    event: &RecordFailure,
) -> Result<TenantResult, StepError> {
    let names = Names::new(layout, &event.rollout)?;
    let ns: Namespace = event.namespace.parse()?;
    let result = with_child_error(&ns, &event.failure);
    let record = FailureRecord {
        wave: event.wave,
        error: result.error.clone().unwrap_or_else(|| "unknown".into()),
        cause: truncate(result.cause.as_deref().unwrap_or(""), CAUSE_CHARS),
    };
    aws.put_parameter(&names.failed(ns.as_str()), &to_json(&record)?, true)
        .await?;
    Ok(TenantResult {
        cause: Some(record.cause),
        ..result
    })
}

/// A caught failure's error, and the nested execution's own: `States.TaskFailed` carries the
/// child's description, whose `Error` is the name the deploy machine failed with.
fn with_child_error(ns: &Namespace, failure: &Value) -> TenantResult {
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut error = text(failure, "Error");
    let mut cause = text(failure, "Cause");
    if error.as_deref() == Some("States.TaskFailed")
        && let Some(child) = cause
            .as_deref()
            .and_then(|cause| serde_json::from_str::<Value>(cause).ok())
        && let Some(child_error) = text(&child, "Error")
    {
        error = Some(child_error);
        if let Some(child_cause) = text(&child, "Cause") {
            cause = Some(child_cause);
        }
    }
    TenantResult {
        namespace: ns.to_string(),
        outcome: "failed".into(),
        error,
        cause,
    }
}

/// Every failure of the rollout, by namespace.
async fn failures(
    aws: &dyn Aws,
    names: &Names,
) -> Result<BTreeMap<String, FailureRecord>, StepError> {
    let dir = names.failed_dir();
    let mut out = BTreeMap::new();
    for p in aws.parameters_by_path(&dir).await? {
        let Some(ns) = p.name.strip_prefix(&format!("{dir}/")) else {
            continue;
        };
        out.insert(ns.to_owned(), from_json(&p.name, &p.value)?);
    }
    Ok(out)
}

/// The `fleet-wave` step: judges the wave that ran (if one did) from the failures its tenants
/// recorded, then hands out the next one, unless that wave failed beyond its tolerance.
pub async fn advance(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    mut state: FleetState,
) -> Result<FleetState, StepError> {
    let names = Names::new(layout, &state.rollout)?;
    if state.ran.take().is_some() {
        let wave = state.current.take().ok_or_else(|| {
            StepError::invalid("the fleet state says a wave ran, but none is current")
        })?;
        let size = state
            .waves
            .get(wave.index)
            .map(|w| w.tenants)
            .ok_or_else(|| {
                StepError::invalid(format!("the fleet state has no wave {}", wave.index))
            })?;
        let failed: Vec<TenantResult> = failures(aws, &names)
            .await?
            .into_iter()
            .filter(|(_, record)| record.wave == wave.index)
            .map(|(namespace, record)| TenantResult {
                namespace,
                outcome: "failed".into(),
                error: Some(record.error),
                cause: Some(record.cause),
            })
            .collect();
        let failed_count = failed.len();
        let total = size.max(1);
        // Rounded up: a wave one failure over its tolerance never reads as within it.
        let failed_percentage = u32::try_from((failed_count * 100).div_ceil(total)).unwrap_or(100);
        // More failures than the tolerated share of the wave (rounded down, as Step Functions'
        // ToleratedFailurePercentage counts).
        let tolerated = size * wave.tolerated_failure_percentage as usize / 100;
        let over_tolerance = failed_count > tolerated;
        if over_tolerance {
            state.stopped = Some(format!(
                "wave {} failed for {failed_count} of {size} tenants ({failed_percentage}%), over its tolerance of {}%: the rollout stops before the next wave",
                wave.name, wave.tolerated_failure_percentage
            ));
        }
        state.reports.push(WaveReport {
            name: wave.name,
            tenants: size,
            moved: size.saturating_sub(failed_count),
            failed_count,
            failed: failed.into_iter().take(REPORTED_FAILURES).collect(),
            failed_percentage,
            tolerated_failure_percentage: wave.tolerated_failure_percentage,
            over_tolerance,
        });
        let progress = Progress {
            waves: state
                .reports
                .iter()
                .map(|r| WaveReport {
                    failed: Vec::new(),
                    ..r.clone()
                })
                .collect(),
            stopped: state.stopped.clone(),
        };
        aws.put_parameter(&names.progress(), &to_json(&progress)?, true)
            .await?;
    }
    state.current = None;
    if state.stopped.is_none()
        && let Some(next) = state.waves.get(state.next)
    {
        let index = state.next;
        let mut current = CurrentWave {
            index,
            name: next.name.clone(),
            mode: next.mode,
            max_concurrency: next.max_concurrency,
            tolerated_failure_percentage: next.tolerated_failure_percentage,
            tenants: Vec::new(),
            chunks: Vec::new(),
        };
        match next.mode {
            WaveMode::Inline => {
                for chunk in 0..next.chunks {
                    current
                        .tenants
                        .extend(items(chunk_namespaces(aws, &names, index, chunk).await?));
                }
            }
            WaveMode::Distributed => current.chunks = (0..next.chunks).collect(),
        }
        state.current = Some(current);
        state.next += 1;
    }
    Ok(state)
}

/// A wave of a rollout, as its record tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveOutcome {
    pub name: String,
    pub mode: WaveMode,
    /// `done`, `over-tolerance`, or `not-judged` (running, or never reached).
    pub status: String,
    pub moved: Vec<String>,
    pub failed: Vec<TenantResult>,
    /// Its tenants, while it is not judged.
    pub waiting: Vec<String>,
    pub failed_percentage: u32,
    pub tolerated_failure_percentage: u32,
}

/// Everything a rollout's record says: who moved, who failed and how, who was not reached, who
/// was skipped and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutReport {
    pub rollout: String,
    pub to: String,
    pub planned_at: DateTime<Utc>,
    pub waves: Vec<WaveOutcome>,
    pub skipped: Vec<Skipped>,
    pub stopped: Option<String>,
}

/// Reads rollout `rollout`'s record (`switchyard fleet show`, and the summary after a run).
pub async fn rollout_report(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    rollout: &str,
) -> Result<RolloutReport, StepError> {
    let names = Names::new(layout, rollout)?;
    let Some(outline) = outline(aws, &names).await? else {
        return Err(StepError::invalid(format!(
            "no rollout named {rollout:?} is recorded under {}",
            names.prefix
        )));
    };
    // One paged read per part of the record, not one call per chunk.
    let mut chunks: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    let dir = names.waves();
    for p in aws.parameters_by_path(&dir).await? {
        let key = p
            .name
            .strip_prefix(&format!("{dir}/"))
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(w, c)| Some((w.parse().ok()?, c.parse().ok()?)));
        if let Some(key) = key {
            chunks.insert(key, from_json(&p.name, &p.value)?);
        }
    }
    let mut skipped_chunks: BTreeMap<usize, Vec<Skipped>> = BTreeMap::new();
    let dir = names.skipped_dir();
    for p in aws.parameters_by_path(&dir).await? {
        if let Some(chunk) = p
            .name
            .strip_prefix(&format!("{dir}/"))
            .and_then(|c| c.parse().ok())
        {
            skipped_chunks.insert(chunk, from_json(&p.name, &p.value)?);
        }
    }
    let failures = failures(aws, &names).await?;
    let progress: Progress = match aws.get_parameter(&names.progress()).await? {
        Some(p) => from_json(&p.name, &p.value)?,
        None => Progress::default(),
    };
    let mut waves = Vec::new();
    for (index, wave) in outline.waves.iter().enumerate() {
        // Only the chunks the outline counts: a retried plan may have left more.
        let tenants: Vec<String> = (0..wave.chunks)
            .flat_map(|c| chunks.get(&(index, c)).cloned().unwrap_or_default())
            .collect();
        let judged = progress.waves.get(index);
        let failed: Vec<TenantResult> = tenants
            .iter()
            .filter_map(|ns| {
                failures
                    .get(ns)
                    .filter(|f| f.wave == index)
                    .map(|f| TenantResult {
                        namespace: ns.clone(),
                        outcome: "failed".into(),
                        error: Some(f.error.clone()),
                        cause: Some(f.cause.clone()),
                    })
            })
            .collect();
        let (status, moved, waiting) = match judged {
            Some(report) => (
                if report.over_tolerance {
                    "over-tolerance"
                } else {
                    "done"
                },
                tenants
                    .iter()
                    .filter(|ns| !failed.iter().any(|f| &f.namespace == *ns))
                    .cloned()
                    .collect(),
                Vec::new(),
            ),
            None => ("not-judged", Vec::new(), tenants),
        };
        waves.push(WaveOutcome {
            name: wave.name.clone(),
            mode: wave.mode,
            status: status.into(),
            moved,
            failed_percentage: judged.map_or(0, |r| r.failed_percentage),
            failed,
            waiting,
            tolerated_failure_percentage: wave.tolerated_failure_percentage,
        });
    }
    Ok(RolloutReport {
        rollout: rollout.to_owned(),
        to: outline.to,
        planned_at: outline.planned_at,
        waves,
        skipped: skipped_chunks.into_values().flatten().collect(),
        stopped: progress.stopped,
    })
}

/// Deletes rollout `rollout`'s record; returns how many parameters it held.
pub async fn forget_rollout(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    rollout: &str,
) -> Result<usize, StepError> {
    let names = Names::new(layout, rollout)?;
    let mut deleted = 0;
    // The outline last: until it goes, the record is still found (and forgotten again).
    let plan = names.plan();
    for p in aws.parameters_by_path(&names.prefix).await? {
        if p.name != plan && aws.delete_parameter(&p.name).await? {
            deleted += 1;
        }
    }
    if aws.delete_parameter(&plan).await? {
        deleted += 1;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_failure_gives_its_error_and_the_childs_own() {
        let ns: Namespace = "xy-0146-qa".parse().unwrap();
        let child = with_child_error(
            &ns,
            &serde_json::json!({
                "Error": "States.TaskFailed",
                "Cause": r#"{"Error":"RolloutFailed","Cause":"circuit breaker"}"#
            }),
        );
        assert_eq!(child.error.as_deref(), Some("RolloutFailed"));
        assert_eq!(child.cause.as_deref(), Some("circuit breaker"));
        // No Cause at all: the error alone.
        let bare = with_child_error(
            &ns,
            &serde_json::json!({"Error": "StepFunctions.InvalidNameException"}),
        );
        assert_eq!(
            bare.error.as_deref(),
            Some("StepFunctions.InvalidNameException")
        );
        assert_eq!(bare.cause, None);
    }

    #[test]
    fn chunks_fit_a_parameter_and_their_count() {
        let names: Vec<String> = (0..1000)
            .map(|i| format!("tenant{i:05}-0001-prod"))
            .collect();
        let parts = chunks(names.clone(), CHUNK_TENANTS).unwrap();
        assert!(parts.iter().all(|p| p.len() <= CHUNK_TENANTS));
        assert!(
            parts
                .iter()
                .all(|p| to_json(p).unwrap().len() <= CHUNK_BYTES)
        );
        assert_eq!(parts.concat(), names);
        let parts = chunks(names, 7).unwrap();
        assert_eq!(parts.len(), 143);
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
