//! Every sandbox promise, each held by a plugin written to break it (`plugins/testdata/`, and
//! the hand-written components of `hostile/`), evaluated inside a tokio runtime the way the
//! Lambda functions and the CLI call the host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod testplugins;

use std::time::{Duration, Instant};

use switchyard_core::policy::{PluginFailure, PolicyContext, PolicyEngine, PolicyStep, Verdict};
use switchyard_policy::{Limits, PluginHost, PluginSet, PolicyError};
use testplugins::{Hostile, wasm};

fn host() -> PluginHost {
    PluginHost::new(Limits::default()).unwrap()
}

fn context() -> PolicyContext {
    serde_json::from_value(serde_json::json!({
        "step": "create-database",
        "namespace": "xy-0146-qa",
        "customer": "xy",
        "project": "0146",
        "environment": "qa",
        "region": "eu-west-1",
        "now": 1_795_000_000,
        "execution_id": "exec-1",
        "snapshot": {
            "id": "xy-0146-dev-20261120000000",
            "source_db": "xy-0146-dev-20261101000000",
            "created_at": 1_794_990_000,
            "age_seconds": 10_000,
            "allocated_storage_gib": 20,
            "engine": "postgres",
            "engine_version": "16.4",
            "taken_by_this_execution": false
        },
        "target_db": {"id": "xy-0146-qa-20261125000000", "instance_class": "db.t4g.medium",
                      "allocated_storage_gib": 20, "region": "eu-west-1"}
    }))
    .unwrap()
}

/// A set of one breaker plugin and one well-behaved plugin, on one host.
async fn set_with(breaker: &str) -> PluginSet {
    set_of(host(), &[(breaker, wasm(breaker))]).await
}

async fn set_of(host: PluginHost, plugins: &[(&str, Vec<u8>)]) -> PluginSet {
    let mut set = PluginSet::empty(host);
    let well_behaved = ("slow-ok", wasm("slow-ok"));
    for (name, bytes) in plugins.iter().chain([&well_behaved]) {
        let plugin = set.host().load(name, bytes).await.unwrap();
        set.insert(plugin).unwrap();
    }
    set
}

/// After a plugin broke, the same host still evaluates the next plugin normally.
async fn still_works(set: &PluginSet) {
    let evaluation = set.evaluate("slow-ok", &context()).await.unwrap().unwrap();
    assert_eq!(evaluation.decision.verdict, Verdict::Allow);
}

