//! The tenant catalog: registering (`add`), adopting (`import`), changing (`set`), reading
//! (`show`, `list`) and removing the namespaces Switchyard manages, on any backend.
//!
//! Every write is validated before the first call that changes anything, and is all-or-nothing:
//! a command that writes more than one record undoes what it wrote when a later write fails, so
//! a fault mid-command leaves the catalog as it was.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AwsError, StepError};
use crate::names::{Namespace, Timestamp};
use crate::policy::{PolicyContext, PolicyStep};
use crate::ports::{Aws, DbInstance, Tags, tag};
use crate::records::{
    ActivePointer, LockRecord, NamespaceSettings, ParameterLayout, Records, TrackedDb, TrackedRole,
};
use crate::state::{DeployState, ExecutionInfo, Poll, SweepReport};
use crate::steps::gate::image_tag;
use crate::steps::service::env_var;
use crate::steps::{Env, SweepPolicy, sweep};

/// A standard Parameter Store parameter holds at most 4 KB: settings larger than that would
/// fail at the write, so they are refused first.
pub const MAX_SETTINGS_BYTES: usize = 4096;

/// One tenant as the catalog records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub namespace: String,
    pub settings: NamespaceSettings,
    /// The active database, as the pointer names it; `None` before the first deploy.
    pub active: Option<ActivePointer>,
    pub pointer_version: Option<i64>,
    pub locked_by: Option<String>,
    /// Databases awaiting clean-up (a deploy's retired database, a candidate in flight).
    pub tracked: Vec<TrackedDb>,
}

/// Checks every setting and names each that cannot work, with the value and why.
pub fn validate(ns: &Namespace, settings: &NamespaceSettings) -> Result<(), StepError> {
    let mut problems: Vec<String> = Vec::new();
    let mut bad = |field: &str, value: &str, why: &str| {
        problems.push(format!("{field} {value:?} {why}"));
    };
    let class = &settings.db_instance_class;
    let parts: Vec<&str> = class.split('.').collect();
    if parts.len() != 3
        || parts[0] != "db"
        || parts[1..].iter().any(|p| {
            p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    {
        bad(
            "db_instance_class",
            class,
            "is not an RDS instance class (db.<family>.<size>, e.g. db.t4g.medium)",
        );
    }
    if let Some(group) = &settings.db_subnet_group
        && !is_name(group, 255, |c| {
            c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-')
        })
    {
        bad(
            "db_subnet_group",
            group,
            "is not a DB subnet group name (1-255 letters, digits, spaces, '.', '_', '-')",
        );
    }
    for group in &settings.vpc_security_group_ids {
        let hex = group.strip_prefix("sg-").unwrap_or_default();
        if !matches!(hex.len(), 8 | 17)
            || !hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            bad(
                "vpc_security_group_ids",
                group,
                "is not a security group id (sg- and 8 or 17 lowercase hex digits)",
            );
        }
    }
    let ecs_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    let cluster = &settings.cluster;
    let cluster_name = cluster
        .strip_prefix("arn:")
        .and_then(|arn| arn.split_once(":cluster/").map(|(_, name)| name))
        .unwrap_or(cluster);
    if !is_name(cluster_name, 255, ecs_name) {
        bad(
            "cluster",
            cluster,
            "is not an ECS cluster name or ARN (1-255 letters, digits, '_', '-')",
        );
    }
    if !is_name(&settings.service, 255, ecs_name) {
        bad(
            "service",
            &settings.service,
            "is not an ECS service name (1-255 letters, digits, '_', '-')",
        );
    }
    if !is_name(&settings.container, 255, ecs_name) {
        bad(
            "container",
            &settings.container,
            "is not a container name (1-255 letters, digits, '_', '-')",
        );
    }
    if let Some(region) = &settings.region
        && !is_region(region)
    {
        bad("region", region, "is not an AWS region (e.g. eu-west-1)");
    }
    if let Some(plan) = &settings.plan
        && !is_name(plan, 64, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')
        })
    {
        bad(
            "plan",
            plan,
            "is not a plan name (1-64 lowercase letters, digits, '_', '-')",
        );
    }
    if let Some(version) = &settings.version
        && (!is_name(version, 128, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
        }) || version.starts_with(['.', '-']))
    {
        bad(
            "version",
            version,
            "is not an application version (an image tag: 1-128 letters, digits, '_', '.', '-')",
        );
    }
    if let Some(pinned) = &settings.pinned_version
        && switchyard_releases::parse_version(pinned).is_err()
    {
        bad(
            "pinned_version",
            pinned,
            "is not a release version (major.minor.patch)",
        );
    }
    for (plugin, value) in &settings.policies {
        if !is_name(plugin, 64, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        }) {
            bad("policies", plugin, "is not a plugin name (kebab-case)");
        }
        if !value.is_object() {
            bad(
                &format!("policies.{plugin}"),
                &value.to_string(),
                "is not a JSON object of the plugin's settings",
            );
        }
    }
    for pattern in &settings.allowed_sources {
        if !is_name(pattern, 64, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '*' | '?')
        }) {
            bad(
                "allowed_sources",
                pattern,
                "is not a namespace pattern (lowercase letters, digits, '-', '*', '?')",
            );
        }
    }
    if let Some(minutes) = settings.expected_deploy_minutes
        && !(1..=10_080).contains(&minutes)
    {
        bad(
            "expected_deploy_minutes",
            &minutes.to_string(),
            "is out of range (1 to 10080, a week)",
        );
    }
    let variable = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (name, _) in settings.app_environment.iter().chain(&settings.app_secrets) {
        if !is_name(name, 255, variable) || name.starts_with(|c: char| c.is_ascii_digit()) {
            bad(
                "app setting",
                name,
                "is not an environment variable name (letters, digits, '_', not starting with a digit)",
            );
        } else if RESERVED_VARIABLES.contains(&name.as_str()) {
            bad(
                "app setting",
                name,
                "is set by every deploy (the database's coordinates): choose another name",
            );
        }
    }
    for name in settings.app_environment.keys() {
        if settings.app_secrets.contains_key(name) {
            bad("app setting", name, "is both a plain value and a secret");
        }
    }
    for (name, reference) in &settings.app_secrets {
        if !is_secret_reference(reference) {
            bad(
                &format!("app_secrets.{name}"),
                reference,
                "is not a reference (a Parameter Store name or ARN, or a Secrets Manager ARN): a secret's value never goes in the settings",
            );
        }
    }
    let managed: usize = settings
        .app_environment
        .keys()
        .chain(settings.app_secrets.keys())
        .map(|name| name.len() + 1)
        .sum();
    if managed > MAX_MANAGED_NAMES {
        problems.push(format!(
            "the app settings' names take {managed} characters; at most {MAX_MANAGED_NAMES} fit the tag that lets a later deploy remove a dropped one"
        ));
    }
    let size = serde_json::to_string(settings).map_or(0, |text| text.len());
    if size > MAX_SETTINGS_BYTES {
        problems.push(format!(
            "the settings are {size} bytes; a Parameter Store parameter holds at most {MAX_SETTINGS_BYTES}"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StepError::invalid(format!(
            "invalid settings for {ns}: {}",
            problems.join("; ")
        )))
    }
}

