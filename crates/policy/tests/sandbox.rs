//! Every sandbox promise, each held by a plugin written to break it (`plugins/testdata/`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use switchyard_core::policy::{PluginFailure, PolicyContext, PolicyEngine, PolicyStep, Verdict};
use switchyard_policy::{Limits, PluginHost, PluginSet, PolicyError};

/// The plugins workspace, built once per test binary (a no-op when `tests/run` built it).
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(plugins.join("Cargo.toml"))
            .output()
            .expect("run cargo");
        assert!(
            output.status.success(),
            "building the plugins failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        plugins.join("target/wasm32-wasip2/release")
    })
}

fn wasm(crate_name: &str) -> Vec<u8> {
    let path = built().join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

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
fn set_with(breaker: &str) -> PluginSet {
    let mut set = PluginSet::empty(host());
    for name in [breaker, "slow-ok"] {
        let plugin = set.host().load(name, &wasm(name)).unwrap();
        set.insert(plugin).unwrap();
    }
    set
}

/// After a plugin broke, the same host still evaluates the next plugin normally.
fn still_works(set: &PluginSet) {
    let evaluation = set.evaluate("slow-ok", &context()).unwrap().unwrap();
    assert_eq!(evaluation.decision.verdict, Verdict::Allow);
}

#[test]
fn a_bundled_policy_loads_and_describes_itself() {
    let plugin = host()
        .load("snapshot-freshness", &wasm("snapshot-freshness"))
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

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let set = set_with("spin");
    let err = set.evaluate("spin", &context()).unwrap_err();
    assert!(
        matches!(err, PluginFailure::OutOfFuel { ref plugin, .. } if plugin == "spin"),
        "{err}"
    );
    still_works(&set);
}

#[test]
fn unbounded_memory_growth_hits_the_memory_cap() {
    let set = set_with("hog");
    let err = set.evaluate("hog", &context()).unwrap_err();
    match &err {
        PluginFailure::ResourceLimit { plugin, detail } => {
            assert_eq!(plugin, "hog");
            assert!(detail.contains("memory"), "{detail}");
        }
        other => panic!("expected a memory limit, got {other}"),
    }
    still_works(&set);
}

#[test]
fn deep_recursion_exhausts_the_stack_not_the_host() {
    let set = set_with("deep");
    let err = set.evaluate("deep", &context()).unwrap_err();
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
    still_works(&set);
}

#[test]
fn a_huge_decision_is_refused() {
    let set = set_with("flood");
    let err = set.evaluate("flood", &context()).unwrap_err();
    match &err {
        PluginFailure::ResourceLimit { detail, .. } => {
            assert!(detail.contains("decision of"), "{detail}")
        }
        other => panic!("expected an output limit, got {other}"),
    }
    still_works(&set);
}

#[test]
fn a_panic_is_a_trap_that_names_the_plugin() {
    let set = set_with("trap");
    let err = set.evaluate("trap", &context()).unwrap_err();
    assert!(
        matches!(err, PluginFailure::Trapped { ref plugin, .. } if plugin == "trap"),
        "{err}"
    );
    assert!(err.to_string().starts_with("plugin trap trapped"), "{err}");
    still_works(&set);
}

#[test]
fn garbage_output_is_an_invalid_decision() {
    let set = set_with("garbage");
    let err = set.evaluate("garbage", &context()).unwrap_err();
    match &err {
        PluginFailure::InvalidOutput { detail, .. } => {
            assert!(detail.to_lowercase().contains("utf-8"), "{detail}")
        }
        other => panic!("expected invalid output, got {other}"),
    }
    still_works(&set);
}

#[test]
fn the_sandbox_grants_no_files_environment_or_clock() {
    let set = set_with("snoop");
    let evaluation = set.evaluate("snoop", &context()).unwrap().unwrap();
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

#[test]
fn a_network_import_is_refused_at_load() {
    let err = host().load("net", &wasm("net")).unwrap_err();
    match &err {
        PolicyError::ForbiddenImport { import, .. } => {
            assert!(import.starts_with("wasi:sockets/"), "{import}")
        }
        other => panic!("expected a forbidden import, got {other}"),
    }
}

#[test]
fn a_plugin_for_another_contract_version_is_refused_at_load() {
    let err = host()
        .load("other-contract", &wasm("other-contract"))
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

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    let err = host().load("junk", b"not wasm at all").unwrap_err();
    assert!(matches!(err, PolicyError::NotAComponent { .. }), "{err}");
    // A core module is wasm, but not a component.
    let module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    let err = host().load("module", &module).unwrap_err();
    assert!(matches!(err, PolicyError::NotAComponent { .. }), "{err}");
}

#[test]
fn a_precompiled_plugin_loads_and_decides_the_same() {
    let component = wasm("snapshot-freshness");
    let precompiled = switchyard_policy::precompile(&component, &Limits::default(), None).unwrap();
    let host = host();
    let from_component = host.load("component", &component).unwrap();
    let from_precompiled = host.load("precompiled", &precompiled).unwrap();
    assert_eq!(from_component.descriptor, from_precompiled.descriptor);
    let a = host.evaluate(&from_component, &context()).unwrap();
    let b = host.evaluate(&from_precompiled, &context()).unwrap();
    assert_eq!(a.decision, b.decision);
}

#[test]
fn a_plugin_precompiled_by_another_wasmtime_is_refused() {
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
    let err = host().load("slow-ok.cwasm", &precompiled).unwrap_err();
    assert!(matches!(err, PolicyError::Incompatible { .. }), "{err}");
    assert!(err.to_string().contains("rebuild"), "{err}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_plugin_precompiled_for_another_machine_is_refused() {
    let component = wasm("slow-ok");
    let precompiled = switchyard_policy::precompile(
        &component,
        &Limits::default(),
        Some("aarch64-unknown-linux-gnu"),
    )
    .unwrap();
    let err = host().load("slow-ok.cwasm", &precompiled).unwrap_err();
    assert!(matches!(err, PolicyError::Incompatible { .. }), "{err}");
}

#[test]
fn a_directory_loads_what_it_can_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slow_ok.wasm"), wasm("slow-ok")).unwrap();
    std::fs::write(dir.path().join("net.wasm"), wasm("net")).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a plugin").unwrap();
    let set = PluginSet::load_dir(host(), dir.path()).unwrap();
    assert_eq!(
        set.descriptors()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["slow-ok"]
    );
    assert!(set.broken().contains_key("net"));
    let err = set.evaluate("net", &context()).unwrap_err();
    assert!(matches!(err, PluginFailure::Unloadable { .. }), "{err}");
    let err = set.evaluate("naming", &context()).unwrap_err();
    assert!(matches!(err, PluginFailure::Missing { .. }), "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn a_plugin_is_not_asked_about_steps_it_does_not_check() {
    let mut set = PluginSet::empty(host());
    let plugin = set
        .host()
        .load("snapshot-freshness", &wasm("snapshot-freshness"))
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
    assert_eq!(set.evaluate("snapshot-freshness", &context).unwrap(), None);
}

#[test]
fn two_plugins_may_not_share_a_name() {
    let mut set = PluginSet::empty(host());
    let first = set.host().load("a", &wasm("slow-ok")).unwrap();
    let second = set.host().load("b", &wasm("slow-ok")).unwrap();
    set.insert(first).unwrap();
    let err = set.insert(second).unwrap_err();
    assert!(matches!(err, PolicyError::Duplicate { .. }), "{err}");
}
