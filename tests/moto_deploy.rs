//! The whole deploy against moto's server: `statemachines/deploy.asl.json` through the local
//! runner, the real step handlers in-process, and every AWS call they make sent through the AWS
//! SDK adapter to moto, on the wall clock (`SystemClock`, as `Backend::Endpoint` runs it). The
//! world is seeded, and the outcome checked, through the SDK directly.
//!
//! moto has everything ready at once, so no poll loop waits, except that a sweep always waits
//! once after requesting a delete (15 s, the machine's first back-off): each deploy here takes
//! about that long. One moto gap decides the outcome of a plain run: moto's UpdateService starts
//! no new deployment (`moto_differs_update_service_starts_no_new_deployment` in
//! `tests/moto_adapters.rs`), so CheckService sees its rollout replaced and the deploy rolls back
//! (`moto_differs_...` below). The successful deploy fills exactly that gap (see
//! [`CompletedRollouts`]) and is otherwise the same run.
//!
//! Needs the moto server that `tests/run` starts (`SWITCHYARD_TEST_MOTO_URL`, with
//! `MOTO_ECS_SERVICE_RUNNING=2`). Each test has its own customer, `mt<4 random letters>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::types::{ContainerDefinition as EcsContainer, Secret};
use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::types::Tag as RdsTag;
use chrono::{DateTime, Utc};
use common::*;
use serde_json::Value;
use switchyard::backend::{Backend, StepInvoker};
use switchyard::deploy::{self, DeployReport, FromExecution, Source};
use switchyard_asl::{Execution, HistoryEventKind, Runner, SystemClock};
use switchyard_aws::SdkAws;
use switchyard_core::error::AwsError;
use switchyard_core::names::Timestamp;
use switchyard_core::ports::{
    Clock, Databases, DbInstance, DeleteDbRequest, EcsTask, FinishRestoreRequest, Parameter,
    Parameters, RestoreDbRequest, RevisionChange, RunTaskRequest, Service, Services, Snapshot,
    Snapshots, Tags, TaskDefinition, tag,
};
use switchyard_core::records::{ActivePointer, NamespaceSettings, ParameterLayout, Records};
use switchyard_core::steps::service::env_var;

/// Far above a deploy on moto (about 15 s); far below what a poll loop stuck on moto would take
/// (15 + 30 + 60 + 120 s ...), so a loop that never ends fails here in time, and says so.
const DEADLINE: Duration = Duration::from_secs(90);

/// The clients of one test: the adapter the steps use, and the SDK to seed and to check.
struct Clients {
    aws: SdkAws,
    rds: aws_sdk_rds::Client,
    ssm: aws_sdk_ssm::Client,
    ecs: aws_sdk_ecs::Client,
    layout: ParameterLayout,
}

/// One customer's two namespaces on moto.
struct Tenant {
    clients: Clients,
    dev: Stack,
    qa: Stack,
}

impl std::ops::Deref for Tenant {
    type Target = Clients;

    fn deref(&self) -> &Clients {
        &self.clients
    }
}

/// What one namespace was seeded with.
struct Stack {
    namespace: String,
    db: String,
    cluster: String,
    service: String,
    task_definition: String,
}

impl Tenant {
    async fn new(final_snapshot: Option<bool>) -> Tenant {
        let (clients, customer, cluster) = Clients::for_a_new_customer().await;
        // Data two hours old in dev, one hour old in qa: neither collides with the deploy's.
        let dev = clients
            .seed(&format!("{customer}-0146-dev"), &cluster, 2, None)
            .await;
        let qa = clients
            .seed(&format!("{customer}-0146-qa"), &cluster, 1, final_snapshot)
            .await;
        Tenant { clients, dev, qa }
    }
}

impl Tenant {
    /// Two tiers whose stacks exist before Switchyard knows them (plain RDS and ECS calls, no
    /// Switchyard tag or record), onboarded with `switchyard tenant import` as a user types it.
    async fn imported() -> Tenant {
        let (clients, customer, cluster) = Clients::for_a_new_customer().await;
        let mut stacks = Vec::new();
        for (tier, hours_old) in [("dev", 2), ("qa", 1)] {
            let namespace = format!("{customer}-0146-{tier}");
            let (stack, ..) = clients
                .seed_stack(&namespace, &cluster, hours_old, false)
                .await;
            let out = cli(&[
                "tenant",
                "import",
                &namespace,
                "--db-instance-id",
                &stack.db,
                "--db-instance-class",
                "db.t3.micro",
                "--cluster",
                &cluster,
                "--service",
                &stack.service,
            ]);
            assert!(
                out.status.success(),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            stacks.push(stack);
        }
        let qa = stacks.pop().unwrap();
        let dev = stacks.pop().unwrap();
        Tenant { clients, dev, qa }
    }
}

/// The `switchyard` command against moto's server, as a user runs it.
fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--endpoint-url", &moto_url(), "--region", "us-east-1"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

impl Clients {
    /// Clients of moto's server, a customer name of their own (tests share the server) and its
    /// ECS cluster, `<customer>-nonprod`.
    async fn for_a_new_customer() -> (Clients, String, String) {
        let config = moto_config().await;
        let clients = Clients {
            aws: SdkAws::new(&config),
            rds: aws_sdk_rds::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            ecs: aws_sdk_ecs::Client::new(&config),
            layout: ParameterLayout::default(),
        };
        let customer = format!("mt{}", random_letters(4));
        let cluster = format!("{customer}-nonprod");
        create_cluster(&clients.ecs, &cluster).await;
        (clients, customer, cluster)
    }

