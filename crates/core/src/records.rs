//! What Switchyard keeps in Parameter Store, and where. One hierarchy per namespace:
//!
//! ```text
//! {root}/namespaces/{namespace}/settings          NamespaceSettings (JSON), written by the operator
//! {root}/namespaces/{namespace}/active-db         ActivePointer (JSON); its versions are the history
//! {root}/namespaces/{namespace}/lock              LockRecord (JSON), present while an execution runs
//! {root}/namespaces/{namespace}/tracked/{db-id}   TrackedDb (JSON): a database to delete unless active
//! {root}/policies                                 PolicyCatalog (JSON): which policy plugins apply where
//! ```
//!
//! A database is tracked *before* it is created and untracked only when it becomes active or is
//! gone, so no database Switchyard makes can be forgotten, whatever fails and wherever.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AwsError, StepError};
use crate::names::{Namespace, Timestamp};
use crate::ports::{Parameter, Parameters};
use switchyard_releases::ReleaseCatalog;

pub const DEFAULT_ROOT: &str = "/switchyard";

/// Where a deployment's records live; the root is configurable so several Switchyard
/// installations can share an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterLayout {
    root: String,
}

impl Default for ParameterLayout {
    fn default() -> Self {
        ParameterLayout {
            root: DEFAULT_ROOT.to_owned(),
        }
    }
}

