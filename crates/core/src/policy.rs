//! Policy checks before each mutating step. The contract is `plugins/wit/policy.wit`; the types
//! here mirror it field for field (snake_case in JSON), so the core can build a context and act
//! on a decision without knowing how a plugin runs. The engine that runs plugins (wasmtime,
//! `switchyard-policy`) implements [`PolicyEngine`].

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The mutating steps a policy can check (WIT `step`). Rollback is not one: undoing a failed
/// deploy is never blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyStep {
    Snapshot,
    CreateDatabase,
    SwapPointer,
    DeployService,
    Cleanup,
}

impl PolicyStep {
    pub const ALL: [PolicyStep; 5] = [
        PolicyStep::Snapshot,
        PolicyStep::CreateDatabase,
        PolicyStep::SwapPointer,
        PolicyStep::DeployService,
        PolicyStep::Cleanup,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyStep::Snapshot => "snapshot",
            PolicyStep::CreateDatabase => "create-database",
            PolicyStep::SwapPointer => "swap-pointer",
            PolicyStep::DeployService => "deploy-service",
            PolicyStep::Cleanup => "cleanup",
        }
    }
}

impl fmt::Display for PolicyStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WIT `snapshot-facts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotFacts {
    pub id: String,
    pub source_db: String,
    pub created_at: i64,
    pub age_seconds: u64,
    pub allocated_storage_gib: u32,
    pub engine: String,
    pub engine_version: String,
    pub taken_by_this_execution: bool,
}

/// WIT `database-facts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseFacts {
    pub id: String,
    pub instance_class: String,
    pub allocated_storage_gib: u32,
    pub engine: String,
    pub engine_version: String,
    pub region: String,
    pub active: bool,
    pub in_flight: bool,
    pub final_snapshot: bool,
}

/// WIT `service-facts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceFacts {
    pub cluster: String,
    pub service: String,
    pub container: String,
    pub current_image: String,
    pub new_image: String,
}

/// WIT `context`: everything a policy may look at. Every field has a default so that fixtures
/// name only what their case is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyContext {
    pub step: PolicyStep,
    pub namespace: String,
    pub customer: String,
    pub project: String,
    pub environment: String,
    pub region: String,
    /// Seconds since the Unix epoch (UTC).
    pub now: i64,
    pub execution_id: String,
    pub source_namespace: Option<String>,
    pub snapshot: Option<SnapshotFacts>,
    pub source_db: Option<DatabaseFacts>,
    pub target_db: Option<DatabaseFacts>,
    pub current_pointer: Option<String>,
    pub new_pointer: Option<String>,
    pub service: Option<ServiceFacts>,
    pub current_version: Option<String>,
    pub target_version: Option<String>,
    pub plan: Option<String>,
    /// The plugin's settings for this namespace: a JSON object. Filled in per plugin by the
    /// gate, from the catalog.
    pub settings: serde_json::Value,
}

impl Default for PolicyContext {
    fn default() -> Self {
        PolicyContext {
            step: PolicyStep::CreateDatabase,
            namespace: String::new(),
            customer: String::new(),
            project: String::new(),
            environment: String::new(),
            region: String::new(),
            now: 0,
            execution_id: String::new(),
            source_namespace: None,
            snapshot: None,
            source_db: None,
            target_db: None,
            current_pointer: None,
            new_pointer: None,
            service: None,
            current_version: None,
            target_version: None,
            plan: None,
            settings: serde_json::Value::Object(serde_json::Map::new()),
        }
    }
}

/// WIT `verdict`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verdict", content = "reasons")]
pub enum Verdict {
    Allow,
    Deny(Vec<String>),
}

/// WIT `decision`: a value, not an error. A deny is a normal answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    #[serde(flatten)]
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Decision {
    pub fn allow() -> Self {
        Decision {
            verdict: Verdict::Allow,
            warnings: Vec::new(),
        }
    }

    pub fn is_allow(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

/// WIT `descriptor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginDescriptor {
    pub name: String,
    pub version: String,
    pub steps: Vec<PolicyStep>,
    pub settings_schema: String,
}

/// One plugin's answer for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub plugin: String,
    pub version: String,
    /// The sha256 (hex) of the artifact that decided; empty when the engine cannot tell.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    pub decision: Decision,
    #[serde(with = "micros")]
    pub elapsed: Duration,
}

mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}

/// Why a plugin gave no decision. The step fails closed: it does not run, and the error names
/// the plugin and this reason, distinct from a deny.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFailure {
    #[error("plugin {plugin} is not installed: {detail}")]
    Missing { plugin: String, detail: String },
    #[error("plugin {plugin} cannot be loaded: {detail}")]
    Unloadable { plugin: String, detail: String },
    #[error("plugin {plugin} trapped: {detail}")]
    Trapped { plugin: String, detail: String },
    #[error("plugin {plugin} ran out of fuel after {fuel} units")]
    OutOfFuel { plugin: String, fuel: u64 },
    #[error("plugin {plugin} exceeded a resource limit: {detail}")]
    ResourceLimit { plugin: String, detail: String },
    #[error("plugin {plugin} ran past its deadline of {limit_ms} ms")]
    TimedOut { plugin: String, limit_ms: u64 },
    #[error("plugin {plugin} returned an invalid decision: {detail}")]
    InvalidOutput { plugin: String, detail: String },
}

