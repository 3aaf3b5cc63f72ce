//! The policy gate: before a mutating step changes anything, every plugin the catalog
//! (`{root}/policies`) binds to the namespace judges what the step is about to do. Any plugin
//! that cannot decide fails the step closed ([`StepError::PolicyFailed`]); otherwise any "no"
//! stops it ([`StepError::PolicyDenied`], with every plugin's reasons). Either way the step has
//! changed nothing: each step calls the gate after its reads and before its first write, and
//! only when it is about to make its change (a re-invocation that finds its own earlier work
//! done does not ask again; the gate already said yes to that work).
//!
//! Rollback is never gated: undoing a failed deploy must never be blocked.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Env;
use crate::error::{AwsError, Denial, StepError};
use crate::names::Namespace;
use crate::policy::{
    DatabaseFacts, Evaluation, PluginFailure, PolicyContext, PolicyStep, RELEASE_CATALOG_SETTING,
    SnapshotFacts, Verdict,
};
use crate::ports::DbInstance;
use crate::records::{NamespaceSettings, PolicyBinding, PolicyMode};
use crate::state::{DeployState, SnapshotRef};

/// The `tracing` target of every policy decision: one line per plugin and step.
pub const LOG_TARGET: &str = "switchyard::policy";

/// The policies bound to one namespace, read from the catalog once per step invocation.
pub struct Gate<'a> {
    env: Env<'a>,
    namespace: Namespace,
    bindings: Vec<PolicyBinding>,
}

impl<'a> Gate<'a> {
    /// Reads the catalog and keeps the bindings whose patterns match `namespace`.
    pub async fn load(env: Env<'a>, namespace: &Namespace) -> Result<Gate<'a>, StepError> {
        let catalog = env.records().policy_catalog().await?;
        let bindings = catalog
            .bindings_for(namespace)
            .into_iter()
            .cloned()
            .collect();
        Ok(Gate {
            env,
            namespace: namespace.clone(),
            bindings,
        })
    }

    /// No policy applies: a step may skip gathering facts (and their AWS reads) altogether.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    pub fn bindings(&self) -> &[PolicyBinding] {
        &self.bindings
    }

    /// The region policies see: the namespace's own, else the one the calls go to.
    pub fn region(&self, settings: &NamespaceSettings) -> String {
        settings
            .region
            .clone()
            .unwrap_or_else(|| self.env.aws.region())
    }

    /// Asks every bound plugin about `facts` (the step and its facts, filled by the step; see
    /// [`deploy_facts`]) and enforces the answer: see [`Judgement::enforce`].
    pub async fn check(
        &self,
        settings: &NamespaceSettings,
        facts: PolicyContext,
    ) -> Result<Vec<Evaluation>, StepError> {
        let now = self.env.now();
        self.judge(settings, facts, now)
            .await?
            .enforce(self.namespace.as_str())
    }

