//! The orphan sweep against the simulated world: what counts as an orphan and what is kept (and
//! why), that finding changes nothing, that deleting needs `apply`, happens under each
//! namespace's lock, judges every resource again first, and asks the policies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use switchyard_core::policy::{
    Decision, Evaluation, PluginFailure, PolicyContext, PolicyEngine, PolicyStep, Verdict,
};
use switchyard_core::ports::{Databases, RestoreDbRequest, Snapshots, Tags, tag};
use switchyard_core::records::{
    LockRecord, ParameterLayout, PolicyBinding, PolicyCatalog, Records, TrackedDb, TrackedRole,
};
use switchyard_core::steps::orphans::{OrphanReport, OrphanSweep, ResourceType, SweepExecution};
use switchyard_core::steps::{Env, delete_orphans, find_orphans};
use switchyard_core::{Namespace, StepError};
use switchyard_sim::{SimAws, World};

const QA: &str = "xy-0146-qa";
const PROD: &str = "xy-0146-prod";
const SWEEP: &str = "arn:aws:states:eu-west-1:000000000000:execution:sweep:nightly";

/// Says no to deleting the ids in `deny`, cannot decide about those in `fail`.
#[derive(Default)]
struct Judge {
    deny: Vec<&'static str>,
    fail: Vec<&'static str>,
    seen: Mutex<Vec<PolicyContext>>,
}

#[async_trait::async_trait]
impl PolicyEngine for Judge {
    async fn evaluate(
        &self,
        plugin: &str,
        context: &PolicyContext,
    ) -> Result<Option<Evaluation>, PluginFailure> {
        self.seen.lock().unwrap().push(context.clone());
        let id = context
            .target_db
            .as_ref()
            .map(|db| db.id.clone())
            .or_else(|| context.snapshot.as_ref().map(|s| s.id.clone()))
            .unwrap_or_default();
        if self.fail.contains(&id.as_str()) {
            return Err(PluginFailure::Trapped {
                plugin: plugin.to_owned(),
                detail: "unreachable executed".into(),
            });
        }
        let verdict = if self.deny.contains(&id.as_str()) {
            Verdict::Deny(vec![format!("{id} is kept for the auditors")])
        } else {
            Verdict::Allow
        };
        Ok(Some(Evaluation {
            plugin: plugin.to_owned(),
            version: "0.1.0".into(),
            digest: String::new(),
            decision: Decision {
                verdict,
                warnings: vec![],
            },
            elapsed: Duration::from_micros(5),
        }))
    }
}

struct Fixture {
    world: World,
    aws: SimAws,
    layout: ParameterLayout,
    judge: Judge,
}

fn tags(ns: &str, execution: &str) -> Tags {
    Tags::from([
        (tag::MANAGED_BY.to_owned(), tag::MANAGED_BY_VALUE.to_owned()),
        (tag::NAMESPACE.to_owned(), ns.to_owned()),
        (tag::EXECUTION.to_owned(), execution.to_owned()),
    ])
}

impl Fixture {
    fn new(judge: Judge) -> Self {
        let world = World::demo(Utc::now());
        Fixture {
            aws: world.aws(),
            world,
            layout: ParameterLayout::default(),
            judge,
        }
    }

