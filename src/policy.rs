//! `switchyard policy ...`: make, build, test and try policy plugins.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;
use switchyard_core::policy::{Evaluation, PluginDescriptor, PolicyContext, Verdict};
use switchyard_policy::{Limits, LoadedPlugin, PluginHost, PluginSet};

/// The Rust target plugins are built for: its standard library speaks WASI 0.2, and rustc
/// links a component directly.
pub const PLUGIN_TARGET: &str = "wasm32-wasip2";

/// The bundled policies' sources and where their build goes, relative to a checkout.
pub const BUNDLED_POLICIES: &str = "plugins/policies";
pub const DEFAULT_DIST: &str = "plugins/dist";

/// The kit crate, for new projects made from this checkout.
const KIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/kit");

/// Makes sure rustup has the plugin target, adding it (and saying so) when it is missing.
pub fn ensure_target(notice: &mut dyn FnMut(String)) -> anyhow::Result<()> {
    let Ok(output) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        // No rustup: cargo will say whether the target is there.
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&output.stdout);
    if installed.lines().any(|line| line.trim() == PLUGIN_TARGET) {
        return Ok(());
    }
    notice(format!(
        "adding the {PLUGIN_TARGET} target (rustup target add {PLUGIN_TARGET})"
    ));
    let status = Command::new("rustup")
        .args(["target", "add", PLUGIN_TARGET])
        .status()
        .context("running rustup")?;
    if !status.success() {
        bail!("rustup target add {PLUGIN_TARGET} failed");
    }
    Ok(())
}

/// Builds the plugin crate at `project` and returns the component's path.
pub fn cargo_build(project: &Path) -> anyhow::Result<PathBuf> {
    let manifest = project.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} has no Cargo.toml: not a plugin project",
            project.display()
        );
    }
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("resolving {}", manifest.display()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", PLUGIN_TARGET])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !output.status.success() {
        bail!("cargo build of {} failed", project.display());
    }
    let mut components = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<CargoMessage>(line) else {
            continue;
        };
        if message.reason == "compiler-artifact"
            && message.manifest_path.as_deref() == Some(manifest.as_path())
        {
            components.extend(
                message
                    .filenames
                    .into_iter()
                    .filter(|f| f.extension().is_some_and(|e| e == "wasm")),
            );
        }
    }
    match components.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "{} built no component: is it a cdylib (crate-type = [\"cdylib\"])?",
            project.display()
        ),
        many => bail!("{} built several components: {many:?}", project.display()),
    }
}

#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
}

/// What `policy build` made of one project.
#[derive(Debug)]
pub struct Built {
    pub descriptor: PluginDescriptor,
    pub component: PathBuf,
    pub precompiled: PathBuf,
    pub component_bytes: u64,
    pub precompiled_bytes: u64,
}

/// Builds a plugin project, checks the component against the contract (by loading it), and
/// writes `<out>/<name>.wasm` and `<out>/<name>.cwasm` (precompiled for this machine, or for
/// `target`, e.g. `aarch64-unknown-linux-gnu` for Lambda on Graviton).
pub async fn build(project: &Path, out: &Path, target: Option<&str>) -> anyhow::Result<Built> {
    let built = cargo_build(project)?;
    let bytes = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let host = PluginHost::new(Limits::default())?;
    let origin = built.display().to_string();
    // Compiled once: loading the precompiled artifact checks the contract and describes the
    // plugin, unless it is for another machine, when the component is loaded instead.
    let precompiled = switchyard_policy::precompile(&bytes, host.limits(), target)?;
    let plugin = match target {
        None => host.load(&origin, &precompiled).await?,
        Some(_) => host.load(&origin, &bytes).await?,
    };
    let name = plugin.descriptor.name.clone();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let component = out.join(format!("{name}.wasm"));
    let cwasm = out.join(format!("{name}.cwasm"));
    write_atomically(&component, &bytes)?;
    write_atomically(&cwasm, &precompiled)?;
    Ok(Built {
        descriptor: plugin.descriptor,
        component,
        precompiled: cwasm,
        component_bytes: bytes.len() as u64,
        precompiled_bytes: precompiled.len() as u64,
    })
}