    /// Asks every bound plugin about `facts` as of `at` (a step judged ahead of time, as
    /// preflight does, is judged at the time it is expected to run), and keeps every answer.
    /// Fills in the fields common to every step: the namespace and its parts, region, now, plan,
    /// current version, the snapshot's age, the databases' region, and each plugin's settings
    /// (the binding's, overlaid by the namespace's `policies[plugin]`).
    pub async fn judge(
        &self,
        settings: &NamespaceSettings,
        mut facts: PolicyContext,
        at: DateTime<Utc>,
    ) -> Result<Judgement, StepError> {
        let ns = &self.namespace;
        let step = facts.step;
        let region = self.region(settings);
        facts.namespace = ns.to_string();
        facts.customer = ns.customer().to_owned();
        facts.project = ns.project().to_owned();
        facts.environment = ns.environment().to_owned();
        facts.now = at.timestamp();
        facts.plan = settings.plan.clone();
        // What the tenant runs: as the pointer step 2 read records it, else as its settings say.
        if facts.current_version.is_none() {
            facts.current_version = settings.version.clone();
        }
        // A deploy that brings no new image keeps the tenant on its version (see deploy_facts).
        if facts.target_version.as_deref() == Some(KEEPS_VERSION) {
            facts.target_version = facts.current_version.clone();
        }
        if let Some(snapshot) = &mut facts.snapshot {
            snapshot.age_seconds = age_seconds(at, snapshot.created_at);
        }
        for db in [&mut facts.source_db, &mut facts.target_db]
            .into_iter()
            .flatten()
        {
            if db.region.is_empty() {
                db.region = region.clone();
            }
        }
        facts.region = region;

        let mut judgement = Judgement {
            step,
            evaluations: Vec::new(),
            verdicts: Vec::new(),
            denials: Vec::new(),
            failed: None,
        };
        // Read once, and only when a bound plugin declares it.
        let mut release_catalog: Option<Option<serde_json::Value>> = None;
        for binding in &self.bindings {
            let mut context = facts.clone();
            context.settings = binding.settings_for(ns, settings)?;
            if self
                .env
                .policies
                .declares_setting(&binding.plugin, RELEASE_CATALOG_SETTING)
                .await
            {
                if release_catalog.is_none() {
                    // A catalog that does not parse is no catalog: the plugin says what that
                    // means, under its binding's mode, rather than the step failing here.
                    let read = match self.env.records().release_catalog().await {
                        Ok(found) => found.map(|(catalog, _)| serde_json::json!(catalog)),
                        Err(err @ StepError::InvalidReleaseCatalog(_)) => {
                            tracing::warn!(namespace = %ns, "release catalog not handed to plugins: {err}");
                            None
                        }
                        Err(err) => return Err(err),
                    };
                    release_catalog = Some(read);
                }
                if let serde_json::Value::Object(map) = &mut context.settings {
                    // The installation's catalog, not a copy a binding could let drift.
                    match &release_catalog {
                        Some(Some(catalog)) => {
                            map.insert(RELEASE_CATALOG_SETTING.to_owned(), catalog.clone());
                        }
                        _ => {
                            map.remove(RELEASE_CATALOG_SETTING);
                        }
                    }
                }
            }
            let started = Instant::now();
            let mut result = self.env.policies.evaluate(&binding.plugin, &context).await;
            // Another artifact than the one the catalog pins fails closed, in any mode.
            let mut enforced = binding.mode.is_enforce();
            if let (Ok(Some(evaluation)), Some(pin)) = (&result, &binding.sha256)
                && *pin != evaluation.digest
            {
                let found = if evaluation.digest.is_empty() {
                    "unknown"
                } else {
                    evaluation.digest.as_str()
                };
                result = Err(PluginFailure::Unloadable {
                    plugin: binding.plugin.clone(),
                    detail: format!("its artifact has sha256 {found}, the catalog pins {pin}"),
                });
                enforced = true;
            }
            let verdict =
                |answer: Answer, reasons: Vec<String>, warnings: Vec<String>| PolicyVerdict {
                    step,
                    plugin: binding.plugin.clone(),
                    mode: binding.mode,
                    answer,
                    reasons,
                    warnings,
                };
            match result {
                Ok(Some(mut evaluation)) => {
                    log_decision(step, ns, binding.mode, &evaluation);
                    let warnings = evaluation.decision.warnings.clone();
                    match &evaluation.decision.verdict {
                        Verdict::Allow => {
                            judgement
                                .verdicts
                                .push(verdict(Answer::Allow, Vec::new(), warnings));
                        }
                        Verdict::Deny(reasons) => {
                            match binding.mode {
                                PolicyMode::Enforce => judgement.denials.push(Denial {
                                    plugin: binding.plugin.clone(),
                                    reasons: reasons.clone(),
                                }),
                                // Reported, and the step goes on.
                                PolicyMode::Warn => {
                                    let said = reasons.join("; ");
                                    evaluation
                                        .decision
                                        .warnings
                                        .push(format!("would deny (warn mode): {said}"));
                                }
                                // Logged above, and nothing else.
                                PolicyMode::Audit => {}
                            }
                            let answer = if binding.mode.is_enforce() {
                                Answer::Deny
                            } else {
                                Answer::WouldDeny
                            };
                            judgement
                                .verdicts
                                .push(verdict(answer, reasons.clone(), warnings));
                        }
                    }
                    judgement.evaluations.push(evaluation);
                }
                Err(failure) if !enforced => {
                    tracing::warn!(
                        target: LOG_TARGET,
                        plugin = %binding.plugin,
                        mode = binding.mode.as_str(),
                        step = %step,
                        namespace = %ns,
                        verdict = "failed",
                        failure = %failure,
                        elapsed_us = micros(started.elapsed()),
                        "policy plugin failed; not enforced in this mode"
                    );
                    judgement.verdicts.push(verdict(
                        Answer::FailedNotEnforced,
                        vec![failure.to_string()],
                        Vec::new(),
                    ));
                }
                Ok(None) => {
                    tracing::debug!(
                        target: LOG_TARGET,
                        plugin = %binding.plugin,
                        step = %step,
                        namespace = %ns,
                        "plugin does not check this step"
                    );
                    judgement
                        .verdicts
                        .push(verdict(Answer::NotChecked, Vec::new(), Vec::new()));
                }
                Err(failure) => {
                    tracing::error!(
                        target: LOG_TARGET,
                        plugin = %binding.plugin,
                        step = %step,
                        namespace = %ns,
                        verdict = "failed",
                        failure = %failure,
                        elapsed_us = micros(started.elapsed()),
                        "policy plugin failed; the step fails closed"
                    );
                    judgement.verdicts.push(verdict(
                        Answer::Failed,
                        vec![failure.to_string()],
                        Vec::new(),
                    ));
                    judgement.failed.get_or_insert(failure);
                }
            }
        }
        Ok(judgement)
    }
}

