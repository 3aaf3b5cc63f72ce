//! Services and task definitions on ECS.

use async_trait::async_trait;
use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_ecs::operation::update_service::UpdateServiceError;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition as SdkContainer, Deployment as SdkDeployment, KeyValuePair,
    NetworkMode, Secret, Service as SdkService, Tag, TaskDefinition as SdkTaskDefinition,
    TaskDefinitionField,
};
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{
    ContainerDefinition, Deployment, Service, Services, Tags, TaskDefinition,
};

use crate::SdkAws;
use crate::error::{map_sdk_error, message_of, missing_in_response, not_found};

/// What `DescribeServices` lists under `failures` for a service that does not exist.
const MISSING: &str = "MISSING";
/// A deleted service lingers with this status for a while; to a deploy it is gone.
const INACTIVE: &str = "INACTIVE";

#[async_trait]
impl Services for SdkAws {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<Service, AwsError> {
        let output = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
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
        if let Some(failure) = output.failures.unwrap_or_default().into_iter().next() {
            let reason = failure.reason.unwrap_or_default();
            return Err(if reason == MISSING {
                AwsError::NotFound {
                    kind: ResourceKind::Service,
                    id: service.to_owned(),
                }
            } else {
                AwsError::Rejected {
                    message: format!(
                        "describe of service {service} in cluster {cluster} failed: {}",
                        failure.detail.as_deref().unwrap_or(&reason)
                    ),
                    code: reason,
                }
            });
        }
        match output.services.unwrap_or_default().into_iter().next() {
            Some(found) if found.status.as_deref() != Some(INACTIVE) => {
                Ok(to_service(cluster, found))
            }
            _ => Err(AwsError::NotFound {
                kind: ResourceKind::Service,
                id: service.to_owned(),
            }),
        }
    }

    async fn describe_task_definition(&self, arn: &str) -> Result<TaskDefinition, AwsError> {
        let output = self
            .ecs
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
            })?;
        let tags = from_sdk_tags(output.tags);
        output
            .task_definition
            .map(|definition| to_task_definition(definition, tags))
            .ok_or_else(|| {
                missing_in_response("DescribeTaskDefinition", ResourceKind::TaskDefinition, arn)
            })
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
            .await
            .map_err(|err| map_sdk_error(err, |_| None))?;
        let tags = from_sdk_tags(output.tags);
        output
            .task_definition
            .map(|registered| to_task_definition(registered, tags))
            .ok_or_else(|| {
                missing_in_response(
                    "RegisterTaskDefinition",
                    ResourceKind::TaskDefinition,
                    &definition.family,
                )
            })
    }

    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<Service, AwsError> {
        let output = self
            .ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition_arn)
            .send()
            .await
            .map_err(|err| {
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
}

/// ECS rejects some empty lists (tags among them) that it would accept left out.
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