/// The variables every deploy sets itself.
const RESERVED_VARIABLES: [&str; 5] = [
    env_var::DB_HOST,
    env_var::DB_PORT,
    env_var::DB_INSTANCE_ID,
    env_var::DB_TIMESTAMP,
    env_var::DB_PASSWORD,
];

/// An ECS tag value holds 256 characters (`switchyard:app-settings`).
const MAX_MANAGED_NAMES: usize = 256;

fn is_secret_reference(reference: &str) -> bool {
    let arn_of = |service: &str| {
        reference.starts_with("arn:")
            && reference.split(':').nth(2) == Some(service)
            && reference.split(':').count() >= 6
    };
    arn_of("ssm")
        || arn_of("secretsmanager")
        || (reference.starts_with('/')
            && is_name(reference, 2048, |c| {
                c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-')
            }))
}

fn is_name(text: &str, max: usize, allowed: impl Fn(char) -> bool) -> bool {
    !text.is_empty() && text.len() <= max && text.chars().all(allowed)
}

fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn records<'a>(aws: &'a dyn Aws, layout: &'a ParameterLayout) -> Records<'a> {
    Records {
        params: aws,
        layout,
    }
}

fn already_registered(ns: &Namespace) -> StepError {
    StepError::invalid(format!(
        "namespace {ns} is already registered: change its settings with `switchyard tenant set`"
    ))
}

/// Creates the settings record, refusing to replace one.
async fn create_settings(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    ns: &Namespace,
    settings: &NamespaceSettings,
) -> Result<(), StepError> {
    let value = serde_json::to_string(settings)
        .map_err(|err| StepError::Internal(format!("serialize settings: {err}")))?;
    match aws.put_parameter(&layout.settings(ns), &value, false).await {
        Ok(_) => Ok(()),
        Err(AwsError::AlreadyExists { .. }) => Err(already_registered(ns)),
        Err(err) => Err(err.into()),
    }
}

