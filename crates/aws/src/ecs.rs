//! Services and task definitions on ECS.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ecs::error::SdkError;
use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
use aws_sdk_ecs::operation::describe_task_definition::{
    DescribeTaskDefinitionError, DescribeTaskDefinitionOutput,
};
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksError;
use aws_sdk_ecs::operation::list_tasks::ListTasksError;
use aws_sdk_ecs::operation::register_task_definition::{
    RegisterTaskDefinitionError, RegisterTaskDefinitionOutput,
};
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::operation::update_service::UpdateServiceError;
use aws_sdk_ecs::operation::update_service::builders::UpdateServiceFluentBuilder;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration as SdkAwsVpc, Compatibility,
    ContainerDefinition as SdkContainer, Deployment as SdkDeployment, DesiredStatus, KeyValuePair,
    LaunchType, NetworkConfiguration, NetworkMode, Secret, Service as SdkService, Tag,
    Task as SdkTask, TaskDefinition as SdkTaskDefinition, TaskDefinitionField,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{
    AwsVpcConfiguration, ContainerDefinition, Deployment, EcsTask, RevisionChange, RunTaskRequest,
    Service, Services, Tags, TaskContainer, TaskDefinition,
};

use crate::SdkAws;
use crate::error::{map_sdk_error, message_of, missing_in_response, not_found};

/// What `DescribeServices` lists under `failures` for a service that does not exist.
const MISSING: &str = "MISSING";
/// `DescribeServices` takes at most this many services a call.
const DESCRIBE_SERVICES_MAX: usize = 10;
/// A deleted service lingers with this status for a while; to a deploy it is gone.
const INACTIVE: &str = "INACTIVE";
/// The namespace of every tag key Switchyard writes.
const SWITCHYARD_TAG_PREFIX: &str = "switchyard:";

#[async_trait]
impl Services for SdkAws {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<Service, AwsError> {
        let mut found = self
            .describe_services(cluster, &[service.to_owned()])
            .await?;
        found
            .remove(service)
            .unwrap_or_else(|| Err(not_found_service(service)))
    }

    async fn describe_services(
        &self,
        cluster: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, Result<Service, AwsError>>, AwsError> {
        let mut found = BTreeMap::new();
        for batch in names.chunks(DESCRIBE_SERVICES_MAX) {
            let output = self
                .ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|err| {
                    map_sdk_error(err, |err| match err {
                        DescribeServicesError::ClusterNotFoundException(_) => {
                            not_found(ResourceKind::Cluster, cluster)
                        }
                        _ => None,
                    })
                })?;
            // Each answer under the name it was asked by (a name or an ARN): a missing service
            // is simply absent, another failure is that service's own.
            for failure in output.failures.unwrap_or_default() {
                let reason = failure.reason.unwrap_or_default();
                if reason == MISSING {
                    continue;
                }
                // One name asked: the failure is about it, whatever ARN it gives.
                let name = match batch {
                    [only] => Some(only),
                    _ => failure
                        .arn
                        .as_deref()
                        .and_then(|arn| asked_as(batch, arn, None)),
                };
                let Some(name) = name else {
                    continue;
                };
                let message = format!(
                    "describe of service {name} in cluster {cluster} failed: {}",
                    failure.detail.as_deref().unwrap_or(&reason)
                );
                found.insert(
                    name.clone(),
                    Err(AwsError::Rejected {
                        message,
                        code: reason,
                    }),
                );
            }
            for service in output.services.unwrap_or_default() {
                if service.status.as_deref() == Some(INACTIVE) {
                    continue;
                }
                let asked = match batch {
                    [only] => Some(only),
                    _ => asked_as(
                        batch,
                        service.service_arn.as_deref().unwrap_or_default(),
                        service.service_name.as_deref(),
                    ),
                };
                if let Some(name) = asked.cloned() {
                    found.insert(name, Ok(to_service(cluster, service)));
                }
            }
        }
        Ok(found)
    }

    async fn describe_task_definition(&self, arn: &str) -> Result<TaskDefinition, AwsError> {
        let output = self.describe_sdk_task_definition(arn).await?;
        let tags = from_sdk_tags(output.tags);
        output
            .task_definition
            .map(|definition| to_task_definition(definition, tags))
            .ok_or_else(|| {
                missing_in_response("DescribeTaskDefinition", ResourceKind::TaskDefinition, arn)
            })
    }

