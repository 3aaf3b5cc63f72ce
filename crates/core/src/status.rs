//! The status view of every namespace: what is active, what runs, what is due for deletion, and
//! what nobody accounts for.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::error::{AwsError, StepError};
use crate::names::{Namespace, Timestamp};
use crate::ports::{Aws, DbInstance, Service, TaskDefinition, tag};
use crate::records::{
    LastDeploy, ListedRecords, NamespaceSettings, ParameterLayout, Records, TrackedDb, TrackedRole,
};
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

/// How many reads of services or task definitions are in flight at once. A fleet's status is
/// mostly waiting on ECS; more in flight than this only meets ECS's read throttling sooner (its
/// token buckets refill at a few tens of calls a second).
const CONCURRENT_READS: usize = 8;

/// One entry per registered namespace, sorted by name.
///
/// Its reads are batched for fleets: the namespaces' records in one recursive Parameter Store
/// listing (ten a page), the databases in one paginated listing (a hundred a page), the services
/// ten a call per cluster, and each distinct task definition once; the last two eight at a
/// time. About 1.5 calls per tenant, mostly `DescribeTaskDefinition`, which ECS cannot batch.
pub async fn namespace_status(
    aws: &dyn Aws,
    layout: &ParameterLayout,
) -> Result<Vec<NamespaceStatus>, StepError> {
    let records = Records {
        params: aws,
        layout,
    };
    let listed = records.every_namespace().await?;
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

    let mut rows = Vec::with_capacity(listed.len());
    for (ns, listed) in &listed {
        let own = by_namespace
            .get(ns.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        rows.push((ns, from_records(ns, listed, own, &by_id)));
    }

    let services = services_of(aws, &rows).await?;
    let definitions = task_definitions_of(aws, &services).await?;

    let mut out = Vec::with_capacity(rows.len());
    for (ns, row) in rows {
        let row = row.and_then(|(status, settings)| {
            let service = match services.get(&settings.cluster) {
                Some(Ok(found)) => match found.get(&settings.service) {
                    Some(Ok(service)) => Some(service),
                    Some(Err(err)) => return Err(err.clone().into()),
                    None => None,
                },
                Some(Err(err)) => return Err(err.clone().into()),
                None => None,
            };
            with_service(status, &settings, service, &definitions)
        });
        match row {
            Ok(status) => out.push(status),
            // AWS not answering now is not this namespace's fault: the whole view fails, and a
            // retry may pass.
            Err(err @ StepError::Transient(_)) => return Err(err),
            Err(err) => {
                let mut broken = NamespaceStatus::new(ns, String::new());
                broken.error = Some(err.to_string());
                out.push(broken);
            }
        }
    }
    Ok(out)
}

/// A cluster's answer for each service asked for ([`crate::ports::Services::describe_services`]).
type ServicesOf = BTreeMap<String, Result<Service, AwsError>>;

type Row<'a> = (
    &'a Namespace,
    Result<(NamespaceStatus, NamespaceSettings), StepError>,
);

/// Each cluster's services that the rows name, described ten a call, clusters eight at a time.
/// A cluster that does not exist has none; a call that fails as a whole fails every row of that
/// cluster, a service that could not be described only its own.
async fn services_of(
    aws: &dyn Aws,
    rows: &[Row<'_>],
) -> Result<BTreeMap<String, Result<ServicesOf, AwsError>>, StepError> {
    let mut wanted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (_, row) in rows {
        if let Ok((_, settings)) = row {
            wanted
                .entry(settings.cluster.as_str())
                .or_default()
                .insert(settings.service.clone());
        }
    }
    let described: Vec<_> = stream::iter(wanted)
        .map(|(cluster, names)| async move {
            let names: Vec<String> = names.into_iter().collect();
            let found = match aws.describe_services(cluster, &names).await {
                Err(AwsError::NotFound { .. }) => Ok(BTreeMap::new()),
                other => other,
            };
            (cluster.to_owned(), found)
        })
        .buffer_unordered(CONCURRENT_READS)
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for (cluster, found) in described {
        if let Err(err) = &found
            && err.is_transient()
        {
            return Err(err.clone().into());
        }
        out.insert(cluster, found);
    }
    Ok(out)
}

/// Every distinct task definition the services run, each read once, eight at a time.
async fn task_definitions_of(
    aws: &dyn Aws,
    services: &BTreeMap<String, Result<ServicesOf, AwsError>>,
) -> Result<HashMap<String, Result<TaskDefinition, AwsError>>, StepError> {
    let arns: BTreeSet<&str> = services
        .values()
        .filter_map(|found| found.as_ref().ok())
        .flat_map(BTreeMap::values)
        .filter_map(|service| service.as_ref().ok())
        .map(|service| service.task_definition_arn.as_str())
        .collect();
    let read: Vec<_> = stream::iter(arns)
        .map(|arn| async move { (arn.to_owned(), aws.describe_task_definition(arn).await) })
        .buffer_unordered(CONCURRENT_READS)
        .collect()
        .await;
    let mut out = HashMap::with_capacity(read.len());
    for (arn, definition) in read {
        if let Err(err) = &definition
            && err.is_transient()
        {
            return Err(err.clone().into());
        }
        out.insert(arn, definition);
    }
    Ok(out)
}

/// What the namespace's records and databases say. `own`: the databases tagged for `ns`;
/// `by_id`: every database.
fn from_records(
    ns: &Namespace,
    listed: &ListedRecords,
    own: &[DbInstance],
    by_id: &HashMap<&str, &DbInstance>,
) -> Result<(NamespaceStatus, NamespaceSettings), StepError> {
    let settings = listed.settings()?;
    let pointer = listed.pointer()?;
    let tracked = listed.tracked()?;
    let lock = listed.lock()?;
    let mut status = NamespaceStatus::new(ns, settings.service.clone());
    status.locked_by = lock.map(|l| l.execution_id);
    status.last_deploy = listed.last_deploy()?;
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
    Ok((status, settings))
}

/// The rest, from the service the namespace runs (`None`: it does not exist) and its task
/// definition.
fn with_service(
    mut status: NamespaceStatus,
    settings: &NamespaceSettings,
    service: Option<&Service>,
    definitions: &HashMap<String, Result<TaskDefinition, AwsError>>,
) -> Result<NamespaceStatus, StepError> {
    let Some(service) = service else {
        status.drift.push(format!(
            "service {} not found in cluster {}",
            settings.service, settings.cluster
        ));
        return Ok(status);
    };
    status.rollout_state = service
        .deployments
        .iter()
        .find(|d| d.status == "PRIMARY")
        .map(|d| d.rollout_state.clone());
    let definition = match definitions.get(&service.task_definition_arn) {
        Some(Ok(definition)) => definition,
        Some(Err(err)) => return Err(err.clone().into()),
        None => {
            return Err(StepError::Internal(format!(
                "task definition {} was not read",
                service.task_definition_arn
            )));
        }
    };
    status.service_revision = Some(definition.revision);
    status.task_definition_arn = Some(service.task_definition_arn.clone());
    let used = definition
        .containers
        .iter()
        .find(|c| c.name == settings.container)
        .and_then(|c| c.environment.get(env_var::DB_INSTANCE_ID));
    // A tracked database the service still runs on is not due for deletion: nothing will
    // delete it while a task names it.
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
    Ok(status)
}