    fn records(&self) -> Records<'_> {
        Records {
            params: &self.aws,
            layout: &self.layout,
        }
    }

    /// A namespace as the platform team onboards it: its stack ([`Clients::seed_stack`], with
    /// the database tagged for it), its settings and active-db records (written through the
    /// port, as records.rs lays them out).
    async fn seed(
        &self,
        namespace: &str,
        cluster: &str,
        hours_old: i64,
        final_snapshot: Option<bool>,
    ) -> Stack {
        let ns = ns(namespace);
        let (stack, timestamp, host, port) =
            self.seed_stack(namespace, cluster, hours_old, true).await;
        let settings = NamespaceSettings {
            db_instance_class: "db.t3.micro".into(),
            db_subnet_group: None,
            vpc_security_group_ids: vec![],
            cluster: cluster.to_owned(),
            service: stack.service.clone(),
            container: "app".into(),
            final_snapshot,
            region: None,
            plan: None,
            version: None,
            policies: BTreeMap::new(),
            allowed_sources: Vec::new(),
            expected_deploy_minutes: None,
            app_environment: BTreeMap::new(),
            app_secrets: BTreeMap::new(),
            manage_master_password: None,
            pinned_version: None,
            database: Default::default(),
        };
        self.records().put_settings(&ns, &settings).await.unwrap();
        let pointer = ActivePointer {
            db_instance_id: stack.db.clone(),
            timestamp,
            endpoint: host,
            port,
            snapshot_id: None,
            execution_id: None,
            activated_at: Utc::now(),
            app_version: None,
            master_user_secret_arn: None,
            schema_version: None,
        };
        assert_eq!(
            self.records()
                .put_pointer(&ns, &pointer, None)
                .await
                .unwrap(),
            1
        );
        stack
    }

    /// A tenant's stack made with plain RDS and ECS calls, as the platform's own infrastructure
    /// code makes it: its database `<ns>-<timestamp>` (tagged for the namespace if `tagged`)
    /// and its service running a task definition that carries the database. Returns the stack,
    /// the data's timestamp, and the database's host and port.
    async fn seed_stack(
        &self,
        namespace: &str,
        cluster: &str,
        hours_old: i64,
        tagged: bool,
    ) -> (Stack, Timestamp, String, i32) {
        let timestamp = Timestamp::from_datetime(Utc::now() - chrono::Duration::hours(hours_old));
        let db = format!("{namespace}-{timestamp}");
        let tags = if tagged {
            vec![
                RdsTag::builder()
                    .key(tag::NAMESPACE)
                    .value(namespace)
                    .build(),
            ]
        } else {
            Vec::new()
        };
        let created = create_postgres_db(&self.rds, &db, tags).await;
        let endpoint = created.endpoint().unwrap();
        let (host, port) = (
            endpoint.address().unwrap().to_owned(),
            endpoint.port().unwrap(),
        );
        let service = format!("{namespace}-app");
        let environment = [
            (env_var::DB_HOST, host.clone()),
            (env_var::DB_PORT, port.to_string()),
            (env_var::DB_INSTANCE_ID, db.clone()),
            (env_var::DB_TIMESTAMP, timestamp.to_string()),
        ];
        let app = EcsContainer::builder()
            .name("app")
            .image(format!("registry.example/{namespace}/app:1.0"))
            .memory(256)
            .essential(true)
            .set_environment(Some(key_value_pairs(&environment)))
            .secrets(
                Secret::builder()
                    .name("DB_PASSWORD")
                    .value_from(format!(
                        "arn:aws:ssm:us-east-1:123456789012:parameter/{namespace}/db-password"
                    ))
                    .build()
                    .unwrap(),
            )
            .build();
        let definition = self
            .ecs
            .register_task_definition()
            .family(&service)
            .container_definitions(app);
        let task_definition =
            create_service_running(&self.ecs, cluster, &service, 2, definition).await;
        let stack = Stack {
            namespace: namespace.to_owned(),
            db,
            cluster: cluster.to_owned(),
            service,
            task_definition,
        };
        (stack, timestamp, host, port)
    }
}

impl Tenant {
    fn backend(&self) -> Arc<Backend> {
        Arc::new(Backend::Endpoint {
            aws: self.aws.clone(),
            region: "us-east-1".into(),
        })
    }