/// Registers `ns` with `settings`. Its stack need not exist yet: the first deploy restores its
/// first database (`import` adopts a running one instead).
pub async fn add(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    ns: &Namespace,
    settings: &NamespaceSettings,
) -> Result<Tenant, StepError> {
    validate(ns, settings)?;
    create_settings(aws, layout, ns, settings).await?;
    tracing::info!(namespace = %ns, "tenant registered");
    show(aws, layout, ns).await
}

/// What `import` adopted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imported {
    pub tenant: Tenant,
    /// Things that work but an operator should know (a database name outside the naming rule).
    pub warnings: Vec<String>,
}

/// Adopts a tenant that runs already: its database `db_instance_id` and the service its
/// settings name are checked (the database available, the service's task definition naming
/// that database), then the settings and the active pointer are recorded and the database is
/// tagged for the namespace (which is what lets a later clean-up delete it once a deploy has
/// replaced it). All of it, or none of it.
pub async fn import(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    ns: &Namespace,
    settings: &NamespaceSettings,
    db_instance_id: &str,
) -> Result<Imported, StepError> {
    validate(ns, settings)?;
    let records = records(aws, layout);
    if aws.get_parameter(&layout.settings(ns)).await?.is_some() {
        return Err(already_registered(ns));
    }
    if let Some((pointer, _)) = records.pointer(ns).await? {
        return Err(StepError::invalid(format!(
            "namespace {ns} already has an active-db pointer (to {}) but no settings: remove parameter {} or register with `switchyard tenant add`",
            pointer.db_instance_id,
            layout.active_db(ns)
        )));
    }
    let db = match aws.describe_db(db_instance_id).await {
        Ok(db) => db,
        Err(AwsError::NotFound { .. }) => {
            return Err(StepError::invalid(format!(
                "db instance {db_instance_id} not found"
            )));
        }
        Err(err) => return Err(err.into()),
    };
    let (endpoint, port) = check_adoptable(ns, &db)?;
    let image = check_service_uses(aws, ns, settings, &db, &endpoint).await?;

    let mut settings = settings.clone();
    if settings.version.is_none() {
        settings.version = image_tag(&image);
    }
    let mut warnings = Vec::new();
    if !db.id.starts_with(&format!("{ns}-")) {
        warnings.push(format!(
            "database {} does not start with {ns}-: the protect-active policy keeps it at the first deploy's clean-up (delete it by hand then)",
            db.id
        ));
    }
    let pointer = ActivePointer {
        db_instance_id: db.id.clone(),
        timestamp: Timestamp::from_name_suffix(&db.id)
            .or_else(|| db.created_at.map(Timestamp::from_datetime))
            .unwrap_or_else(|| Timestamp::from_datetime(aws.now())),
        endpoint,
        port,
        snapshot_id: None,
        execution_id: None,
        activated_at: aws.now(),
        app_version: settings.version.clone(),
        master_user_secret_arn: db
            .master_user_secret
            .as_ref()
            .map(|secret| secret.secret_arn.clone()),
        // Adopted as it runs: its schema is its application's.
        schema_version: settings.version.clone(),
    };

    create_settings(aws, layout, ns, &settings).await?;
    if let Err(err) = records.put_pointer(ns, &pointer, None).await {
        // The write may have landed with its answer lost: undone all the same (there was no
        // pointer before, so whatever is there now is this import's).
        return Err(undo(aws, layout, ns, true, err).await);
    }
    let tags = Tags::from([(tag::NAMESPACE.to_owned(), ns.to_string())]);
    if let Err(err) = aws.tag_db(&db.id, &tags).await {
        return Err(undo(aws, layout, ns, true, err.into()).await);
    }
    tracing::info!(namespace = %ns, db = %db.id, "tenant imported");
    Ok(Imported {
        tenant: show(aws, layout, ns).await?,
        warnings,
    })
}

/// The database must be available, with an endpoint, and not another namespace's.
fn check_adoptable(ns: &Namespace, db: &DbInstance) -> Result<(String, i32), StepError> {
    if db.status != "available" {
        return Err(StepError::invalid(format!(
            "db instance {} is {}: only an available database can be adopted",
            db.id, db.status
        )));
    }
    if let Some(owner) = db.tags.get(tag::NAMESPACE)
        && owner != ns.as_str()
    {
        return Err(StepError::invalid(format!(
            "db instance {} is tagged for namespace {owner}, not {ns}",
            db.id
        )));
    }
    match (&db.endpoint, db.port) {
        (Some(endpoint), Some(port)) => Ok((endpoint.clone(), port)),
        _ => Err(StepError::invalid(format!(
            "db instance {} has no endpoint yet",
            db.id
        ))),
    }
}

