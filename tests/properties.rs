//! Whatever arrives, a named error, never a panic: property tests over every step's event
//! parsing (on the embedded world), the ASL parser, the namespace, snapshot, image and execution
//! name rules, and the policy catalog.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchyard::deploy::Source;
use switchyard_asl::StateMachine;
use switchyard_core::error::names;
use switchyard_core::policy::NoPlugins;
use switchyard_core::records::{ParameterLayout, PolicyCatalog, Records};
use switchyard_core::steps::gate::image_tag;
use switchyard_core::steps::service::{check_image, with_image};
use switchyard_core::{Namespace, Step, StepError, Timestamp, identity, names as naming, run_step};

/// Keys the documents the steps read are made of, and words their values use, so that random
/// documents reach past the first check.
const KEYS: &[&str] = &[
    "namespace",
    "source_namespace",
    "snapshot_id",
    "image",
    "execution",
    "id",
    "started_at",
    "lock",
    "snapshot",
    "previous",
    "db",
    "swap",
    "service",
    "cleanup",
    "error",
    "rollback",
    "apply",
    "found",
    "version",
    "settings",
    "active",
    "db_instance_id",
    "poll",
    "attempt",
];
const WORDS: &[&str] = &[
    "xy-0146-qa",
    "xy-0146-dev",
    "ab-0201-dev",
    "xy-0146-dev-20261120-000000",
    "2026-11-30T00:00:00Z",
    "",
    "Not A Namespace",
    "1.3.3",
    "\u{1b}[2J",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(WORDS).prop_map(|w| json!(w)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

/// A real deploy's document, as the last state saw it: every key a step reads, well formed.
fn deploy_document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let world = demo();
            let input = request("xy-0146-qa", Source::Namespace("xy-0146-dev".into())).input();
            let execution = run(&world, &deploy_machine(), "document", input, &[]).await;
            switchyard::deploy::deploy_document(&execution)
        })
    })
}

/// `base` with one key set to `value` (a path of up to two keys), or removed.
fn mutated(base: &Value, path: &[&str], value: Option<Value>) -> Value {
    let mut document = base.clone();
    let mut at = &mut document;
    for key in &path[..path.len() - 1] {
        if !at.get(*key).is_some_and(Value::is_object) {
            at[*key] = json!({});
        }
        at = &mut at[*key];
    }
    let last = path[path.len() - 1];
    match (value, at.as_object_mut()) {
        (Some(value), _) => at[last] = value,
        (None, Some(object)) => {
            object.remove(last);
        }
        (None, None) => {}
    }
    document
}

fn named(err: &StepError) -> bool {
    names::ALL.contains(&err.name())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Runtime::new().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_step_answers_any_event_with_a_value_or_a_named_error(
        event in json_value(),
        step in prop::sample::select(Step::ALL.to_vec()),
    ) {
        let world = demo();
        let aws = world.aws();
        let result = runtime().block_on(run_step(step, &aws, &ParameterLayout::default(), &NoPlugins, event));
        if let Err(err) = result {
            prop_assert!(named(&err), "{step}: {err:?}");
        }
    }

    #[test]
    fn every_step_answers_a_real_document_with_one_key_broken(
        outer in prop::sample::select(KEYS),
        inner in prop::option::of(prop::sample::select(KEYS)),
        value in prop::option::of(json_value()),
        step in prop::sample::select(Step::ALL.to_vec()),
    ) {
        let path: Vec<&str> = [Some(outer), inner].into_iter().flatten().collect();
        let event = mutated(deploy_document(), &path, value);
        let world = demo();
        let aws = world.aws();
        let result = runtime().block_on(run_step(step, &aws, &ParameterLayout::default(), &NoPlugins, event));
        if let Err(err) = result {
            prop_assert!(named(&err), "{step}: {err:?}");
        }
    }

    #[test]
    fn names_images_and_ids_are_parsed_or_refused_by_name(text in ".{0,90}", word in prop::sample::select(WORDS)) {
        for candidate in [text.as_str(), word] {
            let results: Vec<Result<(), StepError>> = vec![
                candidate.parse::<Namespace>().map(drop),
                candidate.parse::<Timestamp>().map(drop),
                naming::check_given_snapshot_id(candidate),
                check_image(candidate),
                identity::check_execution_name(candidate),
                with_image("registry:5000/team/app:1.0", candidate).map(drop),
            ];
            for result in results {
                if let Err(err) = result {
                    prop_assert_eq!(err.name(), names::INVALID_INPUT, "{:?}: {}", candidate, err);
                }
            }
            let _ = image_tag(candidate);
            let _ = Timestamp::from_name_suffix(candidate);
            let _ = identity::name_of(candidate);
        }
    }

    #[test]
    fn any_policy_catalog_is_read_or_refused_by_name(value in json_value(), text in ".{0,40}") {
        if let Ok(catalog) = serde_json::from_value::<PolicyCatalog>(value.clone()) {
            let _ = catalog.validate();
        }
        let world = demo();
        let aws = world.aws();
        let layout = ParameterLayout::default();
        for raw in [value.to_string(), text] {
            runtime().block_on(async {
                use switchyard_core::ports::Parameters;
                aws.put_parameter(&layout.policies(), &raw, true).await.unwrap();
                let records = Records { params: &aws, layout: &layout };
                if let Err(err) = records.policy_catalog().await {
                    assert!(named(&err), "{err:?}");
                }
            });
        }
    }

    #[test]
    fn the_asl_parser_refuses_a_broken_machine_without_panicking(
        outer in prop::sample::select(vec!["States", "StartAt", "Comment", "TimeoutSeconds"]),
        state in prop::sample::select(vec!["AcquireLock", "Snapshot", "Rollback", "CheckDb", "WaitDb", "Nope"]),
        field in prop::sample::select(vec!["Type", "Next", "Retry", "Catch", "Parameters", "ResultPath", "Choices", "Seconds", "End", "Default"]),
        value in prop::option::of(json_value()),
        junk in ".{0,64}",
    ) {
        let text = std::fs::read_to_string(deploy_machine()).unwrap();
        let machine: Value = serde_json::from_str(&text).unwrap();
        for path in [vec![outer], vec!["States", state, field]] {
            let broken = mutated(&machine, &path, value.clone());
            let _ = StateMachine::from_value(broken);
        }
        let _ = StateMachine::from_json(&junk);
        let cut = text.len() * junk.len() / 64;
        let _ = StateMachine::from_json(text.get(..cut).unwrap_or(&text));
    }
}