    /// The deploy machine as `switchyard deploy` runs it against an endpoint: `Backend::Endpoint`
    /// with our `SdkAws`, `load_machine` and `run_machine` (SystemClock).
    async fn run_as_endpoint(&self, input: Value) -> Execution {
        let backend = self.backend();
        let machine = deploy::load_machine(&deploy_machine(), &backend).unwrap();
        let name = self.execution_name();
        let run = deploy::run_machine(
            backend,
            &self.layout,
            Arc::new(switchyard_core::policy::NoPlugins),
            machine,
            &name,
            input,
            None,
        );
        tokio::time::timeout(DEADLINE, run)
            .await
            .unwrap_or_else(|_| panic!("the deploy did not finish within {DEADLINE:?}"))
    }

    /// The same machine, handlers and clock, with the one moto gap filled (see
    /// [`CompletedRollouts`]).
    async fn run_with_completed_rollouts(&self, input: Value) -> Execution {
        let backend = self.backend();
        let machine = deploy::load_machine(&deploy_machine(), &backend).unwrap();
        let aws = CompletedRollouts(self.aws.clone());
        let invoker = Arc::new(StepInvoker::with_ports(
            move |_| Box::new(aws.clone()),
            self.layout.clone(),
            Arc::new(switchyard_core::policy::NoPlugins),
        ));
        let runner = Runner::new(machine, invoker, Arc::new(SystemClock));
        let name = self.execution_name();
        tokio::time::timeout(DEADLINE, runner.run(&name, input))
            .await
            .unwrap_or_else(|_| panic!("the deploy did not finish within {DEADLINE:?}"))
    }

    fn execution_name(&self) -> String {
        format!(
            "{}-{}",
            self.qa.namespace,
            Utc::now().format("%Y%m%d-%H%M%S")
        )
    }
}

/// What the SDK says, independently of the port.
impl Clients {
    /// The active-db parameter: its record and its version.
    async fn pointer(&self, namespace: &str) -> (ActivePointer, i64) {
        let name = self.layout.active_db(&ns(namespace));
        let parameter = self
            .ssm
            .get_parameter()
            .name(&name)
            .send()
            .await
            .unwrap()
            .parameter
            .unwrap();
        (
            serde_json::from_str(parameter.value().unwrap()).unwrap(),
            parameter.version(),
        )
    }

    async fn parameter_exists(&self, name: &str) -> bool {
        match self.ssm.get_parameter().name(name).send().await {
            Ok(_) => true,
            Err(err)
                if err.as_service_error().and_then(|e| e.code()) == Some("ParameterNotFound") =>
            {
                false
            }
            Err(err) => panic!("get_parameter {name}: {err:?}"),
        }
    }

    /// Nothing left behind in the namespace: no lock, nothing tracked.
    async fn assert_unlocked_and_untracked(&self, namespace: &str) {
        assert!(
            !self
                .parameter_exists(&self.layout.lock(&ns(namespace)))
                .await,
            "the lock is released"
        );
        assert_eq!(
            self.tracked_parameters(namespace).await,
            Vec::<String>::new()
        );
    }

    async fn tracked_parameters(&self, namespace: &str) -> Vec<String> {
        let dir = self.layout.tracked_dir(&ns(namespace));
        let listed = self
            .ssm
            .get_parameters_by_path()
            .path(&dir)
            .recursive(true)
            .send()
            .await
            .unwrap();
        listed
            .parameters()
            .iter()
            .filter_map(|p| p.name().map(str::to_owned))
            .collect()
    }