/// Another process loading the directory sees the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The checkout this command was built from: where the bundled policies' sources are.
pub fn checkout() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where local runs find plugins unless told otherwise: the checkout's `plugins/dist`.
pub fn default_plugin_dir() -> PathBuf {
    checkout().join(DEFAULT_DIST)
}

/// The engine of a local run: the plugins in `dir`. When `dir` is the checkout's own
/// `plugins/dist` and a bundled policy that the catalog binds (`bound`, by plugin name) is not
/// built there yet, builds it first (once), so that the demo runs its policies on a fresh
/// machine, and an endpoint whose catalog binds none builds none.
pub async fn local_engine(
    dir: &Path,
    bound: &std::collections::BTreeSet<String>,
    notice: &mut (dyn FnMut(String) + Send),
) -> anyhow::Result<PluginSet> {
    let sources = checkout().join(BUNDLED_POLICIES);
    if dir == default_plugin_dir() && sources.is_dir() {
        let projects = bound_projects(bundled_projects(checkout())?, bound);
        // Missing, or older than a source it is built from (the policy, the author kit, the
        // release planner the upgrade-path policy shares with the control plane).
        let shared = [
            checkout().join("plugins/kit"),
            checkout().join("crates/releases"),
        ];
        let stale = projects.iter().any(|project| {
            let built = project
                .file_name()
                .map(|name| dir.join(name).with_extension("cwasm"))
                .and_then(|artifact| std::fs::metadata(artifact).ok()?.modified().ok());
            let Some(built) = built else {
                return true;
            };
            std::iter::once(project.as_path())
                .chain(shared.iter().map(PathBuf::as_path))
                .any(|source| newest_source(source).is_some_and(|newest| newest > built))
        });
        if stale {
            notice(format!(
                "building the bundled policies into {} (when their sources change; `switchyard policy build` rebuilds them)",
                dir.display()
            ));
            ensure_target(notice)?;
            for project in &projects {
                let built = build(project, dir, None).await?;
                notice(format!(
                    "  built {} {}",
                    built.descriptor.name, built.descriptor.version
                ));
            }
        }
    }
    let host = PluginHost::new(Limits::default())?;
    if !dir.is_dir() {
        return Ok(PluginSet::empty(host));
    }
    let set = PluginSet::load_dir(host, dir).await?;
    for (name, why) in set.broken() {
        notice(format!("policy plugin {name} not loaded: {why}"));
    }
    Ok(set)
}

/// The bundled projects a catalog binding `bound` plugins needs (a project is named as its
/// plugin).
fn bound_projects(
    projects: Vec<PathBuf>,
    bound: &std::collections::BTreeSet<String>,
) -> Vec<PathBuf> {
    projects
        .into_iter()
        .filter(|project| {
            project
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| bound.contains(name))
        })
        .collect()
}

/// When the newest file of a source tree (its `src/`, manifest and fixtures) was modified.
fn newest_source(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                newest = newest.max(Some(modified));
            }
        }
    }
    newest
}

/// The projects under `plugins/policies` of a checkout, in name order.
pub fn bundled_projects(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join(BUNDLED_POLICIES);
    let mut projects = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.join("Cargo.toml").is_file() {
            projects.push(path);
        }
    }
    projects.sort();
    Ok(projects)
}

/// Loads a plugin from a `.wasm`/`.cwasm` file.
pub async fn load_file(host: &PluginHost, path: &Path) -> anyhow::Result<LoadedPlugin> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(host.load(&path.display().to_string(), &bytes).await?)
}

/// A table of cases: context in, expected verdict out (`fixtures.json` beside each policy).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    pub plugin: String,
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub context: PolicyContext,
    pub expect: Expect,
    /// Each must appear in some reason.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Each must appear in some warning.
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Allow,
    Deny,
    /// The plugin does not check this step: the host never asks it.
    NotChecked,
}

