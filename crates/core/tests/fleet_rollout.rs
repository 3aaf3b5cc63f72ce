//! A rollout's record in Parameter Store, on the simulated world: the machine's state stays
//! small whatever the fleet's size, big waves go Distributed in chunks that each fit a
//! parameter, failures are judged from what the tenants recorded, and the report names
//! everyone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use switchyard_core::ParameterLayout;
use switchyard_core::fleet::{
    ChunkRef, FleetPlan, FleetRequest, FleetState, FleetTenant, PlanRolloutEvent, RecordFailure,
    Skipped, Wave, WaveMode, advance, forget_rollout, load_chunk, plan_rollout, record_failure,
    rollout_report, store_plan,
};
use switchyard_core::policy::NoPlugins;
use switchyard_core::ports::Parameters;
use switchyard_sim::World;

fn tenant(i: usize) -> FleetTenant {
    FleetTenant {
        namespace: format!("tenant{i:05}-0001-prod"),
        from: "1.3.2".into(),
        path: "1.3.2 → 1.3.3 → 1.4.0 → 2.0.0 → 2.0.1".into(),
        migrations: 4,
        expected_downtime_minutes: 70,
    }
}

fn wave(name: &str, range: std::ops::Range<usize>, concurrency: u32, tolerated: u32) -> Wave {
    Wave {
        name: name.into(),
        max_concurrency: concurrency,
        tolerated_failure_percentage: tolerated,
        tenants: range.map(tenant).collect(),
    }
}

/// 10,000 tenants: a canary of 20, then 9,980 fifty at a time; 3,000 more skipped.
fn big_plan() -> FleetPlan {
    FleetPlan {
        to: "2.0.1".into(),
        waves: vec![
            wave("canary", 0..20, 5, 0),
            wave("rest", 20..10_000, 50, 1),
        ],
        skipped: (10_000..13_000)
            .map(|i| Skipped {
                namespace: tenant(i).namespace,
                reason: "outside-window".into(),
                detail: "change-window at snapshot: now is outside every change window of this tenant: sat,sun 02:00-06:00 UTC+00:00 (and 4 more steps)".into(),
            })
            .collect(),
    }
}

/// The state as the machine hands it back once the current wave ran.
fn ran(state: FleetState, summary: serde_json::Value) -> FleetState {
    FleetState {
        ran: Some(summary),
        ..state
    }
}

