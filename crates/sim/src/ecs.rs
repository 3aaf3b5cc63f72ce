use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{
    AwsVpcConfiguration, Deployment, EcsTask, RevisionChange, RunTaskRequest, Service, Services,
    TaskContainer, TaskDefinition,
};

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
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub network: Option<AwsVpcConfiguration>,
}

/// A one-off task (RunTask): a migration. Its life is decided when it starts, as ECS's is by
/// its container: PROVISIONING, PENDING, RUNNING, then STOPPED with an exit code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SimTask {
    pub arn: String,
    pub cluster: String,
    pub task_definition_arn: String,
    pub container: String,
    pub image: String,
    pub command: Vec<String>,
    pub started_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub running_at: DateTime<Utc>,
    pub stopped_at: DateTime<Utc>,
    pub exit_code: i32,
    /// Why the container exited non-zero, as its last log line would say.
    pub reason: Option<String>,
    /// The database its `DB_INSTANCE_ID` names: where a successful migration leaves its mark.
    pub db_instance_id: Option<String>,
    /// Whether its effect on the database was applied (once, when it stopped with 0).
    pub applied: bool,
    #[serde(default)]
    pub client_token: Option<String>,
}

/// A container variable the simulated tasks obey: their exit code (tests make one tenant's
/// migrations fail with it, through the tenant's `app_environment`).
pub const SIM_EXIT_CODE: &str = "SWITCHYARD_SIM_EXIT_CODE";

/// A task is provisioned, pulls its image, then runs its command for this long.
const TASK_PROVISIONING: Duration = Duration::seconds(10);
const TASK_PENDING: Duration = Duration::seconds(30);
const TASK_RUNNING: Duration = Duration::seconds(60);
/// Scaling a service (the upgrade's freeze and thaw) takes this long to show in its counts.
const SCALE_DURATION: Duration = Duration::seconds(30);

