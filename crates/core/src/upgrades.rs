//! The control plane's side of upgrades: the release catalog kept in Parameter Store
//! (`{root}/releases`), and a tenant's upgrade planned from what its records say it runs. The
//! deploy machine plans with the same functions (Preflight), so `switchyard plan` shows exactly
//! the path an upgrade takes.

use serde::{Deserialize, Serialize};
pub use switchyard_releases::{Hop, Release, ReleaseCatalog, UpgradePlan, Version, parse_version};

use crate::error::StepError;
use crate::names::Namespace;
use crate::ports::Aws;
use crate::records::{ActivePointer, NamespaceSettings, ParameterLayout, Records};
use crate::steps::preflight::DEFAULT_EXPECTED_MINUTES;

/// The schema version a database holds, as the records say: the pointer's `schema_version`,
/// else the version the application ran on it.
pub fn recorded_schema(pointer: &ActivePointer) -> Option<String> {
    pointer
        .schema_version
        .clone()
        .or_else(|| pointer.app_version.clone())
}

/// A tenant's upgrade, planned and not started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantUpgrade {
    pub namespace: String,
    /// The release its database's schema is at (the pointer's record, else its settings).
    pub from: String,
    pub to: String,
    /// The database the upgrade copies, migrates and replaces.
    pub active_db_instance_id: Option<String>,
    pub plan: UpgradePlan,
    /// From the freeze to the rollout: the tenant's `expected_deploy_minutes` (a snapshot, a
    /// restore and a rollout) plus each migration's `migration_minutes`.
    pub expected_downtime_minutes: u32,
}

fn records<'a>(aws: &'a dyn Aws, layout: &'a ParameterLayout) -> Records<'a> {
    Records {
        params: aws,
        layout,
    }
}

/// The installation's catalog; a missing one is an empty catalog.
pub async fn catalog(aws: &dyn Aws, layout: &ParameterLayout) -> Result<ReleaseCatalog, StepError> {
    Ok(records(aws, layout)
        .release_catalog()
        .await?
        .map(|(catalog, _)| catalog)
        .unwrap_or_default())
}

/// Adds `release` to the catalog (or replaces the entry of its version); the whole catalog is
/// validated first, so nothing is written when the result would not order.
pub async fn add_release(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    release: Release,
) -> Result<ReleaseCatalog, StepError> {
    let current = catalog(aws, layout).await?;
    let updated = current
        .with(release)
        .map_err(|err| StepError::InvalidReleaseCatalog(err.to_string()))?;
    records(aws, layout).put_release_catalog(&updated).await?;
    Ok(updated)
}

/// Replaces the whole catalog (a file of `{"releases": [...]}`), validated.
pub async fn import_catalog(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    text: &str,
) -> Result<ReleaseCatalog, StepError> {
    let catalog = ReleaseCatalog::from_json(text)
        .map_err(|err| StepError::InvalidReleaseCatalog(err.to_string()))?;
    records(aws, layout).put_release_catalog(&catalog).await?;
    Ok(catalog)
}

/// What an upgrade of `ns` to `to` would run, from its records and the catalog.
pub async fn plan_upgrade(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    ns: &Namespace,
    to: &str,
) -> Result<TenantUpgrade, StepError> {
    let records = records(aws, layout);
    let settings = records.settings(ns).await?;
    let pointer = records.pointer(ns).await?.map(|(pointer, _)| pointer);
    let catalog = records.release_catalog().await?.map(|(catalog, _)| catalog);
    plan_for(ns, &settings, pointer.as_ref(), catalog.as_ref(), to)
}

/// [`plan_upgrade`] on records already read (Preflight and the fleet plan have them): the
/// version the tenant's data holds (its pointer's record, else its settings), the catalog's path
/// from it, and the downtime.
pub fn plan_for(
    ns: &Namespace,
    settings: &NamespaceSettings,
    pointer: Option<&ActivePointer>,
    catalog: Option<&ReleaseCatalog>,
    to: &str,
) -> Result<TenantUpgrade, StepError> {
    let no_path = |reason: String| StepError::NoUpgradePath {
        namespace: ns.to_string(),
        reason,
    };
    let from = pointer
        .and_then(recorded_schema)
        .or_else(|| settings.version.clone())
        .ok_or_else(|| {
            no_path(format!(
                "neither its pointer nor its settings say which version {ns} runs"
            ))
        })?;
    let catalog = catalog.ok_or_else(|| {
        no_path(
            "the installation has no release catalog: record releases with `switchyard release add`"
                .to_owned(),
        )
    })?;
    let plan = catalog
        .plan(&from, to)
        .map_err(|err| no_path(err.to_string()))?;
    let expected_downtime_minutes = settings
        .expected_deploy_minutes
        .unwrap_or(DEFAULT_EXPECTED_MINUTES)
        .saturating_add(plan.migration_minutes());
    Ok(TenantUpgrade {
        namespace: ns.to_string(),
        to: plan.to.to_string(),
        from,
        active_db_instance_id: pointer.map(|p| p.db_instance_id.clone()),
        plan,
        expected_downtime_minutes,
    })
}
