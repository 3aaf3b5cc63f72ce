use super::gate::{self, Gate};
use super::{Env, made_by};
use crate::error::{AwsError, ResourceKind, StepError};
use crate::policy::{PolicyStep, ServiceFacts};

use crate::ports::{RevisionChange, Service, TaskDefinition, tag};
use crate::records::{ActivePointer, NamespaceSettings};
use crate::state::{DeployState, ExecutionInfo, Poll, ServiceRollout};

/// The environment the service's container reads its database from.
pub mod env_var {
    pub const DB_HOST: &str = "DB_HOST";
    pub const DB_PORT: &str = "DB_PORT";
    pub const DB_INSTANCE_ID: &str = "DB_INSTANCE_ID";
    pub const DB_TIMESTAMP: &str = "DB_TIMESTAMP";
    /// A secret, by reference to the database's own master password in Secrets Manager.
    pub const DB_PASSWORD: &str = "DB_PASSWORD";
}

/// Step 5a: register a new, immutable task definition revision that carries the new database's
/// coordinates (and optionally a new image), and roll the service onto it.
pub async fn deploy_service(
    env: Env<'_>,
    state: &DeployState,
) -> Result<ServiceRollout, StepError> {
    let ns = state.namespace()?;
    let execution = state.execution()?;
    let settings = &state.previous()?.settings;
    let pointer = state.rollout_pointer()?;

    let service = describe_service(env, &settings.cluster, &settings.service).await?;
    let current = env
        .aws
        .describe_task_definition(&service.task_definition_arn)
        .await?;
    if registered_by(&current, execution, pointer) {
        // A retry after our update went through.
        let previous_arn = previous_of(&current)?;
        let service = thaw(env, state, service).await?;
        return Ok(rollout(&service, &current, previous_arn, Poll::default()));
    }
    let current_arn = service.task_definition_arn.clone();
    let change = revision_change(
        &current,
        &current_arn,
        settings,
        pointer,
        state.rollout_image(),
        ns.as_str(),
        execution,
    )?;
    // A register whose answer was lost left our revision behind: use it, don't make another
    // (and don't ask the policies again: they allowed it).
    let registered = match env.aws.latest_task_definition(&current.family).await? {
        Some(latest) if registered_by(&latest, execution, pointer) => latest,
        _ => {
            let gate = Gate::load(env, &ns).await?;
            if !gate.is_empty() {
                let mut facts = gate::deploy_facts(PolicyStep::DeployService, state)?;
                facts.service = Some(service_facts(settings, &current, change.image.clone()));
                facts.target_db = Some(gate::database_facts(env, &pointer.db_instance_id).await?);
                gate.check(settings, facts).await?;
            }
            env.aws.register_revision(&current_arn, &change).await?
        }
    };
    let registered_arn = registered.arn.clone().ok_or_else(|| {
        StepError::Internal(format!(
            "ecs registered a revision of {} without an arn",
            registered.family
        ))
    })?;
    let updated = match env
        .aws
        .update_service(&settings.cluster, &settings.service, &registered_arn)
        .await
    {
        Ok(updated) => updated,
        Err(AwsError::NotFound { kind, id }) => {
            return Err(StepError::invalid(format!("{kind} {id} not found")));
        }
        Err(err) => return Err(err.into()),
    };
    tracing::info!(namespace = %ns, task_definition = %registered_arn, "service update requested");
    let updated = thaw(env, state, updated).await?;
    Ok(rollout(&updated, &registered, current_arn, Poll::default()))
}

/// The service change a `deploy-service` judgement looks at: from `current`'s image to `image`
/// (`None`: the image stays).
pub fn service_facts(
    settings: &NamespaceSettings,
    current: &TaskDefinition,
    image: Option<String>,
) -> ServiceFacts {
    let current_image = current
        .containers
        .iter()
        .find(|c| c.name == settings.container)
        .map(|c| c.image.clone())
        .unwrap_or_default();
    ServiceFacts {
        cluster: settings.cluster.clone(),
        service: settings.service.clone(),
        container: settings.container.clone(),
        new_image: image.unwrap_or_else(|| current_image.clone()),
        current_image,
    }
}