impl SimTask {
    fn status(&self, now: DateTime<Utc>) -> &'static str {
        if now < self.created_at + TASK_PROVISIONING {
            "PROVISIONING"
        } else if now < self.running_at {
            "PENDING"
        } else if now < self.stopped_at {
            "RUNNING"
        } else {
            "STOPPED"
        }
    }

    fn view(&self, now: DateTime<Utc>, region: &str, account: &str) -> EcsTask {
        let status = self.status(now);
        let stopped = status == "STOPPED";
        EcsTask {
            task_arn: self.arn.clone(),
            cluster_arn: format!("arn:aws:ecs:{region}:{account}:cluster/{}", self.cluster),
            task_definition_arn: self.task_definition_arn.clone(),
            last_status: status.to_owned(),
            desired_status: if stopped { "STOPPED" } else { "RUNNING" }.to_owned(),
            stop_code: stopped.then(|| "EssentialContainerExited".to_owned()),
            stopped_reason: stopped.then(|| "Essential container in task exited".to_owned()),
            containers: vec![TaskContainer {
                name: self.container.clone(),
                last_status: status.to_owned(),
                exit_code: stopped.then_some(self.exit_code),
                reason: if stopped { self.reason.clone() } else { None },
            }],
            started_by: self.started_by.clone(),
            created_at: Some(self.created_at),
            stopped_at: stopped.then_some(self.stopped_at),
        }
    }
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
            launch_type: self.launch_type.clone(),
            network: self.network.clone(),
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
        // A migration that exited 0 has changed its database's schema.
        let mut applied = Vec::new();
        for task in self.tasks.values_mut() {
            if !task.applied && task.exit_code == 0 && task.stopped_at <= now {
                task.applied = true;
                if let Some(db) = &task.db_instance_id {
                    applied.push((db.clone(), task.command.join(" ")));
                }
            }
        }
        for (db, command) in applied {
            if let Some(instance) = self.instances.get_mut(&db) {
                instance.migrations.push(command);
            }
        }
    }

    /// Starts a task of `request.task_definition`; `fail` makes its container exit 1.
    pub(crate) fn run_task_now(
        &mut self,
        request: &RunTaskRequest,
        fail: bool,
    ) -> Result<EcsTask, AwsError> {
        // The same client token again: the task it started, not a second one.
        if let Some(token) = &request.client_token
            && let Some(task) = self
                .tasks
                .values()
                .find(|t| t.client_token.as_ref() == Some(token))
        {
            return Ok(task.view(self.now, &self.region, &self.account));
        }
        if !self.clusters.contains(&request.cluster) {
            return Err(AwsError::NotFound {
                kind: ResourceKind::Cluster,
                id: request.cluster.clone(),
            });
        }
        let definition = self
            .find_task_definition(&request.task_definition)
            .cloned()
            .ok_or_else(|| AwsError::Rejected {
                code: "ClientException".into(),
                message: format!("TaskDefinition not found: {}", request.task_definition),
            })?;
        if definition.network_mode.as_deref() == Some("awsvpc") && request.network.is_none() {
            return Err(AwsError::Rejected {
                code: "InvalidParameterException".into(),
                message:
                    "Network Configuration must be provided when networkMode 'awsvpc' is specified."
                        .into(),
            });
        }
        let container = definition
            .containers
            .iter()
            .find(|c| c.essential)
            .or(definition.containers.first())
            .cloned()
            .ok_or_else(|| AwsError::Rejected {
                code: "ClientException".into(),
                message: "task definition has no container".into(),
            })?;
        let now = self.now;
        let db_instance_id = container.environment.get("DB_INSTANCE_ID").cloned();
        // The container connects once it runs: to a database that exists and is available.
        let running_at = now + TASK_PENDING;
        let reachable = db_instance_id.as_ref().is_some_and(|id| {
            self.instances
                .get(id)
                .is_some_and(|db| db.deletion.is_none() && db.available_at <= running_at)
        });
        // The simulated application's own say: a tenant whose settings carry this variable
        // (`app_environment`) has every task of it exit with that code.
        let told = container
            .environment
            .get(SIM_EXIT_CODE)
            .and_then(|code| code.parse::<i32>().ok())
            .filter(|code| *code != 0);
        let (exit_code, reason) = if let Some(code) = told {
            (
                code,
                Some(format!("the container exited {code} ({SIM_EXIT_CODE})")),
            )
        } else if fail {
            (
                1,
                Some("migration failed: fault injected (task-failed)".to_owned()),
            )
        } else if !reachable {
            (
                1,
                Some(format!(
                    "could not connect to database {}",
                    db_instance_id.as_deref().unwrap_or("(no DB_INSTANCE_ID)")
                )),
            )
        } else {
            (0, None)
        };
        let id = self.next_id();
        let arn = format!(
            "arn:aws:ecs:{}:{}:task/{}/{id:032x}",
            self.region, self.account, request.cluster
        );
        let task = SimTask {
            arn: arn.clone(),
            cluster: request.cluster.clone(),
            task_definition_arn: definition.arn.clone().unwrap_or_default(),
            container: container.name.clone(),
            image: container.image.clone(),
            command: container.command.clone(),
            started_by: request.started_by.clone(),
            created_at: now,
            running_at,
            stopped_at: running_at + TASK_RUNNING,
            exit_code,
            reason,
            db_instance_id,
            applied: false,
            client_token: request.client_token.clone(),
        };
        let view = task.view(now, &self.region, &self.account);
        self.tasks.insert(arn, task);
        Ok(view)
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
                launch_type: Some("FARGATE".into()),
                network: Some(AwsVpcConfiguration {
                    subnets: vec!["subnet-0a1b2c3d".into(), "subnet-0e5f6a7b".into()],
                    security_groups: vec!["sg-0de30db5".into()],
                    assign_public_ip: Some("DISABLED".into()),
                }),
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
            if let Some(command) = &change.command {
                container.command = command.clone();
            }
            if let Some(family) = &change.family {
                next.family = family.clone();
            }
            if change.sole_container {
                next.containers.retain(|c| c.name == change.container);
                for container in &mut next.containers {
                    container.essential = true;
                }
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

    async fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired_count: i32,
    ) -> Result<Service, AwsError> {
        self.call("UpdateService", |s| {
            let now = s.now;
            let svc = s.service_mut(cluster, service)?;
            svc.desired_count = desired_count.max(0);
            if let Some(primary) = svc.deployments.first_mut()
                && primary.completes_at.is_none()
                && primary.fails_at.is_none()
            {
                // Tasks start or drain; the counts follow when that is through.
                primary.completes_at = Some(now + SCALE_DURATION);
            }
            Ok(svc.view())
        })
    }

    async fn run_task(&self, request: &RunTaskRequest) -> Result<EcsTask, AwsError> {
        let fail = self.take_task_failure();
        self.call("RunTask", |s| s.run_task_now(request, fail))
    }

    async fn live_service_tasks(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<EcsTask>, AwsError> {
        self.call("ListTasks", |s| {
            let (region, account) = (s.region.clone(), s.account.clone());
            let svc = s.service_mut(cluster, service)?;
            // The simulation keeps counts, not tasks: one RUNNING task per running one.
            let running: i32 = svc.deployments.iter().map(|d| d.running_count).sum();
            Ok((0..running)
                .map(|i| EcsTask {
                    task_arn: format!(
                        "arn:aws:ecs:{region}:{account}:task/{cluster}/{service}-{i}"
                    ),
                    cluster_arn: format!("arn:aws:ecs:{region}:{account}:cluster/{cluster}"),
                    task_definition_arn: String::new(),
                    last_status: "RUNNING".into(),
                    desired_status: "RUNNING".into(),
                    stop_code: None,
                    stopped_reason: None,
                    containers: Vec::new(),
                    started_by: Some(format!("ecs-svc/{service}")),
                    created_at: None,
                    stopped_at: None,
                })
                .collect())
        })
    }

    async fn describe_task(&self, cluster: &str, task_arn: &str) -> Result<EcsTask, AwsError> {
        self.call("DescribeTasks", |s| {
            let task = s
                .tasks
                .get(task_arn)
                .filter(|t| t.cluster == cluster)
                .ok_or_else(|| AwsError::NotFound {
                    kind: ResourceKind::Task,
                    id: task_arn.to_owned(),
                })?;
            Ok(task.view(s.now, &s.region, &s.account))
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
