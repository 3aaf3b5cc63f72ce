//! The AWS SDK adapter (`switchyard-aws`) against moto's server, a real and independent AWS
//! emulator: every call Switchyard makes through its ports, and how each answer and each error
//! maps to the domain's types and error kinds. Where moto departs from AWS, a `moto_differs_...`
//! test says how, quotes AWS's documentation, and asserts what moto does, so a moto upgrade that
//! changes it shows up here.
//!
//! Needs the moto server that `tests/run` starts (`SWITCHYARD_TEST_MOTO_URL`, with
//! `MOTO_ECS_SERVICE_RUNNING=2`). The tests share it and run in parallel: every name they give
//! starts with a per-test random prefix, and none reads anything it did not create.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition as EcsContainer, KeyValuePair, LaunchType, LogConfiguration,
    LogDriver, NetworkMode, PortMapping, Secret, SortOrder, Tag as EcsTag,
    TaskDefinition as EcsTaskDefinition, TaskDefinitionField, TaskDefinitionStatus, Volume,
};
use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::types::Tag as RdsTag;
use aws_sdk_ssm::types::ParameterType;
use common::{
    create_cluster, create_postgres_db, create_service_running, key_value_pairs, moto_config,
    random_letters, register_task_definition,
};
use switchyard_aws::SdkAws;
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{
    ContainerDefinition, Databases, DeleteDbRequest, Parameters, RestoreDbRequest, RevisionChange,
    Services, Snapshots, Tags, TaskDefinition, tag,
};

/// The clients of one test: the adapter under test, and the SDK itself to seed and to check.
struct Moto {
    config: aws_config::SdkConfig,
    aws: SdkAws,
    rds: aws_sdk_rds::Client,
    ssm: aws_sdk_ssm::Client,
    ecs: aws_sdk_ecs::Client,
    /// Starts every name this test gives (a letter first, as RDS identifiers need).
    prefix: String,
}

