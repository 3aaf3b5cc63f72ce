//! `cargo bench -p switchyard-core --bench polls`: what waiting for a restore costs, with the
//! deploy machine's poll back-off (`Poll::next`: 15 s, 30 s, then every `MAX_WAIT_SECONDS`)
//! against a fixed 10 s poll, for restores of 5, 20 and 60 minutes.
//!
//! Each poll of a wait loop is three state transitions (the check Task, its Choice, the Wait) and
//! one Lambda invocation. The prices are the published list prices in us-east-1 (Step Functions
//! Standard $0.025 per 1,000 transitions; Lambda $0.20 per million requests and, arm64,
//! $0.0000133334 per GB-second, billed for a 256 MB function at the 60 ms a poll takes). The
//! lag is how long after the database is ready the loop notices it. Printed as a table.

use switchyard_core::state::{MAX_WAIT_SECONDS, Poll};

const TRANSITIONS_PER_POLL: u64 = 3;
const USD_PER_TRANSITION: f64 = 0.025 / 1000.0;
const USD_PER_REQUEST: f64 = 0.20 / 1_000_000.0;
const USD_PER_GB_SECOND: f64 = 0.000_013_333_4;
const FUNCTION_GB: f64 = 0.25;
const POLL_SECONDS: f64 = 0.060;

/// The deploy machine's loop: polls (the first at once) until `ready_after` seconds have
/// passed, and the seconds waited in all; `None` past the loop's poll budget.
fn backoff_polls(ready_after: u64) -> Option<(u64, u64)> {
    let mut poll = Poll::default();
    let (mut polls, mut waited) = (1u64, 0u64);
    while waited < ready_after {
        poll = poll.next("bench").ok()?;
        waited += u64::from(poll.wait_seconds);
        polls += 1;
    }
    Some((polls, waited))
}

/// A loop that polls every `every` seconds, without a budget.
fn fixed_polls(ready_after: u64, every: u64) -> (u64, u64) {
    let waits = ready_after.div_ceil(every);
    (waits + 1, waits * every)
}

fn usd_per_1000(polls: u64) -> f64 {
    let per_deploy = polls as f64
        * (TRANSITIONS_PER_POLL as f64 * USD_PER_TRANSITION
            + USD_PER_REQUEST
            + FUNCTION_GB * POLL_SECONDS * USD_PER_GB_SECOND);
    per_deploy * 1000.0
}

fn main() {
    println!(
        "restore wait | poll | polls (invocations) | transitions | $ per 1,000 deploys | noticed after"
    );
    println!("---|---|---|---|---|---");
    for minutes in [5u64, 20, 60] {
        let ready = minutes * 60;
        let Some((polls, waited)) = backoff_polls(ready) else {
            println!("{minutes} min | back-off | over the poll budget | | |");
            continue;
        };
        let (fixed_polls, fixed_waited) = fixed_polls(ready, 10);
        for (name, polls, waited) in [
            (format!("back-off, {MAX_WAIT_SECONDS} s cap"), polls, waited),
            ("fixed 10 s".to_owned(), fixed_polls, fixed_waited),
        ] {
            println!(
                "{minutes} min | {name} | {polls} | {} | {:.2} | +{} s",
                polls * TRANSITIONS_PER_POLL,
                usd_per_1000(polls),
                waited - ready
            );
        }
    }
}