    async fn latest_task_definition(
        &self,
        family: &str,
    ) -> Result<Option<TaskDefinition>, AwsError> {
        // DescribeTaskDefinition of a bare family is its latest ACTIVE revision, of that family
        // exactly. (ListTaskDefinitions' familyPrefix would also list `app-migrate` under `app`,
        // and sorted DESC list it first.)
        match self.describe_task_definition(family).await {
            Ok(definition) if definition.family == family => Ok(Some(definition)),
            Ok(_) | Err(AwsError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn register_task_definition(
        &self,
        definition: &TaskDefinition,
    ) -> Result<TaskDefinition, AwsError> {
        let containers = definition
            .containers
            .iter()
            .map(to_sdk_container)
            .collect::<Result<Vec<_>, _>>()?;
        let compatibilities = definition
            .requires_compatibilities
            .iter()
            .map(|compatibility| Compatibility::from(compatibility.as_str()))
            .collect::<Vec<_>>();
        let output = self
            .ecs
            .register_task_definition()
            .family(&definition.family)
            .set_container_definitions(Some(containers))
            .set_cpu(definition.cpu.clone())
            .set_memory(definition.memory.clone())
            .set_network_mode(definition.network_mode.as_deref().map(NetworkMode::from))
            .set_requires_compatibilities(non_empty(compatibilities))
            .set_execution_role_arn(definition.execution_role_arn.clone())
            .set_task_role_arn(definition.task_role_arn.clone())
            .set_tags(non_empty(to_sdk_tags(&definition.tags)))
            .send()
            .await;
        registered(output, &definition.family)
    }

    async fn register_revision(
        &self,
        base_arn: &str,
        change: &RevisionChange,
    ) -> Result<TaskDefinition, AwsError> {
        let described = self.describe_sdk_task_definition(base_arn).await?;
        let base = described.task_definition.ok_or_else(|| {
            missing_in_response(
                "DescribeTaskDefinition",
                ResourceKind::TaskDefinition,
                base_arn,
            )
        })?;
        let mut containers = base.container_definitions.unwrap_or_default();
        let container = containers
            .iter_mut()
            .find(|container| container.name.as_deref() == Some(change.container.as_str()))
            .ok_or_else(|| AwsError::Rejected {
                code: "ClientException".to_owned(),
                message: format!(
                    "task definition {base_arn} has no container named {}",
                    change.container
                ),
            })?;
        apply_change(container, change);
        if change.sole_container {
            containers.retain(|c| c.name.as_deref() == Some(change.container.as_str()));
            for container in &mut containers {
                container.essential = Some(true);
                container.entry_point = None;
                container.depends_on = None;
                container.links = None;
                container.health_check = None;
            }
        }
        let family = change
            .family
            .clone()
            .unwrap_or_else(|| base.family.unwrap_or_default());
        let tags = revision_tags(from_sdk_tags(described.tags), &change.tags);
        // Every field RegisterTaskDefinition accepts, taken from the base as described. The
        // describe-only ones (ARN, revision, status, compatibilities, requiresAttributes,
        // registration times) are left out.
        let request = self
            .ecs
            .register_task_definition()
            .family(&family)
            .set_task_role_arn(base.task_role_arn)
            .set_execution_role_arn(base.execution_role_arn)
            .set_network_mode(base.network_mode)
            .set_container_definitions(Some(containers))
            .set_volumes(base.volumes.and_then(non_empty))
            .set_placement_constraints(base.placement_constraints.and_then(non_empty))
            .set_requires_compatibilities(base.requires_compatibilities.and_then(non_empty))
            .set_cpu(base.cpu)
            .set_memory(base.memory)
            .set_pid_mode(base.pid_mode)
            .set_ipc_mode(base.ipc_mode)
            .set_proxy_configuration(base.proxy_configuration)
            .set_ephemeral_storage(base.ephemeral_storage)
            .set_runtime_platform(base.runtime_platform)
            .set_enable_fault_injection(base.enable_fault_injection)
            .set_tags(non_empty(to_sdk_tags(&tags)));
        // Deprecated because ECS retired Elastic Inference; a base that still lists accelerators
        // gets them back, so the service, not this copy, decides whether they still register.
        #[allow(deprecated)]
        let request = request
            .set_inference_accelerators(non_empty(base.inference_accelerators.unwrap_or_default()));
        registered(request.send().await, &family)
    }

    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<Service, AwsError> {
        let request = self
            .ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition_arn);
        update(request, cluster, service).await
    }

    async fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired_count: i32,
    ) -> Result<Service, AwsError> {
        let request = self
            .ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(desired_count);
        update(request, cluster, service).await
    }

    async fn run_task(&self, request: &RunTaskRequest) -> Result<EcsTask, AwsError> {
        let network = match &request.network {
            Some(network) => Some(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        SdkAwsVpc::builder()
                            .set_subnets(Some(network.subnets.clone()))
                            .set_security_groups(non_empty(network.security_groups.clone()))
                            .set_assign_public_ip(
                                network
                                    .assign_public_ip
                                    .as_deref()
                                    .map(AssignPublicIp::from),
                            )
                            .build()
                            .map_err(|err| AwsError::Rejected {
                                code: "InvalidParameterException".to_owned(),
                                message: format!("network configuration: {err}"),
                            })?,
                    )
                    .build(),
            ),
            None => None,
        };
        let output = self
            .ecs
            .run_task()
            .cluster(&request.cluster)
            .task_definition(&request.task_definition)
            .set_launch_type(request.launch_type.as_deref().map(LaunchType::from))
            .set_network_configuration(network)
            .set_started_by(request.started_by.clone())
            .set_client_token(request.client_token.clone())
            .count(1)
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    RunTaskError::ClusterNotFoundException(_) => {
                        not_found(ResourceKind::Cluster, &request.cluster)
                    }
                    _ => None,
                })
            })?;
        if let Some(failure) = output.failures.unwrap_or_default().into_iter().next() {
            return Err(AwsError::Rejected {
                code: "RunTaskFailure".to_owned(),
                message: format!(
                    "task of {} did not start: {} {}",
                    request.task_definition,
                    failure.reason.unwrap_or_default(),
                    failure.detail.unwrap_or_default()
                ),
            });
        }
        output
            .tasks
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(to_task)
            .ok_or_else(|| {
                missing_in_response("RunTask", ResourceKind::Task, &request.task_definition)
            })
    }

    async fn live_service_tasks(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<EcsTask>, AwsError> {
        let mut arns = Vec::new();
        // Running ones, and those told to stop (still draining until they are STOPPED).
        for desired in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let mut pages = self
                .ecs
                .list_tasks()
                .cluster(cluster)
                .service_name(service)
                .desired_status(desired)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|err| {
                    map_sdk_error(err, |err| match err {
                        ListTasksError::ClusterNotFoundException(_) => {
                            not_found(ResourceKind::Cluster, cluster)
                        }
                        ListTasksError::ServiceNotFoundException(_) => {
                            not_found(ResourceKind::Service, service)
                        }
                        _ => None,
                    })
                })?;
                arns.extend(page.task_arns.unwrap_or_default());
            }
        }
        let mut live = Vec::new();
        // DescribeTasks takes up to 100 tasks a call.
        for chunk in arns.chunks(100) {
            let output = self
                .ecs
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|err| map_sdk_error(err, |_| None))?;
            live.extend(
                output
                    .tasks
                    .unwrap_or_default()
                    .into_iter()
                    .map(to_task)
                    .filter(|task| task.last_status != "STOPPED"),
            );
        }
        Ok(live)
    }

    async fn describe_task(&self, cluster: &str, task_arn: &str) -> Result<EcsTask, AwsError> {
        let output = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(task_arn)
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    DescribeTasksError::ClusterNotFoundException(_) => {
                        not_found(ResourceKind::Cluster, cluster)
                    }
                    _ => None,
                })
            })?;
        output
            .tasks
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(to_task)
            .ok_or_else(|| AwsError::NotFound {
                kind: ResourceKind::Task,
                id: task_arn.to_owned(),
            })
    }
}