impl PluginFailure {
    /// What happened, without the plugin's name.
    pub fn detail(&self) -> String {
        match self {
            PluginFailure::Missing { detail, .. } => format!("not installed: {detail}"),
            PluginFailure::Unloadable { detail, .. } => format!("cannot be loaded: {detail}"),
            PluginFailure::Trapped { detail, .. } => format!("trapped: {detail}"),
            PluginFailure::OutOfFuel { fuel, .. } => format!("ran out of fuel after {fuel} units"),
            PluginFailure::ResourceLimit { detail, .. } => {
                format!("exceeded a resource limit: {detail}")
            }
            PluginFailure::TimedOut { limit_ms, .. } => {
                format!("ran past its deadline of {limit_ms} ms")
            }
            PluginFailure::InvalidOutput { detail, .. } => {
                format!("returned an invalid decision: {detail}")
            }
        }
    }

    pub fn plugin(&self) -> &str {
        match self {
            PluginFailure::Missing { plugin, .. }
            | PluginFailure::Unloadable { plugin, .. }
            | PluginFailure::Trapped { plugin, .. }
            | PluginFailure::OutOfFuel { plugin, .. }
            | PluginFailure::ResourceLimit { plugin, .. }
            | PluginFailure::TimedOut { plugin, .. }
            | PluginFailure::InvalidOutput { plugin, .. } => plugin,
        }
    }
}

/// Runs policy plugins. An evaluation is short (microseconds) but runs guest code that may call
/// into its sandbox's WASI, which is asynchronous: it is awaited on the caller's runtime, never
/// blocked on, so a plugin cannot stall or crash the function that asks it.
#[async_trait::async_trait]
pub trait PolicyEngine: Send + Sync {
    /// What the named plugin says about `context`, or `Ok(None)` when the plugin does not check
    /// `context.step` (its descriptor does not list it).
    async fn evaluate(
        &self,
        plugin: &str,
        context: &PolicyContext,
    ) -> Result<Option<Evaluation>, PluginFailure>;

    /// Whether the named plugin's settings schema declares `property`, one of the values the
    /// host supplies (see [`HOST_SETTINGS`]). A plugin asks for them by declaring them.
    async fn declares_setting(&self, _plugin: &str, _property: &str) -> bool {
        false
    }
}

/// The settings Switchyard supplies to a plugin that declares them in its settings schema:
/// `release_catalog`, the installation's release catalog (`{root}/releases`).
pub const HOST_SETTINGS: &[&str] = &[RELEASE_CATALOG_SETTING];
pub const RELEASE_CATALOG_SETTING: &str = "release_catalog";

/// Whether a settings schema (JSON Schema text) declares a top-level `property`.
pub fn schema_declares(schema: &str, property: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(schema)
        .ok()
        .and_then(|schema| schema.get("properties")?.get(property).cloned())
        .is_some()
}

/// An engine with no plugins: every plugin the catalog names is missing, so a namespace with
/// bound policies fails closed, and one without runs unchecked.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPlugins;

#[async_trait::async_trait]
impl PolicyEngine for NoPlugins {
    async fn evaluate(
        &self,
        plugin: &str,
        _context: &PolicyContext,
    ) -> Result<Option<Evaluation>, PluginFailure> {
        Err(PluginFailure::Missing {
            plugin: plugin.to_owned(),
            detail: "no policy engine is configured".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixture_names_only_what_it_needs() {
        let context: PolicyContext = serde_json::from_str(
            r#"{"step": "cleanup", "namespace": "xy-0146-prod",
                "target_db": {"id": "xy-0146-prod-20261101000000", "active": true}}"#,
        )
        .unwrap();
        assert_eq!(context.step, PolicyStep::Cleanup);
        let target = context.target_db.unwrap();
        assert!(target.active);
        assert_eq!(target.instance_class, "");
        assert_eq!(context.settings, serde_json::json!({}));
    }

    #[test]
    fn unknown_context_fields_are_refused() {
        let err = serde_json::from_str::<PolicyContext>(r#"{"stepp": "cleanup"}"#).unwrap_err();
        assert!(err.to_string().contains("stepp"), "{err}");
    }

    #[test]
    fn decisions_read_as_json() {
        let deny: Decision =
            serde_json::from_str(r#"{"verdict": "deny", "reasons": ["too old"]}"#).unwrap();
        assert_eq!(deny.verdict, Verdict::Deny(vec!["too old".into()]));
        let allow: Decision = serde_json::from_str(r#"{"verdict": "allow"}"#).unwrap();
        assert!(allow.is_allow());
        assert_eq!(
            serde_json::to_value(&allow).unwrap(),
            serde_json::json!({"verdict": "allow"})
        );
    }
}