async fn moto(short: &str) -> Moto {
    let config = moto_config().await;
    Moto {
        aws: SdkAws::new(&config),
        rds: aws_sdk_rds::Client::new(&config),
        ssm: aws_sdk_ssm::Client::new(&config),
        ecs: aws_sdk_ecs::Client::new(&config),
        config,
        prefix: format!("{short}{}", random_letters(6)),
    }
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn execution_arn(name: &str) -> String {
    format!("arn:aws:states:us-east-1:000000000000:execution:local:{name}")
}

// ---------------------------------------------------------------------------------------------
// RDS

/// A source database as an operator would have made it, straight through the SDK.
async fn create_db(m: &Moto, id: &str, tags: &Tags) -> aws_sdk_rds::types::DbInstance {
    let tags = tags
        .iter()
        .map(|(key, value)| RdsTag::builder().key(key).value(value).build())
        .collect();
    create_postgres_db(&m.rds, id, tags).await
}

/// A restore asks for the setup RDS would not carry over, and a protected database is deleted
/// only once its protection is lifted: the calls Switchyard makes, as moto answers them.
#[tokio::test]
async fn rds_restore_carries_the_setup_asked_for_and_protection_holds_until_lifted() {
    let m = moto("rds").await;
    let source = format!("{}-prod-blue", m.prefix);
    create_db(&m, &source, &Tags::new()).await;
    let snapshot_id = format!("{}-prod-snap", m.prefix);
    m.aws
        .create_snapshot(&source, &snapshot_id, &Tags::new())
        .await
        .unwrap();
    let group = format!("{}-postgres16", m.prefix);
    m.rds
        .create_db_parameter_group()
        .db_parameter_group_name(&group)
        .db_parameter_group_family("postgres16")
        .description("the tenant's own")
        .send()
        .await
        .unwrap();
    let green = format!("{}-prod-green", m.prefix);
    let asked = switchyard_core::ports::DbConfig {
        parameter_group: Some(group.clone()),
        multi_az: Some(true),
        deletion_protection: Some(true),
        backup_retention_days: Some(7),
        copy_tags_to_snapshot: Some(true),
        ..Default::default()
    };
    let restored = m
        .aws
        .restore_db_from_snapshot(&RestoreDbRequest {
            db_instance_id: green.clone(),
            snapshot_id,
            instance_class: "db.t3.small".into(),
            subnet_group: None,
            security_group_ids: vec![],
            tags: Tags::new(),
            config: asked,
        })
        .await
        .unwrap();
    let described = m.aws.describe_db(&green).await.unwrap();
    for db in [&restored, &described] {
        assert_eq!(db.config.parameter_group.as_deref(), Some(group.as_str()));
        assert_eq!(db.config.multi_az, Some(true));
        assert_eq!(db.config.deletion_protection, Some(true));
        assert_eq!(db.config.backup_retention_days, Some(7));
        assert_eq!(db.config.copy_tags_to_snapshot, Some(true));
    }
    let delete = DeleteDbRequest {
        db_instance_id: green.clone(),
        final_snapshot_id: None,
    };
    match m.aws.delete_db(&delete).await.unwrap_err() {
        AwsError::Rejected { code, message } => {
            assert_eq!(code, "InvalidParameterCombination");
            assert!(message.contains("deletion protection"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // What a restore cannot take, set afterwards in one ModifyDBInstance with the password
    // hand-over, and read back.
    let setup = switchyard_core::ports::DbConfig {
        maintenance_window: Some("tue:02:00-tue:02:30".into()),
        monitoring_interval_seconds: Some(60),
        monitoring_role_arn: Some("arn:aws:iam::123456789012:role/rds-monitoring-role".into()),
        performance_insights: Some(true),
        performance_insights_retention_days: Some(7),
        ..Default::default()
    };
    let finished = m
        .aws
        .finish_restore(&switchyard_core::ports::FinishRestoreRequest {
            db_instance_id: green.clone(),
            manage_master_password: true,
            setup: setup.clone(),
        })
        .await
        .unwrap();
    assert!(finished.master_user_secret.is_some());
    let described = m.aws.describe_db(&green).await.unwrap().config;
    assert_eq!(described.maintenance_window, setup.maintenance_window);
    assert_eq!(described.monitoring_interval_seconds, Some(60));
    assert_eq!(described.monitoring_role_arn, setup.monitoring_role_arn);
    assert_eq!(described.performance_insights_retention_days, Some(7));
    // moto keeps Performance Insights' retention but does not report it enabled: one reason
    // set-credentials asks for the setup once (`setup_asked`) instead of until the description
    // matches, which would wait out its poll budget here.
    assert_eq!(described.performance_insights, None);
    use switchyard_core::ports::DbGroupKind;
    assert!(
        m.aws
            .db_group_exists(DbGroupKind::Parameter, &group)
            .await
            .unwrap()
    );
    assert!(
        !m.aws
            .db_group_exists(DbGroupKind::Parameter, "nobody-made-it")
            .await
            .unwrap()
    );
    assert!(
        !m.aws
            .db_group_exists(DbGroupKind::Subnet, "nobody-made-it")
            .await
            .unwrap()
    );
    let lifted = m.aws.set_deletion_protection(&green, false).await.unwrap();
    assert_eq!(lifted.config.deletion_protection, Some(false));
    m.aws.delete_db(&delete).await.unwrap();
}

#[tokio::test]
async fn rds_snapshot_restore_describe_and_list_map_to_domain_types() {
    let m = moto("rds").await;
    let source = format!("{}-blue", m.prefix);
    create_db(&m, &source, &tags(&[(tag::NAMESPACE, "xy-0146-dev")])).await;

    let snapshot_id = format!("{}-snap", m.prefix);
    let snapshot_tags = tags(&[
        (tag::MANAGED_BY, tag::MANAGED_BY_VALUE),
        (tag::NAMESPACE, "xy-0146-dev"),
        (tag::EXECUTION, &execution_arn("e-1")),
        (tag::TIMESTAMP, "20261125-222526"),
    ]);
    let snapshot = m
        .aws
        .create_snapshot(&source, &snapshot_id, &snapshot_tags)
        .await
        .unwrap();
    assert_eq!(snapshot.id, snapshot_id);
    assert_eq!(snapshot.db_instance_id, source);
    // moto: available at once (see moto_differs_rds_resources_are_available_at_once).
    assert_eq!(snapshot.status, "available");
    assert_eq!(snapshot.allocated_storage_gib, 20);
    assert_eq!(snapshot.engine, "postgres");
    assert!(!snapshot.engine_version.is_empty());
    assert!(snapshot.created_at.is_some());
    assert_eq!(snapshot.tags, snapshot_tags, "tags round-trip");
    let described = m.aws.describe_snapshot(&snapshot_id).await.unwrap();
    assert_eq!(described, snapshot);

    let green = format!("{}-green", m.prefix);
    let restore_tags = tags(&[
        (tag::NAMESPACE, "xy-0146-qa"),
        (tag::EXECUTION, &execution_arn("e-1")),
        (tag::SNAPSHOT, &snapshot_id),
    ]);
    let restored = m
        .aws
        .restore_db_from_snapshot(&RestoreDbRequest {
            db_instance_id: green.clone(),
            snapshot_id: snapshot_id.clone(),
            instance_class: "db.t3.small".into(),
            subnet_group: None,
            security_group_ids: vec![],
            tags: restore_tags.clone(),
            config: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(restored.id, green);
    assert_eq!(restored.instance_class, "db.t3.small");
    assert_eq!(restored.engine, "postgres");
    assert_eq!(restored.allocated_storage_gib, 20);
    assert_eq!(restored.tags, restore_tags, "only the tags asked for");

    let db = m.aws.describe_db(&green).await.unwrap();
    assert_eq!(db.id, green);
    assert_eq!(db.status, "available");
    let endpoint = db.endpoint.clone().unwrap();
    assert!(endpoint.starts_with(&format!("{green}.")), "{endpoint}");
    assert_eq!(db.port, Some(5432));
    assert_eq!(db.instance_class, "db.t3.small");
    assert_eq!(db.tags, restore_tags);

    let listed = m.aws.list_dbs().await.unwrap();
    let mut ours: Vec<_> = listed
        .iter()
        .filter(|db| db.id.starts_with(&m.prefix))
        .map(|db| (db.id.clone(), db.tags.clone()))
        .collect();
    ours.sort();
    assert_eq!(
        ours,
        vec![
            (source.clone(), tags(&[(tag::NAMESPACE, "xy-0146-dev")])),
            (green.clone(), restore_tags.clone()),
        ]
    );
    assert!(
        listed.contains(&db),
        "list_dbs maps an instance as describe_db does"
    );
}

#[tokio::test]
async fn rds_delete_with_and_without_a_final_snapshot() {
    let m = moto("del").await;
    let kept = format!("{}-kept", m.prefix);
    let dropped = format!("{}-dropped", m.prefix);
    create_db(&m, &kept, &Tags::new()).await;
    create_db(&m, &dropped, &Tags::new()).await;

    let final_id = format!("{kept}-final-20261125-222526");
    let deleted = m
        .aws
        .delete_db(&DeleteDbRequest {
            db_instance_id: kept.clone(),
            final_snapshot_id: Some(final_id.clone()),
        })
        .await
        .unwrap();
    assert_eq!(deleted.id, kept);
    assert_eq!(deleted.status, "deleting");
    let last = m.aws.describe_snapshot(&final_id).await.unwrap();
    assert_eq!(last.db_instance_id, kept);
    assert_eq!(last.status, "available");

    let deleted = m
        .aws
        .delete_db(&DeleteDbRequest {
            db_instance_id: dropped.clone(),
            final_snapshot_id: None,
        })
        .await
        .unwrap();
    assert_eq!(deleted.id, dropped);
    assert_eq!(deleted.status, "deleting");
    let manual = m
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(&dropped)
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert!(
        manual.db_snapshots().is_empty(),
        "{:?}",
        manual.db_snapshots()
    );
}

#[tokio::test]
async fn rds_errors_map_to_not_found_and_already_exists() {
    let m = moto("rerr").await;
    let missing_snapshot = format!("{}-no-such-snapshot", m.prefix);
    let missing_db = format!("{}-no-such-db", m.prefix);
    let snapshot_not_found = AwsError::NotFound {
        kind: ResourceKind::DbSnapshot,
        id: missing_snapshot.clone(),
    };
    let db_not_found = AwsError::NotFound {
        kind: ResourceKind::DbInstance,
        id: missing_db.clone(),
    };

    // DBSnapshotNotFound
    assert_eq!(
        m.aws
            .describe_snapshot(&missing_snapshot)
            .await
            .unwrap_err(),
        snapshot_not_found
    );
    let restore = |db: &str, snapshot: &str| RestoreDbRequest {
        db_instance_id: db.to_owned(),
        snapshot_id: snapshot.to_owned(),
        instance_class: "db.t3.micro".into(),
        subnet_group: None,
        security_group_ids: vec![],
        tags: Tags::new(),
        config: Default::default(),
    };
    let new_db = format!("{}-new", m.prefix);
    assert_eq!(
        m.aws
            .restore_db_from_snapshot(&restore(&new_db, &missing_snapshot))
            .await
            .unwrap_err(),
        snapshot_not_found
    );

    // DBInstanceNotFound
    assert_eq!(
        m.aws.describe_db(&missing_db).await.unwrap_err(),
        db_not_found
    );
    let delete = |db: &str, final_snapshot: Option<&str>| DeleteDbRequest {
        db_instance_id: db.to_owned(),
        final_snapshot_id: final_snapshot.map(str::to_owned),
    };
    assert_eq!(
        m.aws
            .delete_db(&delete(&missing_db, None))
            .await
            .unwrap_err(),
        db_not_found
    );
    let snapshot_id = format!("{}-snap", m.prefix);
    assert_eq!(
        m.aws
            .create_snapshot(&missing_db, &snapshot_id, &Tags::new())
            .await
            .unwrap_err(),
        db_not_found
    );

    // DBSnapshotAlreadyExists
    let source = format!("{}-source", m.prefix);
    create_db(&m, &source, &Tags::new()).await;
    m.aws
        .create_snapshot(&source, &snapshot_id, &Tags::new())
        .await
        .unwrap();
    let snapshot_exists = AwsError::AlreadyExists {
        kind: ResourceKind::DbSnapshot,
        id: snapshot_id.clone(),
    };
    assert_eq!(
        m.aws
            .create_snapshot(&source, &snapshot_id, &Tags::new())
            .await
            .unwrap_err(),
        snapshot_exists
    );
    // A final snapshot whose name is taken: the delete is refused and the instance stays.
    assert_eq!(
        m.aws
            .delete_db(&delete(&source, Some(&snapshot_id)))
            .await
            .unwrap_err(),
        snapshot_exists
    );
    assert_eq!(
        m.aws.describe_db(&source).await.unwrap().status,
        "available"
    );

    // DBInstanceAlreadyExists
    assert_eq!(
        m.aws
            .restore_db_from_snapshot(&restore(&source, &snapshot_id))
            .await
            .unwrap_err(),
        AwsError::AlreadyExists {
            kind: ResourceKind::DbInstance,
            id: source.clone()
        }
    );
}

/// AWS (RDS User Guide, "Viewing Amazon RDS DB instance status"): "creating — The instance is
/// being created. The instance is inaccessible while it is being created."; a new snapshot is
/// `creating` too until its copy is done. moto answers `available` at once, for instances,
/// restores and snapshots alike, so the deploy's poll loops never wait on moto.
#[tokio::test]
async fn moto_differs_rds_resources_are_available_at_once() {
    let m = moto("avail").await;
    let source = format!("{}-source", m.prefix);
    let created = create_db(&m, &source, &Tags::new()).await;
    assert_eq!(created.db_instance_status(), Some("available"));
    assert!(created.endpoint().and_then(|e| e.address()).is_some());

    let snapshot = m
        .rds
        .create_db_snapshot()
        .db_instance_identifier(&source)
        .db_snapshot_identifier(format!("{}-snap", m.prefix))
        .send()
        .await
        .unwrap();
    assert_eq!(
        snapshot.db_snapshot().and_then(|s| s.status()),
        Some("available")
    );

    let restored = m
        .rds
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(format!("{}-restored", m.prefix))
        .db_snapshot_identifier(format!("{}-snap", m.prefix))
        .send()
        .await
        .unwrap();
    assert_eq!(
        restored.db_instance().and_then(|d| d.db_instance_status()),
        Some("available")
    );
}

/// AWS (DeleteDBInstance): "If you request a final DB snapshot the status of the Amazon RDS DB
/// instance is deleting until the DB snapshot is created. The API action DescribeDBInstance is
/// used to monitor the status of this operation." On AWS a deleted instance is described as
/// `deleting` for minutes; moto answers the delete with `deleting` and forgets the instance at
/// once, so the next describe is DBInstanceNotFound (which the sweep reads as "gone").
#[tokio::test]
async fn moto_differs_a_deleted_instance_is_gone_at_once() {
    let m = moto("gone").await;
    let id = format!("{}-db", m.prefix);
    create_db(&m, &id, &Tags::new()).await;
    let deleted = m
        .aws
        .delete_db(&DeleteDbRequest {
            db_instance_id: id.clone(),
            final_snapshot_id: Some(format!("{id}-final")),
        })
        .await
        .unwrap();
    assert_eq!(deleted.status, "deleting");
    assert_eq!(
        m.aws.describe_db(&id).await.unwrap_err(),
        AwsError::NotFound {
            kind: ResourceKind::DbInstance,
            id: id.clone()
        }
    );
    assert!(
        !m.aws.list_dbs().await.unwrap().iter().any(|db| db.id == id),
        "not listed either"
    );
}

/// AWS (DeleteDBInstance, SkipFinalSnapshot): "By default, skip isn't enabled, and the DB
/// snapshot is created. If you don't enable this parameter, you must specify the
/// FinalDBSnapshotIdentifier parameter." AWS refuses a delete that says neither; moto accepts it
/// and deletes the instance without a snapshot. (The adapter always says one or the other.)
#[tokio::test]
async fn moto_differs_a_delete_without_final_snapshot_flags_is_accepted() {
    let m = moto("flags").await;
    let id = format!("{}-db", m.prefix);
    create_db(&m, &id, &Tags::new()).await;
    let deleted = m
        .rds
        .delete_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted.db_instance().and_then(|d| d.db_instance_status()),
        Some("deleting")
    );
    let manual = m
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(&id)
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert!(manual.db_snapshots().is_empty(), "no final snapshot taken");
    let err = m
        .rds
        .describe_db_instances()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_service_error().and_then(|e| e.code()),
        Some("DBInstanceNotFound")
    );
}

// ---------------------------------------------------------------------------------------------
// SSM Parameter Store

fn parameter_name(m: &Moto, leaf: &str) -> String {
    format!("/switchyard-test/{}/{leaf}", m.prefix)
}

#[tokio::test]
async fn ssm_put_get_versions_and_history() {
    let m = moto("ssm").await;
    let name = parameter_name(&m, "active-db");

    assert_eq!(m.aws.put_parameter(&name, "one", false).await.unwrap(), 1);
    // ParameterAlreadyExists: the create-if-absent the lock is built on.
    assert_eq!(
        m.aws
            .put_parameter(&name, "again", false)
            .await
            .unwrap_err(),
        AwsError::AlreadyExists {
            kind: ResourceKind::Parameter,
            id: name.clone()
        }
    );
    assert_eq!(
        m.aws.get_parameter(&name).await.unwrap().unwrap().value,
        "one",
        "the refused put changed nothing"
    );
    assert_eq!(m.aws.put_parameter(&name, "two", true).await.unwrap(), 2);
    assert_eq!(m.aws.put_parameter(&name, "three", true).await.unwrap(), 3);

    let current = m.aws.get_parameter(&name).await.unwrap().unwrap();
    assert_eq!(current.name, name);
    assert_eq!(current.value, "three");
    assert_eq!(current.version, 3);
    assert!(current.last_modified.is_some());

    let history = m.aws.parameter_history(&name).await.unwrap();
    let versions: Vec<_> = history
        .iter()
        .map(|p| (p.name.as_str(), p.version, p.value.as_str()))
        .collect();
    assert_eq!(
        versions,
        vec![
            (name.as_str(), 1, "one"),
            (name.as_str(), 2, "two"),
            (name.as_str(), 3, "three"),
        ],
        "oldest first"
    );
    assert!(history.iter().all(|p| p.last_modified.is_some()));

    let missing = parameter_name(&m, "missing");
    assert_eq!(m.aws.get_parameter(&missing).await.unwrap(), None);
    assert_eq!(
        m.aws.parameter_history(&missing).await.unwrap_err(),
        AwsError::NotFound {
            kind: ResourceKind::Parameter,
            id: missing.clone()
        }
    );
}

#[tokio::test]
async fn ssm_parameters_by_path_reads_every_page() {
    let m = moto("path").await;
    let dir = parameter_name(&m, "tracked");
    let mut expected = Vec::new();
    for i in 0..12 {
        let name = format!("{dir}/db-{i:02}");
        m.aws
            .put_parameter(&name, &i.to_string(), false)
            .await
            .unwrap();
        expected.push(name);
    }
    // Recursive: deeper levels are listed too.
    let deep = format!("{dir}/deeper/db-99");
    m.aws.put_parameter(&deep, "99", false).await.unwrap();
    expected.push(deep);
    // Beside the path, not below it.
    m.aws
        .put_parameter(&format!("{dir}-not-below"), "x", false)
        .await
        .unwrap();
    m.aws
        .put_parameter(&parameter_name(&m, "sibling"), "x", false)
        .await
        .unwrap();

    // moto pages (10 per page, as AWS's maximum): one call does not see them all.
    let first_page = m
        .ssm
        .get_parameters_by_path()
        .path(&dir)
        .recursive(true)
        .send()
        .await
        .unwrap();
    assert_eq!(first_page.parameters().len(), 10);
    assert!(first_page.next_token().is_some());

    let found = m.aws.parameters_by_path(&dir).await.unwrap();
    let mut names: Vec<_> = found.iter().map(|p| p.name.clone()).collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected);
    let first = found.iter().find(|p| p.name.ends_with("/db-07")).unwrap();
    assert_eq!((first.value.as_str(), first.version), ("7", 1));
}

#[tokio::test]
async fn ssm_delete_says_whether_there_was_anything() {
    let m = moto("rm").await;
    let name = parameter_name(&m, "lock");
    m.aws.put_parameter(&name, "held", false).await.unwrap();
    assert!(m.aws.delete_parameter(&name).await.unwrap());
    assert_eq!(m.aws.get_parameter(&name).await.unwrap(), None);
    assert!(!m.aws.delete_parameter(&name).await.unwrap());
    // Free again: the next create-if-absent wins, starting over at version 1.
    assert_eq!(m.aws.put_parameter(&name, "again", false).await.unwrap(), 1);
}

/// Labels and `name:label` / `name:version` selectors, which Switchyard's port does not use:
/// what moto does with them, through the SDK, so nobody has to find out later.
#[tokio::test]
async fn ssm_labels_and_selectors_as_moto_answers_them() {
    let m = moto("label").await;
    let name = parameter_name(&m, "active-db");
    for value in ["one", "two", "three"] {
        m.ssm
            .put_parameter()
            .name(&name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }
    let label = |version: Option<i64>, label: &str| {
        m.ssm
            .label_parameter_version()
            .name(&name)
            .set_parameter_version(version)
            .labels(label)
            .send()
    };
    let labelled = label(Some(2), "blue").await.unwrap();
    assert_eq!(labelled.parameter_version(), 2);
    assert!(labelled.invalid_labels().is_empty());
    // Without a version, the latest one is labelled.
    assert_eq!(label(None, "green").await.unwrap().parameter_version(), 3);

    let get = |selector: String| m.ssm.get_parameter().name(selector).send();
    let by_label = get(format!("{name}:blue")).await.unwrap();
    let by_label = by_label.parameter().unwrap();
    assert_eq!(
        (by_label.name(), by_label.value(), by_label.version()),
        (Some(name.as_str()), Some("two"), 2),
        "the name comes back without the selector"
    );
    // AWS's response syntax lists `Selector` ("Either the version number or the label used to
    // retrieve the parameter value"); moto leaves it out. Not checked against AWS itself.
    assert_eq!(by_label.selector(), None);
    let by_version = get(format!("{name}:1")).await.unwrap();
    assert_eq!(by_version.parameter().and_then(|p| p.value()), Some("one"));

    // A label moves: labelling another version takes it from the one that had it.
    label(Some(1), "blue").await.unwrap();
    let history = m
        .ssm
        .get_parameter_history()
        .name(&name)
        .send()
        .await
        .unwrap();
    let labels: Vec<_> = history
        .parameters()
        .iter()
        .map(|p| (p.version(), p.labels().to_vec()))
        .collect();
    assert_eq!(
        labels,
        vec![
            (1, vec!["blue".to_owned()]),
            (2, vec![]),
            (3, vec!["green".to_owned()]),
        ]
    );
    assert_eq!(
        get(format!("{name}:blue"))
            .await
            .unwrap()
            .parameter()
            .map(|p| p.version()),
        Some(1)
    );

    // AWS: "A label can't begin with a number, "aws" or "ssm" (not case sensitive). If a label
    // fails to meet these requirements, then the label isn't associated with a parameter and the
    // system displays it in the list of InvalidLabels." moto agrees, in lower case (see
    // moto_differs_labels_may_begin_with_aws_or_ssm_in_upper_case).
    for bad in ["1st", "aws-blue", "ssm-blue"] {
        let answer = label(Some(1), bad).await.unwrap();
        assert_eq!(answer.invalid_labels(), [bad.to_owned()], "{bad}");
    }

    let unknown_label = get(format!("{name}:purple")).await.unwrap_err();
    assert_eq!(
        unknown_label.as_service_error().and_then(|e| e.code()),
        Some("ParameterNotFound")
    );
    let unknown_version = get(format!("{name}:9")).await.unwrap_err();
    assert_eq!(
        unknown_version.as_service_error().and_then(|e| e.code()),
        Some("ParameterVersionNotFound")
    );

    // Through the port, should a selector ever reach it: a version or label selects as above, an
    // unknown label is "no parameter", an unknown version a rejection.
    let selected = m.aws.get_parameter(&format!("{name}:1")).await.unwrap();
    assert_eq!(
        selected.map(|p| (p.value, p.version)),
        Some(("one".into(), 1))
    );
    assert_eq!(
        m.aws
            .get_parameter(&format!("{name}:purple"))
            .await
            .unwrap(),
        None
    );
    let err = m.aws.get_parameter(&format!("{name}:9")).await.unwrap_err();
    assert!(
        matches!(&err, AwsError::Rejected { code, .. } if code == "ParameterVersionNotFound"),
        "{err:?}"
    );
}

/// AWS (LabelParameterVersion): "A label can't begin with a number, "aws" or "ssm" (not case
/// sensitive). If a label fails to meet these requirements, then the label isn't associated with
/// a parameter and the system displays it in the list of InvalidLabels." moto checks the prefixes
/// in lower case only: `SSM-blue` and `Aws-blue` are accepted and attached.
#[tokio::test]
async fn moto_differs_labels_may_begin_with_aws_or_ssm_in_upper_case() {
    let m = moto("upper").await;
    let name = parameter_name(&m, "active-db");
    m.aws.put_parameter(&name, "one", false).await.unwrap();
    for label in ["SSM-blue", "Aws-blue"] {
        let answer = m
            .ssm
            .label_parameter_version()
            .name(&name)
            .parameter_version(1)
            .labels(label)
            .send()
            .await
            .unwrap();
        assert!(answer.invalid_labels().is_empty(), "{label}");
        let selected = m
            .ssm
            .get_parameter()
            .name(format!("{name}:{label}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            selected.parameter().map(|p| p.version()),
            Some(1),
            "{label}"
        );
    }
}

/// AWS (PutParameter, Name): "Parameter names can include only the following symbols and
/// letters: a-zA-Z0-9_.- In addition, the slash character ( / ) is used to delineate
/// hierarchies in parameter names." A name with `:` (the selector separator) is a
/// ValidationException on AWS. moto stores it, and then fails with an internal error (HTTP 500)
/// on every GetParametersByPath that would list it, which the adapter maps to `Unavailable`
/// (transient). Switchyard's names never have a `:` (namespaces and RDS identifiers cannot).
#[tokio::test]
async fn moto_differs_parameter_names_may_contain_a_colon() {
    let m = moto("colon").await;
    let dir = parameter_name(&m, "odd");
    let name = format!("{dir}/a:b");
    assert_eq!(m.aws.put_parameter(&name, "x", false).await.unwrap(), 1);
    let listed = m.aws.parameters_by_path(&dir).await;
    // Removed before any assertion: on a shared server it breaks every listing above it.
    let deleted = m.aws.delete_parameter(&name).await;
    let err = listed.unwrap_err();
    assert!(
        matches!(&err, AwsError::Unavailable { message } if message.contains("500")),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(deleted, Ok(true));
    assert_eq!(m.aws.parameters_by_path(&dir).await, Ok(vec![]));
}

// ---------------------------------------------------------------------------------------------
// ECS

const APP_IMAGE: &str = "registry.example/team/app:1.0";

/// A cluster, a task definition whose container `app` reads its database from the environment
/// and its password from Parameter Store, and a service running it twice.
struct Ecs {
    cluster: String,
    family: String,
    service: String,
    base_arn: String,
    secret_arn: String,
}

fn env(pairs: &[(&str, &str)]) -> Vec<KeyValuePair> {
    key_value_pairs(pairs)
}

async fn seed_ecs(m: &Moto, desired_count: i32) -> Ecs {
    let cluster = format!("{}-cluster", m.prefix);
    let family = format!("{}-app", m.prefix);
    let service = format!("{}-app", m.prefix);
    let secret_arn = format!(
        "arn:aws:ssm:us-east-1:123456789012:parameter/switchyard-test/{}/db-password",
        m.prefix
    );
    create_cluster(&m.ecs, &cluster).await;
    let app = EcsContainer::builder()
        .name("app")
        .image(APP_IMAGE)
        .memory(256)
        .cpu(128)
        .essential(true)
        .set_environment(Some(env(&[
            ("DB_HOST", "old.example"),
            ("KEEP", "kept"),
            ("DB_PORT", "5432"),
        ])))
        .secrets(
            Secret::builder()
                .name("DB_PASSWORD")
                .value_from(&secret_arn)
                .build()
                .unwrap(),
        )
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .command("serve")
        .command("--port=8080")
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", "/switchyard-test/app")
                .build()
                .unwrap(),
        )
        .build();
    let proxy = EcsContainer::builder()
        .name("proxy")
        .image("registry.example/team/proxy:2")
        .memory(64)
        .essential(false)
        .set_environment(Some(env(&[("MODE", "proxy"), ("DB_HOST", "not-this-one")])))
        .build();
    let definition = m
        .ecs
        .register_task_definition()
        .family(&family)
        .container_definitions(app)
        .container_definitions(proxy)
        .network_mode(NetworkMode::Bridge)
        .requires_compatibilities(Compatibility::Ec2)
        .cpu("256")
        .memory("512")
        .task_role_arn("arn:aws:iam::123456789012:role/app-task")
        .execution_role_arn("arn:aws:iam::123456789012:role/app-execution")
        .volumes(Volume::builder().name("scratch").build())
        .tags(EcsTag::builder().key("team").value("payments").build())
        .tags(
            EcsTag::builder()
                .key(tag::PREVIOUS_TASK_DEFINITION)
                .value(format!(
                    "arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:0"
                ))
                .build(),
        );
    let base_arn =
        create_service_running(&m.ecs, &cluster, &service, desired_count, definition).await;
    Ecs {
        cluster,
        family,
        service,
        base_arn,
        secret_arn,
    }
}

/// The task definition as the SDK describes it, with its tags sorted.
async fn sdk_task_definition(m: &Moto, arn: &str) -> (EcsTaskDefinition, Vec<(String, String)>) {
    let described = m
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let mut tags: Vec<_> = described
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    tags.sort();
    (described.task_definition.unwrap(), tags)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    tags(pairs)
}

/// One Fargate task of the seeded task definition, started straight through the SDK.
async fn run_one_fargate_task(
    m: &Moto,
    ecs: &Ecs,
) -> aws_sdk_ecs::operation::run_task::RunTaskOutput {
    m.ecs
        .run_task()
        .cluster(&ecs.cluster)
        .task_definition(&ecs.base_arn)
        .count(1)
        .launch_type(LaunchType::Fargate)
        .send()
        .await
        .unwrap()
}

/// A change to the environment of the container `app` only, its image kept.
fn app_environment_change(environment: &[(&str, &str)], tags: Tags) -> RevisionChange {
    RevisionChange {
        container: "app".into(),
        environment: map(environment),
        secrets: Default::default(),
        unset: Vec::new(),
        image: None,
        tags,
        family: None,
        command: None,
        sole_container: false,
    }
}

/// Registers a revision of the seeded task definition with `app`'s DB_HOST set to `db_host`,
/// through the port; the new revision's ARN.
async fn register_db_host_revision(m: &Moto, ecs: &Ecs, db_host: &str) -> String {
    let change = app_environment_change(&[("DB_HOST", db_host)], Tags::new());
    let revision = m
        .aws
        .register_revision(&ecs.base_arn, &change)
        .await
        .unwrap();
    revision.arn.unwrap()
}

#[tokio::test]
async fn ecs_describe_service_and_task_definition_map_to_domain_types() {
    let m = moto("ecs").await;
    let ecs = seed_ecs(&m, 2).await;

    let service = m
        .aws
        .describe_service(&ecs.cluster, &ecs.service)
        .await
        .unwrap();
    assert_eq!(service.cluster, ecs.cluster, "the name the caller used");
    assert_eq!(service.name, ecs.service);
    assert_eq!(service.status, "ACTIVE");
    assert_eq!(service.task_definition_arn, ecs.base_arn);
    // Running 2 because tests/run starts moto with MOTO_ECS_SERVICE_RUNNING=2.
    assert_eq!((service.desired_count, service.running_count), (2, 2));
    assert_eq!(service.deployments.len(), 1, "{:?}", service.deployments);
    let deployment = &service.deployments[0];
    assert!(deployment.id.starts_with("ecs-svc/"), "{}", deployment.id);
    assert_eq!(deployment.status, "PRIMARY");
    assert_eq!(deployment.task_definition_arn, ecs.base_arn);
    assert_eq!((deployment.desired_count, deployment.running_count), (2, 2));
    assert_eq!(deployment.rollout_state, "COMPLETED");
    assert!(
        deployment
            .rollout_state_reason
            .as_deref()
            .is_some_and(|reason| reason.contains("completed")),
        "{:?}",
        deployment.rollout_state_reason
    );

    let definition = m.aws.describe_task_definition(&ecs.base_arn).await.unwrap();
    assert_eq!(definition.arn.as_deref(), Some(ecs.base_arn.as_str()));
    assert_eq!(definition.family, ecs.family);
    assert_eq!(definition.revision, 1);
    assert_eq!(
        definition.containers,
        vec![
            ContainerDefinition {
                name: "app".into(),
                image: APP_IMAGE.into(),
                essential: true,
                memory_mib: Some(256),
                environment: map(&[
                    ("DB_HOST", "old.example"),
                    ("KEEP", "kept"),
                    ("DB_PORT", "5432"),
                ]),
                secrets: map(&[("DB_PASSWORD", &ecs.secret_arn)]),
                command: vec!["serve".into(), "--port=8080".into()],
            },
            ContainerDefinition {
                name: "proxy".into(),
                image: "registry.example/team/proxy:2".into(),
                essential: false,
                memory_mib: Some(64),
                environment: map(&[("MODE", "proxy"), ("DB_HOST", "not-this-one")]),
                secrets: BTreeMap::new(),
                command: Vec::new(),
            },
        ]
    );
    assert_eq!(definition.cpu.as_deref(), Some("256"));
    assert_eq!(definition.memory.as_deref(), Some("512"));
    assert_eq!(definition.network_mode.as_deref(), Some("bridge"));
    assert_eq!(definition.requires_compatibilities, ["EC2"]);
    assert_eq!(
        definition.task_role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/app-task")
    );
    assert_eq!(
        definition.execution_role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/app-execution")
    );
    assert_eq!(
        definition.tags,
        map(&[
            ("team", "payments"),
            (
                tag::PREVIOUS_TASK_DEFINITION,
                &format!(
                    "arn:aws:ecs:us-east-1:123456789012:task-definition/{}:0",
                    ecs.family
                )
            ),
        ])
    );
}

#[tokio::test]
async fn ecs_register_revision_changes_env_and_image_and_keeps_everything_else() {
    let m = moto("rev").await;
    let ecs = seed_ecs(&m, 2).await;
    let execution = execution_arn(&m.prefix);
    let change = RevisionChange {
        container: "app".into(),
        environment: map(&[("DB_HOST", "new.example"), ("DB_INSTANCE_ID", "db-green")]),
        secrets: Default::default(),
        unset: Vec::new(),
        image: Some("registry.example/team/app:1.1".into()),
        tags: map(&[
            (tag::EXECUTION, &execution),
            (tag::PREVIOUS_TASK_DEFINITION, &ecs.base_arn),
        ]),
        family: None,
        command: None,
        sole_container: false,
    };
    let registered = m
        .aws
        .register_revision(&ecs.base_arn, &change)
        .await
        .unwrap();
    assert_eq!(registered.family, ecs.family);
    assert_eq!(registered.revision, 2);
    let new_arn = registered.arn.clone().unwrap();
    assert!(new_arn.ends_with(&format!("task-definition/{}:2", ecs.family)));

    let (base, base_tags) = sdk_task_definition(&m, &ecs.base_arn).await;
    let (new, new_tags) = sdk_task_definition(&m, &new_arn).await;

    // The container named: image and the variables named changed, in place or appended; every
    // other setting (command, ports, secrets, logging, cpu, memory, ...) exactly as it was.
    let mut expected_app = base.container_definitions()[0].clone();
    expected_app.image = Some("registry.example/team/app:1.1".into());
    expected_app.environment = Some(env(&[
        ("DB_HOST", "new.example"),
        ("KEEP", "kept"),
        ("DB_PORT", "5432"),
        ("DB_INSTANCE_ID", "db-green"),
    ]));
    assert_eq!(new.container_definitions()[0], expected_app);
    assert_eq!(
        new.container_definitions()[0].secrets(),
        base.container_definitions()[0].secrets()
    );
    assert_eq!(
        new.container_definitions()[0].command(),
        ["serve", "--port=8080"]
    );
    // The other container, its own DB_HOST included, untouched.
    assert_eq!(
        new.container_definitions()[1],
        base.container_definitions()[1]
    );
    assert_eq!(new.container_definitions().len(), 2);

    // The definition around the containers.
    assert_eq!(new.family(), base.family());
    assert_eq!(new.revision(), base.revision() + 1);
    assert_eq!(new.task_role_arn(), base.task_role_arn());
    assert_eq!(new.execution_role_arn(), base.execution_role_arn());
    assert_eq!(new.network_mode(), base.network_mode());
    assert_eq!(new.volumes(), base.volumes());
    assert_eq!(new.placement_constraints(), base.placement_constraints());
    assert_eq!(
        new.requires_compatibilities(),
        base.requires_compatibilities()
    );
    assert_eq!(new.cpu(), base.cpu());
    assert_eq!(new.memory(), base.memory());
    assert_eq!(new.volumes()[0].name(), Some("scratch"));

    // Tags: the base's own kept, its switchyard ones replaced by the change's.
    assert_eq!(
        base_tags
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        [tag::PREVIOUS_TASK_DEFINITION, "team"]
    );
    assert_eq!(
        new_tags,
        vec![
            (tag::EXECUTION.to_owned(), execution.clone()),
            (
                tag::PREVIOUS_TASK_DEFINITION.to_owned(),
                ecs.base_arn.clone()
            ),
            ("team".to_owned(), "payments".to_owned()),
        ]
    );

    // The port's own view of the new revision agrees.
    let described = m.aws.describe_task_definition(&new_arn).await.unwrap();
    assert_eq!(
        described.containers[0].environment["DB_INSTANCE_ID"],
        "db-green"
    );
    assert_eq!(
        described.containers[0].image,
        "registry.example/team/app:1.1"
    );
    assert_eq!(described.tags[tag::EXECUTION], execution);
}

#[tokio::test]
async fn ecs_register_task_definition_and_latest_revision() {
    let m = moto("reg").await;
    let family = format!("{}-plain", m.prefix);
    let definition = TaskDefinition {
        arn: None,
        family: family.clone(),
        revision: 0,
        containers: vec![ContainerDefinition {
            name: "app".into(),
            image: APP_IMAGE.into(),
            essential: true,
            memory_mib: Some(128),
            environment: map(&[("A", "1")]),
            secrets: map(&[(
                "PASSWORD",
                "arn:aws:ssm:us-east-1:123456789012:parameter/switchyard-test/pw",
            )]),
            command: Vec::new(),
        }],
        cpu: Some("256".into()),
        memory: Some("512".into()),
        network_mode: Some("bridge".into()),
        requires_compatibilities: vec!["EC2".into()],
        execution_role_arn: None,
        task_role_arn: None,
        tags: map(&[("team", "payments")]),
    };
    let registered = m.aws.register_task_definition(&definition).await.unwrap();
    assert_eq!(registered.family, family);
    assert_eq!(registered.revision, 1);
    let arn = registered.arn.clone().unwrap();
    assert_eq!(registered.containers, definition.containers);
    assert_eq!(registered.cpu, definition.cpu);
    assert_eq!(registered.network_mode, definition.network_mode);

    let described = m.aws.describe_task_definition(&arn).await.unwrap();
    assert_eq!(
        TaskDefinition {
            arn: None,
            revision: 0,
            ..described
        },
        definition,
        "what was registered is what is described"
    );

    let latest = m
        .aws
        .latest_task_definition(&family)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.arn.as_deref(), Some(arn.as_str()));
    assert_eq!(latest.tags, definition.tags, "with tags");
    assert_eq!(
        m.aws
            .latest_task_definition(&format!("{}-none", m.prefix))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn ecs_update_service_points_the_service_at_the_revision() {
    let m = moto("upd").await;
    let ecs = seed_ecs(&m, 2).await;
    let revision_arn = register_db_host_revision(&m, &ecs, "new.example").await;

    let updated = m
        .aws
        .update_service(&ecs.cluster, &ecs.service, &revision_arn)
        .await
        .unwrap();
    assert_eq!(updated.cluster, ecs.cluster);
    assert_eq!(updated.name, ecs.service);
    assert_eq!(updated.task_definition_arn, revision_arn);
    assert_eq!(updated.desired_count, 2);

    let described = m
        .ecs
        .describe_services()
        .cluster(&ecs.cluster)
        .services(&ecs.service)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.services()[0].task_definition(),
        Some(revision_arn.as_str())
    );
    assert_eq!(
        m.aws
            .describe_service(&ecs.cluster, &ecs.service)
            .await
            .unwrap()
            .task_definition_arn,
        revision_arn
    );
}

#[tokio::test]
async fn ecs_run_task_and_describe_tasks() {
    let m = moto("task").await;
    let ecs = seed_ecs(&m, 2).await;
    let run = run_one_fargate_task(&m, &ecs).await;
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    assert_eq!(run.tasks().len(), 1);
    let task = &run.tasks()[0];
    let task_arn = task.task_arn().unwrap().to_owned();
    assert!(
        task_arn.contains(&format!(":task/{}/", ecs.cluster)),
        "{task_arn}"
    );
    assert_eq!(task.task_definition_arn(), Some(ecs.base_arn.as_str()));
    assert_eq!(task.desired_status(), Some("RUNNING"));
    assert_eq!(task.launch_type(), Some(&LaunchType::Fargate));
    assert!(task.containers().iter().any(|c| c.name() == Some("app")));

    let described = m
        .ecs
        .describe_tasks()
        .cluster(&ecs.cluster)
        .tasks(&task_arn)
        .send()
        .await
        .unwrap();
    assert!(described.failures().is_empty());
    assert_eq!(described.tasks().len(), 1);
    assert_eq!(described.tasks()[0].task_arn(), Some(task_arn.as_str()));
    assert_eq!(
        described.tasks()[0].task_definition_arn(),
        Some(ecs.base_arn.as_str())
    );
}

#[tokio::test]
async fn ecs_errors_map_to_not_found() {
    let m = moto("eerr").await;
    let ecs = seed_ecs(&m, 2).await;
    let missing_cluster = format!("{}-no-cluster", m.prefix);
    let missing_service = format!("{}-no-service", m.prefix);
    let cluster_not_found = AwsError::NotFound {
        kind: ResourceKind::Cluster,
        id: missing_cluster.clone(),
    };
    let service_not_found = AwsError::NotFound {
        kind: ResourceKind::Service,
        id: missing_service.clone(),
    };

    assert_eq!(
        m.aws
            .describe_service(&missing_cluster, &ecs.service)
            .await
            .unwrap_err(),
        cluster_not_found
    );
    // DescribeServices answers a missing service in `failures` (reason MISSING), not an error.
    assert_eq!(
        m.aws
            .describe_service(&ecs.cluster, &missing_service)
            .await
            .unwrap_err(),
        service_not_found
    );
    assert_eq!(
        m.aws
            .update_service(&ecs.cluster, &missing_service, &ecs.base_arn)
            .await
            .unwrap_err(),
        service_not_found
    );
    assert_eq!(
        m.aws
            .update_service(&missing_cluster, &missing_service, &ecs.base_arn)
            .await
            .unwrap_err(),
        cluster_not_found
    );

    // ECS says "Unable to describe task definition." in a plain ClientException.
    let unknown = format!("{}:99", ecs.family);
    let definition_not_found = AwsError::NotFound {
        kind: ResourceKind::TaskDefinition,
        id: unknown.clone(),
    };
    assert_eq!(
        m.aws.describe_task_definition(&unknown).await.unwrap_err(),
        definition_not_found
    );
    let change = app_environment_change(&[("DB_HOST", "x")], Tags::new());
    assert_eq!(
        m.aws
            .register_revision(&unknown, &change)
            .await
            .unwrap_err(),
        definition_not_found
    );
    let worker = RevisionChange {
        container: "worker".into(),
        ..change
    };
    let err = m
        .aws
        .register_revision(&ecs.base_arn, &worker)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AwsError::Rejected { code, message }
            if code == "ClientException" && message.contains("worker")),
        "{err:?}"
    );

    // A deleted service lingers as INACTIVE: to the port it is gone.
    m.ecs
        .delete_service()
        .cluster(&ecs.cluster)
        .service(&ecs.service)
        .force(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        m.aws
            .describe_service(&ecs.cluster, &ecs.service)
            .await
            .unwrap_err(),
        AwsError::NotFound {
            kind: ResourceKind::Service,
            id: ecs.service.clone()
        }
    );
}

/// AWS (Deployment.status): "PRIMARY — The most recent deployment of a service. ACTIVE — A
/// service deployment that still has running tasks, but are in the process of being replaced
/// with a new PRIMARY deployment."; (UpdateService) "When you update any of these parameters,
/// Amazon ECS starts new tasks with the new configuration." On AWS an UpdateService with a new
/// task definition makes a new PRIMARY deployment on it. moto changes the service's
/// `taskDefinition` and nothing else: the one deployment keeps naming the old revision, for ever.
/// The deploy's CheckService therefore sees its rollout "replaced" on moto (see
/// `tests/moto_deploy.rs`).
#[tokio::test]
async fn moto_differs_update_service_starts_no_new_deployment() {
    let m = moto("dep").await;
    let ecs = seed_ecs(&m, 2).await;
    let revision_arn = register_db_host_revision(&m, &ecs, "new.example").await;
    let before = m
        .aws
        .describe_service(&ecs.cluster, &ecs.service)
        .await
        .unwrap();
    let updated = m
        .aws
        .update_service(&ecs.cluster, &ecs.service, &revision_arn)
        .await
        .unwrap();
    for service in [
        updated,
        m.aws
            .describe_service(&ecs.cluster, &ecs.service)
            .await
            .unwrap(),
    ] {
        assert_eq!(service.task_definition_arn, revision_arn);
        assert_eq!(service.deployments, before.deployments, "unchanged");
        assert_eq!(service.deployments.len(), 1);
        assert_eq!(service.deployments[0].status, "PRIMARY");
        assert_eq!(service.deployments[0].task_definition_arn, ecs.base_arn);
    }
}

/// AWS (ListTaskDefinitions): `sort` "The order to sort the results in. Valid values are ASC and
/// DESC. By default, (ASC) task definitions are listed lexicographically by family name and in
/// ascending numerical order by revision so that the newest task definitions in a family are
/// listed last. Setting this parameter to DESC reverses the sort order"; `maxResults` limits the
/// page; `familyPrefix` filters "to task definitions with family names that start with" it. moto
/// ignores `sort` and `maxResults` and matches the family exactly. The adapter's
/// `latest_task_definition` does not list (on AWS the prefix would bring `<family>-worker` first
/// under DESC): it describes the bare family, the latest active revision on both.
#[tokio::test]
async fn moto_differs_list_task_definitions_ignores_sort_and_max_results() {
    let m = moto("list").await;
    let ecs = seed_ecs(&m, 1).await;
    let second_arn = register_db_host_revision(&m, &ecs, "second.example").await;
    // A family that starts with ours: AWS would list it under our prefix.
    m.ecs
        .register_task_definition()
        .family(format!("{}-worker", ecs.family))
        .container_definitions(
            EcsContainer::builder()
                .name("worker")
                .image(APP_IMAGE)
                .memory(64)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let listed = m
        .ecs
        .list_task_definitions()
        .family_prefix(&ecs.family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.task_definition_arns(),
        [ecs.base_arn.clone(), second_arn.clone()],
        "ascending, both, and no -worker"
    );
    let latest = m
        .aws
        .latest_task_definition(&ecs.family)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.revision, 2);
    assert_eq!(latest.arn.as_deref(), Some(second_arn.as_str()));
}

/// AWS (RegisterTaskDefinition, response): "tags — The list of tags associated with the task
/// definition." moto answers without them (DescribeTaskDefinition with include TAGS has them), so
/// on moto the port's `register_revision` returns a definition without tags. No step reads them
/// from that answer.
#[tokio::test]
async fn moto_differs_register_task_definition_answers_without_tags() {
    let m = moto("rtag").await;
    let ecs = seed_ecs(&m, 1).await;
    let registered = m
        .aws
        .register_revision(
            &ecs.base_arn,
            &app_environment_change(&[], map(&[(tag::EXECUTION, "e-1")])),
        )
        .await
        .unwrap();
    assert!(registered.tags.is_empty(), "{:?}", registered.tags);
    let described = m
        .aws
        .describe_task_definition(registered.arn.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        described.tags,
        map(&[(tag::EXECUTION, "e-1"), ("team", "payments")])
    );
}

/// AWS (ContainerDefinition, memory): "If using the Fargate launch type, this parameter is
/// optional." A Fargate task definition with task-level memory only runs on AWS; moto's RunTask
/// adds up the containers' `memory` and fails with an internal error (HTTP 500) when one has
/// none. Every task definition these tests run gives its containers `memory`.
#[tokio::test]
async fn moto_differs_run_task_needs_memory_on_every_container() {
    let m = moto("mem").await;
    let ecs = seed_ecs(&m, 1).await;
    let family = format!("{}-nomem", m.prefix);
    let arn = register_task_definition(
        m.ecs
            .register_task_definition()
            .family(&family)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(EcsContainer::builder().name("app").image(APP_IMAGE).build()),
    )
    .await;
    // No retries: moto's 500 is not going to get better.
    let ecs_client = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&m.config)
            .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
            .build(),
    );
    let err = ecs_client
        .run_task()
        .cluster(&ecs.cluster)
        .task_definition(&arn)
        .count(1)
        .launch_type(LaunchType::Fargate)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(500),
        "{err:?}"
    );
}

/// AWS (task lifecycle): a new task goes PROVISIONING → PENDING → ACTIVATING → RUNNING and stays
/// RUNNING until it is stopped or exits. moto's RunTask answers RUNNING at once, and every
/// DescribeTasks moves the task one step on towards STOPPED (DEACTIVATING, STOPPING,
/// DEPROVISIONING, STOPPED), whether or not anyone stopped it.
#[tokio::test]
async fn moto_differs_tasks_run_at_once_and_each_describe_moves_them_towards_stopped() {
    let m = moto("life").await;
    let ecs = seed_ecs(&m, 1).await;
    let run = run_one_fargate_task(&m, &ecs).await;
    let task = &run.tasks()[0];
    assert_eq!(task.last_status(), Some("RUNNING"));
    let task_arn = task.task_arn().unwrap().to_owned();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let described = m
            .ecs
            .describe_tasks()
            .cluster(&ecs.cluster)
            .tasks(&task_arn)
            .send()
            .await
            .unwrap();
        seen.push(
            described.tasks()[0]
                .last_status()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(
        seen,
        [
            "DEACTIVATING",
            "STOPPING",
            "DEPROVISIONING",
            "STOPPED",
            "STOPPED"
        ]
    );
}

/// AWS (Deployment.rolloutState): "When a service deployment is started, it begins in an
/// IN_PROGRESS state. When the service reaches a steady state, the deployment transitions to a
/// COMPLETED state." On AWS the scheduler starts tasks until `runningCount` reaches
/// `desiredCount`. moto runs no scheduler: `runningCount` is whatever the server's
/// MOTO_ECS_SERVICE_RUNNING says (2 under tests/run), so a service that wants 3 stays
/// IN_PROGRESS with 2 running for ever (and without the variable every service stays at 0).
#[tokio::test]
async fn moto_differs_running_count_comes_from_the_server_not_the_scheduler() {
    let m = moto("three").await;
    let ecs = seed_ecs(&m, 3).await;
    for _ in 0..2 {
        let service = m
            .aws
            .describe_service(&ecs.cluster, &ecs.service)
            .await
            .unwrap();
        assert_eq!(
            (service.desired_count, service.running_count),
            (3, 2),
            "moto must run with MOTO_ECS_SERVICE_RUNNING=2, as tests/run starts it"
        );
        assert_eq!(service.deployments[0].rollout_state, "IN_PROGRESS");
        assert!(!switchyard_core::steps::service::is_stable(&service));
    }
}

#[tokio::test]
async fn ecs_register_revision_sets_secrets_by_reference_and_removes_dropped_settings() {
    let m = moto("sec").await;
    let ecs = seed_ecs(&m, 2).await;
    let api_key = format!(
        "arn:aws:ssm:us-east-1:123456789012:parameter/switchyard-test/{}/api-key",
        m.prefix
    );
    let change = RevisionChange {
        container: "app".into(),
        environment: map(&[("MAX_USERS", "100")]),
        secrets: map(&[("API_KEY", api_key.as_str())]),
        // A setting the catalog dropped since the base revision.
        unset: vec!["KEEP".into()],
        image: None,
        tags: Tags::new(),
        family: None,
        command: None,
        sole_container: false,
    };
    let registered = m
        .aws
        .register_revision(&ecs.base_arn, &change)
        .await
        .unwrap();
    let (base, _) = sdk_task_definition(&m, &ecs.base_arn).await;
    let (new, _) = sdk_task_definition(&m, registered.arn.as_deref().unwrap()).await;
    let app = &new.container_definitions()[0];
    let names: Vec<(&str, Option<&str>)> = app
        .environment()
        .iter()
        .map(|pair| (pair.name().unwrap_or_default(), pair.value()))
        .collect();
    assert_eq!(
        names,
        [
            ("DB_HOST", Some("old.example")),
            ("DB_PORT", Some("5432")),
            ("MAX_USERS", Some("100"))
        ]
    );
    // The secret by reference, beside the base's own; no value anywhere in the definition.
    let secrets: Vec<(&str, &str)> = app
        .secrets()
        .iter()
        .map(|secret| (secret.name(), secret.value_from()))
        .collect();
    let base_secret = base.container_definitions()[0].secrets()[0].value_from();
    assert_eq!(
        secrets,
        [("DB_PASSWORD", base_secret), ("API_KEY", api_key.as_str())]
    );
}

/// A clock whose waits return at once: moto moves a task on with each describe, not with time.
struct Impatient;

#[async_trait::async_trait]
impl switchyard_asl::Clock for Impatient {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    async fn sleep(&self, _: std::time::Duration) {}
}

/// The local runner's `ecs:runTask.sync` through the SDK adapter: RunTask with the launch type
/// and awsvpc network a migration uses, then DescribeTasks until the task stops (moto stops a
/// task after a few describes, its container with exit code 0), and the task's description as
/// the state's output.
#[tokio::test]
async fn ecs_run_task_sync_starts_the_task_and_waits_until_it_stops() {
    let m = moto("sync").await;
    let ecs = seed_ecs(&m, 1).await;
    let parameters = serde_json::json!({
        "Cluster": ecs.cluster,
        "TaskDefinition": ecs.base_arn,
        "LaunchType": "FARGATE",
        "NetworkConfiguration": {"AwsvpcConfiguration": {
            "Subnets": ["subnet-12345678"], "SecurityGroups": ["sg-12345678"], "AssignPublicIp": "DISABLED"
        }},
        "StartedBy": "switchyard/moto-test"
    });
    let task = switchyard::integrations::run_task_sync(&m.aws, &Impatient, parameters, Some(600))
        .await
        .unwrap();
    assert_eq!(task["LastStatus"], "STOPPED", "{task}");
    assert_eq!(task["TaskDefinitionArn"], ecs.base_arn.as_str(), "{task}");
    assert_eq!(task["StartedBy"], "switchyard/moto-test", "{task}");
    assert_eq!(task["Containers"][0]["ExitCode"], 0, "{task}");
    // A cluster that does not exist is ECS's own error.
    let nowhere = serde_json::json!({"Cluster": format!("{}-none", m.prefix), "TaskDefinition": ecs.base_arn});
    let failure = switchyard::integrations::run_task_sync(&m.aws, &Impatient, nowhere, None)
        .await
        .unwrap_err();
    assert_eq!(
        failure.error, "ECS.ClusterNotFoundException",
        "{}",
        failure.cause
    );
}

/// The upgrade's freeze and thaw: UpdateService with only `desiredCount`, the revision kept.
#[tokio::test]
async fn ecs_set_desired_count_changes_only_the_count() {
    let m = moto("frz").await;
    let ecs = seed_ecs(&m, 2).await;
    let frozen = m
        .aws
        .set_desired_count(&ecs.cluster, &ecs.service, 0)
        .await
        .unwrap();
    assert_eq!(frozen.desired_count, 0);
    assert_eq!(frozen.task_definition_arn, ecs.base_arn);
    let thawed = m
        .aws
        .set_desired_count(&ecs.cluster, &ecs.service, 2)
        .await
        .unwrap();
    assert_eq!(thawed.desired_count, 2);
    assert_eq!(thawed.task_definition_arn, ecs.base_arn);
    let missing = m
        .aws
        .set_desired_count(&ecs.cluster, &format!("{}-none", m.prefix), 0)
        .await
        .unwrap_err();
    assert!(matches!(missing, AwsError::NotFound { .. }), "{missing:?}");
}

/// The freeze's last look: ListTasks of the service (running and told to stop), described. moto
/// starts no tasks for a service, so there are none; a missing cluster is ECS's own error.
#[tokio::test]
async fn ecs_live_service_tasks_lists_and_describes() {
    let m = moto("live").await;
    let ecs = seed_ecs(&m, 2).await;
    let live = m
        .aws
        .live_service_tasks(&ecs.cluster, &ecs.service)
        .await
        .unwrap();
    assert!(live.iter().all(|t| t.last_status != "STOPPED"), "{live:?}");
    let missing = m
        .aws
        .live_service_tasks(&format!("{}-none", m.prefix), &ecs.service)
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            AwsError::NotFound {
                kind: ResourceKind::Cluster,
                ..
            }
        ),
        "{missing:?}"
    );
}
