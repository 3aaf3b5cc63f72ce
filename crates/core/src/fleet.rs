//! Fleet rollouts: a release moved across many tenants in waves (canaries first), each tenant
//! upgraded on its own (its own execution of the deploy machine, its own history), the rollout
//! stopped before the next wave when a wave fails beyond its tolerance.
//!
//! [`plan_fleet`] decides, changing nothing, who moves in which wave along which path and who is
//! skipped and why: pinned by its settings, already on the release, no path to it, or a policy
//! that says no now (outside its change window, say). [`advance`] is the `fleet-wave` step of
//! `statemachines/fleet.asl.json`: it judges the wave that just ran and hands out the next one.
//! A rollout planned again after it stopped skips everyone already on the release.

mod rollout;

use std::fmt;
use std::str::FromStr;

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::error::StepError;
use crate::names::Namespace;
use crate::policy::PolicyEngine;
use crate::ports::Aws;
use crate::records::{ListedRecords, ParameterLayout, Records, glob_matches};
use crate::state::{DeployState, ExecutionInfo};
use crate::steps::gate::Answer;
use crate::steps::{Env, plan_deploy};
use crate::upgrades::{self, recorded_schema};
use switchyard_releases::{ReleaseCatalog, Version};

pub use rollout::{
    ChunkRef, CurrentWave, DEFAULT_DISTRIBUTED_ABOVE, FailureRecord, FleetState, RecordFailure,
    RolloutReport, TenantResult, WaveMode, WaveOutcome, WaveOutline, WaveReport, advance,
    forget_rollout, load_chunk, record_failure, rollout_report, store_plan, stored_state,
};

/// Tenants upgraded at once in one wave, at most. Each is a deploy machine execution, and its
/// RDS and ECS calls share the account's API rates with every other one.
pub const MAX_CONCURRENCY: u32 = 500;

/// An inline Map runs at most 40 iterations at once; a wave asking for more runs in
/// Distributed mode.
pub const INLINE_MAX_CONCURRENCY: u32 = 40;

/// Waves in one rollout, at most: each inline wave adds up to about a thousand events to the
/// rollout's own history (see [`DEFAULT_DISTRIBUTED_ABOVE`]), which holds 25,000.
pub const MAX_WAVES: usize = 20;

/// How tenants are picked for a wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveSelect {
    /// The tenants whose namespace matches one of these globs (`*-dev`, `xy-0146-*`).
    Namespaces(Vec<String>),
    /// This share of all the tenants that move (rounded up), from those left.
    Percent(u32),
    /// Every tenant left.
    Rest,
}

/// One wave of a rollout: who, how many at once, how many may fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveSpec {
    pub name: String,
    pub select: WaveSelect,
    pub max_concurrency: u32,
    /// The share of the wave's tenants that may fail before the rollout stops (0: none).
    pub tolerated_failure_percentage: u32,
}

impl WaveSpec {
    /// Canaries first (every dev tier, two at a time, no failure tolerated), then a tenth of the
    /// fleet (five at a time, 10% may fail), then the rest (ten at a time, 10%).
    pub fn defaults() -> Vec<WaveSpec> {
        vec![
            WaveSpec {
                name: "canary".into(),
                select: WaveSelect::Namespaces(vec!["*-dev".into()]),
                max_concurrency: 2,
                tolerated_failure_percentage: 0,
            },
            WaveSpec {
                name: "early".into(),
                select: WaveSelect::Percent(10),
                max_concurrency: 5,
                tolerated_failure_percentage: 10,
            },
            WaveSpec {
                name: "rest".into(),
                select: WaveSelect::Rest,
                max_concurrency: 10,
                tolerated_failure_percentage: 10,
            },
        ]
    }
}

