//! `switchyard fleet plan | upgrade --to V | show | forget`: a release across the fleet in
//! waves. The plan is `switchyard_core::fleet::plan_fleet` (nothing changes); `upgrade` keeps
//! it as the rollout's record and runs `statemachines/fleet.asl.json` on its outline, each
//! tenant's upgrade a nested execution of the deploy machine. This module prints the plan and
//! the summary the record gives.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;
use switchyard::backend::Backend;
use switchyard_core::fleet::{
    self, FleetPlan, FleetState, RolloutReport, WaveMode, WaveOutcome, WaveSpec,
};
use switchyard_core::policy::PolicyEngine;
use switchyard_core::{ParameterLayout, StepError};

use crate::Output;

/// The waves given, or the defaults.
pub fn waves(given: &[String]) -> anyhow::Result<Vec<WaveSpec>> {
    if given.is_empty() {
        return Ok(WaveSpec::defaults());
    }
    given
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|err: StepError| anyhow::anyhow!("{}: {err}", err.name()))
        })
        .collect()
}

pub async fn plan(
    backend: &Backend,
    layout: &ParameterLayout,
    policies: &dyn PolicyEngine,
    to: &str,
    waves: &[WaveSpec],
) -> anyhow::Result<FleetPlan> {
    let aws = backend.aws_for(None);
    fleet::plan_fleet(aws.as_ref(), layout, policies, to, waves)
        .await
        .map_err(|err| anyhow::anyhow!("{}: {err}", err.name()))
}

pub fn print_plan(plan: &FleetPlan, output: Output) -> anyhow::Result<ExitCode> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(plan)?),
        Output::Text => print!("{}", render_plan(plan)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Each wave with its tenants and their paths, then who does not move and why.
pub fn render_plan(plan: &FleetPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleet rollout to {}: {} tenants move in {} waves, {} skipped",
        plan.to,
        plan.moving(),
        plan.waves.len(),
        plan.skipped.len()
    );
    for (i, wave) in plan.waves.iter().enumerate() {
        let _ = writeln!(
            out,
            "  wave {} {}: {} tenants, {} at a time, {}% may fail",
            i + 1,
            wave.name,
            wave.tenants.len(),
            wave.max_concurrency,
            wave.tolerated_failure_percentage
        );
        for tenant in &wave.tenants {
            let _ = writeln!(
                out,
                "    {:<16} {}  ({} migrations, ~{} min down)",
                tenant.namespace, tenant.path, tenant.migrations, tenant.expected_downtime_minutes
            );
        }
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(out, "  skipped:");
        for skipped in &plan.skipped {
            let _ = writeln!(
                out,
                "    {:<16} {:<16} {}",
                skipped.namespace, skipped.reason, skipped.detail
            );
        }
    }
    out
}

/// A rollout's outcome, from its record: who moved, who failed (with the error name), whose
/// wave was not reached, who was skipped and why.
#[derive(Debug, Serialize)]
pub struct FleetSummary {
    pub status: String,
    pub rollout: String,
    pub to: String,
    pub moved: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// Planned, in a wave the rollout never reached (or, while it runs, not judged yet).
    pub not_reached: Vec<String>,
    pub skipped: Vec<(String, String)>,
    pub stopped: Option<String>,
    /// How the rollout failed, when not by a wave's tolerance (the execution's own error).
    pub error: Option<String>,
    pub cause: Option<String>,
    pub waves: Vec<WaveOutcome>,
}

pub fn summary(status: &str, record: RolloutReport) -> FleetSummary {
    FleetSummary {
        status: status.to_owned(),
        rollout: record.rollout,
        to: record.to,
        moved: record
            .waves
            .iter()
            .flat_map(|w| w.moved.iter().cloned())
            .collect(),
        failed: record
            .waves
            .iter()
            .flat_map(|w| w.failed.iter())
            .map(|f| {
                (
                    f.namespace.clone(),
                    f.error.clone().unwrap_or_else(|| "unknown".into()),
                )
            })
            .collect(),
        not_reached: record
            .waves
            .iter()
            .flat_map(|w| w.waiting.iter().cloned())
            .collect(),
        skipped: record
            .skipped
            .iter()
            .map(|s| (s.namespace.clone(), format!("{}: {}", s.reason, s.detail)))
            .collect(),
        stopped: record.stopped,
        error: None,
        cause: None,
        waves: record.waves,
    }
}