/// The service the settings name must exist, and its container must be configured with this
/// database (`DB_INSTANCE_ID`, or `DB_HOST` equal to its endpoint). Returns the container's image.
async fn check_service_uses(
    aws: &dyn Aws,
    ns: &Namespace,
    settings: &NamespaceSettings,
    db: &DbInstance,
    endpoint: &str,
) -> Result<String, StepError> {
    let service = match aws
        .describe_service(&settings.cluster, &settings.service)
        .await
    {
        Ok(service) => service,
        Err(AwsError::NotFound { .. }) => {
            return Err(StepError::invalid(format!(
                "service {} not found in cluster {}",
                settings.service, settings.cluster
            )));
        }
        Err(err) => return Err(err.into()),
    };
    let definition = aws
        .describe_task_definition(&service.task_definition_arn)
        .await?;
    let Some(container) = definition
        .containers
        .iter()
        .find(|c| c.name == settings.container)
    else {
        return Err(StepError::invalid(format!(
            "task definition {} of service {} has no container {:?}",
            service.task_definition_arn, settings.service, settings.container
        )));
    };
    let env = &container.environment;
    let names_it = env.get(env_var::DB_INSTANCE_ID) == Some(&db.id)
        || env.get(env_var::DB_HOST).map(String::as_str) == Some(endpoint);
    if !names_it {
        let shown = |key: &str| env.get(key).map_or("unset", String::as_str).to_owned();
        return Err(StepError::invalid(format!(
            "service {} of {ns} does not use db instance {}: its task definition {} sets {}={} and {}={} in container {} (expected {} or {})",
            settings.service,
            db.id,
            service.task_definition_arn,
            env_var::DB_INSTANCE_ID,
            shown(env_var::DB_INSTANCE_ID),
            env_var::DB_HOST,
            shown(env_var::DB_HOST),
            container.name,
            db.id,
            endpoint
        )));
    }
    Ok(container.image.clone())
}

/// Undoes what a failed multi-write command wrote (the settings, and the pointer if it was
/// written), and returns the failure; if undoing fails too, the error names what is left.
async fn undo(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    ns: &Namespace,
    pointer_written: bool,
    failure: StepError,
) -> StepError {
    let mut left = Vec::new();
    if pointer_written && let Err(err) = aws.delete_parameter(&layout.active_db(ns)).await {
        left.push(format!("{} ({err})", layout.active_db(ns)));
    }
    if let Err(err) = aws.delete_parameter(&layout.settings(ns)).await {
        left.push(format!("{} ({err})", layout.settings(ns)));
    }
    if left.is_empty() {
        tracing::warn!(namespace = %ns, "tenant write failed and was undone: {failure}");
        failure
    } else {
        StepError::Internal(format!(
            "{failure}; undoing it failed too, so these records are left: {}",
            left.join(", ")
        ))
    }
}

/// The tenant's records.
pub async fn show(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    ns: &Namespace,
) -> Result<Tenant, StepError> {
    let records = records(aws, layout);
    let settings = records.settings(ns).await?;
    let pointer = records.pointer(ns).await?;
    let lock = records.lock(ns).await?;
    let tracked = records.tracked(ns).await?;
    Ok(Tenant {
        namespace: ns.to_string(),
        settings,
        pointer_version: pointer.as_ref().map(|(_, version)| *version),
        active: pointer.map(|(pointer, _)| pointer),
        locked_by: lock.map(|lock| lock.execution_id),
        tracked,
    })
}

/// Every registered tenant, sorted by namespace.
pub async fn list(aws: &dyn Aws, layout: &ParameterLayout) -> Result<Vec<Tenant>, StepError> {
    let mut tenants = Vec::new();
    for ns in records(aws, layout).namespaces().await? {
        tenants.push(show(aws, layout, &ns).await?);
    }
    Ok(tenants)
}

/// Puts `value` at `key` in the settings' map `map` (made if missing); `None` removes the key.
fn set_entry(
    object: &mut serde_json::Map<String, Value>,
    map: &str,
    key: &str,
    value: Option<Value>,
) {
    let entries = object
        .entry(map)
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Some(entries) = entries.as_object_mut() {
        match value {
            Some(value) => {
                entries.insert(key.to_owned(), value);
            }
            None => {
                entries.remove(key);
            }
        }
    }
}

