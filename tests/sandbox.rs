//! Every attack on the policy sandbox, as a user meets it: through `switchyard policy eval`, and
//! through a deploy on the embedded world with the plugin bound to every namespace. The host is
//! the CLI process itself (its tokio runtime, as in the Lambda functions): whatever the plugin
//! does, the process must answer with a named outcome, never a panic (exit 101) or an abort.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../crates/policy/tests/testplugins/mod.rs"]
mod testplugins;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use switchyard_core::records::{ParameterLayout, PolicyBinding, PolicyCatalog, PolicyMode};
use testplugins::{Hostile, wasm};

/// A plugin under attack, and what it is expected to come to.
struct Attack {
    /// The plugin's name (its file is `<name>.wasm`).
    name: &'static str,
    bytes: fn() -> Vec<u8>,
    /// The plugin's settings (the `entropy` and `flood` plugins read theirs).
    settings: Value,
    /// `None`: it decides (allow); `Some(text)`: it fails closed, saying `text`.
    failure: Option<&'static str>,
}

fn attacks() -> Vec<Attack> {
    let testdata = |name: &'static str, settings: Value, failure| Attack {
        name,
        bytes: match name {
            "trap" => || wasm("trap"),
            "hog" => || wasm("hog"),
            "quit" => || wasm("quit"),
            "printer" => || wasm("printer"),
            "sleeper" => || wasm("sleeper"),
            "entropy" => || wasm("entropy"),
            "flood" => || wasm("flood"),
            "spin" => || wasm("spin"),
            "zeroes" => || wasm("zeroes"),
            "hoarder" => || wasm("hoarder"),
            other => panic!("no test plugin {other}"),
        },
        settings,
        failure,
    };
    let hostile = |plugin: Hostile, failure| Attack {
        name: plugin.name(),
        bytes: match plugin {
            Hostile::TwoMemories => || Hostile::TwoMemories.component(),
            Hostile::EmptyFlood => || Hostile::EmptyFlood.component(),
            Hostile::AliasedReasons => || Hostile::AliasedReasons.component(),
            Hostile::ForgedLine => || Hostile::ForgedLine.component(),
            Hostile::EndlessSteps => || Hostile::EndlessSteps.component(),
            Hostile::HugeSchema => || Hostile::HugeSchema.component(),
            Hostile::NoSteps => || Hostile::NoSteps.component(),
        },
        settings: json!({}),
        failure,
    };
    vec![
        testdata("trap", json!({}), Some("a deliberate panic in evaluate")),
        testdata("hog", json!({}), Some("memory would grow to")),
        testdata("quit", json!({}), Some("exited with status 1")),
        testdata("spin", json!({}), Some("ran out of fuel")),
        testdata("printer", json!({}), None),
        testdata("sleeper", json!({}), None),
        testdata(
            "entropy",
            json!({"bytes": 65536, "calls": 0}),
            Some("ran past its deadline of 1000 ms"),
        ),
        testdata(
            "entropy",
            json!({"bytes": 30 << 20, "calls": 1}),
            Some("exceeds limit"),
        ),
        testdata("flood", json!({}), Some("more than 262144 bytes at once")),
        testdata("zeroes", json!({"len": 1_u64 << 62}), None),
        testdata(
            "hoarder",
            json!({"handles": 1_000_000}),
            Some("no free keys"),
        ),
        hostile(Hostile::TwoMemories, Some("in all")),
        hostile(Hostile::EmptyFlood, Some("more than 262144 bytes at once")),
        hostile(
            Hostile::AliasedReasons,
            Some("more than 262144 bytes at once"),
        ),
        hostile(Hostile::ForgedLine, Some("not printable")),
        hostile(
            Hostile::EndlessSteps,
            Some("more than 262144 bytes at once"),
        ),
        hostile(Hostile::HugeSchema, Some("more than 262144 bytes at once")),
        hostile(Hostile::NoSteps, Some("checks no steps")),
    ]
}

fn switchyard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("SWITCHYARD_ENDPOINT_URL")
        .env_remove("SWITCHYARD_PLUGIN_DIR")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The process answered: no panic of the host, no abort, and nothing the plugin tried to print
