use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{Deployment, RevisionChange, Service, Services, TaskDefinition};

use crate::world::{SimAws, WorldState};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SimTaskDefinition {
    pub definition: TaskDefinition,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SimDeployment {
    pub id: String,
    /// PRIMARY, ACTIVE
    pub status: String,
    pub task_definition_arn: String,
    pub rollout_state: String,
    pub rollout_state_reason: Option<String>,
    pub running_count: i32,
    pub completes_at: Option<DateTime<Utc>>,
    /// Set when the rollout is doomed: the circuit breaker trips at this time.
    pub fails_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SimService {
    pub cluster: String,
    pub name: String,
    pub desired_count: i32,
    /// The primary first.
    pub deployments: Vec<SimDeployment>,
}

/// Rolling a service takes a few minutes: new tasks start, pass health checks, old ones drain.
const ROLLOUT_DURATION: Duration = Duration::seconds(180);
/// A doomed rollout keeps failing tasks until the circuit breaker's threshold.
const CIRCUIT_BREAKER_AFTER: Duration = Duration::seconds(240);

pub(crate) fn service_key(cluster: &str, service: &str) -> String {
    format!("{cluster}/{service}")
}

impl SimService {
    fn view(&self) -> Service {
        let deployments: Vec<Deployment> = self
            .deployments
            .iter()
            .map(|d| Deployment {
                id: d.id.clone(),
                status: d.status.clone(),
                task_definition_arn: d.task_definition_arn.clone(),
                desired_count: if d.status == "PRIMARY" {
                    self.desired_count
                } else {
                    d.running_count
                },
                running_count: d.running_count,
                rollout_state: d.rollout_state.clone(),
                rollout_state_reason: d.rollout_state_reason.clone(),
            })
            .collect();
        Service {
            cluster: self.cluster.clone(),
            name: self.name.clone(),
            status: "ACTIVE".into(),
            task_definition_arn: self
                .deployments
                .first()
                .map(|d| d.task_definition_arn.clone())
                .unwrap_or_default(),
            desired_count: self.desired_count,
            running_count: self.deployments.iter().map(|d| d.running_count).sum(),
            deployments,
        }
    }

    /// The circuit breaker with rollback: the failed deployment stops its tasks and ECS starts a
    /// new primary deployment of the last revision that completed.
    fn trip_circuit_breaker(&mut self, at: DateTime<Utc>, id: String) {
        let Some(failed) = self.deployments.first_mut() else {
            return;
        };
        failed.status = "ACTIVE".into();
        failed.rollout_state = "FAILED".into();
        failed.rollout_state_reason = Some(
            "ECS deployment circuit breaker: tasks failed to start. Rolling back to the last completed deployment.".into(),
        );
        failed.running_count = 0;
        failed.fails_at = None;
        let Some(last_good) = self
            .deployments
            .iter()
            .skip(1)
            .find(|d| d.status == "ACTIVE")
        else {
            return;
        };
        let rollback = SimDeployment {
            id,
            status: "PRIMARY".into(),
            task_definition_arn: last_good.task_definition_arn.clone(),
            rollout_state: "IN_PROGRESS".into(),
            rollout_state_reason: Some("ECS deployment circuit breaker: rolling back".into()),
            running_count: last_good.running_count,
            completes_at: Some(at + Duration::seconds(60)),
            fails_at: None,
        };
        // The old tasks kept serving throughout: they become the rollback deployment's.
        self.deployments.retain(|d| d.rollout_state == "FAILED");
        self.deployments.insert(0, rollback);
    }

    fn settle(&mut self, now: DateTime<Utc>, next_id: &mut dyn FnMut() -> String) {
        let Some(primary) = self.deployments.first() else {
            return;
        };
        if let Some(fails_at) = primary.fails_at
            && fails_at <= now
        {
            self.trip_circuit_breaker(fails_at, next_id());
        }
        let desired = self.desired_count;
        if let Some(primary) = self.deployments.first_mut()
            && primary.completes_at.is_some_and(|at| at <= now)
        {
            primary.rollout_state = "COMPLETED".into();
            primary.rollout_state_reason = Some("ECS deployment completed".into());
            primary.running_count = desired;
            primary.completes_at = None;
            self.deployments.truncate(1);
        }
    }
}

impl WorldState {
    pub(crate) fn settle_ecs(&mut self) {
        let now = self.now;
        let mut counter = self.next_id;
        let mut next_id = || {
            counter += 1;
            format!("ecs-svc/{counter:019}")
        };
        for service in self.services.values_mut() {
            service.settle(now, &mut next_id);
        }
        self.next_id = counter;
    }

    pub(crate) fn find_task_definition(&self, arn: &str) -> Option<&TaskDefinition> {
        // Accepts a full arn or `family:revision`, as ECS does.
        let short = arn.rsplit('/').next().unwrap_or(arn);
        let (family, revision) = short.rsplit_once(':')?;
        let revision: usize = revision.parse().ok()?;
        self.task_definitions
            .get(family)?
            .get(revision.checked_sub(1)?)
            .map(|t| &t.definition)
    }

    pub(crate) fn register_now(
        &mut self,
        definition: &TaskDefinition,
    ) -> Result<TaskDefinition, AwsError> {
        if definition.family.is_empty() || definition.containers.is_empty() {
            return Err(AwsError::Rejected {
                code: "ClientException".into(),
                message: "a task definition needs a family and at least one container".into(),
            });
        }
        let revisions = self
            .task_definitions
            .entry(definition.family.clone())
            .or_default();
        let revision = i32::try_from(revisions.len() + 1).unwrap_or(i32::MAX);
        let mut registered = definition.clone();
        registered.revision = revision;
        registered.arn = Some(format!(
            "arn:aws:ecs:{}:{}:task-definition/{}:{revision}",
            self.region, self.account, definition.family
        ));
        revisions.push(SimTaskDefinition {
            definition: registered.clone(),
        });
        Ok(registered)
    }

    pub(crate) fn delete_service_now(&mut self, cluster: &str, name: &str) -> bool {
        self.services.remove(&service_key(cluster, name)).is_some()
    }

    pub(crate) fn create_service_now(
        &mut self,
        cluster: &str,
        name: &str,
        task_definition_arn: &str,
        desired_count: i32,
    ) {
        if !self.clusters.iter().any(|c| c == cluster) {
            self.clusters.push(cluster.to_owned());
        }
        let id = format!("ecs-svc/{:019}", self.next_id());
        self.services.insert(
            service_key(cluster, name),
            SimService {
                cluster: cluster.to_owned(),
                name: name.to_owned(),
                desired_count,
                deployments: vec![SimDeployment {
                    id,
                    status: "PRIMARY".into(),
                    task_definition_arn: task_definition_arn.to_owned(),
                    rollout_state: "COMPLETED".into(),
                    rollout_state_reason: Some("ECS deployment completed".into()),
                    running_count: desired_count,
                    completes_at: None,
                    fails_at: None,
                }],
            },
        );
    }

    fn service_mut(&mut self, cluster: &str, service: &str) -> Result<&mut SimService, AwsError> {
        if !self.clusters.iter().any(|c| c == cluster) {
            return Err(AwsError::NotFound {
                kind: ResourceKind::Cluster,
                id: cluster.to_owned(),
            });
        }
        self.services
            .get_mut(&service_key(cluster, service))
            .ok_or_else(|| AwsError::NotFound {
                kind: ResourceKind::Service,
                id: service.to_owned(),
            })
    }
}

#[async_trait]
impl Services for SimAws {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<Service, AwsError> {
        self.call("DescribeServices", |s| {
            Ok(s.service_mut(cluster, service)?.view())
        })
    }

    async fn describe_task_definition(&self, arn: &str) -> Result<TaskDefinition, AwsError> {
        self.call("DescribeTaskDefinition", |s| {
            s.find_task_definition(arn)
                .cloned()
                .ok_or_else(|| AwsError::NotFound {
                    kind: ResourceKind::TaskDefinition,
                    id: arn.to_owned(),
                })
        })
    }

    async fn register_task_definition(
        &self,
        definition: &TaskDefinition,
    ) -> Result<TaskDefinition, AwsError> {
        self.call("RegisterTaskDefinition", |s| s.register_now(definition))
    }

    async fn register_revision(
        &self,
        base_arn: &str,
        change: &RevisionChange,
    ) -> Result<TaskDefinition, AwsError> {
        self.call("RegisterTaskDefinition", |s| {
            let mut next =
                s.find_task_definition(base_arn)
                    .cloned()
                    .ok_or_else(|| AwsError::NotFound {
                        kind: ResourceKind::TaskDefinition,
                        id: base_arn.to_owned(),
                    })?;
            let container = next
                .containers
                .iter_mut()
                .find(|c| c.name == change.container)
                .ok_or_else(|| AwsError::Rejected {
                    code: "ClientException".into(),
                    message: format!("{base_arn} has no container {}", change.container),
                })?;
            // One name is a variable or a secret, never both (ECS refuses the pair).
            for name in change.environment.keys() {
                container.secrets.remove(name);
            }
            for name in change.secrets.keys() {
                container.environment.remove(name);
            }
            container.environment.extend(change.environment.clone());
            container.secrets.extend(change.secrets.clone());
            for name in &change.unset {
                container.environment.remove(name);
                container.secrets.remove(name);
            }
            if let Some(image) = &change.image {
                container.image = image.clone();
            }
            next.tags.retain(|key, _| !key.starts_with("switchyard:"));
            next.tags.extend(change.tags.clone());
            s.register_now(&next)
        })
    }

    async fn latest_task_definition(
        &self,
        family: &str,
    ) -> Result<Option<TaskDefinition>, AwsError> {
        self.call("ListTaskDefinitions", |s| {
            Ok(s.task_definitions
                .get(family)
                .and_then(|revisions| revisions.last())
                .map(|t| t.definition.clone()))
        })
    }

    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<Service, AwsError> {
        let doomed = self.take_rollout_failure();
        self.call("UpdateService", |s| {
            let arn = s
                .find_task_definition(task_definition_arn)
                .and_then(|t| t.arn.clone())
                .ok_or_else(|| AwsError::Rejected {
                    code: "ClientException".into(),
                    message: format!("task definition {task_definition_arn} does not exist"),
                })?;
            let now = s.now;
            let id = format!("ecs-svc/{:019}", s.next_id());
            let svc = s.service_mut(cluster, service)?;
            if svc
                .deployments
                .first()
                .is_some_and(|d| d.task_definition_arn == arn)
            {
                // ECS starts no new deployment when nothing changed.
                return Ok(svc.view());
            }
            for d in &mut svc.deployments {
                d.status = "ACTIVE".into();
                d.completes_at = None;
            }
            svc.deployments.insert(
                0,
                SimDeployment {
                    id,
                    status: "PRIMARY".into(),
                    task_definition_arn: arn,
                    rollout_state: "IN_PROGRESS".into(),
                    rollout_state_reason: Some("ECS deployment in progress".into()),
                    running_count: 0,
                    completes_at: (!doomed).then_some(now + ROLLOUT_DURATION),
                    fails_at: doomed.then_some(now + CIRCUIT_BREAKER_AFTER),
                },
            );
            Ok(svc.view())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use switchyard_core::dispatch::Stage;
    use switchyard_core::ports::Services;

    use crate::World;

    #[tokio::test]
    async fn rollout_completes_with_one_deployment() {
        let world = World::demo(chrono::Utc::now());
        let aws = world.aws();
        let svc = aws
            .describe_service("switchyard-nonprod", "xy-0146-qa-app")
            .await
            .unwrap();
        assert_eq!(svc.deployments.len(), 1);
        let current = aws
            .describe_task_definition(&svc.task_definition_arn)
            .await
            .unwrap();
        let mut next = current.clone();
        next.arn = None;
        let registered = aws.register_task_definition(&next).await.unwrap();
        assert_eq!(registered.revision, current.revision + 1);
        let arn = registered.arn.unwrap();
        let updated = aws
            .update_service("switchyard-nonprod", "xy-0146-qa-app", &arn)
            .await
            .unwrap();
        assert_eq!(updated.deployments.len(), 2);
        assert_eq!(updated.deployments[0].rollout_state, "IN_PROGRESS");
        assert_eq!(
            updated.running_count, svc.running_count,
            "old tasks keep serving"
        );
        world.advance(StdDuration::from_secs(600));
        let done = aws
            .describe_service("switchyard-nonprod", "xy-0146-qa-app")
            .await
            .unwrap();
        assert_eq!(done.deployments.len(), 1);
        assert_eq!(done.deployments[0].rollout_state, "COMPLETED");
        assert_eq!(done.task_definition_arn, arn);
        assert_eq!(done.running_count, done.desired_count);
    }

    #[tokio::test]
    async fn circuit_breaker_rolls_back() {
        let world = World::demo(chrono::Utc::now());
        world.inject("wait-stable:rollout-failed".parse().unwrap());
        let aws = world.aws_for(Some(Stage::DeployService));
        let svc = aws
            .describe_service("switchyard-nonprod", "xy-0146-qa-app")
            .await
            .unwrap();
        let mut next = aws
            .describe_task_definition(&svc.task_definition_arn)
            .await
            .unwrap();
        next.arn = None;
        let arn = aws
            .register_task_definition(&next)
            .await
            .unwrap()
            .arn
            .unwrap();
        aws.update_service("switchyard-nonprod", "xy-0146-qa-app", &arn)
            .await
            .unwrap();
        world.advance(StdDuration::from_secs(250));
        let tripped = aws
            .describe_service("switchyard-nonprod", "xy-0146-qa-app")
            .await
            .unwrap();
        assert_eq!(tripped.task_definition_arn, svc.task_definition_arn);
        let failed = tripped
            .deployments
            .iter()
            .find(|d| d.rollout_state == "FAILED")
            .unwrap();
        assert_eq!(failed.task_definition_arn, arn);
        world.advance(StdDuration::from_secs(600));
        let settled = aws
            .describe_service("switchyard-nonprod", "xy-0146-qa-app")
            .await
            .unwrap();
        assert_eq!(settled.deployments.len(), 1);
        assert_eq!(settled.task_definition_arn, svc.task_definition_arn);
    }

    #[tokio::test]
    async fn missing_things() {
        let world = World::demo(chrono::Utc::now());
        let aws = world.aws();
        assert_eq!(
            aws.describe_service("nope", "x")
                .await
                .unwrap_err()
                .to_string(),
            "cluster nope not found"
        );
        assert_eq!(
            aws.describe_service("switchyard-nonprod", "x")
                .await
                .unwrap_err()
                .to_string(),
            "service x not found"
        );
        assert!(aws.describe_task_definition("fam:99").await.is_err());
        assert!(
            aws.update_service("switchyard-nonprod", "xy-0146-qa-app", "fam:99")
                .await
                .is_err()
        );
    }
}