/// `NAME:SELECTOR[:CONCURRENCY[:TOLERATED%]]`, SELECTOR a `+`-joined list of namespace globs,
/// a percentage (`10%`) or `rest`: `canary:*-dev:2:0`, `early:10%:5:10`, `rest:rest`.
impl FromStr for WaveSpec {
    type Err = StepError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            StepError::invalid(format!(
                "invalid wave {text:?}: {why} (NAME:SELECTOR[:CONCURRENCY[:TOLERATED%]], e.g. canary:*-dev:2:0, early:10%:5:10, rest:rest)"
            ))
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (name, selector) = match parts.as_slice() {
            [name, selector, ..] if !name.is_empty() && !selector.is_empty() => (*name, *selector),
            _ => return Err(bad("it needs a name and a selector")),
        };
        if parts.len() > 4 {
            return Err(bad("too many parts"));
        }
        let select = if selector == "rest" {
            WaveSelect::Rest
        } else if let Some(percent) = selector.strip_suffix('%') {
            match percent.parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => WaveSelect::Percent(p),
                _ => return Err(bad("a percentage is 1% to 100%")),
            }
        } else {
            WaveSelect::Namespaces(selector.split('+').map(str::to_owned).collect())
        };
        let number = |index: usize, default: u32, what: &str| -> Result<u32, StepError> {
            match parts.get(index) {
                None => Ok(default),
                Some(text) => text
                    .trim_end_matches('%')
                    .parse()
                    .map_err(|_| bad(&format!("{what} {text:?} is not a number"))),
            }
        };
        let max_concurrency = number(2, 10, "concurrency")?;
        let tolerated_failure_percentage = number(3, 0, "tolerated failure")?;
        if max_concurrency == 0 || max_concurrency > MAX_CONCURRENCY {
            return Err(bad(&format!(
                "concurrency is 1 to {MAX_CONCURRENCY} (above {INLINE_MAX_CONCURRENCY}, the wave runs in Distributed mode)"
            )));
        }
        if tolerated_failure_percentage > 100 {
            return Err(bad("a tolerated failure percentage is 0 to 100"));
        }
        Ok(WaveSpec {
            name: name.to_owned(),
            select,
            max_concurrency,
            tolerated_failure_percentage,
        })
    }
}

impl fmt::Display for WaveSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let selector = match &self.select {
            WaveSelect::Namespaces(globs) => globs.join("+"),
            WaveSelect::Percent(p) => format!("{p}%"),
            WaveSelect::Rest => "rest".into(),
        };
        write!(
            f,
            "{}:{selector}:{}:{}",
            self.name, self.max_concurrency, self.tolerated_failure_percentage
        )
    }
}

/// A tenant that moves, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetTenant {
    pub namespace: String,
    pub from: String,
    /// `1.3.2 → 1.3.3 → 1.4.0 → 2.0.0 → 2.0.1`
    pub path: String,
    pub migrations: usize,
    pub expected_downtime_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    pub name: String,
    pub max_concurrency: u32,
    pub tolerated_failure_percentage: u32,
    pub tenants: Vec<FleetTenant>,
}

/// A tenant that does not move, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub namespace: String,
    /// `pinned`, `already-there`, `no-path`, `unknown-version`, `outside-window`,
    /// `policy-says-no`, `cannot-plan`, `in-no-wave`.
    pub reason: String,
    pub detail: String,
}

/// Who moves in which wave, and who does not: the fleet machine's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetPlan {
    /// The release the fleet moves to.
    pub to: String,
    pub waves: Vec<Wave>,
    pub skipped: Vec<Skipped>,
}

impl FleetPlan {
    pub fn moving(&self) -> usize {
        self.waves.iter().map(|w| w.tenants.len()).sum()
    }
}

/// Plans a rollout of release `to` over every registered tenant, changing nothing. Each tenant's
/// upgrade is judged by the policies as Preflight would judge it now.
pub async fn plan_fleet(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    policies: &dyn PolicyEngine,
    to: &str,
    waves: &[WaveSpec],
) -> Result<FleetPlan, StepError> {
    let records = Records {
        params: aws,
        layout,
    };
    if waves.is_empty() || waves.len() > MAX_WAVES {
        return Err(StepError::invalid(format!(
            "a rollout has 1 to {MAX_WAVES} waves, got {}",
            waves.len()
        )));
    }
    let mut names: Vec<&str> = Vec::new();
    for wave in waves {
        if names.contains(&wave.name.as_str()) {
            return Err(StepError::invalid(format!(
                "two waves are named {:?}: each wave needs a name of its own",
                wave.name
            )));
        }
        names.push(&wave.name);
    }
    let catalog = upgrades::catalog(aws, layout).await?;
    let target = catalog
        .find(to)
        .map_err(|err| StepError::NoUpgradePath {
            namespace: "the fleet".into(),
            reason: err.to_string(),
        })?
        .version
        .clone();
    let env = Env::new(aws, layout).with_policies(policies);
    let catalog = &catalog;
    let target = &target;
    // Tenants judged a few at a time (each is about a dozen reads and the policies), in the
    // namespaces' order: a fleet-plan Lambda plans more of them in its 15 minutes.
    // The listing holds each tenant's settings and pointer: judging reads them from it.
    let mut judged = stream::iter(records.every_namespace().await?)
        .map(|(ns, listed)| async move { judge(env, &listed, catalog, target, to, &ns).await })
        .buffered(CONCURRENT_JUDGEMENTS);
    let mut moving: Vec<FleetTenant> = Vec::new();
    let mut skipped = Vec::new();
    // A transient AWS failure ends the plan (and drops the judgements in flight); any other
    // failure skipped its tenant as `cannot-plan`.
    while let Some(judged) = judged.next().await {
        match judged? {
            Judged::Moving(tenant) => moving.push(tenant),
            Judged::Skipped(skip) => skipped.push(skip),
        }
    }
    let total = moving.len();
    let mut left = moving;
    let mut planned = Vec::new();
    for spec in waves {
        let take: Vec<FleetTenant> = match &spec.select {
            WaveSelect::Namespaces(globs) => {
                let (chosen, rest): (Vec<_>, Vec<_>) = left
                    .into_iter()
                    .partition(|t| globs.iter().any(|glob| glob_matches(glob, &t.namespace)));
                left = rest;
                chosen
            }
            WaveSelect::Percent(percent) => {
                let count = (total * *percent as usize).div_ceil(100).min(left.len());
                let rest = left.split_off(count);
                std::mem::replace(&mut left, rest)
            }
            WaveSelect::Rest => std::mem::take(&mut left),
        };
        if !take.is_empty() {
            planned.push(Wave {
                name: spec.name.clone(),
                max_concurrency: spec.max_concurrency,
                tolerated_failure_percentage: spec.tolerated_failure_percentage,
                tenants: take,
            });
        }
    }
    for tenant in left {
        skipped.push(Skipped {
            namespace: tenant.namespace,
            reason: "in-no-wave".into(),
            detail: "no wave selects it".into(),
        });
    }
    Ok(FleetPlan {
        to: target.to_string(),
        waves: planned,
        skipped,
    })
}