/// The context with `settings` for the plugin.
fn with_settings(settings: serde_json::Value) -> PolicyContext {
    PolicyContext {
        settings,
        ..context()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundled_policy_loads_and_describes_itself() {
    let plugin = host()
        .load("snapshot-freshness", &wasm("snapshot-freshness"))
        .await
        .unwrap();
    assert_eq!(plugin.descriptor.name, "snapshot-freshness");
    assert!(
        plugin
            .descriptor
            .steps
            .contains(&PolicyStep::CreateDatabase)
    );
    let schema: serde_json::Value =
        serde_json::from_str(&plugin.descriptor.settings_schema).unwrap();
    assert!(schema.is_object());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_loop_runs_out_of_fuel() {
    let set = set_with("spin").await;
    let err = set.evaluate("spin", &context()).await.unwrap_err();
    assert!(
        matches!(err, PluginFailure::OutOfFuel { ref plugin, .. } if plugin == "spin"),
        "{err}"
    );
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_memory_growth_hits_the_memory_cap() {
    let set = set_with("hog").await;
    let err = set.evaluate("hog", &context()).await.unwrap_err();
    match &err {
        PluginFailure::ResourceLimit { plugin, detail } => {
            assert_eq!(plugin, "hog");
            assert!(detail.contains("memory"), "{detail}");
        }
        other => panic!("expected a memory limit, got {other}"),
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_recursion_exhausts_the_stack_not_the_host() {
    let set = set_with("deep").await;
    let err = set.evaluate("deep", &context()).await.unwrap_err();
    match &err {
        PluginFailure::ResourceLimit { detail, .. } => {
            assert!(detail.contains("stack"), "{detail}")
        }
        // Rust's shadow stack lives in linear memory and may overflow first: a trap either way.
        PluginFailure::Trapped { detail, .. } => {
            assert!(detail.contains("out of bounds"), "{detail}")
        }
        other => panic!("expected a stack failure, got {other}"),
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_decision_is_refused() {
    let set = set_with("flood").await;
    for (settings, expected) in [
        // 400 KB: refused while it is lifted, before the host holds it.
        (serde_json::json!({}), "more than 262144 bytes at once"),
        // Small enough to lift; too many entries, or too many bytes.
        (
            serde_json::json!({"reasons": 1000, "bytes": 10}),
            "1000 reasons and warnings, over the limit of 256",
        ),
        (
            serde_json::json!({"reasons": 200, "bytes": 400}),
            "decision of 83200 bytes, over the limit of 65536 bytes",
        ),
    ] {
        let err = set
            .evaluate("flood", &with_settings(settings))
            .await
            .unwrap_err();
        match &err {
            PluginFailure::ResourceLimit { detail, .. } => {
                assert!(detail.contains(expected), "{detail}")
            }
            other => panic!("expected an output limit, got {other}"),
        }
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_a_trap_that_names_the_plugin() {
    let set = set_with("trap").await;
    let err = set.evaluate("trap", &context()).await.unwrap_err();
    assert!(
        matches!(err, PluginFailure::Trapped { ref plugin, .. } if plugin == "trap"),
        "{err}"
    );
    assert!(err.to_string().starts_with("plugin trap trapped"), "{err}");
    // The cause survives: the trap, and the panic message the guest wrote to stderr first.
    let text = err.to_string();
    assert!(text.contains("unreachable"), "{text}");
    assert!(text.contains("a deliberate panic in evaluate"), "{text}");
    assert!(!text.contains('\n'), "{text}");
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_output_is_an_invalid_decision() {
    let set = set_with("garbage").await;
    let err = set.evaluate("garbage", &context()).await.unwrap_err();
    match &err {
        PluginFailure::InvalidOutput { detail, .. } => {
            assert!(detail.to_lowercase().contains("utf-8"), "{detail}")
        }
        other => panic!("expected invalid output, got {other}"),
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_grants_no_files_environment_or_clock() {
    let set = set_with("snoop").await;
    let evaluation = set.evaluate("snoop", &context()).await.unwrap().unwrap();
    let seen = evaluation.decision.warnings.join("\n");
    // What the plugin could see of each, in its own words.
    let line = |prefix: &str| {
        evaluation
            .decision
            .warnings
            .iter()
            .find(|w| w.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in:\n{seen}"))
            .clone()
    };
    assert!(line("fs").contains("error"), "{seen}");
    assert!(!seen.contains("root:"), "{seen}");
    assert!(line("env").contains("0 vars"), "{seen}");
    assert!(line("clock").contains("0s since epoch"), "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_network_import_is_refused_at_load() {
    let err = host().load("net", &wasm("net")).await.unwrap_err();
    match &err {
        PolicyError::ForbiddenImport { import, .. } => {
            assert!(import.starts_with("wasi:sockets/"), "{import}")
        }
        other => panic!("expected a forbidden import, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_for_another_contract_version_is_refused_at_load() {
    let err = host()
        .load("other-contract", &wasm("other-contract"))
        .await
        .unwrap_err();
    match &err {
        PolicyError::WrongContract {
            found, expected, ..
        } => {
            assert!(found.contains("@0.2.0"), "{found}");
            assert_eq!(expected, "switchyard:policy@0.1.0");
        }
        other => panic!("expected a contract mismatch, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_that_are_not_a_component_are_refused() {
    let err = host().load("junk", b"not wasm at all").await.unwrap_err();
    assert!(matches!(err, PolicyError::NotAComponent { .. }), "{err}");
    // A core module is wasm, but not a component.
    let module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    let err = host().load("module", &module).await.unwrap_err();
    assert!(matches!(err, PolicyError::NotAComponent { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_precompiled_plugin_loads_and_decides_the_same() {
    let component = wasm("snapshot-freshness");
    let precompiled = switchyard_policy::precompile(&component, &Limits::default(), None).unwrap();
    let host = host();
    let from_component = host.load("component", &component).await.unwrap();
    let from_precompiled = host.load("precompiled", &precompiled).await.unwrap();
    assert_eq!(from_component.descriptor, from_precompiled.descriptor);
    let a = host.evaluate(&from_component, &context()).await.unwrap();
    let b = host.evaluate(&from_precompiled, &context()).await.unwrap();
    assert_eq!(a.decision, b.decision);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_precompiled_by_another_wasmtime_is_refused() {
    // The engine section of the artifact starts with a format byte, then the length and text
    // of the wasmtime major version that compiled it; wasmtime refuses code of another major.
    // Rewrite that record as the previous release would have written it.
    let component = wasm("slow-ok");
    let mut precompiled =
        switchyard_policy::precompile(&component, &Limits::default(), None).unwrap();
    let record = b"\x00\x0248";
    let at = precompiled
        .windows(record.len())
        .position(|w| w == record)
        .expect("the artifact names its wasmtime version");
    precompiled[at + 2..at + 4].copy_from_slice(b"47");
    let err = host()
        .load("slow-ok.cwasm", &precompiled)
        .await
        .unwrap_err();
    assert!(matches!(err, PolicyError::Incompatible { .. }), "{err}");
    assert!(err.to_string().contains("rebuild"), "{err}");
}

#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_precompiled_for_another_machine_is_refused() {
    let component = wasm("slow-ok");
    let precompiled = switchyard_policy::precompile(
        &component,
        &Limits::default(),
        Some("aarch64-unknown-linux-gnu"),
    )
    .unwrap();
    let err = host()
        .load("slow-ok.cwasm", &precompiled)
        .await
        .unwrap_err();
    assert!(matches!(err, PolicyError::Incompatible { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_loads_what_it_can_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slow_ok.wasm"), wasm("slow-ok")).unwrap();
    std::fs::write(dir.path().join("net.wasm"), wasm("net")).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a plugin").unwrap();
    let set = PluginSet::load_dir(host(), dir.path()).await.unwrap();
    assert_eq!(
        set.descriptors()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["slow-ok"]
    );
    assert!(set.broken().contains_key("net"));
    let err = set.evaluate("net", &context()).await.unwrap_err();
    assert!(matches!(err, PluginFailure::Unloadable { .. }), "{err}");
    let err = set.evaluate("naming", &context()).await.unwrap_err();
    assert!(matches!(err, PluginFailure::Missing { .. }), "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_is_not_asked_about_steps_it_does_not_check() {
    let mut set = PluginSet::empty(host());
    let plugin = set
        .host()
        .load("snapshot-freshness", &wasm("snapshot-freshness"))
        .await
        .unwrap();
    let checks = plugin.descriptor.steps.clone();
    set.insert(plugin).unwrap();
    let unchecked = PolicyStep::ALL
        .into_iter()
        .find(|step| !checks.contains(step))
        .unwrap();
    let context = PolicyContext {
        step: unchecked,
        ..context()
    };
    assert_eq!(
        set.evaluate("snapshot-freshness", &context).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_plugins_may_not_share_a_name() {
    let mut set = PluginSet::empty(host());
    let first = set.host().load("a", &wasm("slow-ok")).await.unwrap();
    let second = set.host().load("b", &wasm("slow-ok")).await.unwrap();
    set.insert(first).unwrap();
    let err = set.insert(second).unwrap_err();
    assert!(matches!(err, PolicyError::Duplicate { .. }), "{err}");
}

// --- the host survives every way out of a plugin, inside the runtime ---------------------------

#[tokio::test(flavor = "multi_thread")]
async fn printing_goes_nowhere_and_the_decision_stands() {
    let set = set_with("printer").await;
    let evaluation = set.evaluate("printer", &context()).await.unwrap().unwrap();
    assert_eq!(evaluation.decision.verdict, Verdict::Allow);
    assert_eq!(
        evaluation.decision.warnings,
        ["printer: printed and flushed"]
    );
    still_works(&set).await;
}

#[tokio::test(flavor = "current_thread")]
async fn printing_works_on_a_current_thread_runtime_too() {
    let set = set_with("printer").await;
    let evaluation = set.evaluate("printer", &context()).await.unwrap().unwrap();
    assert_eq!(evaluation.decision.verdict, Verdict::Allow);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exit_ends_the_call_not_the_process() {
    let set = set_with("quit").await;
    let err = set.evaluate("quit", &context()).await.unwrap_err();
    match &err {
        PluginFailure::Trapped { plugin, detail } => {
            assert_eq!(plugin, "quit");
            // WASI 0.2's exit carries success or failure only: Rust's exit(3) is a failure.
            assert!(detail.contains("exited with status 1"), "{detail}");
            assert!(detail.contains("quit: giving up"), "{detail}");
        }
        other => panic!("expected a trap, got {other}"),
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleep_is_over_at_once_because_time_does_not_pass_inside() {
    let set = set_with("sleeper").await;
    let evaluation = set.evaluate("sleeper", &context()).await.unwrap().unwrap();
    assert_eq!(evaluation.decision.warnings, ["sleeper: woke up"]);
    // It asked for an hour; the deadline would have stopped anything near that long.
    assert!(evaluation.elapsed < Limits::default().deadline);
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_host_calls_hit_the_wall_clock_deadline() {
    // Each call takes host time and almost no fuel: fuel alone would let it run for minutes.
    let limits = Limits {
        deadline: Duration::from_millis(300),
        ..Limits::default()
    };
    let set = set_of(
        PluginHost::new(limits).unwrap(),
        &[("entropy", wasm("entropy"))],
    )
    .await;
    let started = Instant::now();
    let err = set
        .evaluate(
            "entropy",
            &with_settings(serde_json::json!({"bytes": 65536, "calls": 0})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, PluginFailure::TimedOut { ref plugin, limit_ms: 300 } if plugin == "entropy"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    still_works(&set).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_running_plugin_yields_to_the_runtime_at_every_tick() {
    // One thread: the timer below can fire only if the evaluation gives the thread back.
    let limits = Limits {
        deadline: Duration::from_millis(500),
        ..Limits::default()
    };
    let set = set_of(
        PluginHost::new(limits).unwrap(),
        &[("entropy", wasm("entropy"))],
    )
    .await;
    let endless = with_settings(serde_json::json!({"bytes": 65536, "calls": 0}));
    let (evaluated, woke) = tokio::join!(
        async {
            let result = set.evaluate("entropy", &endless).await;
            (result, Instant::now())
        },
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Instant::now()
        }
    );
    let (result, finished) = evaluated;
    assert!(
        matches!(result, Err(PluginFailure::TimedOut { .. })),
        "{result:?}"
    );
    assert!(
        woke < finished,
        "the runtime was held until the plugin ended"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_random_request_is_refused_before_the_host_allocates_it() {
    let set = set_with("entropy").await;
    let err = set
        .evaluate(
            "entropy",
            &with_settings(serde_json::json!({"bytes": 30 << 20, "calls": 1})),
        )
        .await
        .unwrap_err();
    match &err {
        PluginFailure::Trapped { detail, .. } => {
            assert!(detail.contains("exceeds limit"), "{detail}")
        }
        other => panic!("expected a refused host call, got {other}"),
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn randomness_is_a_fixed_sequence() {
    let few = with_settings(serde_json::json!({"bytes": 8, "calls": 1}));
    let mut seen = Vec::new();
    for _ in 0..2 {
        // A new host each time: nothing carries over but the seed.
        let set = set_with("entropy").await;
        for _ in 0..2 {
            let evaluation = set.evaluate("entropy", &few).await.unwrap().unwrap();
            seen.push(evaluation.decision.warnings.clone());
        }
    }
    assert!(seen.iter().all(|w| w == &seen[0]), "{seen:?}");
    assert_ne!(seen[0], ["entropy: 0000000000000000"]);
}

// --- limits per evaluation, and output bounded before it is read ------------------------------

async fn hostile_set(plugin: Hostile) -> PluginSet {
    set_of(host(), &[(plugin.name(), plugin.component())]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_is_capped_for_the_evaluation_not_per_memory() {
    let set = hostile_set(Hostile::TwoMemories).await;
    let err = set.evaluate("two-memories", &context()).await.unwrap_err();
    match &err {
        PluginFailure::ResourceLimit { detail, .. } => {
            assert!(detail.contains("in all"), "{detail}")
        }
        other => panic!("expected the memory limit, got {other}"),
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_million_empty_reasons_are_counted_not_lifted() {
    let set = hostile_set(Hostile::EmptyFlood).await;
    let err = set.evaluate("empty-flood", &context()).await.unwrap_err();
    match &err {
        PluginFailure::ResourceLimit { detail, .. } => {
            assert!(
                detail.contains("more than 262144 bytes at once"),
                "{detail}"
            )
        }
        other => panic!("expected the output limit, got {other}"),
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aliased_reasons_are_measured_before_they_are_copied() {
    let set = hostile_set(Hostile::AliasedReasons).await;
    let err = set
        .evaluate("aliased-reasons", &context())
        .await
        .unwrap_err();
    match &err {
        PluginFailure::ResourceLimit { detail, .. } => {
            assert!(
                detail.contains("more than 262144 bytes at once"),
                "{detail}"
            )
        }
        other => panic!("expected the output limit, got {other}"),
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reason_that_would_forge_a_line_is_refused() {
    let set = hostile_set(Hostile::ForgedLine).await;
    let err = set.evaluate("forged-line", &context()).await.unwrap_err();
    match &err {
        PluginFailure::InvalidOutput { detail, .. } => {
            assert!(detail.contains("not printable"), "{detail}");
            assert!(
                !detail.contains('\n') && !detail.contains('\u{1b}'),
                "{detail}"
            );
        }
        other => panic!("expected an invalid decision, got {other}"),
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_is_bounded_and_must_check_a_step() {
    for (plugin, expected) in [
        (Hostile::EndlessSteps, "more than 262144 bytes at once"),
        (Hostile::HugeSchema, "more than 262144 bytes at once"),
        (Hostile::NoSteps, "checks no steps"),
    ] {
        let err = host()
            .load(plugin.name(), &plugin.component())
            .await
            .unwrap_err();
        assert!(
            matches!(err, PolicyError::InvalidDescriptor { .. }),
            "{plugin:?}: {err}"
        );
        assert!(err.to_string().contains(expected), "{plugin:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundled_policies_survive_the_new_limits() {
    for name in [
        "naming",
        "snapshot-freshness",
        "data-residency",
        "change-window",
        "capacity",
        "protect-active",
        "upgrade-path",
    ] {
        let plugin = host().load(name, &wasm(name)).await.unwrap();
        assert_eq!(plugin.descriptor.name, name);
        assert_eq!(plugin.digest.len(), 64);
    }
}

// --- loading a directory: one bad file never takes the others down ----------------------------

#[tokio::test(flavor = "multi_thread")]
async fn stray_impostor_and_duplicate_files_are_each_broken_and_the_rest_load() {
    let dir = tempfile::tempdir().unwrap();
    let put =
        |file: &str, plugin: &str| std::fs::write(dir.path().join(file), wasm(plugin)).unwrap();
    put("slow_ok.wasm", "slow-ok");
    // A stray copy: it describes itself as slow-ok, but its file says slow-ok-copy.
    put("slow-ok-copy.wasm", "slow-ok");
    // Two files that both claim the name snapshot-freshness.
    put("snapshot_freshness.wasm", "snapshot-freshness");
    put("snapshot-freshness.wasm", "snapshot-freshness");
    // A directory with a plugin's name.
    std::fs::create_dir(dir.path().join("notes.wasm")).unwrap();

    let set = PluginSet::load_dir(host(), dir.path()).await.unwrap();
    assert_eq!(
        set.descriptors()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["slow-ok"]
    );
    let broken = set.broken();
    assert!(
        broken["slow-ok-copy"].contains("describes itself as slow-ok"),
        "{broken:?}"
    );
    let both = &broken["snapshot-freshness"];
    assert!(
        both.contains("snapshot_freshness.wasm") && both.contains("snapshot-freshness.wasm"),
        "{both}"
    );
    assert!(broken.contains_key("notes"), "{broken:?}");
    still_works(&set).await;
    let err = set
        .evaluate("snapshot-freshness", &context())
        .await
        .unwrap_err();
    assert!(matches!(err, PluginFailure::Unloadable { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_run_of_zeroes_is_neither_allocated_nor_waited_for() {
    let set = set_with("zeroes").await;
    for len in [1_u64 << 62, 1 << 40, 4096] {
        let evaluation = set
            .evaluate("zeroes", &with_settings(serde_json::json!({ "len": len })))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(evaluation.decision.warnings, ["zeroes: written"], "{len}");
    }
    still_works(&set).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hoard_of_host_resources_is_stopped_at_the_handle_limit() {
    let set = set_with("hoarder").await;
    // A few are fine.
    let evaluation = set
        .evaluate(
            "hoarder",
            &with_settings(serde_json::json!({"handles": 16})),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(evaluation.decision.warnings, ["hoarder: kept 16"]);
    // A million are not: the resource table refuses past its capacity (4096), and the plugin
    // traps.
    let err = set
        .evaluate(
            "hoarder",
            &with_settings(serde_json::json!({"handles": 1_000_000})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, PluginFailure::Trapped { ref plugin, .. } if plugin == "hoarder"),
        "{err}"
    );
    assert!(err.to_string().contains("no free keys"), "{err}");
    still_works(&set).await;
}