/// or forge reached the terminal.
fn assert_answered(attack: &Attack, out: &Output) {
    let shown = text(out);
    assert_ne!(out.status.code(), Some(101), "{}: {shown}", attack.name);
    assert!(
        out.status.code().is_some(),
        "{}: killed: {shown}",
        attack.name
    );
    // A host panic starts its line; the guest's own panic message may be quoted inside one.
    assert!(
        !shown.lines().any(|line| line.starts_with("thread '")),
        "{}: {shown}",
        attack.name
    );
    assert!(!shown.contains('\u{1b}'), "{}: {shown}", attack.name);
    assert!(
        !shown.contains("printer: policy x: allow"),
        "{}: {shown}",
        attack.name
    );
    assert!(
        !shown
            .lines()
            .any(|line| line.starts_with("policy naming 0.1.0: allow")),
        "{}: {shown}",
        attack.name
    );
}

#[test]
fn policy_eval_answers_every_attack_with_a_named_outcome() {
    let dir = tempfile::tempdir().unwrap();
    for attack in attacks() {
        let plugin = dir.path().join(format!("{}.wasm", attack.name));
        std::fs::write(&plugin, (attack.bytes)()).unwrap();
        let context = dir.path().join("context.json");
        std::fs::write(
            &context,
            json!({
                "step": "create-database", "namespace": "xy-0146-qa", "customer": "xy",
                "project": "0146", "environment": "qa", "region": "eu-west-1",
                "now": 1_795_000_000, "execution_id": "exec-1", "settings": attack.settings,
            })
            .to_string(),
        )
        .unwrap();
        let out = switchyard(&[
            "policy",
            "eval",
            plugin.to_str().unwrap(),
            "--context",
            context.to_str().unwrap(),
        ]);
        assert_answered(&attack, &out);
        let shown = text(&out);
        match attack.failure {
            None => {
                assert_eq!(out.status.code(), Some(0), "{}: {shown}", attack.name);
                let evaluation: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(
                    evaluation["decision"]["verdict"], "allow",
                    "{}: {shown}",
                    attack.name
                );
            }
            Some(expected) => {
                assert_eq!(out.status.code(), Some(2), "{}: {shown}", attack.name);
                assert!(shown.starts_with("error: "), "{}: {shown}", attack.name);
                assert!(shown.contains(expected), "{}: {shown}", attack.name);
                assert_eq!(
                    shown.trim_end().lines().count(),
                    1,
                    "{}: {shown}",
                    attack.name
                );
            }
        }
    }
}

#[test]
fn the_same_plugin_and_context_give_the_same_random_answer() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("entropy.wasm");
    std::fs::write(&plugin, wasm("entropy")).unwrap();
    let context = dir.path().join("context.json");
    std::fs::write(
        &context,
        json!({"step": "snapshot", "settings": {"bytes": 16, "calls": 1}}).to_string(),
    )
    .unwrap();
    let answers: Vec<Value> = (0..2)
        .map(|_| {
            let out = switchyard(&[
                "policy",
                "eval",
                plugin.to_str().unwrap(),
                "--context",
                context.to_str().unwrap(),
            ]);
            assert!(out.status.success(), "{}", text(&out));
            let evaluation: Value = serde_json::from_slice(&out.stdout).unwrap();
            evaluation["decision"]["warnings"].clone()
        })
        .collect();
    assert!(
        answers[0][0].as_str().unwrap().starts_with("entropy: "),
        "{answers:?}"
    );
    assert_eq!(answers[0], answers[1]);
}

/// A demo world in `dir` with `plugin` (and its settings) bound to every namespace.
fn world_binding(dir: &Path, plugin: &str, settings: &Value) -> std::path::PathBuf {
    let mut binding = PolicyBinding::new(plugin);
    binding.settings = settings.clone();
    world_with(dir, binding)
}

/// A demo world in `dir` with `binding` the whole policy catalog.
fn world_with(dir: &Path, binding: PolicyBinding) -> std::path::PathBuf {
    let world_file = dir.join("world.json");
    let init = switchyard(&["--world", world_file.to_str().unwrap(), "init", "--demo"]);
    assert!(init.status.success(), "{}", text(&init));
    let world = switchyard_sim::World::load(&world_file).unwrap();
    world
        .seed_policy_catalog(
            &ParameterLayout::default(),
            &PolicyCatalog {
                bindings: vec![binding],
            },
        )
        .unwrap();
    world.save(&world_file).unwrap();
    world_file
}

fn deploy(world: &Path, plugins: &Path) -> Output {
    switchyard(&[
        "--world",
        world.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
        "deploy",
        "xy-0146-qa",
        "--from",
        "xy-0146-dev",
        "--output",
        "json",
    ])
}

