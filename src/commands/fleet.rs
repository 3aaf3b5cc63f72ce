//! `switchyard fleet plan | upgrade --to V`: a release across the fleet in waves. The plan is
//! `switchyard_core::fleet::plan_fleet` (nothing changes); the rollout is
//! `statemachines/fleet.asl.json` with the plan as its input, each tenant's upgrade a nested
//! execution of the deploy machine. This module prints the plan and the rollout's summary.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;
use switchyard::backend::Backend;
use switchyard_core::fleet::{self, FleetPlan, FleetState, WaveSpec};
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

/// A rollout's outcome: who moved, who failed (with the error name), who was skipped.
#[derive(Debug, Serialize)]
pub struct FleetSummary {
    pub status: String,
    pub to: String,
    pub moved: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// Planned, in a wave the rollout never reached.
    pub not_reached: Vec<String>,
    pub skipped: Vec<(String, String)>,
    pub stopped: Option<String>,
    /// How the rollout failed, when not by a wave's tolerance (the execution's own error).
    pub error: Option<String>,
    pub cause: Option<String>,
    pub waves: Vec<fleet::WaveReport>,
}

/// Reads the summary from the fleet machine's last document.
pub fn summary(status: &str, document: &Value) -> FleetSummary {
    let state: FleetState = serde_json::from_value(document.clone()).unwrap_or_default();
    let reached: Vec<&str> = state.reports.iter().map(|r| r.name.as_str()).collect();
    FleetSummary {
        status: status.to_owned(),
        to: state.to.clone(),
        moved: state
            .reports
            .iter()
            .flat_map(|r| r.moved.iter().cloned())
            .collect(),
        failed: state
            .reports
            .iter()
            .flat_map(|r| r.failed.iter())
            .map(|f| {
                (
                    f.namespace.clone(),
                    f.error.clone().unwrap_or_else(|| "unknown".into()),
                )
            })
            .collect(),
        not_reached: state
            .waves
            .iter()
            .filter(|w| !reached.contains(&w.name.as_str()))
            .flat_map(|w| w.tenants.iter().map(|t| t.namespace.clone()))
            .collect(),
        skipped: state
            .skipped
            .iter()
            .map(|s| (s.namespace.clone(), format!("{}: {}", s.reason, s.detail)))
            .collect(),
        stopped: state.stopped.clone(),
        error: None,
        cause: None,
        waves: state.reports,
    }
}

/// One line per wave, then one per tenant that did not simply move.
pub fn render_summary(summary: &FleetSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} fleet rollout to {}: {} moved, {} failed, {} not reached, {} skipped",
        summary.status,
        summary.to,
        summary.moved.len(),
        summary.failed.len(),
        summary.not_reached.len(),
        summary.skipped.len()
    );
    for wave in &summary.waves {
        let _ = writeln!(
            out,
            "  wave {:<10} moved {:>3}  failed {:>3} ({}%, {}% tolerated){}",
            wave.name,
            wave.moved.len(),
            wave.failed.len(),
            wave.failed_percentage,
            wave.tolerated_failure_percentage,
            if wave.over_tolerance {
                "  OVER TOLERANCE"
            } else {
                ""
            }
        );
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