/// Sends an UpdateService (a new revision, or a desired count) and reads the service back.
async fn update(
    request: UpdateServiceFluentBuilder,
    cluster: &str,
    service: &str,
) -> Result<Service, AwsError> {
    let output = request.send().await.map_err(|err| {
        map_sdk_error(err, |err| match err {
            UpdateServiceError::ServiceNotFoundException(_)
            | UpdateServiceError::ServiceNotActiveException(_) => {
                not_found(ResourceKind::Service, service)
            }
            UpdateServiceError::ClusterNotFoundException(_) => {
                not_found(ResourceKind::Cluster, cluster)
            }
            _ => None,
        })
    })?;
    output
        .service
        .map(|updated| to_service(cluster, updated))
        .ok_or_else(|| missing_in_response("UpdateService", ResourceKind::Service, service))
}

fn to_task(task: SdkTask) -> EcsTask {
    let time = |t: Option<aws_smithy_types::DateTime>| {
        t.and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
    };
    EcsTask {
        task_arn: task.task_arn.unwrap_or_default(),
        cluster_arn: task.cluster_arn.unwrap_or_default(),
        task_definition_arn: task.task_definition_arn.unwrap_or_default(),
        last_status: task.last_status.unwrap_or_default(),
        desired_status: task.desired_status.unwrap_or_default(),
        stop_code: task.stop_code.map(|code| code.as_str().to_owned()),
        stopped_reason: task.stopped_reason,
        containers: task
            .containers
            .unwrap_or_default()
            .into_iter()
            .map(|c| TaskContainer {
                name: c.name.unwrap_or_default(),
                last_status: c.last_status.unwrap_or_default(),
                exit_code: c.exit_code,
                reason: c.reason,
            })
            .collect(),
        started_by: task.started_by,
        created_at: time(task.created_at),
        stopped_at: time(task.stopped_at),
    }
}

impl SdkAws {
    /// DescribeTaskDefinition with tags, as the SDK returns it.
    async fn describe_sdk_task_definition(
        &self,
        arn: &str,
    ) -> Result<DescribeTaskDefinitionOutput, AwsError> {
        self.ecs
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    // ECS has no dedicated code for this: an unknown family or revision is a
                    // generic ClientException told apart only by its message.
                    DescribeTaskDefinitionError::ClientException(client)
                        if message_of(client)
                            .to_ascii_lowercase()
                            .contains("unable to describe task definition") =>
                    {
                        not_found(ResourceKind::TaskDefinition, arn)
                    }
                    _ => None,
                })
            })
    }
}

/// Sets the changed environment variables (in place where the name exists, appended otherwise,
/// every other variable kept as it was) and the image.
fn apply_change(container: &mut SdkContainer, change: &RevisionChange) {
    // One name is a variable or a secret, never both (ECS refuses the pair).
    if let Some(secrets) = &mut container.secrets {
        secrets.retain(|secret| !change.environment.contains_key(&secret.name));
    }
    if let Some(environment) = &mut container.environment {
        environment.retain(|pair| {
            !pair
                .name
                .as_deref()
                .is_some_and(|name| change.secrets.contains_key(name))
        });
    }
    if !change.environment.is_empty() {
        let environment = container.environment.get_or_insert_with(Vec::new);
        for (name, value) in &change.environment {
            let mut found = false;
            for pair in environment
                .iter_mut()
                .filter(|pair| pair.name.as_deref() == Some(name.as_str()))
            {
                pair.value = Some(value.clone());
                found = true;
            }
            if !found {
                environment.push(KeyValuePair::builder().name(name).value(value).build());
            }
        }
    }
    if !change.secrets.is_empty() {
        let secrets = container.secrets.get_or_insert_with(Vec::new);
        for (name, value_from) in &change.secrets {
            secrets.retain(|secret| secret.name != *name);
            // Both fields are given: the builder cannot fail.
            if let Ok(secret) = Secret::builder().name(name).value_from(value_from).build() {
                secrets.push(secret);
            }
        }
    }
    if !change.unset.is_empty() {
        let unset = |name: &str| change.unset.iter().any(|u| u == name);
        if let Some(environment) = &mut container.environment {
            environment.retain(|pair| !pair.name.as_deref().is_some_and(unset));
        }
        if let Some(secrets) = &mut container.secrets {
            secrets.retain(|secret| !unset(&secret.name));
        }
    }
    if let Some(image) = &change.image {
        container.image = Some(image.clone());
    }
    if let Some(command) = &change.command {
        container.command = Some(command.clone());
    }
}