impl ParameterLayout {
    /// `root` must start with `/` and not end with one, as Parameter Store hierarchies do.
    pub fn new(root: &str) -> Result<Self, StepError> {
        let ok = root.starts_with('/')
            && !root.ends_with('/')
            && root.len() > 1
            && root
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
        if !ok {
            return Err(StepError::invalid(format!(
                "invalid parameter root {root:?}: expected a path like /switchyard"
            )));
        }
        Ok(ParameterLayout {
            root: root.to_owned(),
        })
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// The path below which every namespace's records live (no trailing `/`, as
    /// `GetParametersByPath` takes it).
    pub fn namespaces(&self) -> String {
        format!("{}/namespaces", self.root)
    }

    fn namespace(&self, ns: &Namespace) -> String {
        format!("{}/namespaces/{ns}", self.root)
    }

    pub fn settings(&self, ns: &Namespace) -> String {
        format!("{}/settings", self.namespace(ns))
    }

    pub fn active_db(&self, ns: &Namespace) -> String {
        format!("{}/active-db", self.namespace(ns))
    }

    pub fn last_deploy(&self, ns: &Namespace) -> String {
        format!("{}/{ns}/last-deploy", self.namespaces())
    }

    pub fn lock(&self, ns: &Namespace) -> String {
        format!("{}/lock", self.namespace(ns))
    }

    pub fn tracked_dir(&self, ns: &Namespace) -> String {
        format!("{}/tracked", self.namespace(ns))
    }

    pub fn tracked(&self, ns: &Namespace, db_instance_id: &str) -> String {
        format!("{}/{db_instance_id}", self.tracked_dir(ns))
    }

    /// The policy catalog: one parameter for the installation, outside every namespace.
    pub fn policies(&self) -> String {
        format!("{}/policies", self.root)
    }

    /// The release catalog: one parameter for the installation (`switchyard release add`).
    pub fn releases(&self) -> String {
        format!("{}/releases", self.root)
    }

    /// The namespace and record a parameter name is, when it is one of a namespace's records.
    pub fn record_of(&self, parameter_name: &str) -> Option<(Namespace, RecordKind)> {
        let rest = parameter_name
            .strip_prefix(&self.namespaces())?
            .strip_prefix('/')?;
        let (ns, record) = rest.split_once('/')?;
        let kind = match record {
            "settings" => RecordKind::Settings,
            "active-db" => RecordKind::ActiveDb,
            "last-deploy" => RecordKind::LastDeploy,
            "lock" => RecordKind::Lock,
            tracked => match tracked.strip_prefix("tracked/") {
                Some(id) if !id.is_empty() && !id.contains('/') => RecordKind::Tracked,
                _ => return None,
            },
        };
        Some((ns.parse().ok()?, kind))
    }
}

/// How a namespace's database and service are shaped. Written by the platform team when the
/// tenant is onboarded; read by every deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSettings {
    pub db_instance_class: String,
    #[serde(default)]
    pub db_subnet_group: Option<String>,
    #[serde(default)]
    pub vpc_security_group_ids: Vec<String>,
    pub cluster: String,
    pub service: String,
    /// The container whose environment carries the database coordinates.
    pub container: String,
    /// Keep a final snapshot when deleting a replaced database. Defaults to on for production tiers.
    #[serde(default)]
    pub final_snapshot: Option<bool>,
    /// The AWS region the namespace's stack lives in, as policies see it (`data-residency`);
    /// unset: the region the installation's calls go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The tenant's plan (e.g. `standard`), for policies that size things by it (`capacity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The application version the tenant runs now (`upgrade-path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The release this tenant stays on (a customer's own schedule, a contract): fleet
    /// rollouts skip it. `switchyard upgrade` of the tenant alone is not stopped by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<String>,
    /// Per-plugin settings for this namespace, by plugin name: each a JSON object whose keys
    /// replace the same keys of the catalog binding's settings (a shallow merge: a key given
    /// here replaces the binding's value whole, nested objects included; keys not given keep
    /// the binding's value). It changes how a bound plugin judges this namespace; it does not
    /// bind a plugin (only the catalog does).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, Value>,
    /// Namespaces outside this tenant's `<customer>-<project>` whose data may be deployed here
    /// (glob patterns, e.g. a shared template project `tpl-0001-*`). Data otherwise moves only
    /// between the tiers of one customer's project.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_sources: Vec<String>,
    /// How long a deploy of this tenant is expected to take, snapshot to stable service
    /// (default 45): preflight judges the steps that move traffic at the time they are expected
    /// to run, so a change window that closes before then says no before anything starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_deploy_minutes: Option<u32>,
    /// Plain settings the application reads from its environment (capacity limits, feature
    /// flags): each a variable of the service's container in every revision a deploy registers,
    /// so the application never asks the control plane on a request path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub app_environment: BTreeMap<String, String>,
    /// Secret settings: variable -> a Parameter Store SecureString (its name or ARN) or a
    /// Secrets Manager ARN. Passed by reference (`secrets[].valueFrom`), resolved by ECS at task
    /// start: no value passes through Switchyard.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub app_secrets: BTreeMap<String, String>,
    /// Give each restored database its own master password, managed by RDS in Secrets Manager,
    /// before it takes traffic (default on): a database restored from another tier's snapshot
    /// would otherwise open with that tier's password. Off for a tenant whose application
    /// authenticates otherwise (IAM database authentication, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_master_password: Option<bool>,
    /// The restored database's setup, over what the database it replaces has (its parameter
    /// and option groups, Multi-AZ, storage, deletion protection, backups, IAM authentication):
    /// a key given here wins (`database.multi_az=false` for a tier that needs no standby).
    #[serde(default, skip_serializing_if = "is_default")]
    pub database: crate::ports::DbConfig,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl NamespaceSettings {
    /// Whether data of `source` (a namespace; `None`: of unknown origin) may land in `target`.
    pub fn admits_data_from(&self, target: &Namespace, source: Option<&Namespace>) -> bool {
        let same_project = source.is_some_and(|source| {
            source.customer() == target.customer() && source.project() == target.project()
        });
        same_project
            || self.allowed_sources.iter().any(|pattern| {
                source.map_or(pattern == "*", |source| {
                    glob_matches(pattern, source.as_str())
                })
            })
    }

    pub fn keeps_final_snapshot(&self, ns: &Namespace) -> bool {
        self.final_snapshot.unwrap_or_else(|| ns.is_production())
    }
}

/// Which database a namespace's application must use: the single source of truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivePointer {
    pub db_instance_id: String,
    pub timestamp: Timestamp,
    pub endpoint: String,
    pub port: i32,
    pub snapshot_id: Option<String>,
    /// The execution that made it active; `None` for a pointer written by hand or by `init`.
    pub execution_id: Option<String>,
    pub activated_at: DateTime<Utc>,
    /// The application version the service runs on this database: the tag of the image the
    /// deploy rolled out (`unknown` for an image without one), or the version before it when
    /// the deploy kept the image. `None` in records written before versions were kept, or
    /// by hand: then the namespace's settings say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// The Secrets Manager secret RDS keeps this database's master password in (the deploy
    /// gave the database its own before making it active); the service takes it by reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_user_secret_arn: Option<String>,
    /// The release whose schema the database holds: the target of the migrations the deploy
    /// ran on it, else the schema of the data it restored. `None` when unknown (then the
    /// application version is the best guess).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
}