/// An upgrade froze the service (desired count 0): the rollout of the new revision brings it
/// back to the count it had. Anything else leaves the count alone.
async fn thaw(env: Env<'_>, state: &DeployState, service: Service) -> Result<Service, StepError> {
    let Some(before) = frozen_count(state) else {
        return Ok(service);
    };
    if service.desired_count == before {
        return Ok(service);
    }
    tracing::info!(namespace = %state.namespace, desired_count = before, "service thawed");
    Ok(env
        .aws
        .set_desired_count(&service.cluster, &service.name, before)
        .await?)
}

/// The desired count an upgrade's freeze must give back: what Preflight read before the freeze.
pub fn frozen_count(state: &DeployState) -> Option<i32> {
    state.upgrade_to.as_ref()?;
    state
        .freeze
        .as_ref()
        .map(|f| f.desired_count_before)
        .or_else(|| state.preflight.as_ref()?.service_desired_count)
}

/// Step 5b, polled: stable means more than the ECS waiter's "one deployment, running ==
/// desired". The PRIMARY deployment must run this execution's revision and its rollout must be
/// `COMPLETED`; a `FAILED` rollout, or a circuit breaker that rolled back, is a failure.
pub async fn check_service(env: Env<'_>, state: &DeployState) -> Result<ServiceRollout, StepError> {
    let current = state.service()?;
    let service = describe_service(env, &current.cluster, &current.service).await?;
    let primary = service
        .deployments
        .iter()
        .find(|d| d.status == "PRIMARY")
        .ok_or_else(|| StepError::RolloutFailed {
            service: current.service.clone(),
            reason: "the service has no primary deployment".into(),
        })?;
    // After the circuit breaker trips, the failed deployment is no longer the primary.
    if let Some(failed) = service.deployments.iter().find(|d| {
        d.rollout_state == "FAILED" && d.task_definition_arn == current.task_definition_arn
    }) {
        return Err(StepError::RolloutFailed {
            service: current.service.clone(),
            reason: failed
                .rollout_state_reason
                .clone()
                .unwrap_or_else(|| "rollout state FAILED".into()),
        });
    }
    if primary.rollout_state == "FAILED" {
        return Err(StepError::RolloutFailed {
            service: current.service.clone(),
            reason: primary
                .rollout_state_reason
                .clone()
                .unwrap_or_else(|| "rollout state FAILED".into()),
        });
    }
    if primary.task_definition_arn != current.task_definition_arn {
        return Err(StepError::RolloutFailed {
            service: current.service.clone(),
            reason: format!(
                "the primary deployment runs {}, not {}: rolled back or replaced",
                short_arn(&primary.task_definition_arn),
                short_arn(&current.task_definition_arn)
            ),
        });
    }
    let poll = if is_stable(&service) {
        current.poll.ready()
    } else {
        current.poll.next(&format!("service {}", current.service))?
    };
    let mut next = current.clone();
    next.rollout_state = primary.rollout_state.clone();
    next.running_count = primary.running_count;
    next.desired_count = primary.desired_count;
    next.poll = poll;
    Ok(next)
}

/// `family:revision` out of a task definition ARN, for messages people read.
fn short_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// One deployment, rolled out, with every wanted task running.
pub fn is_stable(service: &Service) -> bool {
    match service.deployments.as_slice() {
        [only] => {
            only.status == "PRIMARY"
                && only.rollout_state == "COMPLETED"
                && only.running_count == only.desired_count
                && service.running_count == service.desired_count
        }
        _ => false,
    }
}

pub(crate) async fn describe_service(
    env: Env<'_>,
    cluster: &str,
    service: &str,
) -> Result<Service, StepError> {
    match env.aws.describe_service(cluster, service).await {
        Ok(found) => Ok(found),
        Err(AwsError::NotFound {
            kind: ResourceKind::Service | ResourceKind::Cluster,
            ..
        }) => Err(StepError::invalid(format!(
            "service {service} not found in cluster {cluster}"
        ))),
        Err(err) => Err(err.into()),
    }
}

pub(crate) fn previous_of(definition: &TaskDefinition) -> Result<String, StepError> {
    definition
        .tags
        .get(tag::PREVIOUS_TASK_DEFINITION)
        .cloned()
        .ok_or_else(|| {
            StepError::Internal(format!(
                "task definition {}:{} has no {} tag",
                definition.family,
                definition.revision,
                tag::PREVIOUS_TASK_DEFINITION
            ))
        })
}