/// Every bound plugin's answer about one step.
#[derive(Debug)]
pub struct Judgement {
    pub step: PolicyStep,
    pub evaluations: Vec<Evaluation>,
    pub verdicts: Vec<PolicyVerdict>,
    /// The enforced denials.
    pub denials: Vec<Denial>,
    /// The first enforced plugin that could not decide.
    pub failed: Option<PluginFailure>,
}

impl Judgement {
    /// Every plugin was asked, so the error names every "no" at once. A plugin that could not
    /// decide wins over any deny: the first such is the error.
    pub fn enforce(self, namespace: &str) -> Result<Vec<Evaluation>, StepError> {
        if let Some(failure) = self.failed {
            return Err(StepError::policy_failed(self.step, namespace, &failure));
        }
        if !self.denials.is_empty() {
            return Err(StepError::PolicyDenied {
                step: self.step,
                namespace: namespace.to_owned(),
                denials: self.denials,
            });
        }
        Ok(self.evaluations)
    }
}

/// What one plugin answered about one step, as preflight and `deploy --dry-run` report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVerdict {
    pub step: PolicyStep,
    pub plugin: String,
    pub mode: PolicyMode,
    pub answer: Answer,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A plugin's answer, with its binding's mode applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    Allow,
    /// An enforced "no": the step does not run.
    Deny,
    /// A "no" of a binding in `warn` or `audit` mode: reported, and the step runs.
    WouldDeny,
    /// The plugin does not check this step.
    NotChecked,
    /// The plugin could not decide: the step fails closed.
    Failed,
    /// The plugin could not decide, in a mode that does not enforce it.
    FailedNotEnforced,
}

impl Answer {
    pub fn as_str(&self) -> &'static str {
        match self {
            Answer::Allow => "allow",
            Answer::Deny => "deny",
            Answer::WouldDeny => "would-deny",
            Answer::NotChecked => "not-checked",
            Answer::Failed => "failed",
            Answer::FailedNotEnforced => "failed-not-enforced",
        }
    }

    /// Whether this answer stops the step.
    pub fn stops(&self) -> bool {
        matches!(self, Answer::Deny | Answer::Failed)
    }
}