/// How the last deploy that held a namespace's lock ended, written as it released the lock:
/// the pointer's history records the deploys that succeeded, this one also a failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastDeploy {
    pub execution_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `succeeded`, or `failed` (the old database kept serving).
    pub outcome: String,
    /// The error name of a failed deploy (`PolicyDenied`, `RolloutFailed`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The version it rolled out, or meant to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
}

/// The holder of a namespace's deploy lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockRecord {
    pub execution_id: String,
    pub acquired_at: DateTime<Utc>,
    /// When the holding execution started: with its id, what tells it from a later run under
    /// a reused name. `None` in locks taken before it was kept (then `acquired_at` must not be
    /// before the run's start), and in the sweep's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_started_at: Option<DateTime<Utc>>,
}

/// Which policy plugins apply to which namespaces, with what settings: the parameter
/// `{root}/policies`, written by the platform team. A missing parameter binds nothing.
///
/// ```json
/// {"bindings": [
///   {"plugin": "snapshot-freshness", "namespaces": ["*-prod"], "settings": {"max_age_hours": 24}},
///   {"plugin": "naming"}
/// ]}
/// ```
///
/// Every binding whose patterns match a namespace applies to it, each with its own settings: a
/// plugin bound twice (say once for `xy-*`, once for `*-prod`) is evaluated once per binding,
/// and the step runs only if every evaluation allows it.
///
/// One parameter holds it all, so it must fit one value: 4 KB as a standard parameter, 8 KB as
/// an advanced one. Per-namespace settings belong in the namespace's own `policies`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyCatalog {
    #[serde(default)]
    pub bindings: Vec<PolicyBinding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBinding {
    /// The plugin's name, as its descriptor gives it (`snapshot-freshness`).
    pub plugin: String,
    /// Glob patterns over namespace names: `*` stands for any run of characters (`xy-*`,
    /// `*-prod`, `xy-0146-qa`). Empty: every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// The plugin's settings for every namespace this binding applies to: a JSON object, which
    /// a namespace's own `policies[plugin]` overlays key by key.
    #[serde(default = "empty_object")]
    pub settings: Value,
    /// What its "no" does: stop the step (`enforce`, the default), be reported as a warning
    /// while the step goes on (`warn`), or only be logged (`audit`). A plugin that cannot
    /// decide fails the step closed only when enforced.
    #[serde(default, skip_serializing_if = "PolicyMode::is_enforce")]
    pub mode: PolicyMode,
    /// The sha256 (hex) of the plugin artifact this binding was written for: any other artifact
    /// under the plugin's name fails the step closed, naming both digests, whatever the mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// How a policy binding's decisions count, as admission controllers let a new rule run before it
/// bites (Gatekeeper's `enforcementAction`, Kubewarden's `monitor`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyMode {
    #[default]
    Enforce,
    Warn,
    Audit,
}

impl PolicyMode {
    pub fn is_enforce(&self) -> bool {
        *self == PolicyMode::Enforce
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyMode::Enforce => "enforce",
            PolicyMode::Warn => "warn",
            PolicyMode::Audit => "audit",
        }
    }
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl PolicyBinding {
    /// A binding of `plugin` to every namespace, without settings.
    pub fn new(plugin: &str) -> Self {
        PolicyBinding {
            plugin: plugin.to_owned(),
            namespaces: Vec::new(),
            settings: empty_object(),
            mode: PolicyMode::Enforce,
            sha256: None,
        }
    }

    pub fn applies_to(&self, ns: &Namespace) -> bool {
        self.namespaces.is_empty()
            || self
                .namespaces
                .iter()
                .any(|pattern| glob_matches(pattern, ns.as_str()))
    }

    /// The settings the plugin gets for `ns`: this binding's settings with the namespace's
    /// `policies[plugin]` laid over them, key by key.
    pub fn settings_for(
        &self,
        ns: &Namespace,
        settings: &NamespaceSettings,
    ) -> Result<Value, StepError> {
        let Value::Object(mut merged) = self.settings.clone() else {
            // `PolicyCatalog::validate` refuses this; kept as an error rather than a guess.
            return Err(StepError::invalid(format!(
                "the settings of the policy binding for {} are not a json object",
                self.plugin
            )));
        };
        match settings.policies.get(&self.plugin) {
            None => {}
            Some(Value::Object(overlay)) => {
                for (key, value) in overlay {
                    merged.insert(key.clone(), value.clone());
                }
            }
            Some(other) => {
                return Err(StepError::invalid(format!(
                    "policies.{} in the settings of {ns} must be a json object, not {other}",
                    self.plugin
                )));
            }
        }
        Ok(Value::Object(merged))
    }
}