/// How many tenants [`plan_fleet`] judges at once. Each judgement reads about five Parameter
/// Store records, whose default throughput is 40 reads a second per account: more at once would
/// only be throttled.
const CONCURRENT_JUDGEMENTS: usize = 4;

/// Where one tenant stands in a rollout's plan.
enum Judged {
    Moving(FleetTenant),
    Skipped(Skipped),
}

fn skipped(ns: &Namespace, reason: &str, detail: String) -> Judged {
    Judged::Skipped(Skipped {
        namespace: ns.to_string(),
        reason: reason.to_owned(),
        detail,
    })
}

/// One tenant's place in a rollout to `to` (`target`, as the catalog names it): moving along
/// its path, or skipped and why. Its unreadable records skip it, not the rollout; AWS failing
/// is the plan's error, to be retried.
async fn judge(
    env: Env<'_>,
    listed: &ListedRecords,
    catalog: &ReleaseCatalog,
    target: &Version,
    to: &str,
    ns: &Namespace,
) -> Result<Judged, StepError> {
    let aws = env.aws;
    let settings = match listed.settings() {
        Ok(settings) => settings,
        Err(err) => {
            return cannot_plan(ns, err);
        }
    };
    if let Some(pinned) = &settings.pinned_version {
        return Ok(skipped(
            ns,
            "pinned",
            format!("pinned to {pinned} by its settings"),
        ));
    }
    let pointer = match listed.pointer() {
        Ok(pointer) => pointer.map(|(p, _)| p),
        Err(err) => {
            return cannot_plan(ns, err);
        }
    };
    let Some(current) = pointer
        .as_ref()
        .and_then(recorded_schema)
        .or_else(|| settings.version.clone())
    else {
        return Ok(skipped(
            ns,
            "unknown-version",
            "neither its pointer nor its settings say which version it runs".into(),
        ));
    };
    match upgrades::parse_version(&current) {
        Ok(version) if version >= *target => {
            let detail = if version == *target {
                format!("already on {target}")
            } else {
                format!("on {version}, past {target}")
            };
            return Ok(skipped(ns, "already-there", detail));
        }
        _ => {}
    }
    // The records and the catalog are read already.
    let upgrade = match upgrades::plan_for(ns, &settings, pointer.as_ref(), Some(catalog), to) {
        Ok(upgrade) => upgrade,
        Err(err @ StepError::NoUpgradePath { .. }) => {
            return Ok(skipped(ns, "no-path", err.to_string()));
        }
        Err(err) => {
            return cannot_plan(ns, err);
        }
    };
    // Preflight's own judgement, now: an upgrade that would stop there waits.
    let state = DeployState {
        namespace: ns.to_string(),
        upgrade_to: Some(to.to_owned()),
        execution: Some(ExecutionInfo {
            id: "fleet-plan".into(),
            started_at: aws.now(),
        }),
        ..DeployState::default()
    };
    match plan_deploy(env, &state).await {
        Ok(plan) if plan.allowed() => {}
        Ok(plan) => {
            let stops: Vec<_> = plan.verdicts.iter().filter(|v| v.answer.stops()).collect();
            let window = stops.iter().any(|v| v.plugin == "change-window");
            // The first thing each plugin said no to, and how many more steps it refused.
            let mut said: Vec<String> = Vec::new();
            let mut plugins: Vec<&str> = Vec::new();
            for verdict in &stops {
                if plugins.contains(&verdict.plugin.as_str()) {
                    continue;
                }
                plugins.push(&verdict.plugin);
                let more = stops.iter().filter(|v| v.plugin == verdict.plugin).count() - 1;
                let reason = match verdict.answer {
                    Answer::Failed => "failed".to_owned(),
                    _ => verdict.reasons.join("; "),
                };
                let more = if more > 0 {
                    format!(" (and {more} more steps)")
                } else {
                    String::new()
                };
                said.push(format!(
                    "{} at {}: {reason}{more}",
                    verdict.plugin, verdict.step
                ));
            }
            let detail = said.join(" | ");
            let reason = if window {
                "outside-window"
            } else {
                "policy-says-no"
            };
            return Ok(skipped(ns, reason, detail));
        }
        Err(err) => {
            return cannot_plan(ns, err);
        }
    }
    Ok(Judged::Moving(FleetTenant {
        namespace: ns.to_string(),
        from: upgrade.from,
        path: upgrade.plan.describe(),
        migrations: upgrade.plan.migrations().count(),
        expected_downtime_minutes: upgrade.expected_downtime_minutes,
    }))
}