    /// `None` when RDS does not know the instance.
    async fn db(&self, id: &str) -> Option<aws_sdk_rds::types::DbInstance> {
        match self
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(output) => output.db_instances.unwrap_or_default().into_iter().next(),
            Err(err)
                if err.as_service_error().and_then(|e| e.code()) == Some("DBInstanceNotFound") =>
            {
                None
            }
            Err(err) => panic!("describe_db_instances {id}: {err:?}"),
        }
    }

    /// Every instance named for the namespace, with its status.
    async fn dbs_of(&self, namespace: &str) -> Vec<(String, String)> {
        let prefix = format!("{namespace}-");
        let mut pages = self
            .rds
            .describe_db_instances()
            .into_paginator()
            .items()
            .send();
        let mut found = Vec::new();
        while let Some(db) = pages.try_next().await.unwrap() {
            let id = db.db_instance_identifier().unwrap_or_default();
            if id.starts_with(&prefix) {
                found.push((
                    id.to_owned(),
                    db.db_instance_status().unwrap_or_default().to_owned(),
                ));
            }
        }
        found.sort();
        found
    }

    async fn service(&self, stack: &Stack) -> aws_sdk_ecs::types::Service {
        let described = self
            .ecs
            .describe_services()
            .cluster(&stack.cluster)
            .services(&stack.service)
            .send()
            .await
            .unwrap();
        described.services()[0].clone()
    }

    /// The environment of the container `app` of a task definition.
    /// The `app` container of a task definition.
    async fn app_container(
        &self,
        task_definition: &str,
    ) -> aws_sdk_ecs::types::ContainerDefinition {
        let described = self
            .ecs
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .unwrap();
        described
            .task_definition()
            .unwrap()
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some("app"))
            .unwrap()
            .clone()
    }

    /// The `app` container's secrets: name -> `valueFrom`.
    async fn app_secrets(&self, task_definition: &str) -> BTreeMap<String, String> {
        let app = self.app_container(task_definition).await;
        app.secrets()
            .iter()
            .map(|s| (s.name().to_owned(), s.value_from().to_owned()))
            .collect()
    }

    async fn app_environment(&self, task_definition: &str) -> BTreeMap<String, String> {
        let app = self.app_container(task_definition).await;
        assert_eq!(app.secrets().len(), 1, "one password secret");
        app.environment()
            .iter()
            .map(|pair| {
                (
                    pair.name().unwrap_or_default().to_owned(),
                    pair.value().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// The Wait states the execution went through, with how long each waited.
fn waits(execution: &Execution) -> Vec<(String, f64)> {
    execution
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            HistoryEventKind::WaitStarted { name, seconds } => Some((name.clone(), *seconds)),
            _ => None,
        })
        .collect()
}

fn assert_quick(execution: &Execution, expected_waits: &[(&str, f64)]) {
    let expected: Vec<_> = expected_waits
        .iter()
        .map(|(name, seconds)| ((*name).to_owned(), *seconds))
        .collect();
    assert_eq!(waits(execution), expected, "the only real waits");
    let took = execution.stop_date - execution.start_date;
    assert!(
        took < chrono::Duration::seconds(60),
        "the deploy took {took} of wall-clock time"
    );
}

#[tokio::test]
async fn a_deploy_from_dev_swaps_qa_to_a_new_database_on_moto() {
    // qa keeps a final snapshot of the database it retires: one more path through RDS.
    let tenant = Tenant::new(Some(true)).await;
    let (dev, qa) = (&tenant.dev, &tenant.qa);
    let input = request(&qa.namespace, Source::Namespace(dev.namespace.clone())).input();

    // Every log line of the deploy, down to debug and the SDK's own, to look for passwords in.
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .finish();
    let execution = {
        let _guard = tracing::subscriber::set_default(subscriber);
        tenant.run_with_completed_rollouts(input).await
    };
    assert_succeeded(&execution);
    // moto's new secret is `creating` in ModifyDBInstance's answer, `active` a poll later.
    assert_quick(
        &execution,
        &[("WaitForCredentials", 15.0), ("WaitForCleanup", 15.0)],
    );
    let report = DeployReport::from_execution(&execution);
    assert_eq!(report.old_db.as_deref(), Some(qa.db.as_str()));
    let new_db = report.new_db.clone().unwrap();
    let snapshot_id = report.snapshot_id.clone().unwrap();
    let started = Timestamp::from_datetime(execution.start_date);
    assert_eq!(snapshot_id, format!("{}-{started}", dev.namespace));
    assert_eq!(new_db, format!("{}-{started}", qa.namespace));
    assert_eq!(report.deleted, vec![qa.db.clone()]);
    assert_eq!(report.cleanup_deferred, None);

    // The pointer names the new instance, one version on.
    let (pointer, version) = tenant.pointer(&qa.namespace).await;
    assert_eq!(pointer.db_instance_id, new_db);
    assert_eq!(version, 2);
    assert_eq!(pointer.snapshot_id.as_deref(), Some(snapshot_id.as_str()));
    assert_eq!(
        pointer.execution_id.as_deref(),
        Some(execution.execution_arn.as_str())
    );

    // The new instance exists, available, tagged with the execution; the old one is gone
    // (moto forgets a deleted instance at once), its final snapshot kept.
    let new = tenant.db(&new_db).await.expect("the new instance exists");
    assert_eq!(new.db_instance_status(), Some("available"));
    assert_eq!(new.db_instance_class(), Some("db.t3.micro"));
    let new_tags: Tags = new
        .tag_list()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(new_tags[tag::EXECUTION], execution.execution_arn);
    assert_eq!(new_tags[tag::NAMESPACE], qa.namespace);
    assert_eq!(new_tags[tag::SNAPSHOT], snapshot_id);
    let new_endpoint = new.endpoint().and_then(|e| e.address()).unwrap().to_owned();
    assert_eq!(pointer.endpoint, new_endpoint);
    assert!(
        tenant.db(&qa.db).await.is_none(),
        "the old instance is gone"
    );
    assert_eq!(
        tenant.dbs_of(&qa.namespace).await,
        vec![(new_db.clone(), "available".to_owned())]
    );
    assert_eq!(report.final_snapshots.len(), 1);
    let final_snapshot = tenant
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&report.final_snapshots[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        final_snapshot.db_snapshots()[0].db_instance_identifier(),
        Some(qa.db.as_str())
    );

    // The service runs a new revision that carries the new instance.
    let service = tenant.service(qa).await;
    let running = service.task_definition().unwrap().to_owned();
    assert_ne!(running, qa.task_definition);
    assert!(running.ends_with(&format!("{}:2", qa.service)), "{running}");
    assert_eq!(report.service_revision_after, Some(2));
    let environment = tenant.app_environment(&running).await;
    assert_eq!(environment[env_var::DB_INSTANCE_ID], new_db);
    assert_eq!(environment[env_var::DB_HOST], new_endpoint);
    assert_eq!(environment[env_var::DB_PORT], "5432");
    assert_eq!(environment[env_var::DB_TIMESTAMP], started.to_string());

    // The new database has its own master password, which RDS keeps in a secret of its own;
    // the pointer and the service name the secret, and its value is nowhere Switchyard writes.
    let secret = new
        .master_user_secret()
        .expect("RDS manages the new database's password");
    let secret_arn = secret.secret_arn().unwrap().to_owned();
    assert_eq!(
        pointer.master_user_secret_arn.as_deref(),
        Some(secret_arn.as_str())
    );
    let secrets = tenant.app_secrets(&running).await;
    assert_eq!(
        secrets[env_var::DB_PASSWORD],
        format!("{secret_arn}:password::"),
        "by reference, the JSON secret's password key"
    );
    let password = moto_secret_password(&secret_arn);
    assert!(password.len() >= 8, "{password:?}");
    let history = serde_json::to_string(&execution.history).unwrap();
    let report_json = serde_json::to_string(&report).unwrap();
    let logged = logs.text();
    assert!(
        logged.contains("master password handed to Secrets Manager"),
        "{logged}"
    );
    for (what, text) in [
        ("the execution history", &history),
        ("the report", &report_json),
        ("the logs", &logged),
    ] {
        assert!(!text.contains(&password), "the new password is in {what}");
        assert!(
            !text.contains("not-a-real-secret"),
            "the snapshot's password is in {what}"
        );
    }

    // Nothing left behind: no lock, nothing tracked.
    tenant.assert_unlocked_and_untracked(&qa.namespace).await;

    // The source is untouched, and its snapshot, the promoted artifact, kept.
    let (dev_pointer, dev_version) = tenant.pointer(&dev.namespace).await;
    assert_eq!(
        (dev_pointer.db_instance_id.as_str(), dev_version),
        (dev.db.as_str(), 1)
    );
    assert_eq!(
        tenant.dbs_of(&dev.namespace).await,
        vec![(dev.db.clone(), "available".to_owned())]
    );
    assert_eq!(
        tenant.service(dev).await.task_definition(),
        Some(dev.task_definition.as_str())
    );
    let snapshot = tenant
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&snapshot_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        snapshot.db_snapshots()[0].db_instance_identifier(),
        Some(dev.db.as_str())
    );
    assert!(
        !tenant
            .parameter_exists(&tenant.layout.lock(&ns(&dev.namespace)))
            .await
    );
}

/// The plain run, exactly as `switchyard --endpoint-url <moto> deploy` does it: moto's
/// UpdateService leaves the service's one deployment on the old revision (AWS makes a new
/// PRIMARY deployment on the new one; see `moto_differs_update_service_starts_no_new_deployment`
/// in `tests/moto_adapters.rs`), so CheckService finds its rollout "replaced" and fails with
/// `RolloutFailed`. On AWS, CheckService would wait for the new PRIMARY deployment to complete
/// and go on to Cleanup, as the successful test above does. What this run shows on moto is the
/// rollback, against real SDK answers: pointer back, service back, the new database deleted, the
/// old one untouched, the lock released.
#[tokio::test]
async fn moto_differs_a_plain_endpoint_deploy_sees_its_rollout_replaced_and_rolls_back() {
    let tenant = Tenant::new(None).await;
    let (dev, qa) = (&tenant.dev, &tenant.qa);
    let input = request(&qa.namespace, Source::Namespace(dev.namespace.clone())).input();

    let execution = tenant.run_as_endpoint(input).await;
    assert_failed_with(&execution, "RolloutFailed");
    let cause = execution.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("the primary deployment runs")
            && cause.contains(&format!("{}:1", qa.service)),
        "{cause}"
    );
    assert!(tasks_run(&execution).contains(&"Rollback".to_owned()));
    assert_quick(
        &execution,
        &[("WaitForCredentials", 15.0), ("WaitForRollback", 15.0)],
    );
    let report = DeployReport::from_execution(&execution);
    let new_db = report.new_db.clone().unwrap();
    let rollback = report.rollback.clone().unwrap();
    assert!(rollback.pointer_restored && rollback.service_restored);
    assert_eq!(rollback.deleted, vec![new_db.clone()]);

    // The pointer names the old database again (a third version: it was swapped, then restored).
    let (pointer, version) = tenant.pointer(&qa.namespace).await;
    assert_eq!(pointer.db_instance_id, qa.db);
    assert_eq!(pointer.execution_id, None, "the record as it was before");
    assert_eq!(version, 3);
    // The service back on its old revision; the new database gone, the old one untouched.
    assert_eq!(
        tenant.service(qa).await.task_definition(),
        Some(qa.task_definition.as_str())
    );
    assert!(tenant.db(&new_db).await.is_none());
    assert_eq!(
        tenant.dbs_of(&qa.namespace).await,
        vec![(qa.db.clone(), "available".to_owned())]
    );
    tenant.assert_unlocked_and_untracked(&qa.namespace).await;
}