/// One line per wave, then one per tenant that did not simply move, then who moved.
pub fn render_summary(summary: &FleetSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} fleet rollout {} to {}: {} moved, {} failed, {} not reached, {} skipped",
        summary.status,
        summary.rollout,
        summary.to,
        summary.moved.len(),
        summary.failed.len(),
        summary.not_reached.len(),
        summary.skipped.len()
    );
    for wave in &summary.waves {
        let mode = match wave.mode {
            WaveMode::Inline => "inline",
            WaveMode::Distributed => "distributed",
        };
        let line = format!(
            "  wave {:<10} {mode:<11} moved {:>4}  failed {:>3} ({}%, {}% tolerated)  {}",
            wave.name,
            wave.moved.len(),
            wave.failed.len(),
            wave.failed_percentage,
            wave.tolerated_failure_percentage,
            match wave.status.as_str() {
                "over-tolerance" => "OVER TOLERANCE",
                "not-judged" => "not reached",
                _ => "",
            }
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out, "  {:<16} {:<12} detail", "tenant", "outcome");
    for (ns, error) in &summary.failed {
        let _ = writeln!(out, "  {ns:<16} {:<12} {error}", "failed");
    }
    for ns in &summary.not_reached {
        let _ = writeln!(
            out,
            "  {ns:<16} {:<12} its wave did not start",
            "not-reached"
        );
    }
    for (ns, why) in &summary.skipped {
        let _ = writeln!(out, "  {ns:<16} {:<12} {why}", "skipped");
    }
    for ns in &summary.moved {
        let _ = writeln!(out, "  {ns:<16} {:<12} on {}", "moved", summary.to);
    }
    if let Some(stopped) = &summary.stopped {
        let _ = writeln!(out, "  stopped: {stopped}");
    }
    if let Some(error) = &summary.error {
        let _ = writeln!(
            out,
            "  error: {error}: {}",
            summary.cause.as_deref().unwrap_or("")
        );
    }
    out
}

/// Keeps the plan as rollout `rollout`'s record, refusing a name a rollout already used, after
/// checking that every tenant's execution name (`<namespace>-<rollout>`) is one Step Functions
/// takes. Returns the fleet machine's input.
pub async fn keep(
    backend: &Backend,
    layout: &ParameterLayout,
    rollout: &str,
    plan: &FleetPlan,
    distributed_above: Option<usize>,
) -> anyhow::Result<FleetState> {
    for tenant in plan.waves.iter().flat_map(|w| &w.tenants) {
        let child = format!("{}-{rollout}", tenant.namespace);
        switchyard_core::identity::check_execution_name(&child).map_err(|err| {
            anyhow::anyhow!(
                "rollout {rollout:?} names {tenant}'s execution {child:?}: {err}",
                tenant = tenant.namespace
            )
        })?;
    }
    let aws = backend.aws_for(None);
    let named = |err: StepError| anyhow::anyhow!("{}: {err}", err.name());
    if fleet::stored_state(aws.as_ref(), layout, rollout)
        .await
        .map_err(named)?
        .is_some()
    {
        anyhow::bail!(
            "a rollout named {rollout:?} is recorded already: give each rollout a name of its own (or `switchyard fleet forget {rollout}`)"
        );
    }
    fleet::store_plan(aws.as_ref(), layout, rollout, plan, distributed_above)
        .await
        .map_err(named)
}

/// `switchyard fleet show ROLLOUT`: what its record says, while it runs or after.
pub async fn show(
    backend: &Backend,
    layout: &ParameterLayout,
    rollout: &str,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let aws = backend.aws_for(None);
    let record = fleet::rollout_report(aws.as_ref(), layout, rollout)
        .await
        .map_err(|err| anyhow::anyhow!("{}: {err}", err.name()))?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&record)?),
        Output::Text => {
            let status = if record.stopped.is_some() {
                "STOPPED"
            } else if record.waves.iter().any(|w| w.status == "not-judged") {
                "UNFINISHED"
            } else {
                "DONE"
            };
            print!("{}", render_summary(&summary(status, record)));
        }
    }
    Ok(ExitCode::SUCCESS)
}
