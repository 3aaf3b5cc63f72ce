//! The tenant catalog: `switchyard tenant ...` as a user types it on the embedded world, and the
//! library under faults (every multi-write command all-or-nothing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::path::Path;

use common::*;
use serde_json::Value;
use switchyard_core::ports::{Databases, tag};
use switchyard_core::tenants;
use switchyard_sim::{World, demo_tenants};

fn tenant_json(dir: &Path, namespace: &str) -> Value {
    let out = cli_in(dir, &["tenant", "show", namespace, "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const UAT_FLAGS: [&str; 8] = [
    "--db-instance-class",
    "db.t4g.small",
    "--cluster",
    "switchyard-nonprod",
    "--service",
    "xy-0146-uat-app",
    "--security-group",
    "sg-0123abcd",
];

#[test]
fn add_show_set_list_and_remove_a_tenant() {
    let dir = tempfile::tempdir().unwrap();
    assert!(cli_in(dir.path(), &["init", "--demo"]).status.success());
    let added = cli_in(
        dir.path(),
        &[
            &["tenant", "add", "xy-0146-uat", "--plan", "premium"][..],
            &UAT_FLAGS,
        ]
        .concat(),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(output_text(&added).contains("registered xy-0146-uat"));
    let shown = tenant_json(dir.path(), "xy-0146-uat");
    assert_eq!(shown["settings"]["db_instance_class"], "db.t4g.small");
    assert_eq!(shown["settings"]["container"], "app");
    assert_eq!(shown["settings"]["plan"], "premium");
    assert!(shown["active"].is_null());

    // A second add is refused: `set` changes a tenant.
    let again = cli_in(
        dir.path(),
        &[&["tenant", "add", "xy-0146-uat"][..], &UAT_FLAGS].concat(),
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("InvalidInput: namespace xy-0146-uat is already registered"));

    let set = cli_in(
        dir.path(),
        &[
            "tenant",
            "set",
            "xy-0146-uat",
            "expected_deploy_minutes=90",
            "policies.capacity={\"max_storage_gib\":200}",
        ],
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let shown = tenant_json(dir.path(), "xy-0146-uat");
    assert_eq!(shown["settings"]["expected_deploy_minutes"], 90);
    assert_eq!(
        shown["settings"]["policies"]["capacity"]["max_storage_gib"],
        200
    );

    let listed = cli_in(dir.path(), &["tenant", "list", "--output", "json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), demo_tenants().len() + 1, "{names:?}");
    assert!(names.contains(&"xy-0146-uat"));

    let removed = cli_in(dir.path(), &["tenant", "remove", "xy-0146-uat"]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    let gone = cli_in(dir.path(), &["tenant", "show", "xy-0146-uat"]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(
        stderr(&gone).contains("xy-0146-uat is not registered"),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn every_bad_setting_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    assert!(cli_in(dir.path(), &["init", "--demo"]).status.success());
    let world = std::fs::read(dir.path().join("world.json")).unwrap();
    let out = cli_in(
        dir.path(),
        &[
            "tenant",
            "add",
            "xy-0146-uat",
            "--db-instance-class",
            "m5.large",
            "--cluster",
            "nonprod cluster",
            "--service",
            "xy-0146-uat-app",
            "--security-group",
            "sg-1",
            "--tenant-region",
            "europe",
            "--expected-deploy-minutes",
            "0",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let said = stderr(&out);
    for named in [
        "InvalidInput: invalid settings for xy-0146-uat",
        "db_instance_class \"m5.large\"",
        "cluster \"nonprod cluster\"",
        "vpc_security_group_ids \"sg-1\"",
        "region \"europe\"",
        "expected_deploy_minutes \"0\"",
    ] {
        assert!(said.contains(named), "{named}: {said}");
    }
    // A bad `set` changes nothing either, and neither does an unknown key.
    for assignment in ["db_instance_class=large", "colour=blue"] {
        let out = cli_in(
            dir.path(),
            &["tenant", "set", "xy-0146-qa", "plan=gold", assignment],
        );
        assert_eq!(out.status.code(), Some(2), "{assignment}");
        assert!(stderr(&out).contains("InvalidInput"), "{}", stderr(&out));
    }
    assert!(
        std::fs::read(dir.path().join("world.json")).unwrap() == world,
        "the world changed"
    );
}

#[test]
fn import_adopts_a_running_stack_and_a_deploy_then_runs_on_it() {
    let dir = tempfile::tempdir().unwrap();
    assert!(cli_in(dir.path(), &["init"]).status.success());
    // The platform's own infrastructure made these stacks; Switchyard knows none of them.
    let path = dir.path().join("world.json");
    let world = World::load(&path).unwrap();
    let mut dbs = Vec::new();
    for tenant in demo_tenants()
        .into_iter()
        .filter(|t| t.namespace.starts_with("xy-0146-"))
    {
        dbs.push((tenant.clone(), world.seed_stack(&tenant)));
    }
    world.save(&path).unwrap();
    for (tenant, db) in &dbs {
        let out = cli_in(
            dir.path(),
            &[
                "tenant",
                "import",
                tenant.namespace,
                "--db-instance-id",
                db,
                "--db-instance-class",
                "db.t4g.medium",
                "--cluster",
                tenant.cluster(),
                "--service",
                &tenant.service(),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let shown = tenant_json(dir.path(), tenant.namespace);
        assert_eq!(shown["active"]["db_instance_id"], db.as_str());
        // The version comes from the running image's tag.
        assert_eq!(shown["settings"]["version"], tenant.app_version);
    }
    let deploy = cli_in(
        dir.path(),
        &["deploy", "xy-0146-qa", "--from", "xy-0146-dev"],
    );
    assert!(deploy.status.success(), "{}", output_text(&deploy));
    let doctor = cli_in(dir.path(), &["doctor"]);
    assert!(doctor.status.success(), "{}", output_text(&doctor));
}

#[tokio::test]
async fn an_import_that_fails_at_any_write_leaves_nothing() {
    let layout = switchyard_core::ParameterLayout::default();
    let tenant = demo_tenants()
        .into_iter()
        .find(|t| t.namespace == "xy-0146-qa")
        .unwrap();
    let ns = tenant.namespace();
    // settings, pointer, tag: three writes; a fault at each.
    for writes in 0..3 {
        let world = World::new(chrono::Utc::now());
        let db = world.seed_stack(&tenant);
        world.fail_write_after(writes);
        let aws = world.aws();
        let err = tenants::import(&aws, &layout, &ns, &tenant.settings(), &db)
            .await
            .unwrap_err();
        assert_eq!(
            err.name(),
            "AwsRejected",
            "fault after {writes} writes: {err}"
        );
        assert!(err.to_string().contains("InjectedFault"), "{err}");
        let records = switchyard_core::records::Records {
            params: &aws,
            layout: &layout,
        };
        assert!(
            records.settings(&ns).await.is_err(),
            "settings left after {writes}"
        );
        assert!(
            records.pointer(&ns).await.unwrap().is_none(),
            "pointer left after {writes}"
        );
        assert_eq!(
            aws.describe_db(&db).await.unwrap().tags.get(tag::NAMESPACE),
            None
        );
        // And the same import then goes through.
        tenants::import(&aws, &layout, &ns, &tenant.settings(), &db)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_failed_add_or_set_changes_nothing() {
    let layout = switchyard_core::ParameterLayout::default();
    let world = demo();
    let aws = world.aws();
    let qa = ns("xy-0146-qa");
    let before = tenants::show(&aws, &layout, &qa).await.unwrap();
    world.fail_write_after(0);
    tenants::set(&aws, &layout, &qa, &["plan=gold".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(tenants::show(&aws, &layout, &qa).await.unwrap(), before);
    let mut settings = before.settings.clone();
    settings.service = "xy-0146-uat-app".into();
    let uat = ns("xy-0146-uat");
    world.fail_write_after(0);
    tenants::add(&aws, &layout, &uat, &settings)
        .await
        .unwrap_err();
    assert!(tenants::show(&aws, &layout, &uat).await.is_err());
}

#[test]
fn retiring_a_tenant_deletes_its_databases_under_the_policies_then_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    assert!(cli_in(dir.path(), &["init", "--demo"]).status.success());
    let path = dir.path().join("world.json");
    let prod = tenant_json(dir.path(), "xy-0146-prod");
    let db = prod["active"]["db_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Not while its service runs on it: refused, nothing changed.
    let refused = cli_in(
        dir.path(),
        &["tenant", "remove", "xy-0146-prod", "--retire"],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("still exists"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        tenant_json(dir.path(), "xy-0146-prod")["active"]["db_instance_id"],
        db.as_str()
    );
    // Nor, without --retire, while it has a database.
    let refused = cli_in(dir.path(), &["tenant", "remove", "xy-0146-prod"]);
    assert!(
        stderr(&refused).contains(&format!("its active database {db}")),
        "{}",
        stderr(&refused)
    );

    let world = World::load(&path).unwrap();
    assert!(world.delete_service("switchyard-prod", "xy-0146-prod-app"));
    world.save(&path).unwrap();
    let retired = cli_in(
        dir.path(),
        &["tenant", "remove", "xy-0146-prod", "--retire"],
    );
    let text = output_text(&retired);
    assert!(retired.status.success(), "{text}{}", stderr(&retired));
    assert!(text.contains(&format!("deleted {db}")), "{text}");
    // Production keeps a final snapshot of what it deletes.
    assert!(
        text.contains(&format!("final snapshot {db}-final-")),
        "{text}"
    );
    assert!(text.contains("removed xy-0146-prod"), "{text}");
    let world = World::load(&path).unwrap();
    assert!(!world.db_instances().iter().any(|(id, _)| *id == db));
    let gone = cli_in(dir.path(), &["tenant", "show", "xy-0146-prod"]);
    assert_eq!(gone.status.code(), Some(2));
    // Everything else still holds.
    let doctor = cli_in(dir.path(), &["doctor"]);
    assert!(doctor.status.success(), "{}", output_text(&doctor));
}