#[tokio::test]
async fn a_deploy_of_a_missing_snapshot_fails_and_changes_nothing() {
    let tenant = Tenant::new(None).await;
    let qa = &tenant.qa;
    let (pointer_before, version_before) = tenant.pointer(&qa.namespace).await;
    let missing = format!("{}-20200101-000000", tenant.dev.namespace);
    let input = request(&qa.namespace, Source::Snapshot(missing.clone())).input();

    let execution = tenant.run_as_endpoint(input).await;
    assert_failed_with(&execution, "InvalidInput");
    let cause = execution.cause.clone().unwrap_or_default();
    assert!(
        cause.contains(&missing) && cause.contains("not found"),
        "{cause}"
    );
    assert_quick(&execution, &[]);

    let (pointer, version) = tenant.pointer(&qa.namespace).await;
    assert_eq!((pointer, version), (pointer_before, version_before));
    assert_eq!(
        tenant.dbs_of(&qa.namespace).await,
        vec![(qa.db.clone(), "available".to_owned())],
        "no new instance"
    );
    assert_eq!(
        tenant.service(qa).await.task_definition(),
        Some(qa.task_definition.as_str())
    );
    tenant.assert_unlocked_and_untracked(&qa.namespace).await;
    // Preflight found it missing: nothing to roll back.
    assert_eq!(
        tasks_run(&execution),
        ["AcquireLock", "Preflight", "ReleaseLockOnFailure"]
    );
    let report = DeployReport::from_execution(&execution);
    assert!(report.rollback.is_none());
}