impl PolicyCatalog {
    /// The bindings that apply to `ns`, in catalog order.
    pub fn bindings_for(&self, ns: &Namespace) -> Vec<&PolicyBinding> {
        self.bindings.iter().filter(|b| b.applies_to(ns)).collect()
    }

    /// Refuses what would make a binding mean something other than what its author meant: an
    /// unnamed plugin, settings that are not an object, a pattern that can match no namespace.
    pub fn validate(&self) -> Result<(), String> {
        for (index, binding) in self.bindings.iter().enumerate() {
            let plugin = &binding.plugin;
            let name_ok = !plugin.is_empty()
                && plugin
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !name_ok {
                return Err(format!(
                    "binding {index}: plugin name {plugin:?} is not a kebab-case name"
                ));
            }
            if !binding.settings.is_object() {
                return Err(format!(
                    "binding {index} ({plugin}): settings must be a json object, not {}",
                    binding.settings
                ));
            }
            if let Some(digest) = &binding.sha256
                && !(digest.len() == 64
                    && digest
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            {
                return Err(format!(
                    "binding {index} ({plugin}): sha256 {digest:?} is not 64 lowercase hex digits"
                ));
            }
            for pattern in &binding.namespaces {
                let pattern_ok = !pattern.is_empty()
                    && pattern.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'*'
                    });
                if !pattern_ok {
                    return Err(format!(
                        "binding {index} ({plugin}): namespace pattern {pattern:?} may hold only \
                         lowercase letters, digits, '-' and '*'"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none included)
/// and every other character itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    // `split` always yields a first part: the literal prefix before any `*`.
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: the whole text must be the prefix.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Why a database is tracked for deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrackedRole {
    /// Being restored by `execution_id`; promoted (untracked) by the swap, or deleted by rollback.
    Candidate,
    /// Replaced by a newer database; deleted by clean-up.
    Retired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedDb {
    pub db_instance_id: String,
    pub role: TrackedRole,
    pub execution_id: String,
    pub since: DateTime<Utc>,
}

fn parse_record<T: for<'de> Deserialize<'de>>(parameter: &Parameter) -> Result<T, StepError> {
    serde_json::from_str(&parameter.value).map_err(|err| {
        StepError::invalid(format!(
            "parameter {} (version {}) is not a valid record: {err}",
            parameter.name, parameter.version
        ))
    })
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StepError> {
    serde_json::to_string(value).map_err(|err| StepError::Internal(format!("serialize: {err}")))
}

/// Which of a namespace's records a parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Settings,
    ActiveDb,
    LastDeploy,
    Lock,
    Tracked,
}

/// One registered namespace's records as a listing of the namespaces' tree found them
/// ([`Records::every_namespace`]), parsed when asked for.
#[derive(Debug, Clone)]
pub struct ListedRecords {
    settings: Parameter,
    active_db: Option<Parameter>,
    last_deploy: Option<Parameter>,
    lock: Option<Parameter>,
    tracked: Vec<Parameter>,
}

/// What the listing found under one namespace, settings or not.
#[derive(Default)]
struct Found {
    settings: Option<Parameter>,
    active_db: Option<Parameter>,
    last_deploy: Option<Parameter>,
    lock: Option<Parameter>,
    tracked: Vec<Parameter>,
}

impl ListedRecords {
    pub fn settings(&self) -> Result<NamespaceSettings, StepError> {
        parse_record(&self.settings)
    }

    /// The active pointer and its Parameter Store version.
    pub fn pointer(&self) -> Result<Option<(ActivePointer, i64)>, StepError> {
        self.active_db
            .as_ref()
            .map(|parameter| Ok((parse_record(parameter)?, parameter.version)))
            .transpose()
    }

    pub fn last_deploy(&self) -> Result<Option<LastDeploy>, StepError> {
        self.last_deploy.as_ref().map(parse_record).transpose()
    }

    pub fn lock(&self) -> Result<Option<LockRecord>, StepError> {
        self.lock.as_ref().map(parse_record).transpose()
    }

    pub fn tracked(&self) -> Result<Vec<TrackedDb>, StepError> {
        self.tracked.iter().map(parse_record).collect()
    }
}

/// Typed access to the records above.
pub struct Records<'a> {
    pub params: &'a dyn Parameters,
    pub layout: &'a ParameterLayout,
}

impl Records<'_> {
    pub async fn settings(&self, ns: &Namespace) -> Result<NamespaceSettings, StepError> {
        let name = self.layout.settings(ns);
        match self.params.get_parameter(&name).await? {
            Some(parameter) => parse_record(&parameter),
            None => Err(StepError::invalid(format!(
                "namespace {ns} is not registered: parameter {name} does not exist"
            ))),
        }
    }

    pub async fn put_settings(
        &self,
        ns: &Namespace,
        settings: &NamespaceSettings,
    ) -> Result<i64, StepError> {
        Ok(self
            .params
            .put_parameter(&self.layout.settings(ns), &to_json(settings)?, true)
            .await?)
    }

    /// The active pointer and its Parameter Store version.
    pub async fn pointer(&self, ns: &Namespace) -> Result<Option<(ActivePointer, i64)>, StepError> {
        match self
            .params
            .get_parameter(&self.layout.active_db(ns))
            .await?
        {
            Some(parameter) => Ok(Some((parse_record(&parameter)?, parameter.version))),
            None => Ok(None),
        }
    }

    /// Every pointer this namespace ever had that Parameter Store still keeps, oldest first.
    pub async fn pointer_history(
        &self,
        ns: &Namespace,
    ) -> Result<Vec<(ActivePointer, i64)>, StepError> {
        let history = self
            .params
            .parameter_history(&self.layout.active_db(ns))
            .await?;
        history
            .iter()
            .map(|p| Ok((parse_record(p)?, p.version)))
            .collect()
    }

    /// Writes the pointer and returns its new version. Without a `previous_version` the pointer
    /// must not exist yet.
    pub async fn put_pointer(
        &self,
        ns: &Namespace,
        pointer: &ActivePointer,
        previous_version: Option<i64>,
    ) -> Result<i64, StepError> {
        let name = self.layout.active_db(ns);
        let overwrite = previous_version.is_some();
        match self
            .params
            .put_parameter(&name, &to_json(pointer)?, overwrite)
            .await
        {
            Ok(version) => Ok(version),
            Err(AwsError::AlreadyExists { .. }) => Err(StepError::PointerConflict {
                namespace: ns.to_string(),
                detail: format!("{name} appeared while this execution expected none"),
            }),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn delete_pointer(&self, ns: &Namespace) -> Result<bool, StepError> {
        Ok(self
            .params
            .delete_parameter(&self.layout.active_db(ns))
            .await?)
    }

    pub async fn last_deploy(&self, ns: &Namespace) -> Result<Option<LastDeploy>, StepError> {
        match self
            .params
            .get_parameter(&self.layout.last_deploy(ns))
            .await?
        {
            Some(parameter) => Ok(Some(parse_record(&parameter)?)),
            None => Ok(None),
        }
    }

    pub async fn put_last_deploy(
        &self,
        ns: &Namespace,
        last: &LastDeploy,
    ) -> Result<(), StepError> {
        self.params
            .put_parameter(&self.layout.last_deploy(ns), &to_json(last)?, true)
            .await?;
        Ok(())
    }

    pub async fn lock(&self, ns: &Namespace) -> Result<Option<LockRecord>, StepError> {
        match self.params.get_parameter(&self.layout.lock(ns)).await? {
            Some(parameter) => Ok(Some(parse_record(&parameter)?)),
            None => Ok(None),
        }
    }

    /// Create-only: Parameter Store refuses a second create, which makes it a lock without a
    /// compare-and-swap. Returns the holder when someone else has it.
    pub async fn try_lock(
        &self,
        ns: &Namespace,
        record: &LockRecord,
    ) -> Result<Result<(), LockRecord>, StepError> {
        match self
            .params
            .put_parameter(&self.layout.lock(ns), &to_json(record)?, false)
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(AwsError::AlreadyExists { .. }) => match self.lock(ns).await? {
                Some(holder) => Ok(Err(holder)),
                // Released between our put and our get: the caller may simply try again.
                None => Err(StepError::Transient(AwsError::Unavailable {
                    message: format!("lock of {ns} changed hands while acquiring it"),
                })),
            },
            Err(err) => Err(err.into()),
        }
    }

    pub async fn unlock(&self, ns: &Namespace) -> Result<bool, StepError> {
        Ok(self.params.delete_parameter(&self.layout.lock(ns)).await?)
    }

    pub async fn track(&self, ns: &Namespace, tracked: &TrackedDb) -> Result<(), StepError> {
        self.params
            .put_parameter(
                &self.layout.tracked(ns, &tracked.db_instance_id),
                &to_json(tracked)?,
                true,
            )
            .await?;
        Ok(())
    }

    pub async fn untrack(&self, ns: &Namespace, db_instance_id: &str) -> Result<bool, StepError> {
        Ok(self
            .params
            .delete_parameter(&self.layout.tracked(ns, db_instance_id))
            .await?)
    }

    pub async fn tracked(&self, ns: &Namespace) -> Result<Vec<TrackedDb>, StepError> {
        let parameters = self
            .params
            .parameters_by_path(&self.layout.tracked_dir(ns))
            .await?;
        parameters.iter().map(parse_record).collect()
    }

    /// The policy catalog; a missing parameter binds no policy anywhere.
    pub async fn policy_catalog(&self) -> Result<PolicyCatalog, StepError> {
        let Some(parameter) = self.params.get_parameter(&self.layout.policies()).await? else {
            return Ok(PolicyCatalog::default());
        };
        let catalog: PolicyCatalog = parse_record(&parameter)?;
        catalog.validate().map_err(|why| {
            StepError::invalid(format!(
                "parameter {} (version {}) is not a valid policy catalog: {why}",
                parameter.name, parameter.version
            ))
        })?;
        Ok(catalog)
    }

    /// Writes the catalog (after validating it) and returns the parameter's new version.
    pub async fn put_policy_catalog(&self, catalog: &PolicyCatalog) -> Result<i64, StepError> {
        catalog
            .validate()
            .map_err(|why| StepError::invalid(format!("invalid policy catalog: {why}")))?;
        Ok(self
            .params
            .put_parameter(&self.layout.policies(), &to_json(catalog)?, true)
            .await?)
    }

    /// The release catalog and its parameter version; `None` when none was recorded.
    pub async fn release_catalog(&self) -> Result<Option<(ReleaseCatalog, i64)>, StepError> {
        let Some(parameter) = self.params.get_parameter(&self.layout.releases()).await? else {
            return Ok(None);
        };
        let catalog = ReleaseCatalog::from_json(&parameter.value).map_err(|err| {
            StepError::InvalidReleaseCatalog(format!(
                "parameter {} (version {}): {err}",
                parameter.name, parameter.version
            ))
        })?;
        Ok(Some((catalog, parameter.version)))
    }

    /// Writes the catalog (validated by construction); returns the parameter's new version.
    pub async fn put_release_catalog(&self, catalog: &ReleaseCatalog) -> Result<i64, StepError> {
        Ok(self
            .params
            .put_parameter(&self.layout.releases(), &catalog.to_json(), true)
            .await?)
    }

    /// Every namespace with settings and its records, from one recursive read of the namespaces'
    /// tree (`GetParametersByPath`, ten parameters a page): what `status` shows a fleet with,
    /// rather than five reads per tenant. A record that does not parse is that namespace's error,
    /// found when it is read from the listing.
    pub async fn every_namespace(&self) -> Result<BTreeMap<Namespace, ListedRecords>, StepError> {
        let parameters = self
            .params
            .parameters_by_path(&self.layout.namespaces())
            .await?;
        let mut found: BTreeMap<Namespace, Found> = BTreeMap::new();
        for parameter in parameters {
            let Some((ns, record)) = self.layout.record_of(&parameter.name) else {
                continue;
            };
            let entry = found.entry(ns).or_default();
            match record {
                RecordKind::Settings => entry.settings = Some(parameter),
                RecordKind::ActiveDb => entry.active_db = Some(parameter),
                RecordKind::LastDeploy => entry.last_deploy = Some(parameter),
                RecordKind::Lock => entry.lock = Some(parameter),
                RecordKind::Tracked => entry.tracked.push(parameter),
            }
        }
        // A namespace is registered by its settings; records left without them are not listed.
        Ok(found
            .into_iter()
            .filter_map(|(ns, found)| {
                Some((
                    ns,
                    ListedRecords {
                        settings: found.settings?,
                        active_db: found.active_db,
                        last_deploy: found.last_deploy,
                        lock: found.lock,
                        tracked: found.tracked,
                    },
                ))
            })
            .collect())
    }

    /// Every namespace with settings, sorted.
    pub async fn namespaces(&self) -> Result<Vec<Namespace>, StepError> {
        Ok(self.every_namespace().await?.into_keys().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_paths() {
        let layout = ParameterLayout::default();
        let ns: Namespace = "xy-0146-qa".parse().unwrap();
        assert_eq!(
            layout.active_db(&ns),
            "/switchyard/namespaces/xy-0146-qa/active-db"
        );
        assert_eq!(layout.lock(&ns), "/switchyard/namespaces/xy-0146-qa/lock");
        assert_eq!(
            layout.tracked(&ns, "xy-0146-qa-20261125-222526"),
            "/switchyard/namespaces/xy-0146-qa/tracked/xy-0146-qa-20261125-222526"
        );
        assert_eq!(
            layout.record_of("/switchyard/namespaces/xy-0146-qa/settings"),
            Some((ns.clone(), RecordKind::Settings))
        );
        assert_eq!(
            layout.record_of("/switchyard/namespaces/xy-0146-qa/lock"),
            Some((ns, RecordKind::Lock))
        );
        assert_eq!(
            layout.record_of("/switchyard/namespaces/bad/settings"),
            None
        );
    }

    #[test]
    fn every_record_path_reads_back_as_its_namespace_and_kind() {
        let layout = ParameterLayout::new("/platform/switchyard").unwrap();
        let ns: Namespace = "xy-0146-qa".parse().unwrap();
        let paths = [
            (layout.settings(&ns), RecordKind::Settings),
            (layout.active_db(&ns), RecordKind::ActiveDb),
            (layout.last_deploy(&ns), RecordKind::LastDeploy),
            (layout.lock(&ns), RecordKind::Lock),
            (
                layout.tracked(&ns, "xy-0146-qa-20261125-222526"),
                RecordKind::Tracked,
            ),
        ];
        for (path, kind) in paths {
            assert_eq!(layout.record_of(&path), Some((ns.clone(), kind)), "{path}");
        }
        for other in [
            "/platform/switchyard/policies",
            "/platform/switchyard/namespaces/xy-0146-qa/notes",
            "/platform/switchyard/namespaces/xy-0146-qa/tracked/",
            "/platform/switchyard/namespaces/xy-0146-qa/tracked/a/b",
            "/platform/switchyard/namespaces/bad/settings",
            "/switchyard/namespaces/xy-0146-qa/settings",
        ] {
            assert_eq!(layout.record_of(other), None, "{other}");
        }
    }

    #[test]
    fn layout_root_is_validated() {
        assert!(ParameterLayout::new("/platform/switchyard").is_ok());
        for bad in ["", "/", "switchyard", "/switchyard/", "/a b"] {
            assert!(ParameterLayout::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn globs_match_namespaces() {
        for (pattern, text, expected) in [
            ("xy-*", "xy-0146-prod", true),
            ("xy-*", "ab-0146-prod", false),
            ("*-prod", "xy-0146-prod", true),
            ("*-prod", "xy-0146-production", false),
            ("*", "xy-0146-qa", true),
            ("xy-0146-qa", "xy-0146-qa", true),
            ("xy-0146-qa", "xy-0146-qa2", false),
            ("xy-*-qa", "xy-0146-qa", true),
            ("xy-*-qa", "xy-0146-prod", false),
            ("*0146*", "xy-0146-qa", true),
            ("x*y*z", "xyz", true),
            ("x*y*z", "xzy", false),
            ("a*a", "a", false),
            ("**", "", true),
        ] {
            assert_eq!(glob_matches(pattern, text), expected, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn bindings_select_namespaces_and_overlay_settings() {
        let catalog: PolicyCatalog = serde_json::from_str(
            r#"{"bindings": [
                {"plugin": "freshness", "namespaces": ["*-prod"], "settings": {"max_age_hours": 24, "warn": {"a": 1}}},
                {"plugin": "naming"}
            ]}"#,
        )
        .unwrap();
        catalog.validate().unwrap();
        let prod: Namespace = "xy-0146-prod".parse().unwrap();
        let qa: Namespace = "xy-0146-qa".parse().unwrap();
        let names = |ns| -> Vec<String> {
            catalog
                .bindings_for(ns)
                .iter()
                .map(|b| b.plugin.clone())
                .collect()
        };
        assert_eq!(names(&prod), ["freshness", "naming"]);
        assert_eq!(names(&qa), ["naming"]);
        assert_eq!(catalog.bindings[1].settings, serde_json::json!({}));

        let mut settings: NamespaceSettings = serde_json::from_str(
            r#"{"db_instance_class":"x","cluster":"c","service":"s","container":"app",
                "plan":"gold","policies":{"freshness":{"max_age_hours":72,"warn":{"b":2}}}}"#,
        )
        .unwrap();
        assert_eq!(settings.plan.as_deref(), Some("gold"));
        assert_eq!(
            catalog.bindings[0].settings_for(&prod, &settings).unwrap(),
            serde_json::json!({"max_age_hours": 72, "warn": {"b": 2}}),
            "shallow: a nested object is replaced whole"
        );
        assert_eq!(
            catalog.bindings[1].settings_for(&prod, &settings).unwrap(),
            serde_json::json!({})
        );
        settings
            .policies
            .insert("naming".into(), serde_json::json!([1]));
        let err = catalog.bindings[1]
            .settings_for(&prod, &settings)
            .unwrap_err();
        assert!(err.to_string().contains("policies.naming"), "{err}");
    }

    #[test]
    fn bad_catalogs_are_refused() {
        for (text, fragment) in [
            (r#"{"bindings": [{"plugin": "Bad Name"}]}"#, "\"Bad Name\""),
            (r#"{"bindings": [{"plugin": "a", "settings": 3}]}"#, "not 3"),
            (
                r#"{"bindings": [{"plugin": "a", "namespaces": ["xy/*"]}]}"#,
                "\"xy/*\"",
            ),
            (
                r#"{"bindings": [{"plugin": "a", "namespaces": [""]}]}"#,
                "\"\"",
            ),
        ] {
            let catalog: PolicyCatalog = serde_json::from_str(text).unwrap();
            let err = catalog.validate().unwrap_err();
            assert!(err.contains(fragment), "{text}: {err}");
        }
        assert!(
            serde_json::from_str::<PolicyCatalog>(
                r#"{"bindings": [{"plugin": "a", "namespace": ["x"]}]}"#
            )
            .is_err(),
            "a misspelt key is refused, not ignored"
        );
    }

    #[test]
    fn settings_without_the_new_fields_serialize_as_before() {
        let text = r#"{"db_instance_class":"x","db_subnet_group":null,"vpc_security_group_ids":[],"cluster":"c","service":"s","container":"app","final_snapshot":null}"#;
        let settings: NamespaceSettings = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&settings).unwrap(), text);
    }

    #[test]
    fn settings_default_final_snapshot_by_tier() {
        let settings: NamespaceSettings = serde_json::from_str(
            r#"{"db_instance_class":"db.t4g.micro","cluster":"c","service":"s","container":"app"}"#,
        )
        .unwrap();
        assert!(settings.keeps_final_snapshot(&"xy-0146-prod".parse().unwrap()));
        assert!(!settings.keeps_final_snapshot(&"xy-0146-qa".parse().unwrap()));
        let typo = serde_json::from_str::<NamespaceSettings>(
            r#"{"db_instance_class":"x","cluster":"c","service":"s","container":"app","final_snapshots":true}"#,
        );
        assert!(typo.is_err());
    }
}
