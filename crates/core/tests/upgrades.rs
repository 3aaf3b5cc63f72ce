//! The release catalog in Parameter Store and a tenant's planned upgrade, on the simulated world.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use switchyard_core::upgrades::{Release, add_release, catalog, plan_upgrade};
use switchyard_core::{Namespace, ParameterLayout};
use switchyard_sim::World;

fn release(version: &str) -> Release {
    Release {
        version: version.parse().unwrap(),
        image: version.into(),
        migration: vec!["/app/migrate".into(), version.into()],
        backport_of: None,
        migration_minutes: None,
    }
}

#[tokio::test]
async fn a_release_that_would_break_the_catalog_is_refused_and_nothing_is_written() {
    let world = World::new(chrono::Utc::now());
    let aws = world.aws();
    let layout = ParameterLayout::default();
    add_release(&aws, &layout, release("1.0.0")).await.unwrap();
    let err = add_release(&aws, &layout, release("1.1.1"))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "InvalidReleaseCatalog");
    assert!(
        err.to_string().contains("line 1.1 starts at 1.1.1"),
        "{err}"
    );
    let mut backport = release("1.0.1");
    backport.backport_of = Some("1.0.0".parse().unwrap());
    let err = add_release(&aws, &layout, backport).await.unwrap_err();
    assert!(err.to_string().contains("BackportPointsForward"), "{err}");
    assert_eq!(catalog(&aws, &layout).await.unwrap().releases().len(), 1);
}

#[tokio::test]
async fn the_demo_prod_tenant_plans_the_articles_way_to_2_0_1() {
    let world = World::demo(chrono::Utc::now());
    let aws = world.aws();
    let layout = ParameterLayout::default();
    let ns: Namespace = "xy-0146-prod".parse().unwrap();
    let upgrade = plan_upgrade(&aws, &layout, &ns, "2.0.1").await.unwrap();
    assert_eq!(upgrade.from, "1.3.2");
    assert_eq!(
        upgrade.plan.describe(),
        "1.3.2 → 1.3.3 → 1.4.0 → 2.0.0 → 2.0.1"
    );
    // 2.0.1's change came with 1.3.3, its backport.
    let last = upgrade.plan.hops.last().unwrap();
    assert_eq!(
        last.already_applied_by.as_ref().unwrap().to_string(),
        "1.3.3"
    );
    assert_eq!(upgrade.expected_downtime_minutes, 45 + 5 + 5 + 10 + 5);
    let err = plan_upgrade(&aws, &layout, &ns, "1.3.1").await.unwrap_err();
    assert_eq!(err.name(), "NoUpgradePath");
    assert!(err.to_string().contains("older than 1.3.2"), "{err}");
}