#[derive(Debug)]
pub struct CaseResult {
    pub name: String,
    pub failure: Option<String>,
}

/// Runs a fixture table against a loaded plugin, as the host would run it in a deploy.
pub async fn run_fixtures(
    host: &PluginHost,
    plugin: &LoadedPlugin,
    fixtures: &Fixtures,
) -> anyhow::Result<Vec<CaseResult>> {
    if fixtures.plugin != plugin.descriptor.name {
        bail!(
            "the fixtures are for {}, the plugin is {}",
            fixtures.plugin,
            plugin.descriptor.name
        );
    }
    let mut results = Vec::new();
    for case in &fixtures.cases {
        let checked = plugin.descriptor.steps.contains(&case.context.step);
        let failure = if !checked {
            (case.expect != Expect::NotChecked)
                .then(|| format!("the plugin does not check step {}", case.context.step))
        } else {
            match host.evaluate(plugin, &case.context).await {
                Err(err) => Some(format!("no decision: {err}")),
                Ok(evaluation) => judge(case, &evaluation),
            }
        };
        results.push(CaseResult {
            name: case.name.clone(),
            failure,
        });
    }
    Ok(results)
}

fn judge(case: &Case, evaluation: &Evaluation) -> Option<String> {
    let decision = &evaluation.decision;
    let (verdict, reasons) = match &decision.verdict {
        Verdict::Allow => (Expect::Allow, &[][..]),
        Verdict::Deny(reasons) => (Expect::Deny, reasons.as_slice()),
    };
    if verdict != case.expect {
        return Some(format!(
            "expected {:?}, got {:?} (reasons: {reasons:?}, warnings: {:?})",
            case.expect, verdict, decision.warnings
        ));
    }
    let missing = |wanted: &[String], got: &[String]| {
        wanted
            .iter()
            .find(|w| !got.iter().any(|g| g.contains(w.as_str())))
            .cloned()
    };
    if let Some(reason) = missing(&case.reasons, reasons) {
        return Some(format!(
            "no reason contains {reason:?}; reasons: {reasons:?}"
        ));
    }
    if let Some(warning) = missing(&case.warnings, &decision.warnings) {
        return Some(format!(
            "no warning contains {warning:?}; warnings: {:?}",
            decision.warnings
        ));
    }
    None
}

pub fn read_fixtures(path: &Path) -> anyhow::Result<Fixtures> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a fixture table", path.display()))
}

/// Creates a plugin project from the template: a crate on the author kit, one function to
/// fill in, and a fixture table.
pub fn new_project(name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        bail!(
            "invalid plugin name {name:?}: use lowercase letters, digits and hyphens, starting with a letter"
        );
    }
    let project = dir.join(name);
    if project.exists() {
        bail!("{} already exists", project.display());
    }
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{type}}", &type_name)
            .replace("{{kit}}", KIT_DIR)
    };
    std::fs::create_dir_all(project.join("src"))
        .with_context(|| format!("creating {}", project.display()))?;
    for (path, template) in [
        (
            "Cargo.toml",
            include_str!("../plugins/template/Cargo.toml.tmpl"),
        ),
        (
            "src/lib.rs",
            include_str!("../plugins/template/lib.rs.tmpl"),
        ),
        (
            "fixtures.json",
            include_str!("../plugins/template/fixtures.json.tmpl"),
        ),
    ] {
        let file = project.join(path);
        std::fs::write(&file, fill(template))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(project)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_the_plugins_a_catalog_binds_are_built() {
        let projects = bundled_projects(checkout()).unwrap();
        assert_eq!(projects.len(), 7, "{projects:?}");
        let none = bound_projects(projects.clone(), &Default::default());
        assert!(none.is_empty(), "{none:?}");
        let bound = [
            "naming".to_owned(),
            "capacity".to_owned(),
            "not-bundled".to_owned(),
        ]
        .into();
        let some = bound_projects(projects, &bound);
        let names: Vec<_> = some
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["capacity", "naming"]);
    }
}
