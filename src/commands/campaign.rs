//! `switchyard campaign --seed S --operations N`: the seeded random fault campaign
//! (`switchyard::campaign`) on a fresh demo world of its own (the world file is not touched).
//! Exit 0 when no invariant broke and nothing was orphaned, 1 otherwise.

use std::process::ExitCode;

use switchyard::campaign::{self, Campaign};

use crate::Output;

pub async fn run(seed: u64, operations: usize, output: Output) -> anyhow::Result<ExitCode> {
    let quiet = output == Output::Json;
    let report = campaign::run(
        Campaign { seed, operations },
        switchyard::policy::checkout(),
        &mut |line| {
            if !quiet {
                println!("{line}");
            }
        },
    )
    .await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => print!("{}", campaign::render(&report)),
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