/// One `key=value` of `tenant set`: the settings' own field names (`plan=premium`,
/// `expected_deploy_minutes=90`, `policies.capacity={"max_storage_gib":200}`). A value is JSON
/// when it parses as JSON, else a string; a list field takes a comma-separated list; an empty
/// value unsets an optional field.
pub fn apply(
    settings: &NamespaceSettings,
    assignment: &str,
) -> Result<NamespaceSettings, StepError> {
    let (key, text) = assignment.split_once('=').ok_or_else(|| {
        StepError::invalid(format!(
            "invalid setting {assignment:?}: expected KEY=VALUE, e.g. plan=premium"
        ))
    })?;
    let mut document = serde_json::to_value(settings)
        .map_err(|err| StepError::Internal(format!("serialize settings: {err}")))?;
    let object = document
        .as_object_mut()
        .ok_or_else(|| StepError::Internal("settings are not a JSON object".into()))?;
    // Text fields take the text as it is (`version=2` is the version "2", not a number).
    let json_valued = key.starts_with("policies.")
        || matches!(key, "app_environment" | "app_secrets")
        || matches!(
            key,
            "expected_deploy_minutes" | "final_snapshot" | "manage_master_password"
        )
        || text.starts_with('[');
    let value = if text.is_empty() {
        Value::Null
    } else if json_valued {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
    } else {
        Value::String(text.to_owned())
    };
    match key.split_once('.') {
        Some((map @ ("app_environment" | "app_secrets"), name)) => {
            let text = (!text.is_empty()).then(|| Value::String(text.to_owned()));
            set_entry(object, map, name, text);
        }
        Some(("policies", plugin)) => {
            set_entry(
                object,
                "policies",
                plugin,
                Some(value).filter(|v| !v.is_null()),
            );
        }
        Some(("database", field)) => {
            // Names and windows are text; flags and numbers JSON; the log exports a list.
            let text_field = matches!(
                field,
                "parameter_group"
                    | "option_group"
                    | "storage_type"
                    | "backup_window"
                    | "ca_certificate"
            );
            let value = match field {
                _ if text.is_empty() => None,
                "cloudwatch_logs_exports" => Some(Value::Array(
                    text.split(',')
                        .map(|item| Value::String(item.trim().to_owned()))
                        .filter(|item| item.as_str() != Some(""))
                        .collect(),
                )),
                _ if text_field => Some(Value::String(text.to_owned())),
                _ => Some(
                    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
                ),
            };
            set_entry(object, "database", field, value);
        }
        Some(_) => {
            return Err(StepError::invalid(format!(
                "unknown setting {key:?}: only policies.<plugin>, app_environment.<NAME>, app_secrets.<NAME> and database.<field> take a dotted key"
            )));
        }
        None => {
            let value = match value {
                Value::String(text)
                    if matches!(key, "vpc_security_group_ids" | "allowed_sources") =>
                {
                    Value::Array(
                        text.split(',')
                            .map(|item| Value::String(item.trim().to_owned()))
                            .collect(),
                    )
                }
                Value::Null if matches!(key, "vpc_security_group_ids" | "allowed_sources") => {
                    Value::Array(Vec::new())
                }
                other => other,
            };
            if value.is_null() {
                object.remove(key);
            } else {
                object.insert(key.to_owned(), value);
            }
        }
    }
    serde_json::from_value(document)
        .map_err(|err| StepError::invalid(format!("invalid setting {assignment:?}: {err}")))
}

/// Changes settings of a registered tenant: each `key=value` applied in order, the result
/// validated whole, then written in one put (or not at all).
pub async fn set(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    ns: &Namespace,
    assignments: &[String],
) -> Result<Tenant, StepError> {
    let records = records(aws, layout);
    let mut settings = records.settings(ns).await?;
    for assignment in assignments {
        settings = apply(&settings, assignment)?;
    }
    validate(ns, &settings)?;
    records.put_settings(ns, &settings).await?;
    tracing::info!(namespace = %ns, "tenant settings changed");
    show(aws, layout, ns).await
}