// ---------------------------------------------------------------------------------------------

/// The SDK adapter, with the one moto gap that stops a deploy filled in: moto's UpdateService
/// points the service at the new task definition but leaves its single deployment naming the
/// old one. ECS, once a rolling update is done, shows one PRIMARY deployment on the new
/// revision; this reports moto's answer that way, the only change to it. Every call still goes
/// to moto through the SDK, and everything else (rollout state, counts, tags, ...) is moto's.
#[derive(Clone)]
struct CompletedRollouts(SdkAws);

fn completed(mut service: Service) -> Service {
    if let [only] = service.deployments.as_mut_slice()
        && only.status == "PRIMARY"
    {
        only.task_definition_arn = service.task_definition_arn.clone();
    }
    service
}

#[async_trait]
impl Services for CompletedRollouts {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<Service, AwsError> {
        self.0
            .describe_service(cluster, service)
            .await
            .map(completed)
    }

    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<Service, AwsError> {
        self.0
            .update_service(cluster, service, task_definition_arn)
            .await
            .map(completed)
    }

    async fn describe_task_definition(&self, arn: &str) -> Result<TaskDefinition, AwsError> {
        self.0.describe_task_definition(arn).await
    }

    async fn register_task_definition(
        &self,
        definition: &TaskDefinition,
    ) -> Result<TaskDefinition, AwsError> {
        self.0.register_task_definition(definition).await
    }

    async fn register_revision(
        &self,
        base_arn: &str,
        change: &RevisionChange,
    ) -> Result<TaskDefinition, AwsError> {
        self.0.register_revision(base_arn, change).await
    }

    async fn latest_task_definition(
        &self,
        family: &str,
    ) -> Result<Option<TaskDefinition>, AwsError> {
        self.0.latest_task_definition(family).await
    }

    async fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired_count: i32,
    ) -> Result<Service, AwsError> {
        self.0
            .set_desired_count(cluster, service, desired_count)
            .await
            .map(completed)
    }

    async fn run_task(&self, request: &RunTaskRequest) -> Result<EcsTask, AwsError> {
        self.0.run_task(request).await
    }

    async fn describe_task(&self, cluster: &str, task_arn: &str) -> Result<EcsTask, AwsError> {
        self.0.describe_task(cluster, task_arn).await
    }

    async fn live_service_tasks(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<EcsTask>, AwsError> {
        self.0.live_service_tasks(cluster, service).await
    }
}

#[async_trait]
impl Snapshots for CompletedRollouts {
    async fn create_snapshot(
        &self,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &Tags,
    ) -> Result<Snapshot, AwsError> {
        self.0
            .create_snapshot(db_instance_id, snapshot_id, tags)
            .await
    }

    async fn describe_snapshot(&self, snapshot_id: &str) -> Result<Snapshot, AwsError> {
        self.0.describe_snapshot(snapshot_id).await
    }

    async fn list_snapshots(&self) -> Result<Vec<Snapshot>, AwsError> {
        self.0.list_snapshots().await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), AwsError> {
        self.0.delete_snapshot(snapshot_id).await
    }
}

#[async_trait]
impl Databases for CompletedRollouts {
    async fn restore_db_from_snapshot(
        &self,
        request: &RestoreDbRequest,
    ) -> Result<DbInstance, AwsError> {
        self.0.restore_db_from_snapshot(request).await
    }

    async fn describe_db(&self, db_instance_id: &str) -> Result<DbInstance, AwsError> {
        self.0.describe_db(db_instance_id).await
    }

    async fn delete_db(&self, request: &DeleteDbRequest) -> Result<DbInstance, AwsError> {
        self.0.delete_db(request).await
    }