#[test]
fn a_deploy_answers_every_attack_and_rolls_back_what_a_broken_plugin_stopped() {
    for attack in attacks() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::write(
            plugins.join(format!("{}.wasm", attack.name)),
            (attack.bytes)(),
        )
        .unwrap();
        let world = world_binding(dir.path(), attack.name, &attack.settings);
        let out = deploy(&world, &plugins);
        assert_answered(&attack, &out);
        let shown = text(&out);
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|err| panic!("{}: {err}: {shown}", attack.name));
        match attack.failure {
            None => {
                assert_eq!(report["status"], "SUCCEEDED", "{}: {shown}", attack.name);
                assert_eq!(out.status.code(), Some(0), "{}: {shown}", attack.name);
            }
            Some(expected) => {
                assert_eq!(out.status.code(), Some(1), "{}: {shown}", attack.name);
                assert_eq!(report["status"], "FAILED", "{}: {shown}", attack.name);
                assert_eq!(report["error"], "PolicyFailed", "{}: {shown}", attack.name);
                let cause = report["cause"].as_str().unwrap_or_default();
                assert!(cause.contains(attack.name), "{}: {cause}", attack.name);
                assert!(cause.contains(expected), "{}: {cause}", attack.name);
                // Whatever it stopped was rolled back: no namespace has an orphan.
                let status = switchyard(&[
                    "--world",
                    world.to_str().unwrap(),
                    "status",
                    "--output",
                    "json",
                ]);
                assert!(status.status.success(), "{}", text(&status));
                let statuses: Value = serde_json::from_slice(&status.stdout).unwrap();
                for namespace in statuses.as_array().unwrap() {
                    assert_eq!(
                        namespace["orphans"],
                        json!([]),
                        "{}: {namespace}",
                        attack.name
                    );
                }
            }
        }
    }
}

#[test]
fn a_directory_with_stray_and_duplicate_files_still_serves_the_good_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::write(plugins.join("naming.wasm"), wasm("naming")).unwrap();
    // A stray copy under another name, a directory named like a plugin, and two files that
    // both claim capacity.
    std::fs::write(plugins.join("naming-copy.wasm"), wasm("naming")).unwrap();
    std::fs::create_dir(plugins.join("notes.wasm")).unwrap();
    std::fs::write(plugins.join("capacity.wasm"), wasm("capacity")).unwrap();
    std::fs::write(plugins.join("capacity.wasm.bak"), b"junk").unwrap();
    let world = world_binding(dir.path(), "naming", &json!({}));
    let out = deploy(&world, &plugins);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "SUCCEEDED", "{shown}");
    // Each bad file is named, once, on stderr; the deploy went on.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("naming-copy"), "{stderr}");
    assert!(stderr.contains("describes itself as naming"), "{stderr}");
    assert!(stderr.contains("notes"), "{stderr}");
}

#[test]
fn rollout_modes_and_a_pinned_digest_decide_what_a_no_does_in_a_deploy() {
    use sha2_digest::hex_sha256;
    let plugin_bytes = wasm("flood");
    let digest = hex_sha256(&plugin_bytes);
    // One short reason: a plain "no".
    let settings = json!({"reasons": 1, "bytes": 20});
    let cases = [
        (PolicyMode::Enforce, None, "FAILED", Some("PolicyDenied")),
        (PolicyMode::Warn, None, "SUCCEEDED", None),
        (PolicyMode::Audit, None, "SUCCEEDED", None),
        (
            PolicyMode::Enforce,
            Some(digest.clone()),
            "FAILED",
            Some("PolicyDenied"),
        ),
        (
            PolicyMode::Audit,
            Some("0".repeat(64)),
            "FAILED",
            Some("PolicyFailed"),
        ),
    ];
    for (mode, pin, status, error) in cases {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::write(plugins.join("flood.wasm"), &plugin_bytes).unwrap();
        let mut binding = PolicyBinding::new("flood");
        binding.settings = settings.clone();
        binding.mode = mode;
        binding.sha256 = pin.clone();
        let world = world_with(dir.path(), binding);
        let out = deploy(&world, &plugins);
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|err| panic!("{err}: {}", text(&out)));
        assert_eq!(report["status"], status, "{mode:?} {pin:?}: {report}");
        assert_eq!(
            report["error"].as_str(),
            error,
            "{mode:?} {pin:?}: {report}"
        );
        if error == Some("PolicyFailed") {
            let cause = report["cause"].as_str().unwrap();
            assert!(
                cause.contains(&digest) && cause.contains(&"0".repeat(64)),
                "{cause}"
            );
        }
    }
}

/// The sha256 of a plugin file, as an operator computes it to pin it.
mod sha2_digest {
    pub fn hex_sha256(bytes: &[u8]) -> String {
        let out = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(bytes)?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_owned()
    }
}
