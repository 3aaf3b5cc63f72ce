//! `switchyard deploy ... --dry-run`: what the deploy would do and what every bound policy says
//! about each of its steps, read from the backend the global flags name, changing nothing (no
//! lock, no write, not even to the embedded world's file).

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::Utc;
use switchyard::backend::Backend;
use switchyard_core::ParameterLayout;
use switchyard_core::policy::PolicyEngine;
use switchyard_core::state::{DeployState, ExecutionInfo};
use switchyard_core::steps::gate::Answer;
use switchyard_core::steps::{DeployPlan, Env, plan_deploy};

use crate::Output;

/// Exit 0 when every enforced policy allows the deploy, 1 when one says no (or cannot decide).
pub async fn run(
    backend: &Backend,
    layout: &ParameterLayout,
    policies: &dyn PolicyEngine,
    request: serde_json::Value,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let mut state: DeployState = serde_json::from_value(request)?;
    // The name is never used for anything: nothing is created.
    state.execution = Some(ExecutionInfo {
        id: "dry-run".to_owned(),
        started_at: backend.clock().now().with_timezone(&Utc),
    });
    let aws = backend.aws_for(None);
    let env = Env::new(aws.as_ref(), layout).with_policies(policies);
    let plan = plan_deploy(env, &state).await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        Output::Text => print!("{}", render(&plan)),
    }
    Ok(if plan.allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

/// The plan as a person reads it: the steps in order, then each policy's answer per step.
pub fn render(plan: &DeployPlan) -> String {
    let mut out = String::new();
    let ns = &plan.namespace;
    let _ = writeln!(out, "dry run: deploy into {ns} (nothing is changed)");
    if plan.settings_only {
        let _ = writeln!(
            out,
            "  keeps the database {}: no snapshot, no restore, no swap",
            plan.new_db_instance_id
        );
    } else {
        let snapshot = or_dash(plan.snapshot_id.as_deref());
        match (&plan.source_namespace, plan.snapshot_taken) {
            (Some(source), true) => {
                let _ = writeln!(
                    out,
                    "  1. snapshot     {snapshot} of {source}'s active database {}",
                    or_dash(plan.source_db_instance_id.as_deref())
                );
            }
            _ => {
                let _ = writeln!(out, "  1. snapshot     restore the given {snapshot}");
            }
        }
        let _ = writeln!(
            out,
            "  2. pointer      {ns} names {}",
            or_dash(plan.active_db_instance_id.as_deref())
        );
        let _ = writeln!(
            out,
            "  3. restore      {} ({}) beside it",
            plan.new_db_instance_id, plan.instance_class
        );
        let _ = writeln!(
            out,
            "  4. swap         {ns} -> {} (expected by {})",
            plan.new_db_instance_id,
            plan.expected_swap_at.format("%Y-%m-%d %H:%M UTC")
        );
    }
    let image = match &plan.new_image {
        Some(new) => format!("{} -> {new}", or_dash(plan.current_image.as_deref())),
        None => format!("keeps {}", or_dash(plan.current_image.as_deref())),
    };
    let _ = writeln!(
        out,
        "  5. service      {}/{} onto a new revision with the tenant's settings, image {image}; version {} -> {}",
        plan.cluster,
        plan.service,
        or_dash(plan.current_version.as_deref()),
        or_dash(plan.target_version.as_deref())
    );
    if !plan.settings_only {
        let _ = writeln!(
            out,
            "  6. clean-up     delete {}",
            or_dash(plan.active_db_instance_id.as_deref())
        );
    }
    if plan.verdicts.is_empty() {
        let _ = writeln!(out, "policies: none bound to {ns}");
    } else {
        let _ = writeln!(out, "policies:");
    }
    // A plugin that does not check a step has nothing to say about it (JSON keeps the row).
    for verdict in plan
        .verdicts
        .iter()
        .filter(|v| v.answer != Answer::NotChecked)
    {
        let mut line = format!(
            "  {:<16} {:<20} {:<12}",
            verdict.step.as_str(),
            verdict.plugin,
            verdict.answer.as_str()
        );
        if !verdict.mode.is_enforce() {
            let _ = write!(line, " ({} mode)", verdict.mode.as_str());
        }
        if !verdict.reasons.is_empty() {
            let _ = write!(line, " {}", verdict.reasons.join("; "));
        }
        let _ = writeln!(out, "{}", line.trim_end());
        for warning in &verdict.warnings {
            let _ = writeln!(out, "  {:<16} {:<20} warning      {warning}", "", "");
        }
    }
    let _ = writeln!(
        out,
        "{}",
        if plan.allowed() {
            "the deploy would start: every enforced policy allows it"
        } else {
            "the deploy would stop at Preflight: a policy says no (see above)"
        }
    );
    out
}