/// What a schedule (or any caller without a plan) starts the fleet machine with: the release,
/// and the waves as `switchyard fleet --wave` takes them (none: the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetRequest {
    pub to: String,
    #[serde(default)]
    pub wave_specs: Vec<String>,
    /// A wave of more tenants than this runs in Distributed mode (default
    /// [`DEFAULT_DISTRIBUTED_ABOVE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed_above: Option<usize>,
}

/// What the fleet machine's `PlanRollout` state hands `fleet-plan`: the request it started
/// with, and its own execution name, which names the rollout's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRolloutEvent {
    pub request: FleetRequest,
    pub rollout: String,
}

/// The `fleet-plan` step: [`plan_fleet`] when the execution starts without a plan, kept as the
/// rollout's record ([`store_plan`]); the state carries only its outline.
pub async fn plan_rollout(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    policies: &dyn PolicyEngine,
    event: &PlanRolloutEvent,
) -> Result<FleetState, StepError> {
    // A retry after a lost reply finds the record the first attempt kept.
    if let Some(state) = rollout::stored_state(aws, layout, &event.rollout).await? {
        return Ok(state);
    }
    let plan = plan_request(aws, layout, policies, &event.request).await?;
    store_plan(
        aws,
        layout,
        &event.rollout,
        &plan,
        event.request.distributed_above,
    )
    .await
}

/// [`plan_fleet`] with the waves as `--wave` takes them (none: the defaults).
pub async fn plan_request(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    policies: &dyn PolicyEngine,
    request: &FleetRequest,
) -> Result<FleetPlan, StepError> {
    let waves = if request.wave_specs.is_empty() {
        WaveSpec::defaults()
    } else {
        request
            .wave_specs
            .iter()
            .map(|text| text.parse())
            .collect::<Result<Vec<_>, _>>()?
    };
    plan_fleet(aws, layout, policies, &request.to, &waves).await
}

/// A tenant whose records or judgement failed: AWS failing fails the plan (the step is retried);
/// anything else skips that tenant as `cannot-plan`, not the whole rollout.
fn cannot_plan(ns: &Namespace, err: StepError) -> Result<Judged, StepError> {
    if matches!(err, StepError::Transient(_)) {
        return Err(err);
    }
    let detail = format!("{}: {err}", err.name());
    Ok(skipped(ns, "cannot-plan", detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_parse_and_print() {
        let wave: WaveSpec = "canary:*-dev+xy-*:2:0".parse().unwrap();
        assert_eq!(
            wave.select,
            WaveSelect::Namespaces(vec!["*-dev".into(), "xy-*".into()])
        );
        assert_eq!(wave.to_string(), "canary:*-dev+xy-*:2:0");
        let wave: WaveSpec = "early:10%:5:10%".parse().unwrap();
        assert_eq!(wave.select, WaveSelect::Percent(10));
        assert_eq!(wave.tolerated_failure_percentage, 10);
        let rest: WaveSpec = "rest:rest".parse().unwrap();
        assert_eq!(
            (rest.max_concurrency, rest.tolerated_failure_percentage),
            (10, 0)
        );
        for bad in [
            "",
            "x",
            "x:",
            "x:0%",
            "x:rest:0",
            "x:rest:501",
            "x:rest:1:101",
            "a:b:c:d:e",
        ] {
            let err = bad.parse::<WaveSpec>().unwrap_err();
            assert_eq!(err.name(), "InvalidInput", "{bad}");
        }
    }
}