/// Unregisters a tenant that has nothing left: no active database, nothing tracked, no
/// database tagged for it, no lock. Anything else is named, and nothing is removed.
pub async fn remove(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    ns: &Namespace,
) -> Result<(), StepError> {
    let tenant = show(aws, layout, ns).await?;
    let mut holds = Vec::new();
    if let Some(active) = &tenant.active {
        holds.push(format!("its active database {}", active.db_instance_id));
    }
    for tracked in &tenant.tracked {
        holds.push(format!("tracked database {}", tracked.db_instance_id));
    }
    for db in aws.list_dbs().await? {
        let tagged = db.tags.get(tag::NAMESPACE).map(String::as_str) == Some(ns.as_str());
        let counted = tenant
            .active
            .as_ref()
            .is_some_and(|a| a.db_instance_id == db.id)
            || tenant.tracked.iter().any(|t| t.db_instance_id == db.id);
        if tagged && !counted {
            holds.push(format!("database {} tagged for it", db.id));
        }
    }
    if let Some(holder) = &tenant.locked_by {
        holds.push(format!("the deploy lock, held by {holder}"));
    }
    if !holds.is_empty() {
        return Err(StepError::invalid(format!(
            "namespace {ns} still has {}: retire its databases first (delete its service, then `switchyard tenant remove {ns} --retire`)",
            holds.join(", ")
        )));
    }
    // Under the namespace's lock: a deploy starting now waits for the tenant to be gone (and
    // then finds it unregistered), rather than running on records vanishing beneath it.
    let records = records(aws, layout);
    let now = aws.now();
    let lock = LockRecord {
        execution_id: format!("remove-{ns}-{}", now.format("%Y%m%d-%H%M%S")),
        acquired_at: now,
        execution_started_at: Some(now),
    };
    if let Err(holder) = records.try_lock(ns, &lock).await? {
        return Err(StepError::NamespaceLocked {
            namespace: ns.to_string(),
            holder: holder.execution_id,
            since: holder.acquired_at.to_rfc3339(),
        });
    }
    // The settings last: while they exist, the tenant is listed and the rest can be retried.
    let removed = async {
        aws.delete_parameter(&layout.last_deploy(ns)).await?;
        aws.delete_parameter(&layout.settings(ns)).await?;
        Ok::<(), StepError>(())
    }
    .await;
    records.unlock(ns).await?;
    removed?;
    tracing::info!(namespace = %ns, "tenant removed");
    Ok(())
}

/// What one pass of `retire` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retirement {
    pub namespace: String,
    /// The database the pointer named, now tracked for deletion (first pass only).
    pub retired: Option<String>,
    pub sweep: SweepReport,
    /// Every database is gone and the tenant is unregistered.
    pub removed: bool,
}

/// One pass of retiring a tenant whose service is gone: under the namespace's lock (taken by
/// `execution`, kept between passes), the active database is tracked as retired and the pointer
/// removed, then the tracked databases are deleted as a clean-up deletes them (the policies
/// judge each delete; production keeps a final snapshot). Run it again, waiting
/// `sweep.poll.wait_seconds` between passes, until `removed`: the last pass releases the lock
/// and unregisters the tenant. A database a policy keeps stays tracked, and the tenant
/// registered, with the lock released and the reason in `sweep.kept`.
pub async fn retire(
    env: Env<'_>,
    ns: &Namespace,
    execution: &ExecutionInfo,
    poll: &Poll,
) -> Result<Retirement, StepError> {
    let records = env.records();
    let settings = records.settings(ns).await?;
    match env
        .aws
        .describe_service(&settings.cluster, &settings.service)
        .await
    {
        Err(AwsError::NotFound { .. }) => {}
        // ECS describes a deleted service as INACTIVE for a while.
        Ok(service) if service.status == "INACTIVE" => {}
        Ok(service) => {
            return Err(StepError::invalid(format!(
                "service {} of {ns} still exists in cluster {} (running {} of {}): delete it first, its tasks use the databases being retired",
                service.name, settings.cluster, service.running_count, service.desired_count
            )));
        }
        Err(err) => return Err(err.into()),
    }
    let state = DeployState {
        namespace: ns.to_string(),
        execution: Some(execution.clone()),
        ..DeployState::default()
    };
    let lock = LockRecord {
        execution_id: execution.id.clone(),
        acquired_at: env.now(),
        execution_started_at: Some(execution.started_at),
    };
    match records.try_lock(ns, &lock).await? {
        Ok(()) => {}
        Err(holder) if state.holds(&holder)? => {}
        Err(holder) => {
            return Err(StepError::NamespaceLocked {
                namespace: ns.to_string(),
                holder: holder.execution_id,
                since: holder.acquired_at.to_rfc3339(),
            });
        }
    }
    match retire_locked(env, ns, &settings, execution, poll).await {
        Ok(retirement) => Ok(retirement),
        Err(err) => {
            // The active database is tracked before the pointer goes, so nothing is lost by
            // letting go: a later run (another id) takes the lock and carries on. Only our
            // own lock, though: by now it may be someone else's.
            let ours = match records.lock(ns).await {
                Ok(Some(holder)) => state.holds(&holder).unwrap_or(false),
                _ => false,
            };
            if ours && let Err(unlock) = records.unlock(ns).await {
                tracing::error!(namespace = %ns, "lock not released after a failed retirement: {unlock}");
            }
            Err(err)
        }
    }
}