/// The base's own tags outside Switchyard's namespace, then `changed` on top: Switchyard's tags
/// describe one revision, so the base's are not inherited.
fn revision_tags(base: Tags, changed: &Tags) -> Tags {
    let mut tags = base
        .into_iter()
        .filter(|(key, _)| !key.starts_with(SWITCHYARD_TAG_PREFIX))
        .collect::<Tags>();
    tags.extend(
        changed
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    tags
}

/// ECS rejects some empty lists (tags among them) that it would accept left out.
/// What RegisterTaskDefinition answered, as the registered definition with its tags.
fn registered(
    output: Result<
        RegisterTaskDefinitionOutput,
        SdkError<RegisterTaskDefinitionError, HttpResponse>,
    >,
    family: &str,
) -> Result<TaskDefinition, AwsError> {
    let output = output.map_err(|err| map_sdk_error(err, |_| None))?;
    let tags = from_sdk_tags(output.tags);
    output
        .task_definition
        .map(|registered| to_task_definition(registered, tags))
        .ok_or_else(|| {
            missing_in_response(
                "RegisterTaskDefinition",
                ResourceKind::TaskDefinition,
                family,
            )
        })
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    Some(items).filter(|items| !items.is_empty())
}

fn to_sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

fn from_sdk_tags(tags: Option<Vec<Tag>>) -> Tags {
    tags.unwrap_or_default()
        .into_iter()
        .filter_map(|tag| Some((tag.key?, tag.value.unwrap_or_default())))
        .collect()
}

/// `cluster` is the name the caller used: ECS answers with the cluster's ARN, which no caller
/// compares against.
fn not_found_service(service: &str) -> AwsError {
    AwsError::NotFound {
        kind: ResourceKind::Service,
        id: service.to_owned(),
    }
}

/// Which of the names `DescribeServices` was asked for an answer is about: the service's ARN, its
/// name, or an ARN ending in `/<name>` (a failure names only the ARN).
fn asked_as<'a>(asked: &'a [String], arn: &str, name: Option<&str>) -> Option<&'a String> {
    asked.iter().find(|asked| {
        asked.as_str() == arn
            || Some(asked.as_str()) == name
            || arn
                .rsplit_once('/')
                .is_some_and(|(_, last)| last == asked.as_str())
    })
}

fn to_service(cluster: &str, service: SdkService) -> Service {
    Service {
        cluster: cluster.to_owned(),
        name: service.service_name.unwrap_or_default(),
        status: service.status.unwrap_or_default(),
        task_definition_arn: service.task_definition.unwrap_or_default(),
        desired_count: service.desired_count,
        running_count: service.running_count,
        deployments: service
            .deployments
            .unwrap_or_default()
            .into_iter()
            .map(to_deployment)
            .collect(),
        launch_type: service.launch_type.map(|t| t.as_str().to_owned()),
        network: service
            .network_configuration
            .and_then(|n| n.awsvpc_configuration)
            .map(|vpc| AwsVpcConfiguration {
                subnets: vpc.subnets,
                security_groups: vpc.security_groups.unwrap_or_default(),
                assign_public_ip: vpc.assign_public_ip.map(|a| a.as_str().to_owned()),
            }),
    }
}

fn to_deployment(deployment: SdkDeployment) -> Deployment {
    Deployment {
        id: deployment.id.unwrap_or_default(),
        status: deployment.status.unwrap_or_default(),
        task_definition_arn: deployment.task_definition.unwrap_or_default(),
        desired_count: deployment.desired_count,
        running_count: deployment.running_count,
        rollout_state: deployment
            .rollout_state
            .map(|state| state.as_str().to_owned())
            .unwrap_or_default(),
        rollout_state_reason: deployment.rollout_state_reason,
    }
}

fn to_task_definition(definition: SdkTaskDefinition, tags: Tags) -> TaskDefinition {
    TaskDefinition {
        arn: definition.task_definition_arn,
        family: definition.family.unwrap_or_default(),
        revision: definition.revision,
        containers: definition
            .container_definitions
            .unwrap_or_default()
            .into_iter()
            .map(to_container)
            .collect(),
        cpu: definition.cpu,
        memory: definition.memory,
        network_mode: definition.network_mode.map(|mode| mode.as_str().to_owned()),
        requires_compatibilities: definition
            .requires_compatibilities
            .unwrap_or_default()
            .into_iter()
            .map(|compatibility| compatibility.as_str().to_owned())
            .collect(),
        execution_role_arn: definition.execution_role_arn,
        task_role_arn: definition.task_role_arn,
        tags,
    }
}

fn to_container(container: SdkContainer) -> ContainerDefinition {
    ContainerDefinition {
        name: container.name.unwrap_or_default(),
        image: container.image.unwrap_or_default(),
        // ECS's documented default: a container not marked otherwise is essential.
        essential: container.essential.unwrap_or(true),
        memory_mib: container.memory,
        environment: container
            .environment
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pair| Some((pair.name?, pair.value.unwrap_or_default())))
            .collect(),
        secrets: container
            .secrets
            .unwrap_or_default()
            .into_iter()
            .map(|secret| (secret.name, secret.value_from))
            .collect(),
        command: container.command.unwrap_or_default(),
    }
}

