//! What Switchyard keeps in Parameter Store, and where. One hierarchy per namespace:
//!
//! ```text
//! {root}/namespaces/{namespace}/settings          NamespaceSettings (JSON), written by the operator
//! {root}/namespaces/{namespace}/active-db         ActivePointer (JSON); its versions are the history
//! {root}/namespaces/{namespace}/lock              LockRecord (JSON), present while an execution runs
//! {root}/namespaces/{namespace}/tracked/{db-id}   TrackedDb (JSON): a database to delete unless active
//! ```
//!
//! A database is tracked *before* it is created and untracked only when it becomes active or is
//! gone, so no database Switchyard makes can be forgotten, whatever fails and wherever.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{AwsError, StepError};
use crate::names::{Namespace, Timestamp};
use crate::ports::{Parameter, Parameters};

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

    pub fn lock(&self, ns: &Namespace) -> String {
        format!("{}/lock", self.namespace(ns))
    }

    pub fn tracked_dir(&self, ns: &Namespace) -> String {
        format!("{}/tracked", self.namespace(ns))
    }

    pub fn tracked(&self, ns: &Namespace, db_instance_id: &str) -> String {
        format!("{}/{db_instance_id}", self.tracked_dir(ns))
    }

    /// The namespace a parameter name belongs to, when it is a settings parameter.
    pub fn namespace_of_settings(&self, parameter_name: &str) -> Option<Namespace> {
        parameter_name
            .strip_prefix(&self.namespaces())?
            .strip_prefix('/')?
            .strip_suffix("/settings")?
            .parse()
            .ok()
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
}

impl NamespaceSettings {
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
}

/// The holder of a namespace's deploy lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockRecord {
    pub execution_id: String,
    pub acquired_at: DateTime<Utc>,
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

    /// Every namespace with settings, sorted.
    pub async fn namespaces(&self) -> Result<Vec<Namespace>, StepError> {
        let parameters = self
            .params
            .parameters_by_path(&self.layout.namespaces())
            .await?;
        let mut namespaces: Vec<Namespace> = parameters
            .iter()
            .filter_map(|p| self.layout.namespace_of_settings(&p.name))
            .collect();
        namespaces.sort();
        namespaces.dedup();
        Ok(namespaces)
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
            layout.namespace_of_settings("/switchyard/namespaces/xy-0146-qa/settings"),
            Some(ns)
        );
        assert_eq!(
            layout.namespace_of_settings("/switchyard/namespaces/xy-0146-qa/lock"),
            None
        );
        assert_eq!(
            layout.namespace_of_settings("/switchyard/namespaces/bad/settings"),
            None
        );
    }

    #[test]
    fn layout_root_is_validated() {
        assert!(ParameterLayout::new("/platform/switchyard").is_ok());
        for bad in ["", "/", "switchyard", "/switchyard/", "/a b"] {
            assert!(ParameterLayout::new(bad).is_err(), "{bad:?}");
        }
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
