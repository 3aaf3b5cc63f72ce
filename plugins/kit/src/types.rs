//! The contract's records as plain Rust values (`plugins/wit/policy.wit`, documented there field
//! by field). Their JSON form is the one `switchyard-core` uses (`PolicyContext`): snake_case
//! fields, kebab-case steps, every field optional, unknown fields refused.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// The mutating steps a policy can check (WIT `step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Snapshot,
    CreateDatabase,
    SwapPointer,
    DeployService,
    Cleanup,
}

impl Step {
    /// Every step, for a policy that checks them all.
    pub const ALL: &'static [Step] = &[
        Step::Snapshot,
        Step::CreateDatabase,
        Step::SwapPointer,
        Step::DeployService,
        Step::Cleanup,
    ];

    /// The WIT (kebab-case) name: `create-database`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Step::Snapshot => "snapshot",
            Step::CreateDatabase => "create-database",
            Step::SwapPointer => "swap-pointer",
            Step::DeployService => "deploy-service",
            Step::Cleanup => "cleanup",
        }
    }

    /// The step named `name` (kebab-case), if any.
    pub fn from_name(name: &str) -> Option<Step> {
        Step::ALL.iter().copied().find(|step| step.as_str() == name)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A database snapshot (WIT `snapshot-facts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotFacts {
    pub id: String,
    pub source_db: String,
    /// Seconds since the Unix epoch (UTC).
    pub created_at: i64,
    pub age_seconds: u64,
    pub allocated_storage_gib: u32,
    pub engine: String,
    pub engine_version: String,
    pub taken_by_this_execution: bool,
}

/// A database instance the step creates, changes or deletes (WIT `database-facts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// The service change of a `deploy-service` step (WIT `service-facts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceFacts {
    pub cluster: String,
    pub service: String,
    pub container: String,
    pub current_image: String,
    pub new_image: String,
}

/// Everything a policy may look at (WIT `context`). Fields a step does not have are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Context {
    pub step: Step,
    /// `<customer>-<projectnum>-<env>`; see [`crate::Namespace`] to take it apart.
    pub namespace: String,
    pub customer: String,
    pub project: String,
    pub environment: String,
    pub region: String,
    /// Now, seconds since the Unix epoch (UTC): the only clock a plugin has. See
    /// [`Context::now_utc`].
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
    /// This plugin's settings as JSON text (`{}` when none); read them with
    /// [`Context::settings`]. In fixtures, a JSON object.
    #[serde(
        deserialize_with = "settings_from_json",
        serialize_with = "settings_to_json"
    )]
    pub settings: String,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            step: Step::CreateDatabase,
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
            settings: "{}".to_owned(),
        }
    }
}

impl Context {
    /// The settings, parsed into the author's type. Use `#[serde(default)]` for optional
    /// settings and `#[serde(deny_unknown_fields)]` so that a misspelt one is caught.
    ///
    /// The error is one sentence naming the offending setting (`setting `max_age_hours.prod`:
    /// invalid type: string "x", expected u32`), meant to be returned as a deny:
    ///
    /// ```ignore
    /// let settings: Settings = match ctx.settings() {
    ///     Ok(settings) => settings,
    ///     Err(reason) => return Decision::deny(reason),
    /// };
    /// ```
    pub fn settings<T: DeserializeOwned>(&self) -> Result<T, String> {
        let text = if self.settings.trim().is_empty() {
            "{}"
        } else {
            &self.settings
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let what = strip_position(&inner.to_string());
            if inner.is_syntax() || inner.is_eof() {
                format!("invalid settings: not valid JSON: {what}")
            } else if path.is_empty() || path == "." || path == "?" {
                format!("invalid settings: {what}")
            } else {
                format!("invalid setting `{path}`: {what}")
            }
        })?;
        de.end()
            .map_err(|err| format!("invalid settings: {}", strip_position(&err.to_string())))?;
        Ok(value)
    }

    /// `now` as a UTC calendar date and time.
    pub fn now_utc(&self) -> crate::DateTime {
        crate::DateTime::from_unix(self.now)
    }

    /// The namespace, taken apart (`None` when it is not `<customer>-<projectnum>-<env>`).
    pub fn parsed_namespace(&self) -> Option<crate::Namespace<'_>> {
        crate::Namespace::parse(&self.namespace)
    }
}

/// serde_json appends " at line 1 column 42" to its messages; a reason reads better without.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn settings_from_json<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        // A string is taken to be the JSON text itself, as the WIT field carries it.
        serde_json::Value::String(text) => text,
        serde_json::Value::Null => "{}".to_owned(),
        other => other.to_string(),
    })
}

fn settings_to_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => value.serialize(s),
        Err(_) => s.serialize_str(text),
    }
}

/// What a policy says (WIT `verdict`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The step may go ahead.
    Allow,
    /// The step must not run; each reason is one sentence naming the offending value.
    Deny(Vec<String>),
}