async fn retire_locked(
    env: Env<'_>,
    ns: &Namespace,
    settings: &NamespaceSettings,
    execution: &ExecutionInfo,
    poll: &Poll,
) -> Result<Retirement, StepError> {
    let records = env.records();
    let mut retired = None;
    if let Some((pointer, _)) = records.pointer(ns).await? {
        // Tracked before the pointer goes: never forgotten, whatever fails next.
        records
            .track(
                ns,
                &TrackedDb {
                    db_instance_id: pointer.db_instance_id.clone(),
                    role: TrackedRole::Retired,
                    execution_id: execution.id.clone(),
                    since: env.now(),
                },
            )
            .await?;
        records.delete_pointer(ns).await?;
        retired = Some(pointer.db_instance_id);
    }
    let facts = PolicyContext {
        step: PolicyStep::Cleanup,
        execution_id: execution.id.clone(),
        ..PolicyContext::default()
    };
    let sweep = sweep(env, ns, settings, poll, &SweepPolicy::Cleanup(facts)).await?;
    let finished = sweep.done || !sweep.kept.is_empty() && sweep.deleting.is_empty();
    let mut removed = false;
    if finished {
        records.unlock(ns).await?;
        if sweep.kept.is_empty() {
            remove(env.aws, env.layout, ns).await?;
            removed = true;
        }
    }
    Ok(Retirement {
        namespace: ns.to_string(),
        retired,
        sweep,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> NamespaceSettings {
        serde_json::from_value(serde_json::json!({
            "db_instance_class": "db.t4g.medium",
            "db_subnet_group": "tenants-db",
            "vpc_security_group_ids": ["sg-0123abcd"],
            "cluster": "tenants",
            "service": "xy-0146-qa-app",
            "container": "app",
            "region": "eu-west-1",
            "plan": "standard",
            "version": "1.3.2"
        }))
        .unwrap()
    }

    fn ns() -> Namespace {
        "xy-0146-qa".parse().unwrap()
    }

    #[test]
    fn good_settings_pass() {
        validate(&ns(), &settings()).unwrap();
        let mut arn = settings();
        arn.cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/tenants".into();
        validate(&ns(), &arn).unwrap();
    }

    #[test]
    fn every_bad_setting_is_named_with_its_value() {
        type Spoil = fn(&mut NamespaceSettings);
        let cases: [(&str, Spoil); 16] = [
            ("app setting \"9LIVES\"", |s| {
                s.app_environment.insert("9LIVES".into(), "x".into());
            }),
            ("app setting \"DB_HOST\"", |s| {
                s.app_environment.insert("DB_HOST".into(), "x".into());
            }),
            ("app_secrets.API_KEY \"hunter2\"", |s| {
                s.app_secrets.insert("API_KEY".into(), "hunter2".into());
            }),
            ("app setting \"MODE\" is both", |s| {
                s.app_environment.insert("MODE".into(), "a".into());
                s.app_secrets.insert("MODE".into(), "/xy/mode".into());
            }),
            ("db_instance_class \"m5.large\"", |s| {
                s.db_instance_class = "m5.large".into()
            }),
            ("db_subnet_group \"\"", |s| {
                s.db_subnet_group = Some(String::new())
            }),
            ("vpc_security_group_ids \"sg-xyz\"", |s| {
                s.vpc_security_group_ids = vec!["sg-xyz".into()]
            }),
            ("cluster \"a b\"", |s| s.cluster = "a b".into()),
            ("service \"\"", |s| s.service = String::new()),
            ("container \"app/1\"", |s| s.container = "app/1".into()),
            ("region \"europe\"", |s| s.region = Some("europe".into())),
            ("plan \"Gold Plan\"", |s| s.plan = Some("Gold Plan".into())),
            ("version \"1.0 beta\"", |s| {
                s.version = Some("1.0 beta".into())
            }),
            ("policies.capacity \"3\"", |s| {
                s.policies.insert("capacity".into(), serde_json::json!(3));
            }),
            ("allowed_sources \"XY_*\"", |s| {
                s.allowed_sources = vec!["XY_*".into()]
            }),
            ("expected_deploy_minutes \"0\"", |s| {
                s.expected_deploy_minutes = Some(0)
            }),
        ];
        for (named, spoil) in cases {
            let mut bad = settings();
            spoil(&mut bad);
            let err = validate(&ns(), &bad).unwrap_err();
            assert_eq!(err.name(), "InvalidInput");
            let message = err.to_string();
            assert!(message.contains(named), "{named}: {message}");
            assert!(message.contains("xy-0146-qa"), "{message}");
        }
    }

    #[test]
    fn all_problems_are_named_at_once() {
        let mut bad = settings();
        bad.db_instance_class = "large".into();
        bad.region = Some("mars".into());
        let message = validate(&ns(), &bad).unwrap_err().to_string();
        assert!(
            message.contains("db_instance_class") && message.contains("region"),
            "{message}"
        );
    }

    #[test]
    fn oversized_settings_are_refused_before_the_write() {
        let mut big = settings();
        big.policies.insert(
            "naming".into(),
            serde_json::json!({"pad": "x".repeat(5000)}),
        );
        let message = validate(&ns(), &big).unwrap_err().to_string();
        assert!(message.contains("at most 4096"), "{message}");
    }

    #[test]
    fn assignments_set_and_unset_fields() {
        let s = apply(&settings(), "plan=premium").unwrap();
        assert_eq!(s.plan.as_deref(), Some("premium"));
        let s = apply(&s, "expected_deploy_minutes=90").unwrap();
        assert_eq!(s.expected_deploy_minutes, Some(90));
        let s = apply(&s, "vpc_security_group_ids=sg-0123abcd, sg-4567ef01").unwrap();
        assert_eq!(s.vpc_security_group_ids, ["sg-0123abcd", "sg-4567ef01"]);
        let s = apply(&s, r#"policies.capacity={"max_storage_gib":200}"#).unwrap();
        assert_eq!(s.policies["capacity"]["max_storage_gib"], 200);
        let s = apply(&s, "policies.capacity=").unwrap();
        assert!(s.policies.is_empty());
        let s = apply(&s, "app_environment.MAX_USERS=100").unwrap();
        assert_eq!(s.app_environment["MAX_USERS"], "100");
        let s = apply(&s, "app_secrets.API_KEY=/xy-0146-qa/api-key").unwrap();
        assert_eq!(s.app_secrets["API_KEY"], "/xy-0146-qa/api-key");
        validate(&ns(), &s).unwrap();
        let s = apply(&s, "app_environment.MAX_USERS=").unwrap();
        assert!(s.app_environment.is_empty());
        let s = apply(&s, "region=").unwrap();
        assert_eq!(s.region, None);
        // A version that looks like a number stays the text it was.
        let s = apply(&s, "version=2").unwrap();
        assert_eq!(s.version.as_deref(), Some("2"));
        // The restored database's setup, field by field.
        let s = apply(&s, "database.multi_az=false").unwrap();
        let s = apply(&s, "database.backup_retention_days=14").unwrap();
        let s = apply(&s, "database.parameter_group=1234").unwrap();
        let s = apply(&s, "database.cloudwatch_logs_exports=postgresql, upgrade").unwrap();
        assert_eq!(s.database.multi_az, Some(false));
        assert_eq!(s.database.backup_retention_days, Some(14));
        assert_eq!(s.database.parameter_group.as_deref(), Some("1234"));
        assert_eq!(
            s.database.cloudwatch_logs_exports,
            Some(vec!["postgresql".to_owned(), "upgrade".to_owned()])
        );
        let s = apply(&s, "database.multi_az=").unwrap();
        assert_eq!(s.database.multi_az, None);
    }

    #[test]
    fn bad_assignments_are_named() {
        for (assignment, named) in [
            ("plan", "expected KEY=VALUE"),
            ("colour=blue", "unknown field `colour`"),
            ("expected_deploy_minutes=soon", "expected_deploy_minutes"),
            (
                "cluster.name=x",
                "only policies.<plugin>, app_environment.<NAME>",
            ),
            ("database.multiaz=true", "unknown field `multiaz`"),
            ("database.multi_az=maybe", "invalid type"),
        ] {
            let err = apply(&settings(), assignment).unwrap_err();
            assert_eq!(err.name(), "InvalidInput", "{assignment}");
            assert!(err.to_string().contains(named), "{assignment}: {err}");
        }
    }
}