fn to_sdk_container(container: &ContainerDefinition) -> Result<SdkContainer, AwsError> {
    let environment = container
        .environment
        .iter()
        .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
        .collect::<Vec<_>>();
    let secrets = container
        .secrets
        .iter()
        .map(|(name, value_from)| to_sdk_secret(&container.name, name, value_from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SdkContainer::builder()
        .name(&container.name)
        .image(&container.image)
        .essential(container.essential)
        .set_memory(container.memory_mib)
        .set_environment(non_empty(environment))
        .set_secrets(non_empty(secrets))
        .set_command(non_empty(container.command.clone()))
        .build())
}

fn to_sdk_secret(container: &str, name: &str, value_from: &str) -> Result<Secret, AwsError> {
    Secret::builder()
        .name(name)
        .value_from(value_from)
        .build()
        .map_err(|err| AwsError::Rejected {
            code: "ConstructionFailure".to_owned(),
            message: format!("secret {name} of container {container}: {err}"),
        })
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::Client;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::register_task_definition::{
        RegisterTaskDefinitionInput, RegisterTaskDefinitionOutput,
    };
    use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
    use aws_sdk_ecs::types::error::{
        ClientException, ClusterNotFoundException, ServiceNotFoundException,
    };
    use aws_sdk_ecs::types::{
        ContainerCondition, ContainerDependency, CpuArchitecture, DeploymentRolloutState,
        EphemeralStorage, Failure, LogConfiguration, LogDriver, OsFamily, PortMapping,
        RuntimePlatform, TransportProtocol, Volume,
    };
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::testing::{self, json_error, meta};

    const TD_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/app:7";

    fn sdk_service(status: &str) -> SdkService {
        SdkService::builder()
            .service_name("app")
            .cluster_arn("arn:aws:ecs:us-east-1:123456789012:cluster/xy")
            .status(status)
            .task_definition(TD_ARN)
            .desired_count(2)
            .running_count(1)
            .deployments(
                SdkDeployment::builder()
                    .id("ecs-svc/1")
                    .status("PRIMARY")
                    .task_definition(TD_ARN)
                    .desired_count(2)
                    .running_count(1)
                    .rollout_state(DeploymentRolloutState::InProgress)
                    .rollout_state_reason("ECS deployment ecs-svc/1 in progress.")
                    .build(),
            )
            .deployments(
                SdkDeployment::builder()
                    .id("ecs-svc/0")
                    .status("ACTIVE")
                    .task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/app:6")
                    .desired_count(0)
                    .running_count(1)
                    .build(),
            )
            .build()
    }

    fn sdk_task_definition() -> SdkTaskDefinition {
        SdkTaskDefinition::builder()
            .task_definition_arn(TD_ARN)
            .family("app")
            .revision(7)
            .container_definitions(
                SdkContainer::builder()
                    .name("web")
                    .image("registry/app:1.2")
                    .memory(512)
                    .environment(KeyValuePair::builder().name("MODE").value("green").build())
                    .environment(KeyValuePair::builder().name("EMPTY").build())
                    .secrets(
                        Secret::builder()
                            .name("DATABASE_URL")
                            .value_from("arn:aws:ssm:us-east-1:123456789012:parameter/xy/db")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .container_definitions(
                SdkContainer::builder()
                    .name("sidecar")
                    .image("registry/proxy:3")
                    .essential(false)
                    .build(),
            )
            .cpu("256")
            .memory("512")
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .execution_role_arn("arn:aws:iam::123456789012:role/exec")
            .task_role_arn("arn:aws:iam::123456789012:role/task")
            .build()
    }

    fn pairs(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn expected_task_definition() -> TaskDefinition {
        TaskDefinition {
            arn: Some(TD_ARN.into()),
            family: "app".into(),
            revision: 7,
            containers: vec![
                ContainerDefinition {
                    name: "web".into(),
                    image: "registry/app:1.2".into(),
                    essential: true,
                    memory_mib: Some(512),
                    environment: pairs(&[("EMPTY", ""), ("MODE", "green")]),
                    secrets: pairs(&[(
                        "DATABASE_URL",
                        "arn:aws:ssm:us-east-1:123456789012:parameter/xy/db",
                    )]),
                    command: Vec::new(),
                },
                ContainerDefinition {
                    name: "sidecar".into(),
                    image: "registry/proxy:3".into(),
                    essential: false,
                    memory_mib: None,
                    environment: pairs(&[]),
                    secrets: pairs(&[]),
                    command: Vec::new(),
                },
            ],
            cpu: Some("256".into()),
            memory: Some("512".into()),
            network_mode: Some("awsvpc".into()),
            requires_compatibilities: vec!["FARGATE".into()],
            execution_role_arn: Some("arn:aws:iam::123456789012:role/exec".into()),
            task_role_arn: Some("arn:aws:iam::123456789012:role/task".into()),
            tags: pairs(&[("switchyard:namespace", "xy-0146-qa")]),
        }
    }

    #[tokio::test]
    async fn describe_services_asks_ten_a_call_and_leaves_out_what_is_missing_or_deleted() {
        let names: Vec<String> = (0..12).map(|i| format!("app-{i}")).collect();
        let named = |name: &str, status: &str| {
            SdkService::builder()
                .service_name(name)
                .status(status)
                .task_definition(TD_ARN)
                .build()
        };
        let first = mock!(Client::describe_services)
            .match_requests(|req| req.cluster() == Some("xy") && req.services().len() == 10)
            .then_output(move || {
                let mut output = DescribeServicesOutput::builder().failures(
                    Failure::builder()
                        .arn("arn:aws:ecs:us-east-1:123456789012:service/xy/app-3")
                        .reason("MISSING")
                        .build(),
                );
                for i in (0..10).filter(|i| *i != 3) {
                    output = output.services(named(&format!("app-{i}"), "ACTIVE"));
                }
                output.build()
            });
        let second = mock!(Client::describe_services)
            .match_requests(|req| req.services() == ["app-10", "app-11"])
            .then_output(move || {
                DescribeServicesOutput::builder()
                    .services(named("app-10", "ACTIVE"))
                    .services(named("app-11", "INACTIVE"))
                    .build()
            });
        let found = testing::ecs(&[&first, &second])
            .describe_services("xy", &names)
            .await
            .unwrap();
        let expected: BTreeMap<String, ()> = (0..11)
            .filter(|i| *i != 3)
            .map(|i| (format!("app-{i}"), ()))
            .collect();
        assert_eq!(
            found
                .keys()
                .map(|k| (k.clone(), ()))
                .collect::<BTreeMap<_, _>>(),
            expected
        );
        assert_eq!(first.num_calls() + second.num_calls(), 2);

        // A failure other than MISSING is that service's own; the others are still answered,
        // each under the name it was asked by.
        let refused = mock!(Client::describe_services).then_output(move || {
            DescribeServicesOutput::builder()
                .failures(
                    Failure::builder()
                        .arn("arn:aws:ecs:us-east-1:123456789012:service/xy/app-0")
                        .reason("ACCESS_DENIED")
                        .detail("not authorized")
                        .build(),
                )
                .services(
                    SdkService::builder()
                        .service_name("app-1")
                        .service_arn("arn:aws:ecs:us-east-1:123456789012:service/xy/app-1")
                        .status("ACTIVE")
                        .task_definition(TD_ARN)
                        .build(),
                )
                .build()
        });
        let asked = vec![
            "app-0".to_owned(),
            "arn:aws:ecs:us-east-1:123456789012:service/xy/app-1".to_owned(),
        ];
        let found = testing::ecs(&[&refused])
            .describe_services("xy", &asked)
            .await
            .unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            matches!(&found["app-0"], Err(AwsError::Rejected { code, message }) if code == "ACCESS_DENIED" && message == "describe of service app-0 in cluster xy failed: not authorized"),
            "{found:?}"
        );
        assert_eq!(found[&asked[1]].as_ref().unwrap().name, "app-1");
    }

    #[tokio::test]
    async fn describe_service_maps_deployments() {
        let rule = mock!(Client::describe_services)
            .match_requests(|req| req.cluster() == Some("xy") && req.services() == ["app"])
            .then_output(|| {
                DescribeServicesOutput::builder()
                    .services(sdk_service("ACTIVE"))
                    .build()
            });
        let service = testing::ecs(&[&rule])
            .describe_service("xy", "app")
            .await
            .unwrap();
        assert_eq!(
            service,
            Service {
                cluster: "xy".into(),
                name: "app".into(),
                status: "ACTIVE".into(),
                task_definition_arn: TD_ARN.into(),
                desired_count: 2,
                running_count: 1,
                deployments: vec![
                    Deployment {
                        id: "ecs-svc/1".into(),
                        status: "PRIMARY".into(),
                        task_definition_arn: TD_ARN.into(),
                        desired_count: 2,
                        running_count: 1,
                        rollout_state: "IN_PROGRESS".into(),
                        rollout_state_reason: Some("ECS deployment ecs-svc/1 in progress.".into()),
                    },
                    Deployment {
                        id: "ecs-svc/0".into(),
                        status: "ACTIVE".into(),
                        task_definition_arn:
                            "arn:aws:ecs:us-east-1:123456789012:task-definition/app:6".into(),
                        desired_count: 0,
                        running_count: 1,
                        rollout_state: String::new(),
                        rollout_state_reason: None,
                    },
                ],
                launch_type: None,
                network: None,
            }
        );
    }

    #[tokio::test]
    async fn missing_inactive_and_clusterless_services_are_not_found() {
        let missing = mock!(Client::describe_services)
            .match_requests(|req| req.services() == ["missing"])
            .then_output(|| {
                DescribeServicesOutput::builder()
                    .failures(
                        Failure::builder()
                            .arn("arn:aws:ecs:us-east-1:123456789012:service/xy/missing")
                            .reason("MISSING")
                            .build(),
                    )
                    .build()
            });
        let inactive = mock!(Client::describe_services)
            .match_requests(|req| req.services() == ["inactive"])
            .then_output(|| {
                DescribeServicesOutput::builder()
                    .services(sdk_service("INACTIVE"))
                    .build()
            });
        let no_cluster = mock!(Client::describe_services)
            .match_requests(|req| req.cluster() == Some("nowhere"))
            .then_error(|| {
                DescribeServicesError::ClusterNotFoundException(
                    ClusterNotFoundException::builder().build(),
                )
            });
        let aws = testing::ecs(&[&missing, &inactive, &no_cluster]);
        for name in ["missing", "inactive"] {
            assert_eq!(
                aws.describe_service("xy", name).await.unwrap_err(),
                AwsError::NotFound {
                    kind: ResourceKind::Service,
                    id: name.into()
                }
            );
        }
        assert_eq!(
            aws.describe_service("nowhere", "app").await.unwrap_err(),
            AwsError::NotFound {
                kind: ResourceKind::Cluster,
                id: "nowhere".into()
            }
        );
    }

    #[tokio::test]
    async fn other_describe_failures_are_rejected_with_their_reason() {
        let rule = mock!(Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .failures(
                    Failure::builder()
                        .reason("AccessDenied")
                        .detail("no ecs:DescribeServices")
                        .build(),
                )
                .build()
        });
        let err = testing::ecs(&[&rule])
            .describe_service("xy", "app")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AwsError::Rejected { code, message }
                if code == "AccessDenied" && message.contains("no ecs:DescribeServices")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn describe_task_definition_includes_tags() {
        let rule = mock!(Client::describe_task_definition)
            .match_requests(|req| {
                req.task_definition() == Some(TD_ARN)
                    && req.include() == [TaskDefinitionField::Tags]
            })
            .then_output(|| {
                DescribeTaskDefinitionOutput::builder()
                    .task_definition(sdk_task_definition())
                    .tags(
                        Tag::builder()
                            .key("switchyard:namespace")
                            .value("xy-0146-qa")
                            .build(),
                    )
                    .build()
            });
        let definition = testing::ecs(&[&rule])
            .describe_task_definition(TD_ARN)
            .await
            .unwrap();
        assert_eq!(definition, expected_task_definition());
    }

    #[tokio::test]
    async fn unknown_task_definition_is_not_found() {
        let rule = mock!(Client::describe_task_definition).then_error(|| {
            DescribeTaskDefinitionError::ClientException(
                ClientException::builder()
                    .message("Unable to describe task definition.")
                    .meta(meta(
                        "ClientException",
                        "Unable to describe task definition.",
                    ))
                    .build(),
            )
        });
        assert_eq!(
            testing::ecs(&[&rule])
                .describe_task_definition("app:99")
                .await
                .unwrap_err(),
            AwsError::NotFound {
                kind: ResourceKind::TaskDefinition,
                id: "app:99".into()
            }
        );
    }

    #[tokio::test]
    async fn register_sends_the_definition_and_returns_the_revision() {
        let rule = mock!(Client::register_task_definition)
            .match_requests(|req| {
                let web = &req.container_definitions()[0];
                req.family() == Some("app")
                    && req.container_definitions().len() == 2
                    && web.name() == Some("web")
                    && web.essential() == Some(true)
                    && web.memory() == Some(512)
                    && web.environment().len() == 2
                    && web.secrets()[0].value_from()
                        == "arn:aws:ssm:us-east-1:123456789012:parameter/xy/db"
                    && req.container_definitions()[1].essential() == Some(false)
                    && req.container_definitions()[1].environment.is_none()
                    && req.cpu() == Some("256")
                    && req.memory() == Some("512")
                    && req.network_mode() == Some(&NetworkMode::Awsvpc)
                    && req.requires_compatibilities() == [Compatibility::Fargate]
                    && req.execution_role_arn() == Some("arn:aws:iam::123456789012:role/exec")
                    && req.task_role_arn() == Some("arn:aws:iam::123456789012:role/task")
                    && req.tags().len() == 1
            })
            .then_output(|| {
                RegisterTaskDefinitionOutput::builder()
                    .task_definition({
                        let mut registered = sdk_task_definition();
                        registered.task_definition_arn =
                            Some("arn:aws:ecs:us-east-1:123456789012:task-definition/app:8".into());
                        registered.revision = 8;
                        registered
                    })
                    .tags(
                        Tag::builder()
                            .key("switchyard:namespace")
                            .value("xy-0146-qa")
                            .build(),
                    )
                    .build()
            });
        let mut request = expected_task_definition();
        request.arn = None;
        request.revision = 0;
        let registered = testing::ecs(&[&rule])
            .register_task_definition(&request)
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(
            registered.arn.as_deref(),
            Some("arn:aws:ecs:us-east-1:123456789012:task-definition/app:8")
        );
        assert_eq!(registered.revision, 8);
        assert_eq!(registered.tags, request.tags);
    }

    const REVISION_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/app:8";

    /// A base with more than the port models: port mappings, logging, a dependency, volumes and
    /// a runtime platform, and a tag of someone else's next to Switchyard's.
    fn rich_base() -> SdkTaskDefinition {
        let mut base = sdk_task_definition();
        let containers = base.container_definitions.get_or_insert_with(Vec::new);
        containers[0].port_mappings = Some(vec![
            PortMapping::builder()
                .container_port(8080)
                .protocol(TransportProtocol::Tcp)
                .name("http")
                .build(),
        ]);
        containers[0].log_configuration = Some(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", "/ecs/app")
                .options("awslogs-stream-prefix", "web")
                .build()
                .unwrap(),
        );
        containers[0].depends_on = Some(vec![
            ContainerDependency::builder()
                .container_name("sidecar")
                .condition(ContainerCondition::Start)
                .build()
                .unwrap(),
        ]);
        containers[0].command = Some(vec!["serve".into(), "--port=8080".into()]);
        containers[1].environment = Some(vec![
            KeyValuePair::builder().name("MODE").value("proxy").build(),
        ]);
        base.volumes = Some(vec![Volume::builder().name("scratch").build()]);
        base.runtime_platform = Some(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::Arm64)
                .operating_system_family(OsFamily::Linux)
                .build(),
        );
        base.ephemeral_storage = Some(EphemeralStorage::builder().size_in_gib(30).build());
        base.enable_fault_injection = Some(true);
        base
    }

    fn describe_rich_base() -> aws_smithy_mocks::Rule {
        mock!(Client::describe_task_definition)
            .match_requests(|req| {
                req.task_definition() == Some(TD_ARN)
                    && req.include() == [TaskDefinitionField::Tags]
            })
            .then_output(|| {
                DescribeTaskDefinitionOutput::builder()
                    .task_definition(rich_base())
                    .tags(Tag::builder().key("team").value("payments").build())
                    .tags(
                        Tag::builder()
                            .key("switchyard:namespace")
                            .value("xy-0146-qa")
                            .build(),
                    )
                    .tags(
                        Tag::builder()
                            .key("switchyard:previous-task-definition")
                            .value("arn:aws:ecs:us-east-1:123456789012:task-definition/app:6")
                            .build(),
                    )
                    .build()
            })
    }

    fn web_change() -> RevisionChange {
        RevisionChange {
            container: "web".into(),
            environment: pairs(&[("MODE", "blue"), ("RELEASE", "42")]),
            secrets: Default::default(),
            unset: Vec::new(),
            image: Some("registry/app:1.3".into()),
            tags: pairs(&[
                ("switchyard:namespace", "xy-0146-qa"),
                ("switchyard:previous-task-definition", TD_ARN),
            ]),
            family: None,
            command: None,
            sole_container: false,
        }
    }

    fn sorted_tags(tags: &[Tag]) -> Vec<(String, String)> {
        let mut tags = tags
            .iter()
            .map(|tag| {
                (
                    tag.key().unwrap_or_default().to_owned(),
                    tag.value().unwrap_or_default().to_owned(),
                )
            })
            .collect::<Vec<_>>();
        tags.sort();
        tags
    }

    #[tokio::test]
    async fn register_revision_carries_the_base_over_and_applies_the_change() {
        let sent = std::sync::Arc::new(std::sync::Mutex::new(
            Vec::<RegisterTaskDefinitionInput>::new(),
        ));
        let capture = std::sync::Arc::clone(&sent);
        let register = mock!(Client::register_task_definition)
            .match_requests(move |req| {
                capture.lock().unwrap().push(req.clone());
                true
            })
            .then_output(|| {
                let mut registered = rich_base();
                registered.task_definition_arn = Some(REVISION_ARN.into());
                registered.revision = 8;
                RegisterTaskDefinitionOutput::builder()
                    .task_definition(registered)
                    .tags(Tag::builder().key("team").value("payments").build())
                    .build()
            });
        let describe = describe_rich_base();
        let registered = testing::ecs(&[&describe, &register])
            .register_revision(TD_ARN, &web_change())
            .await
            .unwrap();
        assert_eq!(registered.arn.as_deref(), Some(REVISION_ARN));
        assert_eq!(registered.revision, 8);
        assert_eq!(registered.tags, pairs(&[("team", "payments")]));

        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        let req = &sent[0];
        let base = rich_base();
        let base_containers = base.container_definitions().to_vec();
        let mut expected_web = base_containers[0].clone();
        expected_web.image = Some("registry/app:1.3".into());
        expected_web.environment = Some(vec![
            KeyValuePair::builder().name("MODE").value("blue").build(),
            KeyValuePair::builder().name("EMPTY").build(),
            KeyValuePair::builder().name("RELEASE").value("42").build(),
        ]);
        assert_eq!(req.container_definitions().len(), 2);
        let web = &req.container_definitions()[0];
        assert_eq!(web, &expected_web);
        assert_eq!(web.port_mappings()[0].container_port(), Some(8080));
        assert_eq!(
            web.log_configuration().map(LogConfiguration::log_driver),
            Some(&LogDriver::Awslogs)
        );
        assert_eq!(web.secrets().len(), 1);
        // The other container is untouched, its own MODE included.
        assert_eq!(req.container_definitions()[1], base_containers[1]);

        assert_eq!(req.family(), Some("app"));
        assert_eq!(req.task_role_arn(), base.task_role_arn());
        assert_eq!(req.execution_role_arn(), base.execution_role_arn());
        assert_eq!(req.network_mode(), Some(&NetworkMode::Awsvpc));
        assert_eq!(req.requires_compatibilities(), [Compatibility::Fargate]);
        assert_eq!(req.cpu(), Some("256"));
        assert_eq!(req.memory(), Some("512"));
        assert_eq!(req.volumes(), base.volumes());
        assert_eq!(req.runtime_platform(), base.runtime_platform());
        assert_eq!(req.ephemeral_storage(), base.ephemeral_storage());
        assert_eq!(req.enable_fault_injection(), Some(true));
        assert_eq!(
            sorted_tags(req.tags()),
            [
                ("switchyard:namespace".to_owned(), "xy-0146-qa".to_owned()),
                (
                    "switchyard:previous-task-definition".to_owned(),
                    TD_ARN.to_owned()
                ),
                ("team".to_owned(), "payments".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn register_revision_drops_switchyard_tags_the_change_does_not_name() {
        let register = mock!(Client::register_task_definition)
            .match_requests(|req| {
                sorted_tags(req.tags())
                    == [
                        ("switchyard:execution".to_owned(), "e-2".to_owned()),
                        ("team".to_owned(), "payments".to_owned()),
                    ]
                    && req.container_definitions()[0].image() == Some("registry/app:1.2")
            })
            .then_output(|| {
                RegisterTaskDefinitionOutput::builder()
                    .task_definition(rich_base())
                    .build()
            });
        let describe = describe_rich_base();
        let change = RevisionChange {
            container: "web".into(),
            environment: pairs(&[]),
            secrets: Default::default(),
            unset: Vec::new(),
            image: None,
            tags: pairs(&[("switchyard:execution", "e-2")]),
            family: None,
            command: None,
            sole_container: false,
        };
        testing::ecs(&[&describe, &register])
            .register_revision(TD_ARN, &change)
            .await
            .unwrap();
        assert_eq!(register.num_calls(), 1);
    }

    #[tokio::test]
    async fn register_revision_of_an_unknown_container_is_rejected() {
        let register = mock!(Client::register_task_definition)
            .then_output(|| RegisterTaskDefinitionOutput::builder().build());
        let describe = describe_rich_base();
        let mut change = web_change();
        change.container = "worker".into();
        let err = testing::ecs(&[&describe, &register])
            .register_revision(TD_ARN, &change)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AwsError::Rejected { code, message }
                if code == "ClientException"
                    && message.contains("worker")
                    && message.contains(TD_ARN)),
            "{err:?}"
        );
        assert_eq!(register.num_calls(), 0);
    }

    #[tokio::test]
    async fn register_revision_of_an_unknown_base_is_not_found() {
        let describe = mock!(Client::describe_task_definition).then_error(|| {
            DescribeTaskDefinitionError::ClientException(
                ClientException::builder()
                    .message("Unable to describe task definition.")
                    .meta(meta(
                        "ClientException",
                        "Unable to describe task definition.",
                    ))
                    .build(),
            )
        });
        let register = mock!(Client::register_task_definition)
            .then_output(|| RegisterTaskDefinitionOutput::builder().build());
        assert_eq!(
            testing::ecs(&[&describe, &register])
                .register_revision("app:99", &web_change())
                .await
                .unwrap_err(),
            AwsError::NotFound {
                kind: ResourceKind::TaskDefinition,
                id: "app:99".into()
            }
        );
        assert_eq!(register.num_calls(), 0);
    }

    #[tokio::test]
    async fn update_service_points_at_the_definition() {
        let rule = mock!(Client::update_service)
            .match_requests(|req| {
                req.cluster() == Some("xy")
                    && req.service() == Some("app")
                    && req.task_definition() == Some(TD_ARN)
            })
            .then_output(|| {
                UpdateServiceOutput::builder()
                    .service(sdk_service("ACTIVE"))
                    .build()
            });
        let service = testing::ecs(&[&rule])
            .update_service("xy", "app", TD_ARN)
            .await
            .unwrap();
        assert_eq!(service.task_definition_arn, TD_ARN);
        assert_eq!(service.deployments.len(), 2);
    }

    #[tokio::test]
    async fn update_of_a_missing_service_is_not_found() {
        let rule = mock!(Client::update_service).then_error(|| {
            UpdateServiceError::ServiceNotFoundException(
                ServiceNotFoundException::builder().build(),
            )
        });
        assert_eq!(
            testing::ecs(&[&rule])
                .update_service("xy", "gone", TD_ARN)
                .await
                .unwrap_err(),
            AwsError::NotFound {
                kind: ResourceKind::Service,
                id: "gone".into()
            }
        );
    }

    #[tokio::test]
    async fn raw_throttling_and_server_errors_are_transient() {
        let throttled = mock!(Client::describe_services)
            .then_http_response(|| json_error(400, "ThrottlingException", "Rate exceeded"));
        let err = testing::ecs(&[&throttled])
            .describe_service("xy", "app")
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AwsError::Throttled {
                code: "ThrottlingException".into(),
                message: "Rate exceeded".into()
            }
        );
        let server = mock!(Client::update_service)
            .then_http_response(|| json_error(500, "ServerException", "internal"));
        let err = testing::ecs(&[&server])
            .update_service("xy", "app", TD_ARN)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }
}