    async fn list_dbs(&self) -> Result<Vec<DbInstance>, AwsError> {
        self.0.list_dbs().await
    }
    async fn tag_db(&self, db_instance_id: &str, tags: &Tags) -> Result<(), AwsError> {
        self.0.tag_db(db_instance_id, tags).await
    }
    async fn finish_restore(&self, request: &FinishRestoreRequest) -> Result<DbInstance, AwsError> {
        self.0.finish_restore(request).await
    }
    async fn db_group_exists(
        &self,
        kind: switchyard_core::ports::DbGroupKind,
        name: &str,
    ) -> Result<bool, AwsError> {
        self.0.db_group_exists(kind, name).await
    }
    async fn set_deletion_protection(
        &self,
        db_instance_id: &str,
        enabled: bool,
    ) -> Result<DbInstance, AwsError> {
        self.0
            .set_deletion_protection(db_instance_id, enabled)
            .await
    }
}

#[async_trait]
impl Parameters for CompletedRollouts {
    async fn get_parameter(&self, name: &str) -> Result<Option<Parameter>, AwsError> {
        self.0.get_parameter(name).await
    }

    async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        overwrite: bool,
    ) -> Result<i64, AwsError> {
        self.0.put_parameter(name, value, overwrite).await
    }

    async fn delete_parameter(&self, name: &str) -> Result<bool, AwsError> {
        self.0.delete_parameter(name).await
    }

    async fn parameters_by_path(&self, path: &str) -> Result<Vec<Parameter>, AwsError> {
        self.0.parameters_by_path(path).await
    }

    async fn parameter_history(&self, name: &str) -> Result<Vec<Parameter>, AwsError> {
        self.0.parameter_history(name).await
    }
}

impl Clock for CompletedRollouts {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    fn region(&self) -> String {
        self.0.region()
    }
}

/// `switchyard doctor` against an endpoint: the same checker, through the SDK adapter.
#[tokio::test]
async fn the_invariant_checker_reads_an_endpoint_through_the_sdk() {
    use switchyard_core::invariants::{self, rule};
    let tenant = Tenant::new(None).await;
    let namespaces = [ns(&tenant.dev.namespace), ns(&tenant.qa.namespace)];
    let found = invariants::check(&tenant.aws, &tenant.layout, Some(&namespaces))
        .await
        .unwrap();
    assert!(found.is_empty(), "{found:?}");

    // The pointer lost: the namespace has none, and its database is accounted for by nothing.
    tenant
        .records()
        .delete_pointer(&namespaces[1])
        .await
        .unwrap();
    let found = invariants::check(&tenant.aws, &tenant.layout, Some(&namespaces))
        .await
        .unwrap();
    let rules: Vec<(&str, &str)> = found
        .iter()
        .map(|v| (v.namespace.as_str(), v.rule))
        .collect();
    assert!(
        rules.contains(&(tenant.qa.namespace.as_str(), rule::NO_POINTER)),
        "{found:?}"
    );
    assert!(
        rules.contains(&(tenant.qa.namespace.as_str(), rule::ORPHAN)),
        "{found:?}"
    );
    assert!(
        found.iter().all(|v| v.namespace == tenant.qa.namespace),
        "{found:?}"
    );
}

#[tokio::test]
async fn tenant_import_adopts_a_stack_made_with_plain_calls_and_a_deploy_then_succeeds() {
    let tenant = Tenant::imported().await;
    let qa = &tenant.qa;
    let ns_qa = ns(&qa.namespace);
    // Recorded: the settings, the pointer on the running database (with the image's version),
    // and the database tagged for the namespace.
    let settings = tenant.records().settings(&ns_qa).await.unwrap();
    assert_eq!(settings.service, qa.service);
    assert_eq!(settings.version.as_deref(), Some("1.0"));
    let (pointer, version) = tenant.pointer(&qa.namespace).await;
    assert_eq!(
        (pointer.db_instance_id.as_str(), version),
        (qa.db.as_str(), 1)
    );
    let described = tenant.aws.describe_db(&qa.db).await.unwrap();
    assert_eq!(
        described.tags.get(tag::NAMESPACE).map(String::as_str),
        Some(qa.namespace.as_str())
    );
    let listed = cli(&["tenant", "list", "--output", "json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["namespace"] == qa.namespace.as_str()
                && t["active"]["db_instance_id"] == qa.db.as_str()),
        "{listed}"
    );

    let input = request(
        &qa.namespace,
        Source::Namespace(tenant.dev.namespace.clone()),
    )
    .input();
    let execution = tenant.run_with_completed_rollouts(input).await;
    assert_succeeded(&execution);
    let report = DeployReport::from_execution(&execution);
    let (pointer, _) = tenant.pointer(&qa.namespace).await;
    assert_eq!(Some(pointer.db_instance_id), report.new_db);
    // The adopted database was the old one: the clean-up deleted it (the tag allowed it).
    assert_eq!(report.deleted, vec![qa.db.clone()]);
}

