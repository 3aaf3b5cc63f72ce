//! The state machine files against the code: every `${...}` placeholder names a function that
//! exists, every error a `Retry` or `Catch` matches is one our functions raise (or one Step
//! Functions or Lambda raise), and the files parse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use switchyard_asl::StateMachine;
use switchyard_core::Step;
use switchyard_core::error::names;

fn machine_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("statemachines");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".asl.json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

fn placeholders(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}').unwrap();
        found.insert(after[..end].to_owned());
        rest = &after[end..];
    }
    found
}

#[test]
fn every_placeholder_is_a_function_and_every_task_uses_one() {
    let known: BTreeSet<String> = Step::ALL
        .iter()
        .map(Step::arn_placeholder)
        .chain(
            switchyard::deploy::MACHINES
                .iter()
                .map(|(_, placeholder, _)| (*placeholder).to_owned()),
        )
        .collect();
    for file in machine_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for placeholder in placeholders(&text) {
            assert!(
                known.contains(&placeholder),
                "{}: unknown ${{{placeholder}}}",
                file.display()
            );
        }
        let machine = StateMachine::from_json(&text).unwrap();
        for resource in machine.task_resources() {
            // The one service integration the machines use, performed by the local runner too.
            if resource == switchyard::integrations::ECS_RUN_TASK_SYNC
                || resource == switchyard::backend::START_EXECUTION_SYNC2
            {
                continue;
            }
            let inner = resource
                .strip_prefix("${")
                .and_then(|r| r.strip_suffix('}'))
                .unwrap_or_else(|| {
                    panic!(
                        "{}: resource {resource} is not a ${{...FunctionArn}}",
                        file.display()
                    )
                });
            assert!(known.contains(inner), "{}: {resource}", file.display());
        }
    }
}

#[test]
fn every_step_serves_a_machine() {
    let mut used = BTreeSet::new();
    for file in machine_files() {
        used.extend(placeholders(&std::fs::read_to_string(&file).unwrap()));
    }
    for step in Step::ALL {
        assert!(used.contains(&step.arn_placeholder()), "{step} is not used");
    }
    // The sweep runs its own steps, and release-lock for a lock a sweep that died left.
    let sweep = placeholders(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("statemachines/sweep-orphans.asl.json"),
        )
        .unwrap(),
    );
    assert_eq!(
        sweep.into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            Step::FindOrphans.arn_placeholder(),
            Step::DeleteOrphans.arn_placeholder(),
            Step::ReleaseLock.arn_placeholder()
        ])
    );
}

#[test]
fn every_matched_error_is_one_that_is_raised() {
    let ours: BTreeSet<&str> = names::ALL.iter().copied().collect();
    let lambda = [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.Unknown",
    ];
    for file in machine_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let machine = StateMachine::from_json(&text).unwrap();
        let matched = machine.error_names();
        assert!(!matched.is_empty());
        for (state, error) in matched {
            let known = ours.contains(error.as_str())
                || lambda.contains(&error.as_str())
                || switchyard::integrations::raises(&error)
                || error.starts_with("States.");
            assert!(
                known,
                "{}: state {state} matches {error}, which nothing raises",
                file.display()
            );
        }
    }
}

/// A policy's answer is final: retrying a deny, or a plugin that could not decide, would only
/// ask again (and could wear a policy down). Both go to the Catch, which rolls back; no Retry
/// may match them, by name or by a catch-all.
#[test]
fn policy_errors_are_never_retried() {
    fn retried(state: &serde_json::Value, found: &mut Vec<String>) {
        for retrier in state["Retry"].as_array().into_iter().flatten() {
            for error in retrier["ErrorEquals"].as_array().into_iter().flatten() {
                found.push(error.as_str().unwrap().to_owned());
            }
        }
        // Parallel branches and Map iterators hold states of their own.
        let nested = state["Branches"]
            .as_array()
            .into_iter()
            .flatten()
            .chain([&state["Iterator"], &state["ItemProcessor"]]);
        for machine in nested {
            for inner in machine["States"].as_object().into_iter().flatten() {
                retried(inner.1, found);
            }
        }
    }
    for file in machine_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let machine: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut found = Vec::new();
        for (_, state) in machine["States"].as_object().unwrap() {
            retried(state, &mut found);
        }
        assert!(!found.is_empty(), "{}", file.display());
        for refused in [
            names::POLICY_DENIED,
            names::POLICY_FAILED,
            "States.ALL",
            "States.TaskFailed",
        ] {
            assert!(
                !found.iter().any(|e| e == refused),
                "{}: a Retry matches {refused}",
                file.display()
            );
        }
    }
}
