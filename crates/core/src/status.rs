//! The status view of every namespace: what is active, what runs, what is due for deletion, and
//! what nobody accounts for.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{AwsError, StepError};
use crate::names::{Namespace, Timestamp};
use crate::ports::{Aws, DbInstance, tag};
use crate::records::{LastDeploy, ParameterLayout, Records, TrackedDb, TrackedRole};
use crate::steps::service::env_var;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamespaceStatus {
    pub namespace: String,
    /// The database the pointer names.
    pub active_db: Option<String>,
    pub active_db_status: Option<String>,
    pub timestamp: Option<Timestamp>,
    pub snapshot_id: Option<String>,
    pub pointer_version: Option<i64>,
    pub activated_at: Option<DateTime<Utc>>,
    /// The execution of the last deploy that made a database active.
    pub last_execution: Option<String>,
    /// The application version the tenant runs: as its pointer records it (the last deploy's
    /// image tag), else as its settings say.
    pub app_version: Option<String>,
    /// The release whose schema its database holds (the last migrations' target, else the
    /// restored data's own), when recorded.
    #[serde(default)]
    pub schema_version: Option<String>,
    pub service: String,
    pub service_revision: Option<i32>,
    pub task_definition_arn: Option<String>,
    pub rollout_state: Option<String>,
    pub locked_by: Option<String>,
    /// How the last deploy that held the lock ended (a failed one included).
    pub last_deploy: Option<LastDeploy>,
    /// Replaced databases awaiting clean-up.
    pub due_for_deletion: Vec<String>,
    /// Databases being created by the execution holding the lock, or left by one that died.
    pub candidates: Vec<String>,
    /// Databases tagged for this namespace that are neither active nor tracked.
    pub orphans: Vec<String>,
    /// Where the running service and the pointer disagree.
    pub drift: Vec<String>,
    /// Why this namespace could not be read (a record that does not parse, say); the others are
    /// still shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl NamespaceStatus {
    fn new(ns: &Namespace, service: String) -> Self {
        NamespaceStatus {
            namespace: ns.to_string(),
            active_db: None,
            active_db_status: None,
            timestamp: None,
            snapshot_id: None,
            pointer_version: None,
            activated_at: None,
            last_execution: None,
            app_version: None,
            schema_version: None,
            service,
            service_revision: None,
            task_definition_arn: None,
            rollout_state: None,
            locked_by: None,
            last_deploy: None,
            due_for_deletion: Vec::new(),
            candidates: Vec::new(),
            orphans: Vec::new(),
            drift: Vec::new(),
            error: None,
        }
    }
}

/// The databases tagged for `ns` that are neither `active` nor `tracked`: what nothing accounts
/// for. `status` lists them; the invariants forbid them.
pub(crate) fn orphans<'a>(
    ns: &Namespace,
    tracked: &[TrackedDb],
    active: Option<&str>,
    instances: &'a [DbInstance],
) -> impl Iterator<Item = &'a DbInstance> {
    let accounted: BTreeSet<String> = tracked
        .iter()
        .map(|t| t.db_instance_id.clone())
        .chain(active.map(str::to_owned))
        .collect();
    let ns = ns.as_str().to_owned();
    instances.iter().filter(move |instance| {
        instance.tags.get(tag::NAMESPACE) == Some(&ns) && !accounted.contains(&instance.id)
    })
}