    fn env(&self) -> Env<'_> {
        Env::new(&self.aws, &self.layout).with_policies(&self.judge)
    }

    fn records(&self) -> Records<'_> {
        Records {
            params: &self.aws,
            layout: &self.layout,
        }
    }

    fn active(&self, ns: &str) -> String {
        self.world.active_db(&ns.parse().unwrap()).unwrap()
    }

    fn wait_hours(&self, hours: u64) {
        self.world.advance(Duration::from_secs(hours * 3600));
    }

    /// A snapshot of `ns`'s active database, tagged as taken by `execution`, made available.
    async fn snapshot(&self, ns: &str, id: &str, execution: &str) {
        self.aws
            .create_snapshot(&self.active(ns), id, &tags(ns, execution))
            .await
            .unwrap();
        self.wait_hours(1);
    }

    /// A database restored for `ns` by `execution` from the snapshot `from`.
    async fn restore(&self, ns: &str, id: &str, from: &str, execution: &str) {
        self.aws
            .restore_db_from_snapshot(&RestoreDbRequest {
                db_instance_id: id.into(),
                snapshot_id: from.into(),
                instance_class: "db.t4g.medium".into(),
                subnet_group: None,
                security_group_ids: vec![],
                // As create-db tags it: which snapshot it was restored from.
                tags: tags(ns, execution)
                    .into_iter()
                    .chain([(tag::SNAPSHOT.to_owned(), from.to_owned())])
                    .collect(),
                config: Default::default(),
            })
            .await
            .unwrap();
    }

    fn request(&self, apply: bool) -> OrphanSweep {
        OrphanSweep {
            execution: Some(SweepExecution {
                id: SWEEP.into(),
                started_at: None,
            }),
            apply,
            ..OrphanSweep::default()
        }
    }

    async fn find(&self) -> OrphanReport {
        find_orphans(self.env(), &self.request(false))
            .await
            .unwrap()
    }

    fn bind_a_policy(&self) {
        self.world
            .seed_policy_catalog(
                &self.layout,
                &PolicyCatalog {
                    bindings: vec![PolicyBinding::new("keeper")],
                },
            )
            .unwrap();
    }

    /// A QA world with one orphaned database (restored by a deploy that died and was unlocked
    /// by hand) and one old unreferenced snapshot, both well past the age limits.
    async fn with_leftovers() -> Fixture {
        let fx = Fixture::new(Judge::default());
        fx.snapshot(QA, "xy-0146-qa-20260101-000000", "arn:dead")
            .await;
        fx.restore(
            QA,
            "xy-0146-qa-20260101-000000",
            "xy-0146-qa-20260101-000000",
            "arn:dead",
        )
        .await;
        fx.wait_hours(24 * 20);
        fx
    }
}

fn ids(report: &OrphanReport) -> Vec<(ResourceType, String)> {
    report
        .orphans
        .iter()
        .map(|o| (o.resource, o.id.clone()))
        .collect()
}

fn kept_reason(report: &OrphanReport, id: &str) -> String {
    report
        .kept
        .iter()
        .find(|k| k.id == id)
        .map(|k| k.reason.clone())
        .unwrap_or_else(|| panic!("{id} not kept: {report:?}"))
}

#[tokio::test]
async fn finds_leftovers_and_changes_nothing() {
    let fx = Fixture::with_leftovers().await;
    let before = fx.world.snapshot_state();
    let report = fx.find().await;
    assert_eq!(
        ids(&report),
        vec![
            (ResourceType::Database, "xy-0146-qa-20260101-000000".into()),
            (ResourceType::Snapshot, "xy-0146-qa-20260101-000000".into()),
        ]
    );
    assert!(report.orphans.iter().all(|o| o.namespace == QA));
    assert_eq!(report.namespaces, vec![QA.to_owned()]);
    assert_eq!(report.databases_seen, 6);
    assert_eq!(report.snapshots_seen, 1);
    // The active databases are not orphans, and not worth a line either.
    assert!(report.kept.is_empty(), "{report:?}");
    assert_eq!(fx.world.snapshot_state(), before);
    // Report only: the delete step refuses to run without `apply`.
    let refused = delete_orphans(
        fx.env(),
        &OrphanSweep {
            found: Some(report),
            ..fx.request(false)
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, StepError::InvalidInput(_)), "{refused}");
    assert_eq!(fx.world.snapshot_state(), before);
}