#[tokio::test]
async fn a_ten_thousand_tenant_rollout_keeps_its_state_small_and_its_record_whole() {
    let world = World::new(chrono::Utc::now());
    let aws = world.aws();
    let layout = ParameterLayout::default();
    let state = store_plan(&aws, &layout, "rollout-big", &big_plan(), None)
        .await
        .unwrap();
    // The machine's document: far from Step Functions' 256 KB, whatever the fleet's size.
    let size = serde_json::to_string(&state).unwrap().len();
    assert!(size < 4_000, "{size} bytes");
    assert_eq!(state.skipped, 3_000);
    let (canary, rest) = (state.waves[0].clone(), state.waves[1].clone());
    assert_eq!((canary.mode, canary.tenants), (WaveMode::Inline, 20));
    assert_eq!((rest.mode, rest.tenants), (WaveMode::Distributed, 9_980));
    // At least as many chunks as tenants run at once; each a standard parameter.
    assert!(rest.chunks >= 50 && rest.chunks <= 120, "{}", rest.chunks);
    for p in aws
        .parameters_by_path("/switchyard/rollouts/rollout-big")
        .await
        .unwrap()
    {
        assert!(
            p.value.len() <= 4096,
            "{} is {} bytes",
            p.name,
            p.value.len()
        );
    }

    // The canary, inline: its tenants are in the state; all move.
    let state = advance(&aws, &layout, state).await.unwrap();
    let current = state.current.clone().unwrap();
    assert_eq!(
        (current.name.as_str(), current.tenants.len()),
        ("canary", 20)
    );
    assert!(serde_json::to_string(&state).unwrap().len() < 8_000);
    let state = advance(&aws, &layout, ran(state, json!({"tenants": 20})))
        .await
        .unwrap();
    assert_eq!(state.reports[0].moved, 20);

    // The rest, Distributed: the state names chunks, each child reads its own.
    let current = state.current.clone().unwrap();
    assert_eq!(current.mode, WaveMode::Distributed);
    assert!(current.tenants.is_empty());
    assert_eq!(current.chunks.len(), rest.chunks);
    let mut everyone = Vec::new();
    for chunk in &current.chunks {
        let loaded = load_chunk(
            &aws,
            &layout,
            &ChunkRef {
                rollout: "rollout-big".into(),
                wave: 1,
                chunk: *chunk,
            },
        )
        .await
        .unwrap();
        for item in loaded["tenants"].as_array().unwrap() {
            everyone.push(item["namespace"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(everyone.len(), 9_980);
    assert_eq!(everyone[0], "tenant00020-0001-prod");
    // 99 tenants fail (1% of 9,980 is 99): within the tolerance; the 100th is one too many.
    for i in 0..100 {
        let ns = tenant(20 + i * 97).namespace;
        let failure = json!({
            "Error": "States.TaskFailed",
            "Cause": json!({"Error": "RolloutFailed", "Cause": "x".repeat(5_000)}).to_string()
        });
        record_failure(
            &aws,
            &layout,
            &RecordFailure {
                rollout: "rollout-big".into(),
                wave: 1,
                namespace: ns,
                failure,
            },
        )
        .await
        .unwrap();
        if i == 98 {
            let judged = advance(&aws, &layout, ran(state.clone(), json!({"chunks": 100})))
                .await
                .unwrap();
            assert!(!judged.reports[1].over_tolerance, "{:?}", judged.reports[1]);
            assert_eq!(judged.reports[1].failed_count, 99);
        }
    }
    let state = advance(&aws, &layout, ran(state, json!({"chunks": 100})))
        .await
        .unwrap();
    let report = &state.reports[1];
    assert!(report.over_tolerance);
    assert_eq!((report.moved, report.failed_count), (9_880, 100));
    // The state names the first failures; the record keeps every one.
    assert_eq!(report.failed.len(), 20);
    assert_eq!(report.failed[0].error.as_deref(), Some("RolloutFailed"));
    assert!(
        state
            .stopped
            .as_deref()
            .unwrap()
            .contains("wave rest failed for 100 of 9980")
    );
    assert!(serde_json::to_string(&state).unwrap().len() < 40_000);

    let record = rollout_report(&aws, &layout, "rollout-big").await.unwrap();
    assert_eq!(record.waves[1].status, "over-tolerance");
    assert_eq!(record.waves[1].moved.len(), 9_880);
    assert_eq!(record.waves[1].failed.len(), 100);
    assert!(record.waves[1].failed[0].cause.as_deref().unwrap().len() < 1_100);
    assert_eq!(record.skipped.len(), 3_000);
    assert_eq!(
        record.stopped.as_deref(),
        state.stopped.as_deref(),
        "the record says why it stopped"
    );

    assert!(forget_rollout(&aws, &layout, "rollout-big").await.unwrap() > 100);
    let err = rollout_report(&aws, &layout, "rollout-big")
        .await
        .unwrap_err();
    assert_eq!(err.name(), "InvalidInput");
    assert!(
        aws.parameters_by_path("/switchyard/rollouts")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn planning_again_after_a_lost_reply_finds_the_first_record() {
    let world = World::demo(chrono::Utc::now());
    let aws = world.aws();
    let layout = ParameterLayout::default();
    let event = PlanRolloutEvent {
        request: FleetRequest {
            to: "2.0.1".into(),
            wave_specs: vec!["all:*:3:0".into()],
            distributed_above: None,
        },
        rollout: "scheduled-1".into(),
    };
    let first = plan_rollout(&aws, &layout, &NoPlugins, &event)
        .await
        .unwrap();
    assert_eq!(first.waves.len(), 1);
    // The world moves on (a tenant pinned meanwhile): the retry keeps what the first planned.
    let mut retried = event.clone();
    retried.request.wave_specs = vec!["other:*:1:0".into()];
    let again = plan_rollout(&aws, &layout, &NoPlugins, &retried)
        .await
        .unwrap();
    assert_eq!(again, first);
    // Names Step Functions would refuse are refused before anything is written.
    let mut bad = event;
    bad.rollout = "has space".into();
    let err = plan_rollout(&aws, &layout, &NoPlugins, &bad)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "InvalidInput");
    // And a wave count past what the rollout's history holds.
    let err = store_plan(&aws, &layout, "too-inline", &big_plan(), Some(500))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("distributed_above is 1 to 200"),
        "{err}"
    );
}
