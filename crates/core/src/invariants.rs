//! What must hold of every namespace between executions, written down once and checked by the
//! tests, by `switchyard doctor` (against any backend: the embedded world, an endpoint, a real
//! account after an incident) and by the random fault campaign:
//!
//! 1. the namespace has exactly one pointer, and it names a database that exists and is
//!    `available`;
//! 2. the service's current revision names that database, and no deployment of the service
//!    names a database that does not exist;
//! 3. every database tagged for the namespace is either active or tracked (none orphaned);
//! 4. no lock is held (between executions; one that ended `RollbackIncomplete` keeps its lock
//!    for an operator, and the checker says so).
//!
//! The campaign adds what needs a before and after: a deploy that succeeded moved the pointer
//! on by its own write, one that failed left it naming what it named, and nothing outside the
//! namespaces it was about changed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::{AwsError, StepError};
use crate::names::Namespace;
use crate::ports::{Aws, DbInstance};
use crate::records::{ParameterLayout, Records};
use crate::steps::service::env_var;

/// One broken promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub namespace: String,
    /// A stable, kebab-case name of the rule (see the module's list).
    pub rule: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.namespace, self.rule, self.detail)
    }
}

/// The rules' names, as [`Violation::rule`] gives them.
pub mod rule {
    pub const UNREADABLE: &str = "unreadable-records";
    pub const NO_POINTER: &str = "no-pointer";
    pub const POINTER_ON_MISSING_DB: &str = "pointer-on-missing-database";
    pub const POINTER_ON_UNAVAILABLE_DB: &str = "pointer-on-unavailable-database";
    pub const SERVICE_MISSING: &str = "service-missing";
    pub const SERVICE_NOT_ON_POINTER: &str = "service-not-on-pointer";
    pub const SERVICE_ON_MISSING_DB: &str = "service-on-missing-database";
    /// Scaled to zero with no deploy holding the namespace: an upgrade's freeze that nothing
    /// undid (an aborted execution, an incomplete rollback), or a tenant switched off by hand.
    pub const SERVICE_AT_ZERO: &str = "service-at-zero";
    pub const ORPHAN: &str = "orphan-database";
    pub const LOCK_HELD: &str = "lock-held";
}

/// Checks `namespaces` (every registered namespace when `None`) and returns what does not hold,
/// sorted by namespace. An error only when AWS cannot be read at all.
pub async fn check(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    namespaces: Option<&[Namespace]>,
) -> Result<Vec<Violation>, StepError> {
    let records = Records {
        params: aws,
        layout,
    };
    let all = records.namespaces().await?;
    let chosen: Vec<Namespace> = match namespaces {
        Some(chosen) => chosen.to_vec(),
        None => all,
    };
    let instances = aws.list_dbs().await?;
    let mut found = Vec::new();
    for ns in &chosen {
        match one(aws, &records, ns, &instances).await {
            Ok(mut violations) => found.append(&mut violations),
            Err(err @ StepError::Transient(_)) => return Err(err),
            Err(err) => found.push(Violation {
                namespace: ns.to_string(),
                rule: rule::UNREADABLE,
                detail: err.to_string(),
            }),
        }
    }
    Ok(found)
}

async fn one(
    aws: &dyn Aws,
    records: &Records<'_>,
    ns: &Namespace,
    instances: &[DbInstance],
) -> Result<Vec<Violation>, StepError> {
    let mut found = Vec::new();
    let mut violation = |rule: &'static str, detail: String| {
        found.push(Violation {
            namespace: ns.to_string(),
            rule,
            detail,
        })
    };
    let settings = records.settings(ns).await?;
    let pointer = records.pointer(ns).await?;
    let tracked = records.tracked(ns).await?;
    let by_id: BTreeMap<&str, &DbInstance> = instances.iter().map(|i| (i.id.as_str(), i)).collect();

    let active = pointer.as_ref().map(|(p, _)| p.db_instance_id.clone());
    match &active {
        None => violation(
            rule::NO_POINTER,
            "the namespace has no active-db pointer".into(),
        ),
        Some(db) => match by_id.get(db.as_str()) {
            None => violation(
                rule::POINTER_ON_MISSING_DB,
                format!("the pointer names {db}, which does not exist"),
            ),
            Some(instance) if instance.status != "available" => violation(
                rule::POINTER_ON_UNAVAILABLE_DB,
                format!("the pointer names {db}, which is {}", instance.status),
            ),
            Some(_) => {}
        },
    }

    match aws
        .describe_service(&settings.cluster, &settings.service)
        .await
    {
        Err(AwsError::NotFound { .. }) => violation(
            rule::SERVICE_MISSING,
            format!(
                "service {} not found in cluster {}",
                settings.service, settings.cluster
            ),
        ),
        Err(err) => return Err(err.into()),
        Ok(service) => {
            if service.desired_count == 0 && records.lock(ns).await?.is_none() {
                violation(
                    rule::SERVICE_AT_ZERO,
                    format!(
                        "service {} wants 0 tasks and no deploy holds {ns}: if an upgrade's freeze was not undone, scale it back (aws ecs update-service --desired-count N)",
                        settings.service
                    ),
                );
            }
            let arns: BTreeSet<&str> = service
                .deployments
                .iter()
                .map(|d| d.task_definition_arn.as_str())
                .chain([service.task_definition_arn.as_str()])
                .filter(|arn| !arn.is_empty())
                .collect();
            for arn in arns {
                let definition = aws.describe_task_definition(arn).await?;
                let used = definition
                    .containers
                    .iter()
                    .find(|c| c.name == settings.container)
                    .and_then(|c| c.environment.get(env_var::DB_INSTANCE_ID))
                    .cloned();
                let Some(used) = used else { continue };
                if !by_id.contains_key(used.as_str()) {
                    violation(
                        rule::SERVICE_ON_MISSING_DB,
                        format!("revision {arn} of the service names {used}, which does not exist"),
                    );
                }
                if arn == service.task_definition_arn
                    && let Some(active) = &active
                    && &used != active
                {
                    violation(
                        rule::SERVICE_NOT_ON_POINTER,
                        format!("the service runs on {used}, the pointer names {active}"),
                    );
                }
            }
        }
    }

    for instance in crate::status::orphans(ns, &tracked, active.as_deref(), instances) {
        violation(
            rule::ORPHAN,
            format!(
                "{} ({}) is neither active nor tracked",
                instance.id, instance.status
            ),
        );
    }

    if let Some(lock) = records.lock(ns).await? {
        violation(
            rule::LOCK_HELD,
            format!(
                "locked by {} since {}",
                lock.execution_id,
                lock.acquired_at.to_rfc3339()
            ),
        );
    }
    Ok(found)
}
