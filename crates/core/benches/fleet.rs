//! `cargo bench -p switchyard-core --bench fleet`: planning a fleet rollout of 100, 1,000 and
//! 10,000 tenants on the simulated world (release build, this machine): the time `fleet plan`
//! takes and the memory it holds, and the time `switchyard status` takes on the same world, with
//! the targets for 10,000 tenants.
//!
//! The world is built first (each tenant a stack onboarded with `tenant import`'s call), then
//! the plan is timed alone. No policy plugin is bound: each bound plugin adds its evaluation
//! (about 40 µs per step judged, see the policy benchmark) per tenant.

use std::time::Instant;

use switchyard_core::ParameterLayout;
use switchyard_core::fleet::{WaveSpec, plan_fleet};
use switchyard_core::policy::NoPlugins;
use switchyard_core::status::namespace_status;
use switchyard_sim::{DemoTenant, World, demo_release_catalog};

/// A memory figure of this process from /proc/self/status, in KiB (Linux): `VmHWM` the peak
/// resident set so far, `VmRSS` the current one.
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(key))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn world_of(tenants: usize) -> World {
    let layout = ParameterLayout::default();
    let world = World::new(chrono::Utc::now());
    if let Ok(catalog) = demo_release_catalog() {
        let _ = world.seed_release_catalog(&layout, &catalog);
    }
    for i in 0..tenants {
        let env = if i % 10 == 0 { "dev" } else { "prod" };
        let namespace: &'static str =
            Box::leak(format!("fleet-{:04}-{env}", i % 10_000).into_boxed_str());
        let tenant = DemoTenant {
            namespace,
            app_version: "1.3.2",
            storage_gib: 20,
            data_age_days: 3,
        };
        if let Err(err) = world.onboard(&tenant) {
            eprintln!("{namespace}: {err}");
        }
    }
    world
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let layout = ParameterLayout::default();
    println!(
        "{:>8} {:>12} {:>12} {:>14} {:>14} {:>12}",
        "tenants", "world build", "plan", "rss before", "rss after plan", "status"
    );
    for tenants in [100usize, 1_000, 10_000] {
        let built = Instant::now();
        let world = world_of(tenants).await;
        let build = built.elapsed();
        let before = status_kib("VmRSS:");
        let aws = world.aws();
        let started = Instant::now();
        let plan = plan_fleet(&aws, &layout, &NoPlugins, "2.0.1", &WaveSpec::defaults()).await;
        let took = started.elapsed();
        let after = status_kib("VmHWM:");
        match plan {
            Ok(plan) if plan.moving() == tenants => {}
            Ok(plan) => {
                eprintln!(
                    "{} of {tenants} tenants move: {:?}",
                    plan.moving(),
                    plan.skipped.first()
                );
                std::process::exit(1);
            }
            Err(err) => {
                eprintln!("{err}");
                std::process::exit(1);
            }
        }
        // `switchyard status` on the same world: every namespace's records, database, service.
        let started = Instant::now();
        let status = namespace_status(&aws, &layout).await;
        let status_took = started.elapsed();
        match status {
            Ok(rows) if rows.len() == tenants => {}
            Ok(rows) => {
                eprintln!("status shows {} of {tenants} tenants", rows.len());
                std::process::exit(1);
            }
            Err(err) => {
                eprintln!("{err}");
                std::process::exit(1);
            }
        }
        println!(
            "{tenants:>8} {:>10.2} s {:>10.3} s {:>10.1} MiB {:>10.1} MiB {:>10.3} s",
            build.as_secs_f64(),
            took.as_secs_f64(),
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            status_took.as_secs_f64()
        );
    }
    println!(
        "targets: planning 10,000 tenants under 10 s, under 1 GiB; their status under 1 s (issue 15)"
    );
}