fn rollout(
    service: &Service,
    definition: &TaskDefinition,
    previous_task_definition_arn: String,
    poll: Poll,
) -> ServiceRollout {
    let primary = service.deployments.iter().find(|d| d.status == "PRIMARY");
    ServiceRollout {
        cluster: service.cluster.clone(),
        service: service.name.clone(),
        task_definition_arn: definition.arn.clone().unwrap_or_default(),
        revision: definition.revision,
        previous_task_definition_arn,
        rollout_state: primary.map_or_else(String::new, |d| d.rollout_state.clone()),
        running_count: primary.map_or(0, |d| d.running_count),
        desired_count: primary.map_or(service.desired_count, |d| d.desired_count),
        poll,
    }
}

/// Whether `definition` is the revision this execution registered: made by this run (id and
/// start), and naming the database this run swapped to.
pub fn registered_by(
    definition: &TaskDefinition,
    execution: &ExecutionInfo,
    pointer: &ActivePointer,
) -> bool {
    made_by(&definition.tags, execution)
        && definition.tags.get(tag::DB_INSTANCE) == Some(&pointer.db_instance_id)
}

/// How the next revision differs from the current one: the database coordinates (and image)
/// replaced, the tenant's settings as variables and secrets (those the catalog dropped
/// removed), and tags that tell rollback what to return to.
pub fn revision_change(
    current: &TaskDefinition,
    current_arn: &str,
    settings: &NamespaceSettings,
    pointer: &ActivePointer,
    image: Option<&str>,
    namespace: &str,
    execution: &ExecutionInfo,
) -> Result<RevisionChange, StepError> {
    let container = &settings.container;
    let target = current
        .containers
        .iter()
        .find(|c| &c.name == container)
        .ok_or_else(|| {
            StepError::invalid(format!(
                "task definition {current_arn} has no container {container:?}"
            ))
        })?;
    let mut environment = settings.app_environment.clone();
    environment.extend([
        (env_var::DB_HOST.to_owned(), pointer.endpoint.clone()),
        (env_var::DB_PORT.to_owned(), pointer.port.to_string()),
        (
            env_var::DB_INSTANCE_ID.to_owned(),
            pointer.db_instance_id.clone(),
        ),
        (
            env_var::DB_TIMESTAMP.to_owned(),
            pointer.timestamp.to_string(),
        ),
    ]);
    let mut secrets = settings.app_secrets.clone();
    let mut unset: Vec<String> = Vec::new();
    match &pointer.master_user_secret_arn {
        // The `password` key of the JSON secret RDS keeps (it also holds `username`).
        Some(arn) => {
            secrets.insert(env_var::DB_PASSWORD.to_owned(), format!("{arn}:password::"));
        }
        // A reference to another database's RDS-managed secret is wrong for this one (and
        // that secret goes with its database): dropped, so the rollout fails loudly and rolls
        // back rather than running on a password that is about to vanish.
        None => {
            if target
                .secrets
                .get(env_var::DB_PASSWORD)
                .is_some_and(|reference| reference.contains(":secret:rds!"))
            {
                unset.push(env_var::DB_PASSWORD.to_owned());
            }
        }
    }
    let managed: Vec<&str> = settings
        .app_environment
        .keys()
        .chain(settings.app_secrets.keys())
        .map(String::as_str)
        .collect();
    if let Some(names) = current.tags.get(tag::APP_SETTINGS) {
        unset.extend(
            names
                .split_whitespace()
                .filter(|name| !managed.contains(name))
                .map(str::to_owned),
        );
    }
    let image = image.map(|i| with_image(&target.image, i)).transpose()?;
    let mut tags = super::execution_tags(namespace, execution);
    tags.extend([
        (tag::DB_INSTANCE.to_owned(), pointer.db_instance_id.clone()),
        (
            tag::PREVIOUS_TASK_DEFINITION.to_owned(),
            current_arn.to_owned(),
        ),
    ]);
    if !managed.is_empty() {
        // ECS tag values allow letters, digits, spaces and `_.:/=+-@`: no commas.
        tags.insert(tag::APP_SETTINGS.to_owned(), managed.join(" "));
    }
    Ok(RevisionChange {
        container: container.to_owned(),
        environment,
        secrets,
        unset,
        image,
        tags,
        family: None,
        command: None,
        sole_container: false,
    })
}

