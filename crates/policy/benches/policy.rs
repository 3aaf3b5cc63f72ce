//! How fast policy checks are, against the targets of the policy-plugin issue:
//! one evaluation under 50 µs (median), the whole bundled set per step under 1 ms, and a cold
//! load of the set under 10 ms. Run with `cargo bench -p switchyard-policy`; prints a table.
//! Everything is awaited on a tokio runtime, as the Lambda functions and the CLI run it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use switchyard_core::policy::{PolicyContext, PolicyEngine, PolicyStep};
use switchyard_policy::{Limits, PluginHost, PluginSet};

#[path = "../tests/testplugins/mod.rs"]
mod testplugins;

const BUNDLED: [&str; 7] = [
    "naming",
    "snapshot-freshness",
    "data-residency",
    "change-window",
    "capacity",
    "protect-active",
    "upgrade-path",
];

/// A context every bundled policy accepts for `step`, so that the timings are of full
/// evaluations, not early denials.
fn context(step: PolicyStep) -> PolicyContext {
    let mut ctx: PolicyContext = serde_json::from_value(serde_json::json!({
        "namespace": "xy-0146-qa", "customer": "xy", "project": "0146", "environment": "qa",
        "region": "eu-west-1", "now": 1_795_000_000, "execution_id": "exec-1",
        "source_namespace": "xy-0146-dev",
        "snapshot": {"id": "xy-0146-dev-20261118-060000", "source_db": "xy-0146-dev-20261101-000000",
                     "created_at": 1_794_990_000, "age_seconds": 10_000, "allocated_storage_gib": 20,
                     "engine": "postgres", "engine_version": "16.4", "taken_by_this_execution": true},
        "source_db": {"id": "xy-0146-dev-20261101-000000", "region": "eu-west-1", "active": true},
        "target_db": {"id": "xy-0146-qa-20261118-090000", "instance_class": "db.t4g.medium",
                      "allocated_storage_gib": 20, "region": "eu-west-1", "final_snapshot": true},
        "current_pointer": "xy-0146-qa-20261101-000000",
        "new_pointer": "xy-0146-qa-20261118-090000",
        "service": {"cluster": "tenants", "service": "xy-0146-qa", "container": "app",
                    "current_image": "app:1.0.1", "new_image": "app:1.0.2"},
        "current_version": "1.0.1", "target_version": "1.0.2", "plan": "standard",
    }))
    .unwrap();
    ctx.step = step;
    ctx
}

fn settings(plugin: &str) -> serde_json::Value {
    match plugin {
        "data-residency" => serde_json::json!({"allowed_regions": ["eu-west-1"]}),
        "change-window" => serde_json::json!({"environments": ["prod"]}),
        "capacity" => serde_json::json!({"plans": {"standard": {
            "instance_classes": ["db.t4g.medium"], "max_storage_gib": 200}}}),
        // The catalog the host hands it (`release_catalog`), as a small installation's.
        "upgrade-path" => serde_json::json!({"release_catalog": {"releases": [
            {"version": "1.0.0", "image": "1.0.0", "migration": ["/app/migrate", "1.0.0"]},
            {"version": "1.0.1", "image": "1.0.1", "migration": ["/app/migrate", "1.0.1"]},
            {"version": "1.0.2", "image": "1.0.2"},
            {"version": "1.1.0", "image": "1.1.0", "migration": ["/app/migrate", "1.1.0"]}
        ]}}),
        _ => serde_json::json!({}),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    // Warm up caches and lazy initialization before measuring.
    for _ in 0..runs / 10 + 1 {
        std::hint::black_box(f());
    }
    median(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(f());
                started.elapsed()
            })
            .collect(),
    )
}

fn row(what: &str, measured: Duration, target: Option<Duration>) {
    let verdict = match target {
        Some(t) if measured <= t => format!("ok (< {t:?})"),
        Some(t) => format!("OVER ({t:?})"),
        None => String::new(),
    };
    println!(
        "| {what:<62} | {:>12.1} µs | {verdict:<16} |",
        measured.as_secs_f64() * 1e6
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let limits = Limits::default();
    let precompiled: Vec<(String, Vec<u8>)> = BUNDLED
        .iter()
        .map(|name| {
            let wasm = testplugins::wasm(name);
            (
                name.to_string(),
                switchyard_policy::precompile(&wasm, &limits, None).unwrap(),
            )
        })
        .collect();

    println!(
        "| {:<62} | {:>15} | {:<16} |",
        "measure (median)", "time", "target"
    );
    println!("|{}|{}|{}|", "-".repeat(64), "-".repeat(17), "-".repeat(18));

    // Cold: a new engine and every plugin deserialized, linked and described, as a Lambda
    // cold start does it.
    let cold = time(50, || {
        let host = PluginHost::new(limits).unwrap();
        let mut set = PluginSet::empty(host);
        for (name, bytes) in &precompiled {
            let plugin = runtime.block_on(set.host().load(name, bytes)).unwrap();
            set.insert(plugin).unwrap();
        }
        set
    });
    row(
        "cold load of the bundled set (7, .cwasm)",
        cold,
        Some(Duration::from_millis(10)),
    );

    let host = PluginHost::new(limits).unwrap();
    let mut set = PluginSet::empty(host);
    for (name, bytes) in &precompiled {
        let plugin = runtime.block_on(set.host().load(name, bytes)).unwrap();
        set.insert(plugin).unwrap();
    }

    for name in BUNDLED {
        let plugin = set.get(name).unwrap();
        let step = plugin.descriptor.steps[0];
        let ctx = PolicyContext {
            settings: settings(name),
            ..context(step)
        };
        let evaluation = runtime.block_on(set.evaluate(name, &ctx)).unwrap().unwrap();
        assert!(
            evaluation.decision.is_allow(),
            "{name} denied the bench context: {:?}",
            evaluation.decision
        );
        let t = time(2000, || runtime.block_on(set.evaluate(name, &ctx)).unwrap());
        row(
            &format!("instantiate + evaluate: {name} ({step})"),
            t,
            Some(Duration::from_micros(50)),
        );
    }

    for step in PolicyStep::ALL {
        let contexts: Vec<(&str, PolicyContext)> = BUNDLED
            .iter()
            .map(|name| {
                (
                    *name,
                    PolicyContext {
                        settings: settings(name),
                        ..context(step)
                    },
                )
            })
            .collect();
        let t = time(500, || {
            runtime.block_on(async {
                for (name, ctx) in &contexts {
                    std::hint::black_box(set.evaluate(name, ctx).await.unwrap());
                }
            })
        });
        row(
            &format!("whole bundled set at {step}"),
            t,
            Some(Duration::from_millis(1)),
        );
    }
}
