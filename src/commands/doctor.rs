//! `switchyard doctor [NS...]`: checks the invariants (`switchyard_core::invariants`) against the
//! backend the global flags name (the embedded world, an endpoint, a real account) and names
//! each violation. Read only. Exit 0 when everything holds, 1 when something does not.

use std::process::ExitCode;

use switchyard::backend::Backend;
use switchyard_core::invariants;
use switchyard_core::{Namespace, ParameterLayout};

use crate::Output;

pub async fn run(
    backend: &Backend,
    layout: &ParameterLayout,
    namespaces: &[String],
    output: Output,
) -> anyhow::Result<ExitCode> {
    let chosen = namespaces
        .iter()
        .map(|ns| ns.parse::<Namespace>())
        .collect::<Result<Vec<_>, _>>()?;
    let aws = backend.aws_for(None);
    let violations = invariants::check(
        aws.as_ref(),
        layout,
        (!chosen.is_empty()).then_some(chosen.as_slice()),
    )
    .await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&violations)?),
        Output::Text if violations.is_empty() => println!("every invariant holds"),
        Output::Text => {
            for violation in &violations {
                println!("{violation}");
            }
            println!("{} violation(s)", violations.len());
        }
    }
    Ok(if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