/// An image is a tag (`1.4.1`, for the service's current repository) or a full reference as
/// the OCI distribution grammar spells it: `[registry[:port]/]path[:tag][@algorithm:digest]`,
/// the path of lowercase components (`a-z0-9` joined by `.`, `_`, `__` or `-`), a tag of up to
/// 128 of `A-Za-z0-9_.-` not starting with `.` or `-`. Checked before anything is created;
/// whether the image exists is the registry's word, at the rollout.
pub fn check_image(image: &str) -> Result<(), StepError> {
    let invalid = |why: &str| StepError::invalid(format!("invalid image {image:?}: {why}"));
    if image.is_empty() || image.len() > 255 {
        return Err(invalid("it must be 1 to 255 characters long"));
    }
    if !image.is_ascii() || image.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(invalid("only printable ASCII without spaces"));
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let ok = digest.split_once(':').is_some_and(|(algorithm, hex)| {
            !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
                && hex.len() >= 32
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !ok {
            return Err(invalid(
                "the digest must be algorithm:hex, e.g. sha256:<64 hex digits>",
            ));
        }
    }
    // The tag: after the last ':' that follows the last '/' (a ':' before it is a port).
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match name[last_slash..].rfind(':') {
        Some(at) => (&name[..last_slash + at], Some(&name[last_slash + at + 1..])),
        None => (name, None),
    };
    if let Some(tag) = tag.or((!name.contains('/') && digest.is_none()).then_some(name)) {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok {
            return Err(invalid(
                "a tag is up to 128 of A-Z a-z 0-9 _ . - and starts with none of . -",
            ));
        }
        if tag.len() == name.len() {
            // A bare tag for the current repository.
            return Ok(());
        }
    }
    let mut components: Vec<&str> = repository.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        let host = first.contains(['.', ':']) || first == "localhost";
        if host {
            let (domain, port) = first.split_once(':').unwrap_or((first, ""));
            let domain_ok = !domain.is_empty()
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b));
            let port_ok = port.is_empty() && !first.contains(':')
                || !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
            if !domain_ok || !port_ok {
                return Err(invalid("the registry must be host[:port]"));
            }
            components.remove(0);
        }
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    if components.is_empty() || !components.iter().all(|c| component_ok(c)) {
        return Err(invalid(
            "a repository path is lowercase a-z 0-9 components joined by / (with . _ - inside)",
        ));
    }
    Ok(())
}

/// `image` is a full reference (`repo/app:2.0`, `repo/app@sha256:..`) or just a tag (`2.0`) for
/// the current repository.
pub fn with_image(current: &str, image: &str) -> Result<String, StepError> {
    check_image(image)?;
    if image.contains('/') || image.contains(':') || image.contains('@') {
        return Ok(image.to_owned());
    }
    let repository_start = current.rfind('/').map_or(0, |i| i + 1);
    let repository_end = current[repository_start..]
        .find([':', '@'])
        .map_or(current.len(), |i| repository_start + i);
    Ok(format!("{}:{image}", &current[..repository_end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_follow_the_oci_grammar() {
        for good in [
            "1.3.3",
            "v2.0.1-rc.1",
            "latest",
            "app:1.0",
            "team/app",
            "registry.example.com:5000/team/app:1.1.0",
            "localhost/app:dev_1",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/xy/app:1.4.1",
            "repo/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(check_image(good).is_ok(), "{good}: {:?}", check_image(good));
        }
        for bad in [
            "",
            "\"1.3.3\"",
            "1.3.3ü",
            "two words",
            "tab\t",
            ".hidden",
            "-dash",
            "Team/App:1.0",
            "repo//app",
            "repo/app:",
            "repo/app@sha256:xyz",
            "registry:port/app",
            &"x".repeat(256),
        ] {
            let err = check_image(bad).unwrap_err();
            assert_eq!(err.name(), "InvalidInput", "{bad}");
        }
    }

    #[test]
    fn image_tags_and_references() {
        assert_eq!(
            with_image("registry:5000/team/app:1.0.0", "1.1.0").unwrap(),
            "registry:5000/team/app:1.1.0"
        );
        assert_eq!(with_image("app@sha256:abc", "2").unwrap(), "app:2");
        assert_eq!(with_image("app", "2").unwrap(), "app:2");
        assert_eq!(with_image("app:1", "other/app:3").unwrap(), "other/app:3");
        assert!(with_image("app:1", "").is_err());
        assert!(with_image("app:1", "a b").is_err());
    }
}