fn micros(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

fn log_decision(step: PolicyStep, ns: &Namespace, mode: PolicyMode, evaluation: &Evaluation) {
    let decision = &evaluation.decision;
    let elapsed_us = micros(evaluation.elapsed);
    let plugin = evaluation.plugin.as_str();
    let sha256 = evaluation.digest.as_str();
    let mode = mode.as_str();
    match &decision.verdict {
        Verdict::Allow => tracing::info!(
            target: LOG_TARGET,
            plugin,
            sha256,
            mode,
            version = %evaluation.version,
            step = %step,
            namespace = %ns,
            verdict = "allow",
            reasons = ?Vec::<String>::new(),
            warnings = ?decision.warnings,
            elapsed_us,
            "policy decision"
        ),
        Verdict::Deny(reasons) => tracing::warn!(
            target: LOG_TARGET,
            plugin,
            sha256,
            mode,
            version = %evaluation.version,
            step = %step,
            namespace = %ns,
            verdict = "deny",
            reasons = ?reasons,
            warnings = ?decision.warnings,
            elapsed_us,
            "policy decision"
        ),
    }
}

fn age_seconds(now: DateTime<Utc>, created_at: i64) -> u64 {
    // 0 when the clocks disagree (a snapshot "from the future"), as the contract says.
    u64::try_from(now.timestamp().saturating_sub(created_at)).unwrap_or(0)
}

/// Marks, until the gate fills in the namespace's version, a deploy that changes no image. No
/// version is empty, so the mark cannot be mistaken for one.
const KEEPS_VERSION: &str = "";

/// The facts every step of one deploy shares: the step, the execution, where the data comes
/// from, and the version the new image brings.
pub fn deploy_facts(step: PolicyStep, state: &DeployState) -> Result<PolicyContext, StepError> {
    Ok(PolicyContext {
        step,
        execution_id: state.execution_id()?.to_owned(),
        source_namespace: state.source_namespace.clone(),
        current_version: recorded_version(state),
        target_version: match (&state.upgrade_to, state.image.as_deref()) {
            (Some(version), _) => Some(version.clone()),
            (None, Some(image)) => image_tag(image),
            (None, None) => Some(KEEPS_VERSION.to_owned()),
        },
        ..PolicyContext::default()
    })
}

/// The version the tenant ran when step 2 read its pointer, as the pointer records it.
fn recorded_version(state: &DeployState) -> Option<String> {
    state
        .previous
        .as_ref()
        .and_then(|previous| previous.active.as_ref())
        .and_then(|active| active.app_version.clone())
}

/// The version the tenant runs once this deploy is through: the new image's tag (`unknown` for
/// an image without one), or, keeping the image, the version it ran before (the pointer's
/// record, else the namespace's settings).
pub fn target_version(state: &DeployState) -> Option<String> {
    if let Some(version) = &state.upgrade_to {
        // The release catalog's version, whatever the image reference looks like.
        return Some(version.trim_start_matches('v').to_owned());
    }
    target_version_of(
        state.image.as_deref(),
        recorded_version(state).or_else(|| {
            state
                .previous
                .as_ref()
                .and_then(|previous| previous.settings.version.clone())
        }),
    )
}

/// The version a deploy of `image` brings: its tag (`unknown` without one), or, with no new
/// image, `current`.
pub fn target_version_of(image: Option<&str>, current: Option<String>) -> Option<String> {
    match image {
        Some(image) => Some(image_tag(image).unwrap_or_else(|| UNKNOWN_VERSION.to_owned())),
        None => current,
    }
}

/// What a deploy records for an image whose reference carries no tag.
pub const UNKNOWN_VERSION: &str = "unknown";

/// The tag of an image reference (`repo/app:2.0` -> `2.0`); a bare tag (`2.0`, as `--image`
/// takes it) is itself. `None` for a digest or a reference without a tag.
pub fn image_tag(image: &str) -> Option<String> {
    if image.contains('@') {
        return None;
    }
    if !image.contains('/') && !image.contains(':') {
        return Some(image.to_owned()).filter(|tag| !tag.is_empty());
    }
    // A `:` before the last `/` is a registry port, not a tag.
    let name = image.rsplit('/').next().unwrap_or(image);
    name.split_once(':')
        .map(|(_, tag)| tag.to_owned())
        .filter(|tag| !tag.is_empty())
}

/// What the snapshot a deploy restores looks like to a policy; the gate sets its age.
pub fn snapshot_facts(snapshot: &SnapshotRef) -> SnapshotFacts {
    SnapshotFacts {
        id: snapshot.snapshot_id.clone(),
        source_db: snapshot.source_db_instance_id.clone(),
        created_at: snapshot.timestamp.datetime().timestamp(),
        age_seconds: 0,
        allocated_storage_gib: gib(snapshot.allocated_storage_gib),
        engine: snapshot.engine.clone(),
        engine_version: snapshot.engine_version.clone(),
        taken_by_this_execution: snapshot.taken,
    }
}

/// An existing instance as a policy sees it; the gate sets its region.
pub fn instance_facts(instance: &DbInstance) -> DatabaseFacts {
    DatabaseFacts {
        id: instance.id.clone(),
        instance_class: instance.instance_class.clone(),
        allocated_storage_gib: gib(instance.allocated_storage_gib),
        engine: instance.engine.clone(),
        engine_version: instance.engine_version.clone(),
        ..DatabaseFacts::default()
    }
}

/// The facts of the instance `id`, as RDS describes it now; only its id if it is gone.
pub async fn database_facts(env: Env<'_>, id: &str) -> Result<DatabaseFacts, StepError> {
    match env.aws.describe_db(id).await {
        Ok(instance) => Ok(instance_facts(&instance)),
        Err(AwsError::NotFound { .. }) => Ok(DatabaseFacts {
            id: id.to_owned(),
            ..DatabaseFacts::default()
        }),
        Err(err) => Err(err.into()),
    }
}

fn gib(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("1.5.0").as_deref(), Some("1.5.0"));
        assert_eq!(image_tag("repo/app:2.0").as_deref(), Some("2.0"));
        assert_eq!(
            image_tag("registry:5000/team/app:1.1.0").as_deref(),
            Some("1.1.0")
        );
        assert_eq!(image_tag("registry:5000/team/app"), None);
        assert_eq!(image_tag("app@sha256:abc"), None);
        assert_eq!(image_tag("repo/app"), None);
        assert_eq!(image_tag(""), None);
    }

    #[test]
    fn ages_never_go_negative() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap_or_default();
        assert_eq!(age_seconds(now, 400), 600);
        assert_eq!(age_seconds(now, 2_000), 0);
    }
}