#[tokio::test]
async fn tenant_import_refuses_a_service_that_does_not_use_the_database_and_records_nothing() {
    let (clients, customer, cluster) = Clients::for_a_new_customer().await;
    let (dev, ..) = clients
        .seed_stack(&format!("{customer}-0146-dev"), &cluster, 2, false)
        .await;
    let (qa, ..) = clients
        .seed_stack(&format!("{customer}-0146-qa"), &cluster, 1, false)
        .await;
    // qa's database, with dev's service: the service runs on another database.
    let out = cli(&[
        "tenant",
        "import",
        &qa.namespace,
        "--db-instance-id",
        &qa.db,
        "--db-instance-class",
        "db.t3.micro",
        "--cluster",
        &cluster,
        "--service",
        &dev.service,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("InvalidInput")
            && stderr.contains(&format!("does not use db instance {}", qa.db)),
        "{stderr}"
    );
    let ns_qa = ns(&qa.namespace);
    assert!(clients.records().settings(&ns_qa).await.is_err());
    assert!(clients.records().pointer(&ns_qa).await.unwrap().is_none());
    let described = clients.aws.describe_db(&qa.db).await.unwrap();
    assert_eq!(described.tags.get(tag::NAMESPACE), None);
}

/// The password in a secret of moto's Secrets Manager (GetSecretValue over its JSON protocol;
/// moto does not check signatures), so a test can look for it where it must not be.
fn moto_secret_password(secret_arn: &str) -> String {
    use std::io::{Read, Write};
    let base = moto_url();
    let hostport = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let body = serde_json::json!({ "SecretId": secret_arn }).to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: secretsmanager.GetSecretValue\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20261130/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(&hostport).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, payload) = response.split_once("\r\n\r\n").unwrap();
    let answer: Value = serde_json::from_str(payload).unwrap_or_else(|e| panic!("{e}: {response}"));
    let secret: Value = serde_json::from_str(answer["SecretString"].as_str().unwrap()).unwrap();
    secret["password"].as_str().unwrap().to_owned()
}

/// A `tracing` writer that keeps what it is given.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// `switchyard status` against an endpoint reads a fleet in batches, as a user runs it: the
/// namespaces' records in one paginated listing (ten a page), the services ten a call per
/// cluster, each task definition once. Twelve tenants, eleven in one cluster and one in another,
/// under a parameter root of their own (other tests share the server).
#[tokio::test]
async fn status_on_an_endpoint_reads_a_fleet_in_batches_and_says_what_it_cost() {
    let (mut clients, customer, big) = Clients::for_a_new_customer().await;
    let root = format!("/status-{customer}");
    clients.layout = ParameterLayout::new(&root).unwrap();
    let small = format!("{customer}-prod");
    create_cluster(&clients.ecs, &small).await;
    let mut seeded = Vec::new();
    for i in 0..12 {
        let (namespace, cluster) = if i < 11 {
            (format!("{customer}-{i:04}-qa"), &big)
        } else {
            (format!("{customer}-{i:04}-prod"), &small)
        };
        seeded.push(clients.seed(&namespace, cluster, 1, None).await);
    }
    // One tenant's service is gone: it shows as drift, and the batch still answers the others.
    clients
        .ecs
        .delete_service()
        .cluster(&big)
        .service(&seeded[5].service)
        .force(true)
        .send()
        .await
        .unwrap();

    let out = cli(&["--parameter-root", &root, "status", "--output", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let statuses: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(statuses.len(), 12, "{statuses:#?}");
    for (status, stack) in statuses.iter().zip(&seeded) {
        assert_eq!(status["namespace"], stack.namespace.as_str());
        assert_eq!(status["active_db"], stack.db.as_str());
        assert_eq!(status["active_db_status"], "available");
        if stack.namespace == seeded[5].namespace {
            assert_eq!(
                status["drift"][0],
                format!("service {} not found in cluster {big}", stack.service).as_str()
            );
        } else {
            assert_eq!(
                status["task_definition_arn"],
                stack.task_definition.as_str(),
                "{status:#}"
            );
            assert_eq!(status["drift"], serde_json::json!([]), "{status:#}");
        }
    }

    // The cost, as the command reports it: 24 records are three pages; 11 + 1 services in two
    // clusters are three calls; eleven task definitions are read once each. The databases are one
    // listing of a hundred a page (the server holds other tests' too).
    let summary = stderr
        .lines()
        .find(|line| line.contains("AWS calls"))
        .unwrap_or_else(|| panic!("no call summary in: {stderr}"));
    let count = |operation: &str| -> u64 {
        summary
            .split(": ")
            .nth(1)
            .unwrap()
            .split(", ")
            .find_map(|item| item.strip_prefix(&format!("{operation} ")))
            .map_or(0, |n| n.parse().unwrap())
    };
    println!("{summary}");
    assert!(summary.starts_with("12 namespaces read with "), "{summary}");
    assert_eq!(count("SSM.GetParametersByPath"), 3, "{summary}");
    assert_eq!(count("ECS.DescribeServices"), 3, "{summary}");
    assert_eq!(count("ECS.DescribeTaskDefinition"), 11, "{summary}");
    let listings = count("RDS.DescribeDBInstances");
    assert!((1..=3).contains(&listings), "{summary}");
    assert_eq!(count("SSM.GetParameter"), 0, "{summary}");
    assert_eq!(count("ECS.DescribeService"), 0, "{summary}");
}