#[tokio::test]
async fn keeps_what_something_accounts_for() {
    let fx = Fixture::new(Judge::default());
    let ns: Namespace = QA.parse().unwrap();
    // A snapshot a pointer names (the artifact promoted into prod).
    fx.snapshot(QA, "xy-0146-qa-20260102-000000", "arn:promote")
        .await;
    let records = fx.records();
    let (mut pointer, version) = records
        .pointer(&PROD.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    pointer.snapshot_id = Some("xy-0146-qa-20260102-000000".into());
    records
        .put_pointer(&PROD.parse().unwrap(), &pointer, Some(version))
        .await
        .unwrap();
    // A database a deploy tracks, one an execution holding the lock made, one a
    // production tier's clean-up kept a final snapshot of.
    fx.restore(
        QA,
        "xy-0146-qa-tracked",
        "xy-0146-qa-20260102-000000",
        "arn:old",
    )
    .await;
    records
        .track(
            &ns,
            &TrackedDb {
                db_instance_id: "xy-0146-qa-tracked".into(),
                role: TrackedRole::Retired,
                execution_id: "arn:old".into(),
                since: fx.world.now(),
            },
        )
        .await
        .unwrap();
    fx.restore(
        QA,
        "xy-0146-qa-inflight",
        "xy-0146-qa-20260102-000000",
        "arn:running",
    )
    .await;
    records
        .try_lock(
            &ns,
            &LockRecord {
                execution_id: "arn:running".into(),
                acquired_at: fx.world.now(),
                execution_started_at: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    // One of a namespace the catalog does not know, one nobody tagged.
    fx.restore(
        "zz-0999-qa",
        "zz-0999-qa-x",
        "xy-0146-qa-20260102-000000",
        "arn:old",
    )
    .await;
    fx.aws
        .restore_db_from_snapshot(&RestoreDbRequest {
            db_instance_id: "someone-elses".into(),
            snapshot_id: "xy-0146-qa-20260102-000000".into(),
            instance_class: "db.t4g.medium".into(),
            subnet_group: None,
            security_group_ids: vec![],
            tags: Tags::new(),
            config: Default::default(),
        })
        .await
        .unwrap();
    fx.wait_hours(24 * 30);
    // A young one: restored an hour ago.
    fx.restore(
        QA,
        "xy-0146-qa-young",
        "xy-0146-qa-20260102-000000",
        "arn:old",
    )
    .await;
    fx.wait_hours(1);

    let report = fx.find().await;
    assert!(report.orphans.is_empty(), "{report:?}");
    assert!(kept_reason(&report, "xy-0146-qa-tracked").contains("tracked"));
    assert!(kept_reason(&report, "xy-0146-qa-inflight").contains("arn:running"));
    assert!(kept_reason(&report, "zz-0999-qa-x").contains("not in the catalog"));
    assert!(kept_reason(&report, "xy-0146-qa-young").contains("younger than 6 h"));
    assert!(report.kept.iter().all(|k| k.id != "someone-elses"));
    assert!(
        report
            .kept
            .iter()
            .all(|k| k.id != "xy-0146-qa-20260102-000000")
    );

    // With a shorter age limit the young one is an orphan.
    let shorter = find_orphans(
        fx.env(),
        &OrphanSweep {
            min_age_hours: Some(0),
            ..fx.request(false)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&shorter),
        vec![(ResourceType::Database, "xy-0146-qa-young".into())]
    );
}

#[tokio::test]
async fn apply_deletes_under_the_lock_and_releases_it() {
    let fx = Fixture::with_leftovers().await;
    let found = fx.find().await;
    let active_before = fx.active(QA);
    let report = delete_orphans(
        fx.env(),
        &OrphanSweep {
            found: Some(found),
            ..fx.request(true)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        report.deleted,
        vec!["xy-0146-qa-20260101-000000", "xy-0146-qa-20260101-000000"]
    );
    assert!(report.kept.is_empty(), "{report:?}");
    // A QA database goes without a final snapshot (production keeps one).
    assert!(report.final_snapshots.is_empty());
    let db = fx
        .aws
        .describe_db("xy-0146-qa-20260101-000000")
        .await
        .unwrap();
    assert_eq!(db.status, "deleting");
    assert!(fx.aws.list_snapshots().await.unwrap().is_empty());
    assert_eq!(fx.active(QA), active_before);
    assert_eq!(fx.records().lock(&QA.parse().unwrap()).await.unwrap(), None);
    // The next sweep finds nothing new to delete.
    let again = fx.find().await;
    assert!(again.orphans.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_production_orphan_keeps_a_final_snapshot() {
    let fx = Fixture::new(Judge::default());
    fx.snapshot(PROD, "xy-0146-prod-20260101-000000", "arn:dead")
        .await;
    fx.restore(
        PROD,
        "xy-0146-prod-orphan",
        "xy-0146-prod-20260101-000000",
        "arn:dead",
    )
    .await;
    fx.wait_hours(12);
    let found = fx.find().await;
    assert_eq!(
        ids(&found),
        vec![(ResourceType::Database, "xy-0146-prod-orphan".into())]
    );
    let report = delete_orphans(
        fx.env(),
        &OrphanSweep {
            found: Some(found),
            ..fx.request(true)
        },
    )
    .await
    .unwrap();
    assert_eq!(report.final_snapshots.len(), 1);
    assert!(report.final_snapshots[0].starts_with("xy-0146-prod-orphan-final-"));
    // And the next sweep does not take the final snapshot for an orphan.
    fx.wait_hours(24 * 60);
    let later = fx.find().await;
    assert!(
        kept_reason(&later, &report.final_snapshots[0]).contains("final snapshot"),
        "{later:?}"
    );
}

#[tokio::test]
async fn a_locked_namespace_is_left_alone() {
    let fx = Fixture::with_leftovers().await;
    let found = fx.find().await;
    let ns: Namespace = QA.parse().unwrap();
    let deploy = LockRecord {
        execution_id: "arn:deploy-now".into(),
        acquired_at: fx.world.now(),
        execution_started_at: None,
    };
    fx.records().try_lock(&ns, &deploy).await.unwrap().unwrap();
    let before = fx.world.snapshot_state();
    let report = delete_orphans(
        fx.env(),
        &OrphanSweep {
            found: Some(found),
            ..fx.request(true)
        },
    )
    .await
    .unwrap();
    assert!(report.deleted.is_empty());
    assert_eq!(report.kept.len(), 2);
    assert!(
        report
            .kept
            .iter()
            .all(|k| k.reason.contains("arn:deploy-now"))
    );
    assert_eq!(fx.records().lock(&ns).await.unwrap(), Some(deploy));
    assert_eq!(fx.world.snapshot_state(), before);
}

#[tokio::test]
async fn what_became_accounted_for_since_the_report_is_kept() {
    let fx = Fixture::with_leftovers().await;
    let found = fx.find().await;
    // Between the report and the delete, a deploy tracked the database again.
    fx.records()
        .track(
            &QA.parse().unwrap(),
            &TrackedDb {
                db_instance_id: "xy-0146-qa-20260101-000000".into(),
                role: TrackedRole::Retired,
                execution_id: "arn:later".into(),
                since: fx.world.now(),
            },
        )
        .await
        .unwrap();
    let report = delete_orphans(
        fx.env(),
        &OrphanSweep {
            found: Some(found),
            ..fx.request(true)
        },
    )
    .await
    .unwrap();
    // The database, and with it the snapshot it was restored from, are accounted for again.
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(report.kept.len(), 2);
    assert!(
        report.kept[0]
            .reason
            .contains("no longer an orphan: tracked"),
        "{report:?}"
    );
    assert!(
        report.kept[1].reason.contains("no longer an orphan"),
        "{report:?}"
    );
    let db = fx
        .aws
        .describe_db("xy-0146-qa-20260101-000000")
        .await
        .unwrap();
    assert_eq!(db.status, "available");
}

#[tokio::test]
async fn policies_are_asked_and_a_no_keeps_it() {
    let mut fx = Fixture::with_leftovers().await;
    fx.judge = Judge {
        deny: vec!["xy-0146-qa-20260101-000000"],
        ..Judge::default()
    };
    fx.bind_a_policy();
    let found = fx.find().await;
    let report = delete_orphans(
        fx.env(),
        &OrphanSweep {
            found: Some(found),
            ..fx.request(true)
        },
    )
    .await
    .unwrap();
    // The same name for both: the judge says no to each.
    assert!(report.deleted.is_empty(), "{report:?}");
    assert!(report.kept.iter().all(|k| k.reason.contains("auditors")));
    let seen = fx.judge.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|c| c.step == PolicyStep::Cleanup));
    assert!(
        seen.iter()
            .all(|c| c.execution_id == SWEEP && c.namespace == QA)
    );
    let db = seen.iter().find_map(|c| c.target_db.clone()).unwrap();
    assert!(!db.active && !db.in_flight);
    assert!(seen.iter().any(|c| c.snapshot.is_some()));
    assert_eq!(fx.records().lock(&QA.parse().unwrap()).await.unwrap(), None);
}

#[tokio::test]
async fn a_plugin_that_cannot_decide_keeps_it_and_fails_the_sweep() {
    let mut fx = Fixture::with_leftovers().await;
    fx.judge = Judge {
        fail: vec!["xy-0146-qa-20260101-000000"],
        ..Judge::default()
    };
    fx.bind_a_policy();
    let found = fx.find().await;
    let before = fx.aws.list_dbs().await.unwrap();
    let err = delete_orphans(
        fx.env(),
        &OrphanSweep {
            found: Some(found),
            ..fx.request(true)
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "PolicyFailed");
    assert_eq!(fx.aws.list_dbs().await.unwrap(), before);
    assert_eq!(fx.aws.list_snapshots().await.unwrap().len(), 1);
    // The lock is released even so.
    assert_eq!(fx.records().lock(&QA.parse().unwrap()).await.unwrap(), None);
}

#[tokio::test]
async fn a_database_a_service_uses_is_no_orphan_whatever_its_tags_say() {
    use switchyard_core::ports::{RevisionChange, Services};
    let fx = Fixture::with_leftovers().await;
    // Prod's service is pointed at QA's leftover by hand: it is in use, so it stays.
    let settings = fx.records().settings(&PROD.parse().unwrap()).await.unwrap();
    let service = fx
        .aws
        .describe_service(&settings.cluster, &settings.service)
        .await
        .unwrap();
    let revision = fx
        .aws
        .register_revision(
            &service.task_definition_arn,
            &RevisionChange {
                container: settings.container.clone(),
                environment: [(
                    "DB_INSTANCE_ID".to_owned(),
                    "xy-0146-qa-20260101-000000".to_owned(),
                )]
                .into(),
                secrets: Default::default(),
                unset: Vec::new(),
                image: None,
                tags: Tags::new(),
                family: None,
                command: None,
                sole_container: false,
            },
        )
        .await
        .unwrap();
    fx.aws
        .update_service(
            &settings.cluster,
            &settings.service,
            revision.arn.as_deref().unwrap(),
        )
        .await
        .unwrap();
    let report = fx.find().await;
    // Neither the database nor the snapshot it was restored from is an orphan now.
    assert_eq!(ids(&report), vec![]);
    assert!(report.namespaces.is_empty());
    assert_eq!(report.kept.len(), 1, "{report:?}");
    assert_eq!(report.kept[0].resource, ResourceType::Database);
    assert!(report.kept[0].reason.contains("in use by a service"));
}

#[tokio::test]
async fn a_snapshot_waits_while_a_deploy_of_its_project_runs() {
    let fx = Fixture::with_leftovers().await;
    // Prod is being deployed, perhaps from QA's old snapshot: the snapshot waits.
    fx.records()
        .try_lock(
            &PROD.parse().unwrap(),
            &LockRecord {
                execution_id: "arn:promote-to-prod".into(),
                acquired_at: fx.world.now(),
                execution_started_at: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    let report = fx.find().await;
    assert_eq!(
        ids(&report),
        vec![(ResourceType::Database, "xy-0146-qa-20260101-000000".into())]
    );
    assert!(
        kept_reason(&report, "xy-0146-qa-20260101-000000").contains("a deploy of xy-0146-prod"),
        "{report:?}"
    );
    // Another customer's deploy does not hold it up.
    fx.records().unlock(&PROD.parse().unwrap()).await.unwrap();
    fx.records()
        .try_lock(
            &"ab-0201-prod".parse().unwrap(),
            &LockRecord {
                execution_id: "arn:other-customer".into(),
                acquired_at: fx.world.now(),
                execution_started_at: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fx.find().await.orphans.len(), 2);
}

#[tokio::test]
async fn an_input_may_not_bring_its_own_report() {
    let fx = Fixture::with_leftovers().await;
    let err = find_orphans(
        fx.env(),
        &OrphanSweep {
            found: Some(OrphanReport::default()),
            ..fx.request(true)
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StepError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("`found`"), "{err}");
}