/// A verdict and warnings (WIT `decision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Shown to the operator even when the step is allowed.
    pub warnings: Vec<String>,
}

impl Decision {
    /// The step may go ahead.
    pub fn allow() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            warnings: Vec::new(),
        }
    }

    /// The step must not run, for one reason.
    pub fn deny(reason: impl Into<String>) -> Decision {
        Decision {
            verdict: Verdict::Deny(vec![reason.into()]),
            warnings: Vec::new(),
        }
    }

    /// Adds a warning.
    pub fn with_warning(mut self, warning: impl Into<String>) -> Decision {
        self.warnings.push(warning.into());
        self
    }

    pub fn is_allow(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// The deny reasons (empty for an allow).
    pub fn reasons(&self) -> &[String] {
        match &self.verdict {
            Verdict::Allow => &[],
            Verdict::Deny(reasons) => reasons,
        }
    }
}

/// Collects the outcome of several rules: any denial makes the decision a deny with every
/// reason; warnings are kept either way.
///
/// ```ignore
/// let mut checks = Checks::new();
/// checks.deny_if(age > limit, || format!("snapshot {id} is {age} h old; the limit is {limit} h"));
/// checks.warn_if(age > limit * 8 / 10, || format!("snapshot {id} is nearly too old"));
/// checks.finish()
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    reasons: Vec<String>,
    warnings: Vec<String>,
}

impl Checks {
    pub fn new() -> Checks {
        Checks::default()
    }

    /// Denies, for this reason.
    pub fn deny(&mut self, reason: impl Into<String>) -> &mut Checks {
        self.reasons.push(reason.into());
        self
    }

    /// Denies when `cond` holds; the reason is only built then.
    pub fn deny_if(&mut self, cond: bool, reason: impl FnOnce() -> String) -> &mut Checks {
        if cond {
            self.reasons.push(reason());
        }
        self
    }

    /// Adds a warning.
    pub fn warn(&mut self, warning: impl Into<String>) -> &mut Checks {
        self.warnings.push(warning.into());
        self
    }

    /// Adds a warning when `cond` holds.
    pub fn warn_if(&mut self, cond: bool, warning: impl FnOnce() -> String) -> &mut Checks {
        if cond {
            self.warnings.push(warning());
        }
        self
    }

    /// Whether some rule has denied so far.
    pub fn denied(&self) -> bool {
        !self.reasons.is_empty()
    }

    /// Allow if nothing denied, else deny with every reason; warnings either way.
    pub fn finish(self) -> Decision {
        Decision {
            verdict: if self.reasons.is_empty() {
                Verdict::Allow
            } else {
                Verdict::Deny(self.reasons)
            },
            warnings: self.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_reads_core_json() {
        let ctx: Context = serde_json::from_str(
            r#"{"step": "swap-pointer", "namespace": "xy-0146-prod",
                "target_db": {"id": "xy-0146-prod-20261101000000", "active": true},
                "settings": {"a": [1, 2]}}"#,
        )
        .unwrap();
        assert_eq!(ctx.step, Step::SwapPointer);
        assert!(ctx.target_db.as_ref().unwrap().active);
        assert_eq!(ctx.settings, r#"{"a":[1,2]}"#);
        assert_eq!(Context::default().settings, "{}");
        assert!(serde_json::from_str::<Context>(r#"{"stepp": "cleanup"}"#).is_err());
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        max_age_hours: std::collections::BTreeMap<String, u32>,
    }

    #[test]
    fn settings_errors_name_the_setting() {
        let with = |settings: &str| Context {
            settings: settings.to_owned(),
            ..Context::default()
        };
        let ok: Settings = with(r#"{"max_age_hours": {"prod": 24}}"#)
            .settings()
            .unwrap();
        assert_eq!(ok.max_age_hours["prod"], 24);
        let ok: Settings = with("").settings().unwrap();
        assert!(ok.max_age_hours.is_empty());
        let err = with(r#"{"max_age_hours": {"prod": "x"}}"#)
            .settings::<Settings>()
            .unwrap_err();
        assert_eq!(
            err,
            r#"invalid setting `max_age_hours.prod`: invalid type: string "x", expected u32"#
        );
        let err = with(r#"{"max_age_hour": {}}"#)
            .settings::<Settings>()
            .unwrap_err();
        assert!(err.contains("unknown field `max_age_hour`"), "{err}");
        let err = with(r#"{"#).settings::<Settings>().unwrap_err();
        assert!(err.starts_with("invalid settings: "), "{err}");
    }

    #[test]
    fn checks_collect() {
        let mut checks = Checks::new();
        checks.deny_if(false, || "no".into()).warn("careful");
        assert!(!checks.denied());
        assert_eq!(
            checks.clone().finish(),
            Decision::allow().with_warning("careful")
        );
        checks.deny_if(true, || "first".into()).deny("second");
        let decision = checks.finish();
        assert_eq!(decision.reasons(), ["first", "second"]);
        assert_eq!(decision.warnings, ["careful"]);
    }
}