/// One entry per registered namespace, sorted by name.
pub async fn namespace_status(
    aws: &dyn Aws,
    layout: &ParameterLayout,
) -> Result<Vec<NamespaceStatus>, StepError> {
    let records = Records {
        params: aws,
        layout,
    };
    let instances = aws.list_dbs().await?;
    // Indexed once: a fleet of thousands must not walk every database for every tenant.
    let by_id: HashMap<&str, &DbInstance> = instances.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut by_namespace: HashMap<&str, Vec<DbInstance>> = HashMap::new();
    for instance in &instances {
        if let Some(ns) = instance.tags.get(tag::NAMESPACE) {
            by_namespace
                .entry(ns.as_str())
                .or_default()
                .push(instance.clone());
        }
    }
    let mut out = Vec::new();
    for ns in records.namespaces().await? {
        let own = by_namespace
            .get(ns.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        match one(aws, &records, &ns, own, &by_id).await {
            Ok(status) => out.push(status),
            // AWS not answering now is not this namespace's fault: the whole view fails, and a
            // retry may pass.
            Err(err @ StepError::Transient(_)) => return Err(err),
            Err(err) => {
                let mut broken = NamespaceStatus::new(&ns, String::new());
                broken.error = Some(err.to_string());
                out.push(broken);
            }
        }
    }
    Ok(out)
}

/// `own`: the databases tagged for `ns`; `by_id`: every database.
async fn one(
    aws: &dyn Aws,
    records: &Records<'_>,
    ns: &Namespace,
    own: &[DbInstance],
    by_id: &HashMap<&str, &DbInstance>,
) -> Result<NamespaceStatus, StepError> {
    let settings = records.settings(ns).await?;
    let pointer = records.pointer(ns).await?;
    let tracked = records.tracked(ns).await?;
    let lock = records.lock(ns).await?;
    let mut status = NamespaceStatus::new(ns, settings.service.clone());
    status.locked_by = lock.map(|l| l.execution_id);
    status.last_deploy = records.last_deploy(ns).await?;
    status.app_version = pointer
        .as_ref()
        .and_then(|(p, _)| p.app_version.clone())
        .or_else(|| settings.version.clone());
    status.schema_version = pointer.as_ref().and_then(|(p, _)| p.schema_version.clone());
    for t in &tracked {
        match t.role {
            TrackedRole::Retired => status.due_for_deletion.push(t.db_instance_id.clone()),
            TrackedRole::Candidate => status.candidates.push(t.db_instance_id.clone()),
        }
    }
    if let Some((p, version)) = &pointer {
        status.active_db = Some(p.db_instance_id.clone());
        status.timestamp = Some(p.timestamp);
        status.snapshot_id = p.snapshot_id.clone();
        status.pointer_version = Some(*version);
        status.activated_at = Some(p.activated_at);
        status.last_execution = p.execution_id.clone();
        status.active_db_status = by_id
            .get(p.db_instance_id.as_str())
            .map(|i| i.status.clone());
        if status.active_db_status.is_none() {
            status
                .drift
                .push(format!("active db {} does not exist", p.db_instance_id));
        }
    }
    status.orphans = orphans(ns, &tracked, status.active_db.as_deref(), own)
        .map(|instance| instance.id.clone())
        .collect();

    match aws
        .describe_service(&settings.cluster, &settings.service)
        .await
    {
        Ok(service) => {
            status.rollout_state = service
                .deployments
                .iter()
                .find(|d| d.status == "PRIMARY")
                .map(|d| d.rollout_state.clone());
            let definition = aws
                .describe_task_definition(&service.task_definition_arn)
                .await?;
            status.service_revision = Some(definition.revision);
            status.task_definition_arn = Some(service.task_definition_arn.clone());
            let used = definition
                .containers
                .iter()
                .find(|c| c.name == settings.container)
                .and_then(|c| c.environment.get(env_var::DB_INSTANCE_ID));
            // A tracked database the service still runs on is not due for deletion: nothing
            // will delete it while a task names it.
            if let Some(used) = used
                && let Some(at) = status.due_for_deletion.iter().position(|db| db == used)
            {
                status.due_for_deletion.remove(at);
                status.drift.push(format!(
                    "{used} is tracked for deletion, but the service still runs on it"
                ));
            }
            if let (Some(active), Some(used)) = (&status.active_db, used)
                && active != used
            {
                status
                    .drift
                    .push(format!("service uses {used}, pointer names {active}"));
            }
        }
        Err(AwsError::NotFound { .. }) => status.drift.push(format!(
            "service {} not found in cluster {}",
            settings.service, settings.cluster
        )),
        Err(err) => return Err(err.into()),
    }
    Ok(status)
}
