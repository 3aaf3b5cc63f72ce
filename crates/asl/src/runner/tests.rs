//! Whole-machine tests: small definitions run with a scripted invoker on a virtual clock.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::clock::ManualClock;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn secs(n: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((n * 1000.0) as i64)
}

type Handler = Box<dyn Fn(&str, &Value, &TaskContext) -> Result<Value, TaskFailure> + Send + Sync>;

#[derive(Debug, Clone)]
struct Call {
    resource: String,
    input: Value,
    ctx: TaskContext,
    at: DateTime<Utc>,
}

/// Answers from a per-resource script first, then from the handler; records every call.
struct Fake {
    clock: ManualClock,
    handler: Handler,
    scripts: Mutex<HashMap<String, VecDeque<Result<Value, TaskFailure>>>>,
    calls: Mutex<Vec<Call>>,
    task_seconds: u64,
}

impl Fake {
    fn new(handler: Handler) -> Arc<Fake> {
        Arc::new(Fake {
            clock: ManualClock::new(t0()),
            handler,
            scripts: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            task_seconds: 0,
        })
    }

    fn echo() -> Arc<Fake> {
        Fake::new(Box::new(|_, input, _| Ok(input.clone())))
    }

    fn script(
        self: &Arc<Self>,
        resource: &str,
        answers: Vec<Result<Value, TaskFailure>>,
    ) -> Arc<Self> {
        self.scripts
            .lock()
            .unwrap()
            .insert(resource.to_owned(), answers.into());
        self.clone()
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl TaskInvoker for Fake {
    async fn invoke(
        &self,
        resource: &str,
        input: Value,
        ctx: &TaskContext,
    ) -> Result<Value, TaskFailure> {
        self.calls.lock().unwrap().push(Call {
            resource: resource.to_owned(),
            input: input.clone(),
            ctx: ctx.clone(),
            at: self.clock.now(),
        });
        self.clock.advance(Duration::from_secs(self.task_seconds));
        let scripted = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(resource)
            .and_then(VecDeque::pop_front);
        match scripted {
            Some(answer) => answer,
            None => (self.handler)(resource, &input, ctx),
        }
    }
}

fn fail(error: &str, cause: &str) -> Result<Value, TaskFailure> {
    Err(TaskFailure::new(error, cause))
}

fn runner(definition: Value, fake: &Arc<Fake>) -> Runner {
    let machine = StateMachine::from_value(definition).unwrap();
    Runner::new(machine, fake.clone(), Arc::new(fake.clock.clone()))
}

async fn run(definition: Value, input: Value, fake: &Arc<Fake>) -> Execution {
    runner(definition, fake).run("exec-1", input).await
}

fn assert_succeeded(e: &Execution) -> &Value {
    assert_eq!(
        e.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        e.error,
        e.cause
    );
    e.output.as_ref().unwrap()
}

fn assert_failed(e: &Execution, error: &str) -> String {
    assert_eq!(e.status, ExecutionStatus::Failed, "output {:?}", e.output);
    assert_eq!(e.error.as_deref(), Some(error), "cause {:?}", e.cause);
    e.cause.clone().unwrap_or_default()
}

fn events<'e>(
    e: &'e Execution,
    pred: impl Fn(&HistoryEventKind) -> bool + 'e,
) -> Vec<&'e HistoryEventKind> {
    e.history
        .iter()
        .map(|h| &h.kind)
        .filter(|k| pred(k))
        .collect()
}

fn task(resource: &str, extra: Value) -> Value {
    let mut state = json!({"Type": "Task", "Resource": resource});
    for (k, v) in extra.as_object().unwrap() {
        state[k] = v.clone();
    }
    if state.get("Next").is_none() {
        state["End"] = json!(true);
    }
    state
}

fn single(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

// ---------------------------------------------------------------- data flow

#[tokio::test]
async fn pass_applies_paths_in_order() {
    let fake = Fake::echo();
    let e = run(
        single(json!({
            "Type": "Pass",
            "InputPath": "$.in",
            "Parameters": {"doubled.$": "$.v", "const": 1},
            "ResultPath": "$.deep.er.result",
            "OutputPath": "$.deep",
            "End": true
        })),
        json!({"in": {"v": 7}, "other": true}),
        &fake,
    )
    .await;
    // ResultPath writes into the raw input (not the InputPath view), creating objects.
    assert_eq!(
        assert_succeeded(&e),
        &json!({"er": {"result": {"doubled": 7, "const": 1}}})
    );
}

#[tokio::test]
async fn null_paths_and_pass_result() {
    let fake = Fake::echo();
    let input = json!({"keep": 1});
    let cases = [
        (
            json!({"Type": "Pass", "InputPath": null, "End": true}),
            json!({}),
        ),
        (
            json!({"Type": "Pass", "OutputPath": null, "End": true}),
            json!({}),
        ),
        (
            json!({"Type": "Pass", "Result": {"r": 2}, "ResultPath": null, "End": true}),
            json!({"keep": 1}),
        ),
        (
            json!({"Type": "Pass", "Result": {"r": 2}, "End": true}),
            json!({"r": 2}),
        ),
        (
            json!({"Type": "Pass", "Result": "x", "ResultPath": "$.r", "End": true}),
            json!({"keep": 1, "r": "x"}),
        ),
        (
            json!({"Type": "Pass", "Result": [1], "ResultPath": "$", "End": true}),
            json!([1]),
        ),
    ];
    for (state, expected) in cases {
        let e = run(single(state.clone()), input.clone(), &fake).await;
        assert_eq!(assert_succeeded(&e), &expected, "{state}");
    }
}

#[tokio::test]
async fn task_data_flow_with_context_and_result_selector() {
    let fake = Fake::new(Box::new(|_, input, _| {
        Ok(json!({"Payload": {"echo": input.clone(), "extra": "dropped"}, "StatusCode": 200}))
    }));
    let e = runner(
        single(task(
            "arn:fn",
            json!({
                "InputPath": "$.req",
                "Parameters": {
                    "id.$": "$.id",
                    "exec.$": "$$.Execution.Id",
                    "name.$": "$$.Execution.Name",
                    "started.$": "$$.Execution.StartTime",
                    "whole_input.$": "$$.Execution.Input",
                    "role.$": "$$.Execution.RoleArn",
                    "machine.$": "$$.StateMachine.Id",
                    "machine_name.$": "$$.StateMachine.Name",
                    "state.$": "$$.State.Name",
                    "entered.$": "$$.State.EnteredTime",
                    "retries.$": "$$.State.RetryCount",
                },
                "ResultSelector": {"echo.$": "$.Payload.echo", "code.$": "$.StatusCode"},
                "ResultPath": "$.res",
                "OutputPath": "$.res"
            }),
        )),
        &fake,
    )
    .with_state_machine_arn("arn:aws:states:eu-west-1:123:stateMachine:deploy")
    .run("run-7", json!({"req": {"id": 42}}))
    .await;
    let expected_params = json!({
        "id": 42,
        "exec": "arn:aws:states:eu-west-1:123:execution:deploy:run-7",
        "name": "run-7",
        "started": "2024-01-01T00:00:00.000Z",
        "whole_input": {"req": {"id": 42}},
        "role": LOCAL_ROLE_ARN,
        "machine": "arn:aws:states:eu-west-1:123:stateMachine:deploy",
        "machine_name": "deploy",
        "state": "S",
        "entered": "2024-01-01T00:00:00.000Z",
        "retries": 0,
    });
    assert_eq!(
        assert_succeeded(&e),
        &json!({"echo": expected_params, "code": 200})
    );
    assert_eq!(
        e.execution_arn,
        "arn:aws:states:eu-west-1:123:execution:deploy:run-7"
    );
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].resource, "arn:fn");
    assert_eq!(calls[0].input, expected_params);
    assert_eq!(
        calls[0].ctx,
        TaskContext {
            state_name: "S".into(),
            execution_id: e.execution_arn.clone(),
            retry_count: 0,
            timeout_seconds: None
        }
    );
    let scheduled = events(&e, |k| matches!(k, HistoryEventKind::TaskScheduled { .. }));
    assert_eq!(
        scheduled,
        [&HistoryEventKind::TaskScheduled {
            resource: "arn:fn".into(),
            parameters: expected_params.clone()
        }]
    );
}

#[tokio::test]
async fn a_missing_path_fails_the_execution_with_states_runtime() {
    let fake = Fake::echo();
    let cases = [
        (
            json!({"Type": "Pass", "InputPath": "$.nope", "End": true}),
            "'$.nope'",
        ),
        (
            json!({"Type": "Pass", "OutputPath": "$.nope", "End": true}),
            "'$.nope'",
        ),
        (
            json!({"Type": "Pass", "Parameters": {"a.$": "$.nope"}, "End": true}),
            "'$.nope'",
        ),
        (
            json!({"Type": "Pass", "Result": 1, "ResultPath": "$.s.x", "End": true}),
            "'$.s'",
        ),
    ];
    for (state, message) in cases {
        let e = run(single(state.clone()), json!({"s": "text"}), &fake).await;
        let cause = assert_failed(&e, "States.Runtime");
        assert!(cause.contains(message), "{state}: {cause}");
    }
}

// ---------------------------------------------------------------- choice

fn choice_machine(choices: Value, default: Option<&str>) -> Value {
    let mut choice = json!({"Type": "Choice", "Choices": choices});
    if let Some(d) = default {
        choice["Default"] = json!(d);
    }
    json!({
        "StartAt": "C",
        "States": {
            "C": choice,
            "Yes": {"Type": "Pass", "Result": "yes", "End": true},
            "No": {"Type": "Pass", "Result": "no", "End": true}
        }
    })
}

#[tokio::test]
async fn choice_routes_by_first_matching_rule_then_default() {
    let fake = Fake::echo();
    let def = choice_machine(
        json!([
            {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Yes"},
            {"And": [{"Variable": "$.s", "IsPresent": true}, {"Variable": "$.s", "StringMatches": "go*"}], "Next": "Yes"}
        ]),
        Some("No"),
    );
    for (input, expected) in [
        (json!({"n": 11}), "yes"),
        (json!({"n": 1, "s": "gopher"}), "yes"),
        (json!({"n": 1}), "no"),
        (json!({"n": 1, "s": "stop"}), "no"),
    ] {
        let e = run(def.clone(), input.clone(), &fake).await;
        assert_eq!(assert_succeeded(&e), &json!(expected), "{input}");
    }
    let e = run(def, json!({"n": 1}), &fake).await;
    assert_eq!(e.states_entered(), ["C", "No"]);
}

#[tokio::test]
async fn choice_without_match_or_default_fails() {
    let fake = Fake::echo();
    let def = choice_machine(
        json!([
            {"Variable": "$.n", "NumericEquals": 1, "Next": "Yes"},
            {"Variable": "$.n", "NumericEquals": 0, "Next": "No"}
        ]),
        None,
    );
    let e = run(def.clone(), json!({"n": 2}), &fake).await;
    let cause = assert_failed(&e, "States.NoChoiceMatched");
    assert!(cause.contains("'C'"), "{cause}");
    let e = run(def, json!({}), &fake).await;
    let cause = assert_failed(&e, "States.Runtime");
    assert!(cause.contains("'$.n'"), "{cause}");
}

#[tokio::test]
async fn choice_applies_input_and_output_paths() {
    let fake = Fake::echo();
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "InputPath": "$.inner", "OutputPath": "$.n",
              "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "Out"}]},
        "Out": {"Type": "Succeed"}
    }});
    let e = run(def, json!({"inner": {"n": 1}}), &fake).await;
    assert_eq!(assert_succeeded(&e), &json!(1));
}

// ---------------------------------------------------------------- wait

#[tokio::test]
async fn wait_variants_advance_the_clock_exactly() {
    let cases = [
        (json!({"Seconds": 30}), json!({}), 30.0),
        (json!({"SecondsPath": "$.w"}), json!({"w": 45}), 45.0),
        (
            json!({"Timestamp": "2024-01-01T00:01:40Z"}),
            json!({}),
            100.0,
        ),
        (json!({"Timestamp": "2023-12-31T00:00:00Z"}), json!({}), 0.0),
        (
            json!({"TimestampPath": "$.at"}),
            json!({"at": "2024-01-01T00:00:02.500Z"}),
            2.5,
        ),
        (
            json!({"TimestampPath": "$.at"}),
            json!({"at": "2020-01-01T00:00:00Z"}),
            0.0,
        ),
    ];
    for (how, input, seconds) in cases {
        let fake = Fake::echo();
        let mut state = json!({"Type": "Wait", "End": true});
        for (k, v) in how.as_object().unwrap() {
            state[k] = v.clone();
        }
        let e = run(single(state), input.clone(), &fake).await;
        assert_eq!(assert_succeeded(&e), &input);
        assert_eq!(fake.clock.now() - t0(), secs(seconds), "{how}");
        assert_eq!(e.stop_date - e.start_date, secs(seconds));
        let started = events(&e, |k| matches!(k, HistoryEventKind::WaitStarted { .. }));
        assert_eq!(
            started,
            [&HistoryEventKind::WaitStarted {
                name: "S".into(),
                seconds
            }],
            "{how}"
        );
    }
}

#[tokio::test]
async fn wait_paths_must_select_the_right_type() {
    let fake = Fake::echo();
    for (how, input) in [
        (json!({"SecondsPath": "$.w"}), json!({"w": "10"})),
        (json!({"SecondsPath": "$.w"}), json!({"w": -1})),
        (json!({"SecondsPath": "$.w"}), json!({})),
        (json!({"TimestampPath": "$.at"}), json!({"at": "soon"})),
    ] {
        let mut state = json!({"Type": "Wait", "End": true});
        for (k, v) in how.as_object().unwrap() {
            state[k] = v.clone();
        }
        let e = run(single(state), input.clone(), &fake).await;
        assert_failed(&e, "States.Runtime");
    }
}

// ---------------------------------------------------------------- retry and catch

#[tokio::test]
async fn retry_backs_off_exactly_then_succeeds() {
    let fake = Fake::new(Box::new(|_, _, ctx| {
        Ok(json!({"retries": ctx.retry_count}))
    }))
    .script(
        "arn:flaky",
        vec![fail("Transient", "one"), fail("Transient", "two")],
    );
    let e = run(
        single(task(
            "arn:flaky",
            json!({
                "Parameters": {"count.$": "$$.State.RetryCount"},
                "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 2, "BackoffRate": 2, "MaxAttempts": 3}]
            }),
        )),
        json!({}),
        &fake,
    )
    .await;
    assert_eq!(assert_succeeded(&e), &json!({"retries": 2}));
    let calls = fake.calls();
    let offsets: Vec<_> = calls.iter().map(|c| c.at - t0()).collect();
    assert_eq!(offsets, [secs(0.0), secs(2.0), secs(6.0)]);
    let counts: Vec<_> = calls.iter().map(|c| c.input["count"].clone()).collect();
    assert_eq!(counts, [json!(0), json!(1), json!(2)]);
    let retries = events(&e, |k| matches!(k, HistoryEventKind::RetryScheduled { .. }));
    assert_eq!(
        retries,
        [
            &HistoryEventKind::RetryScheduled {
                state: "S".into(),
                error: "Transient".into(),
                attempt: 1,
                delay_seconds: 2.0
            },
            &HistoryEventKind::RetryScheduled {
                state: "S".into(),
                error: "Transient".into(),
                attempt: 2,
                delay_seconds: 4.0
            },
        ]
    );
    // One transition for the state plus one per retry, as AWS bills.
    assert_eq!(e.state_transitions, 3);
    assert_eq!(e.states_entered(), ["S"]);
}

#[tokio::test]
async fn defaults_and_max_delay_cap() {
    let fake = Fake::new(Box::new(|_, _, _| fail("Boom", "always")));
    let e = run(
        json!({"StartAt": "A", "States": {
            "A": task("arn:a", json!({"Retry": [{"ErrorEquals": ["Boom"]}], "Next": "B"})),
            "B": task("arn:b", json!({"Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 10, "BackoffRate": 3.0, "MaxDelaySeconds": 15, "MaxAttempts": 3}]}))
        }}),
        json!({}),
        &fake,
    )
    .await;
    // A fails for good after 3 retries (1 + 2 + 4 s by default); B never runs.
    assert_failed(&e, "Boom");
    let offsets: Vec<_> = fake.calls().iter().map(|c| c.at - t0()).collect();
    assert_eq!(offsets, [secs(0.0), secs(1.0), secs(3.0), secs(7.0)]);

    let fake = Fake::new(Box::new(|_, _, _| fail("Boom", "always")));
    let e = run(
        single(task("arn:b", json!({"Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 10, "BackoffRate": 3.0, "MaxDelaySeconds": 15, "MaxAttempts": 3}]}))),
        json!({}),
        &fake,
    )
    .await;
    assert_failed(&e, "Boom");
    let offsets: Vec<_> = fake.calls().iter().map(|c| c.at - t0()).collect();
    assert_eq!(offsets, [secs(0.0), secs(10.0), secs(25.0), secs(40.0)]);
}

#[tokio::test]
async fn retries_exhausted_then_catch_places_the_error() {
    let fake = Fake::new(Box::new(|resource, input, _| match resource {
        "arn:cleanup" => Ok(json!({"cleaned": input.clone()})),
        _ => fail("Lambda.Unknown", "function crashed"),
    }));
    let e = run(
        json!({"StartAt": "Work", "States": {
            "Work": task("arn:work", json!({
                "Retry": [{"ErrorEquals": ["Lambda.Unknown"], "MaxAttempts": 2, "IntervalSeconds": 5}],
                "Catch": [{"ErrorEquals": ["Other"], "Next": "Cleanup"},
                          {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Cleanup"}],
                "Next": "Cleanup"
            })),
            "Cleanup": task("arn:cleanup", json!({"ResultPath": "$.cleanup"}))
        }}),
        json!({"job": 9}),
        &fake,
    )
    .await;
    let caught =
        json!({"job": 9, "error": {"Error": "Lambda.Unknown", "Cause": "function crashed"}});
    let mut expected = caught.clone();
    expected["cleanup"] = json!({"cleaned": caught});
    assert_eq!(assert_succeeded(&e), &expected);
    assert_eq!(
        fake.calls()
            .iter()
            .filter(|c| c.resource == "arn:work")
            .count(),
        3
    );
    assert_eq!(fake.clock.now() - t0(), secs(15.0));
    assert_eq!(
        events(&e, |k| matches!(k, HistoryEventKind::CatchMatched { .. })),
        [&HistoryEventKind::CatchMatched {
            state: "Work".into(),
            error: "Lambda.Unknown".into(),
            next: "Cleanup".into()
        }]
    );
    assert_eq!(e.states_entered(), ["Work", "Cleanup"]);
    // The caught state still exits, with the catcher's output.
    let exits = events(
        &e,
        |k| matches!(k, HistoryEventKind::StateExited { name, .. } if name == "Work"),
    );
    assert_eq!(
        exits,
        [&HistoryEventKind::StateExited {
            name: "Work".into(),
            output: caught
        }]
    );
}

#[tokio::test]
async fn catch_without_result_path_replaces_the_input() {
    let fake = Fake::new(Box::new(|_, _, _| fail("E", "c")));
    let e = run(
        json!({"StartAt": "T", "States": {
            "T": task("arn:t", json!({"Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Done"}], "Next": "Done"})),
            "Done": {"Type": "Succeed"}
        }}),
        json!({"lost": true}),
        &fake,
    )
    .await;
    assert_eq!(assert_succeeded(&e), &json!({"Error": "E", "Cause": "c"}));
}

#[tokio::test]
async fn max_attempts_zero_never_retries_and_the_first_matching_retrier_decides() {
    let fake = Fake::new(Box::new(|_, _, _| fail("A", "a")));
    let e = run(
        single(task(
            "arn:t",
            json!({"Retry": [
                {"ErrorEquals": ["A"], "MaxAttempts": 0},
                {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}
            ]}),
        )),
        json!({}),
        &fake,
    )
    .await;
    assert_failed(&e, "A");
    assert_eq!(fake.calls().len(), 1);

    // Each retrier keeps its own count: B's retries do not use up A's.
    let fake = Fake::echo().script(
        "arn:t",
        vec![
            fail("A", ""),
            fail("B", ""),
            fail("B", ""),
            fail("A", ""),
            fail("A", ""),
        ],
    );
    let e = run(
        single(task(
            "arn:t",
            json!({"Retry": [
                {"ErrorEquals": ["A"], "MaxAttempts": 2, "BackoffRate": 1},
                {"ErrorEquals": ["B"], "MaxAttempts": 2, "IntervalSeconds": 3, "BackoffRate": 1}
            ]}),
        )),
        json!({}),
        &fake,
    )
    .await;
    // A, retry (1 s); B, retry (3 s); B, retry (3 s); A, A's second retry (1 s); A: exhausted.
    assert_failed(&e, "A");
    let offsets: Vec<_> = fake.calls().iter().map(|c| c.at - t0()).collect();
    assert_eq!(
        offsets,
        [secs(0.0), secs(1.0), secs(4.0), secs(7.0), secs(8.0)]
    );
}

#[tokio::test]
async fn full_jitter_is_bounded_and_repeatable_per_execution_name() {
    let def = single(task(
        "arn:t",
        json!({"Retry": [{"ErrorEquals": ["X"], "IntervalSeconds": 4, "MaxAttempts": 4, "JitterStrategy": "FULL"}]}),
    ));
    let delays = |e: &Execution| -> Vec<f64> {
        events(e, |k| matches!(k, HistoryEventKind::RetryScheduled { .. }))
            .into_iter()
            .map(|k| match k {
                HistoryEventKind::RetryScheduled { delay_seconds, .. } => *delay_seconds,
                _ => unreachable!(),
            })
            .collect()
    };
    let mut seen = Vec::new();
    for name in ["a", "a", "b"] {
        let fake = Fake::new(Box::new(|_, _, _| fail("X", "")));
        let e = runner(def.clone(), &fake).run(name, json!({})).await;
        let d = delays(&e);
        assert_eq!(d.len(), 4);
        for (i, delay) in d.iter().enumerate() {
            let nominal = 4.0 * 2f64.powi(i as i32);
            assert!((0.0..=nominal).contains(delay), "{delay} > {nominal}");
        }
        seen.push(d);
    }
    assert_eq!(seen[0], seen[1]);
    assert_ne!(seen[0], seen[2]);
}

#[tokio::test]
async fn states_all_does_not_catch_or_retry_states_runtime() {
    let fake = Fake::echo();
    let e = run(
        json!({"StartAt": "T", "States": {
            "T": task("arn:t", json!({
                "InputPath": "$.missing",
                "Retry": [{"ErrorEquals": ["States.ALL"]}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "Next": "Caught"
            })),
            "Caught": {"Type": "Succeed"}
        }}),
        json!({}),
        &fake,
    )
    .await;
    assert_failed(&e, "States.Runtime");
    assert!(fake.calls().is_empty());
    assert!(events(&e, |k| matches!(k, HistoryEventKind::RetryScheduled { .. })).is_empty());
    assert_eq!(e.states_entered(), ["T"]);
}

#[tokio::test]
async fn states_runtime_from_an_invoker_is_not_caught_either() {
    let fake = Fake::new(Box::new(|_, _, _| fail("States.Runtime", "broken")));
    let e = run(
        json!({"StartAt": "T", "States": {
            "T": task("arn:t", json!({"Catch": [{"ErrorEquals": ["States.Runtime"], "Next": "C"}], "Next": "C"})),
            "C": {"Type": "Succeed"}
        }}),
        json!({}),
        &fake,
    )
    .await;
    assert_eq!(assert_failed(&e, "States.Runtime"), "broken");
}

#[tokio::test]
async fn data_limit_is_terminal_for_states_all_but_catchable_by_name() {
    let big = "x".repeat(MAX_PAYLOAD_BYTES);
    let big_result = move |_: &str, _: &Value, _: &TaskContext| Ok(json!({"blob": big.clone()}));
    let machine = |errors: Value| {
        json!({"StartAt": "T", "States": {
            "T": task("arn:t", json!({"Catch": [{"ErrorEquals": errors, "Next": "C"}], "Next": "C"})),
            "C": {"Type": "Pass", "Result": "caught", "End": true}
        }})
    };
    let fake = Fake::new(Box::new(big_result.clone()));
    let e = run(machine(json!(["States.ALL"])), json!({}), &fake).await;
    let cause = assert_failed(&e, "States.DataLimitExceeded");
    assert!(cause.contains("262144"), "{cause}");

    let fake = Fake::new(Box::new(big_result));
    let e = run(
        machine(json!(["States.DataLimitExceeded"])),
        json!({}),
        &fake,
    )
    .await;
    assert_eq!(assert_succeeded(&e), &json!("caught"));

    // Inputs and outputs of other states are checked too.
    let fake = Fake::echo();
    let e = run(
        single(json!({"Type": "Pass", "Result": "y".repeat(MAX_PAYLOAD_BYTES), "End": true})),
        json!({}),
        &fake,
    )
    .await;
    assert_failed(&e, "States.DataLimitExceeded");
    let e = run(
        single(json!({"Type": "Succeed"})),
        json!("z".repeat(MAX_PAYLOAD_BYTES)),
        &fake,
    )
    .await;
    assert_failed(&e, "States.DataLimitExceeded");
    // Just under the limit is fine: the quoted string is exactly the limit.
    let e = run(
        single(json!({"Type": "Succeed"})),
        json!("z".repeat(MAX_PAYLOAD_BYTES - 2)),
        &fake,
    )
    .await;
    assert_succeeded(&e);
}

#[tokio::test]
async fn an_intrinsic_failure_is_catchable() {
    let fake = Fake::echo();
    let e = run(
        json!({"StartAt": "T", "States": {
            "T": task("arn:t", json!({
                "Parameters": {"x.$": "States.ArrayGetItem($.list, 5)"},
                "Catch": [{"ErrorEquals": ["States.IntrinsicFailure"], "ResultPath": "$.err", "Next": "C"}],
                "Next": "C"
            })),
            "C": {"Type": "Succeed"}
        }}),
        json!({"list": [1]}),
        &fake,
    )
    .await;
    let out = assert_succeeded(&e);
    assert_eq!(out["err"]["Error"], "States.IntrinsicFailure");
    assert!(fake.calls().is_empty());
}

// ---------------------------------------------------------------- fail and succeed

#[tokio::test]
async fn fail_states_report_error_and_cause() {
    let fake = Fake::echo();
    let e = run(
        single(json!({"Type": "Fail", "Error": "Bad", "Cause": "because"})),
        json!({}),
        &fake,
    )
    .await;
    assert_eq!(assert_failed(&e, "Bad"), "because");

    let e = run(
        single(json!({"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "States.Format('stage {}: {}', $.stage, $.error.Cause)"})),
        json!({"stage": 3, "error": {"Error": "Lambda.Unknown", "Cause": "crash"}}),
        &fake,
    )
    .await;
    assert_eq!(assert_failed(&e, "Lambda.Unknown"), "stage 3: crash");
    assert_eq!(
        e.history.last().unwrap().kind,
        HistoryEventKind::ExecutionFailed {
            error: Some("Lambda.Unknown".into()),
            cause: Some("stage 3: crash".into())
        }
    );

    let e = run(single(json!({"Type": "Fail"})), json!({}), &fake).await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert_eq!((e.error, e.cause), (None, None));

    let e = run(
        single(json!({"Type": "Fail", "ErrorPath": "$.n"})),
        json!({"n": 1}),
        &fake,
    )
    .await;
    assert_failed(&e, "States.Runtime");
}

#[tokio::test]
async fn succeed_applies_paths_and_ends() {
    let fake = Fake::echo();
    let e = run(
        single(json!({"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"})),
        json!({"a": {"b": 5}}),
        &fake,
    )
    .await;
    assert_eq!(assert_succeeded(&e), &json!(5));
    let kinds: Vec<&str> = e
        .history
        .iter()
        .map(|h| match &h.kind {
            HistoryEventKind::ExecutionStarted { .. } => "ExecutionStarted",
            HistoryEventKind::StateEntered { .. } => "StateEntered",
            HistoryEventKind::StateExited { .. } => "StateExited",
            HistoryEventKind::ExecutionSucceeded { .. } => "ExecutionSucceeded",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "StateEntered",
            "StateExited",
            "ExecutionSucceeded"
        ]
    );
}

// ---------------------------------------------------------------- parallel and map

#[tokio::test]
async fn parallel_outputs_follow_branch_order() {
    let fake = Fake::new(Box::new(|resource, input, _| {
        Ok(json!({"by": resource, "n": input["n"]}))
    }));
    let e = run(
        single(json!({
            "Type": "Parallel",
            "Parameters": {"n.$": "$.value"},
            "Branches": [
                {"StartAt": "B1", "States": {"B1": task("arn:one", json!({}))}},
                {"StartAt": "B2", "States": {
                    "B2": {"Type": "Pass", "Result": "two", "Next": "B2b"},
                    "B2b": {"Type": "Succeed"}
                }},
                {"StartAt": "B3", "States": {"B3": task("arn:three", json!({"ResultSelector": {"who.$": "$.by"}}))}}
            ],
            "ResultSelector": {"first.$": "$[0].by", "all.$": "$"},
            "ResultPath": "$.parallel",
            "End": true
        })),
        json!({"value": 4}),
        &fake,
    )
    .await;
    assert_eq!(
        assert_succeeded(&e),
        &json!({"value": 4, "parallel": {
            "first": "arn:one",
            "all": [{"by": "arn:one", "n": 4}, "two", {"who": "arn:three"}]
        }})
    );
    assert_eq!(e.states_entered(), ["S", "B1", "B2", "B2b", "B3"]);
    assert_eq!(
        events(&e, |k| matches!(
            k,
            HistoryEventKind::ParallelBranchSucceeded { .. }
        ))
        .len(),
        3
    );
}

#[tokio::test]
async fn a_failed_branch_fails_the_parallel_state_with_its_error() {
    let fake = Fake::new(Box::new(|resource, _, _| match resource {
        "arn:bad" => fail("BranchBroke", "no"),
        _ => Ok(json!("ok")),
    }));
    let def = |catch: bool| {
        let mut par = json!({
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Good", "States": {"Good": task("arn:good", json!({}))}},
                {"StartAt": "Bad", "States": {"Bad": task("arn:bad", json!({}))}},
                {"StartAt": "Never", "States": {"Never": task("arn:never", json!({}))}}
            ],
            "Next": "Done"
        });
        if catch {
            par["Catch"] = json!([{"ErrorEquals": ["BranchBroke"], "ResultPath": "$.failure", "Next": "Done"}]);
        }
        json!({"StartAt": "P", "States": {"P": par, "Done": {"Type": "Succeed"}}})
    };
    let e = run(def(true), json!({"in": 1}), &fake).await;
    assert_eq!(
        assert_succeeded(&e),
        &json!({"in": 1, "failure": {"Error": "BranchBroke", "Cause": "no"}})
    );
    assert!(!fake.calls().iter().any(|c| c.resource == "arn:never"));
    assert_eq!(
        events(&e, |k| matches!(
            k,
            HistoryEventKind::ParallelBranchFailed { .. }
        )),
        [&HistoryEventKind::ParallelBranchFailed { index: 1 }]
    );
    let e = run(def(false), json!({}), &fake).await;
    assert_eq!(assert_failed(&e, "BranchBroke"), "no");
}

#[tokio::test]
async fn map_keeps_item_order_with_item_selector_and_context() {
    let fake = Fake::new(Box::new(|_, input, _| {
        Ok(json!(format!("{}:{}", input["index"], input["item"]["id"])))
    }));
    let e = run(
        single(json!({
            "Type": "Map",
            "InputPath": "$.job",
            "ItemsPath": "$.items",
            "MaxConcurrency": 2,
            "ItemSelector": {
                "index.$": "$$.Map.Item.Index",
                "item.$": "$$.Map.Item.Value",
                "tag.$": "$.tag"
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Each",
                "States": {"Each": task("arn:each", json!({}))}
            },
            "ResultPath": "$.job.results",
            "End": true
        })),
        json!({"job": {"tag": "t", "items": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}}),
        &fake,
    )
    .await;
    let out = assert_succeeded(&e);
    assert_eq!(
        out["job"]["results"],
        json!(["0:\"a\"", "1:\"b\"", "2:\"c\""])
    );
    let inputs: Vec<Value> = fake.calls().into_iter().map(|c| c.input).collect();
    assert_eq!(
        inputs[1],
        json!({"index": 1, "item": {"id": "b"}, "tag": "t"})
    );
    let started = events(&e, |k| {
        matches!(k, HistoryEventKind::MapIterationStarted { .. })
    });
    assert_eq!(started.len(), 3);
    assert_eq!(e.states_entered(), ["S", "Each", "Each", "Each"]);
}

#[tokio::test]
async fn legacy_iterator_and_parameters_and_iteration_failure() {
    let fake = Fake::new(Box::new(|_, input, _| {
        if input["v"] == json!(2) {
            fail("ItemBroke", "item 2")
        } else {
            Ok(input["v"].clone())
        }
    }));
    let def = json!({"StartAt": "M", "States": {
        "M": {
            "Type": "Map",
            "Parameters": {"v.$": "$$.Map.Item.Value"},
            "Iterator": {"StartAt": "I", "States": {"I": task("arn:i", json!({}))}},
            "ResultSelector": {"count.$": "States.ArrayLength($)"},
            "Catch": [{"ErrorEquals": ["ItemBroke"], "Next": "Broken"}],
            "End": true
        },
        "Broken": {"Type": "Pass", "End": true}
    }});
    let e = run(def.clone(), json!([1, 3]), &fake).await;
    assert_eq!(assert_succeeded(&e), &json!({"count": 2}));
    let e = run(def, json!([1, 2, 3]), &fake).await;
    assert_eq!(
        assert_succeeded(&e),
        &json!({"Error": "ItemBroke", "Cause": "item 2"})
    );
    assert_eq!(
        events(&e, |k| matches!(
            k,
            HistoryEventKind::MapIterationFailed { .. }
        )),
        [&HistoryEventKind::MapIterationFailed { index: 1 }]
    );
    assert_eq!(e.states_entered(), ["M", "I", "I", "Broken"]);
}

fn distributed_map(extra: Value) -> Value {
    let mut state = json!({
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemSelector": {"v.$": "$$.Map.Item.Value", "parent.$": "$$.Execution.Name"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work",
            "States": {
                "Work": task("arn:work", json!({"Next": "Who"})),
                "Who": {"Type": "Pass", "Parameters": {"v.$": "$.v", "child.$": "$$.Execution.Name"}, "End": true}
            }
        },
        "End": true
    });
    for (k, v) in extra.as_object().unwrap() {
        state[k] = v.clone();
    }
    single(state)
}

fn failing_odd_items() -> Arc<Fake> {
    Fake::new(Box::new(|_, input, _| {
        if input["v"].as_i64().unwrap() % 2 == 1 {
            fail("ItemBroke", &format!("item {}", input["v"]))
        } else {
            Ok(input.clone())
        }
    }))
}

#[tokio::test]
async fn a_distributed_map_runs_each_item_as_a_child_with_a_history_of_its_own() {
    let fake = Fake::echo();
    // A parent whose history could not hold the iterations: 50 items, about 8 events each.
    let machine = StateMachine::from_value(distributed_map(json!({}))).unwrap();
    let items: Vec<i64> = (0..50).map(|i| i * 2).collect();
    let e = Runner::new(machine, fake.clone(), Arc::new(fake.clock.clone()))
        .with_max_history_events(40)
        .run("exec-1", json!({"items": items}))
        .await;
    let out = assert_succeeded(&e).as_array().unwrap().clone();
    assert_eq!(out.len(), 50);
    assert_eq!(out[3]["v"], json!(6));
    // ItemSelector is evaluated in the parent; the child has its own execution context.
    assert_eq!(fake.calls()[3].input["parent"], json!("exec-1"));
    assert_eq!(out[3]["child"], json!("S:3"));
    assert!(
        events(&e, |k| matches!(
            k,
            HistoryEventKind::MapIterationStarted { .. }
        ))
        .is_empty()
    );
    assert_eq!(
        events(&e, |k| matches!(k, HistoryEventKind::MapRunStarted { .. })),
        [&HistoryEventKind::MapRunStarted { items: 50 }]
    );
    assert!(e.history.len() < 10, "{} parent events", e.history.len());
    // Billed transitions still count the children's states.
    assert!(e.state_transitions > 100);
}

#[tokio::test]
async fn a_distributed_map_fails_past_its_tolerated_failures_only() {
    let items = json!({"items": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "share": 50, "count": 4});
    // No tolerance given: the first failure fails the Map Run.
    let e = run(
        distributed_map(json!({})),
        items.clone(),
        &failing_odd_items(),
    )
    .await;
    let cause = assert_failed(&e, "States.ExceedToleratedFailureThreshold");
    assert!(
        cause.contains("ItemBroke") && cause.contains("item 1"),
        "{cause}"
    );
    assert!(events(&e, |k| matches!(k, HistoryEventKind::MapRunFailed { .. })).len() == 1);
    // 5 of 10 fail: 50% is tolerated, the output holds the 5 that succeeded.
    for tolerance in [
        json!({"ToleratedFailurePercentage": 50}),
        json!({"ToleratedFailurePercentagePath": "$.share"}),
        json!({"ToleratedFailureCount": 5}),
    ] {
        let e = run(
            distributed_map(tolerance.clone()),
            items.clone(),
            &failing_odd_items(),
        )
        .await;
        let out = assert_succeeded(&e);
        assert_eq!(out.as_array().unwrap().len(), 5, "{tolerance}");
        assert_eq!(
            events(&e, |k| matches!(
                k,
                HistoryEventKind::MapRunSucceeded { .. }
            )),
            [&HistoryEventKind::MapRunSucceeded { failed: 5 }]
        );
    }
    // Just under: 40% or 4 failures; either bound exceeded fails it.
    for tolerance in [
        json!({"ToleratedFailurePercentage": 40}),
        json!({"ToleratedFailureCountPath": "$.count"}),
        json!({"ToleratedFailureCount": 4, "ToleratedFailurePercentage": 100}),
    ] {
        let e = run(
            distributed_map(tolerance.clone()),
            items.clone(),
            &failing_odd_items(),
        )
        .await;
        assert_failed(&e, "States.ExceedToleratedFailureThreshold");
    }
    // The error is caught by name like any other.
    let mut def = distributed_map(
        json!({"Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "Over"}]}),
    );
    def["States"]["S"].as_object_mut().unwrap().remove("End");
    def["States"]["S"]["Next"] = json!("Never");
    def["States"]["Never"] = json!({"Type": "Succeed"});
    def["States"]["Over"] = json!({"Type": "Pass", "Result": "stopped", "End": true});
    let e = run(def, items.clone(), &failing_odd_items()).await;
    assert_eq!(assert_succeeded(&e), &json!("stopped"));
    // A tolerance path that reads no number is the runtime's error.
    let e = run(
        distributed_map(json!({"ToleratedFailurePercentagePath": "$.items"})),
        items,
        &failing_odd_items(),
    )
    .await;
    assert_failed(&e, "States.Runtime");
}

#[test]
fn distributed_only_fields_and_execution_types_are_checked() {
    let processor = |config: Value| json!({"ProcessorConfig": config, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let map = |config: Value, extra: Value| {
        let mut state = json!({"Type": "Map", "ItemProcessor": processor(config), "End": true});
        for (k, v) in extra.as_object().unwrap() {
            state[k] = v.clone();
        }
        StateMachine::from_value(single(state))
    };
    let distributed = json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"});
    assert!(
        map(
            distributed.clone(),
            json!({"ToleratedFailurePercentage": 12.5, "Label": "wave"})
        )
        .is_ok()
    );
    for (config, extra, says) in [
        (
            json!({}),
            json!({"ToleratedFailurePercentage": 10}),
            "Distributed mode",
        ),
        (
            json!({"Mode": "INLINE"}),
            json!({"Label": "x"}),
            "Distributed mode",
        ),
        (
            json!({"Mode": "INLINE", "ExecutionType": "STANDARD"}),
            json!({}),
            "ExecutionType",
        ),
        (json!({"Mode": "DISTRIBUTED"}), json!({}), "ExecutionType"),
        (
            json!({"Mode": "DISTRIBUTED", "ExecutionType": "BATCH"}),
            json!({}),
            "ExecutionType",
        ),
        (
            distributed.clone(),
            json!({"ToleratedFailurePercentage": 101}),
            "0 to 100",
        ),
        (
            distributed.clone(),
            json!({"ToleratedFailureCount": 1.5}),
            "non-negative integer",
        ),
        (
            distributed.clone(),
            json!({"ToleratedFailureCount": 1, "ToleratedFailureCountPath": "$.n"}),
            "mutually exclusive",
        ),
        (distributed.clone(), json!({"Label": "has space"}), "Label"),
        (distributed.clone(), json!({"ItemReader": {}}), "ItemReader"),
    ] {
        let err = map(config.clone(), extra.clone()).unwrap_err().to_string();
        assert!(err.contains(says), "{config} {extra}: {err}");
    }
}

#[tokio::test]
async fn map_items_must_be_an_array() {
    let fake = Fake::echo();
    let e = run(
        single(json!({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true})),
        json!({"items": {"not": "array"}}),
        &fake,
    )
    .await;
    let cause = assert_failed(&e, "States.Runtime");
    assert!(cause.contains("must be an array"), "{cause}");
    let e = run(
        single(json!({"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true})),
        json!([]),
        &fake,
    )
    .await;
    assert_eq!(assert_succeeded(&e), &json!([]));
}

// ---------------------------------------------------------------- limits

#[tokio::test]
async fn history_limit_fails_the_execution() {
    let fake = Fake::echo();
    let looping = json!({"StartAt": "Count", "States": {
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Again"},
        "Again": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 1000000, "Next": "Count"}], "Default": "End"},
        "End": {"Type": "Succeed"}
    }});
    let e = runner(looping, &fake)
        .with_max_history_events(50)
        .run("loop", json!({"n": 0}))
        .await;
    let cause = assert_failed(&e, "States.Runtime");
    assert!(cause.contains("50"), "{cause}");
    assert_eq!(e.history.len(), 51);
    let ids: Vec<u64> = e.history.iter().map(|h| h.id).collect();
    assert_eq!(ids, (1..=51).collect::<Vec<_>>());
}

#[tokio::test]
async fn machine_timeout_times_out_on_the_clock() {
    let fake = Fake::echo();
    let e = run(
        json!({"StartAt": "W", "TimeoutSeconds": 10, "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}}),
        json!({}),
        &fake,
    )
    .await;
    assert_eq!(e.status, ExecutionStatus::TimedOut);
    assert_eq!(e.error.as_deref(), Some("States.Timeout"));
    assert_eq!(fake.clock.now() - t0(), secs(10.0));
    assert!(matches!(
        e.history.last().unwrap().kind,
        HistoryEventKind::ExecutionTimedOut { .. }
    ));
    assert_eq!(serde_json::to_value(e.status).unwrap(), json!("TIMED_OUT"));

    // Slow tasks count too: the second task starts after the deadline.
    let mut fake = Fake::echo();
    Arc::get_mut(&mut fake).unwrap().task_seconds = 6;
    let e = run(
        json!({"StartAt": "A", "TimeoutSeconds": 10, "States": {
            "A": task("arn:a", json!({"Next": "B"})),
            "B": task("arn:b", json!({"Next": "C"})),
            "C": task("arn:c", json!({}))
        }}),
        json!({}),
        &fake,
    )
    .await;
    assert_eq!(e.status, ExecutionStatus::TimedOut);
    assert_eq!(fake.calls().len(), 2);
}

// ---------------------------------------------------------------- observation

struct Recorder(Mutex<Vec<HistoryEvent>>);

impl Observer for Recorder {
    fn on_event(&self, event: &HistoryEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

#[tokio::test]
async fn observer_sees_every_event_and_task_durations_are_measurable() {
    let mut fake = Fake::echo();
    Arc::get_mut(&mut fake).unwrap().task_seconds = 5;
    let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
    let e = runner(single(task("arn:slow", json!({}))), &fake)
        .with_observer(recorder.clone())
        .run("observed", json!({"a": 1}))
        .await;
    assert_succeeded(&e);
    assert_eq!(*recorder.0.lock().unwrap(), e.history);
    let at = |pred: fn(&HistoryEventKind) -> bool| {
        e.history.iter().find(|h| pred(&h.kind)).unwrap().timestamp
    };
    let entered = at(|k| matches!(k, HistoryEventKind::StateEntered { .. }));
    let scheduled = at(|k| matches!(k, HistoryEventKind::TaskScheduled { .. }));
    let succeeded = at(|k| matches!(k, HistoryEventKind::TaskSucceeded { .. }));
    let exited = at(|k| matches!(k, HistoryEventKind::StateExited { .. }));
    assert_eq!(succeeded - scheduled, secs(5.0));
    assert_eq!(exited - entered, secs(5.0));
    assert_eq!(e.stop_date - e.start_date, secs(5.0));
}

#[tokio::test]
async fn task_failures_are_recorded_verbatim() {
    let fake = Fake::new(Box::new(|_, _, _| fail("Custom.Error-Name", "details")));
    let e = run(single(task("arn:t", json!({}))), json!({}), &fake).await;
    assert_eq!(assert_failed(&e, "Custom.Error-Name"), "details");
    assert_eq!(
        events(&e, |k| matches!(k, HistoryEventKind::TaskFailed { .. })),
        [&HistoryEventKind::TaskFailed {
            resource: "arn:t".into(),
            error: "Custom.Error-Name".into(),
            cause: "details".into()
        }]
    );
}

#[test]
fn runs_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let fake = Fake::echo();
    let r = runner(single(json!({"Type": "Succeed"})), &fake);
    let fut = r.run("x", json!({}));
    assert_send(&fut);
}

#[test]
fn arns_follow_aws_forms() {
    assert_eq!(
        execution_arn(DEFAULT_STATE_MACHINE_ARN, "e1"),
        "arn:aws:states:local:000000000000:execution:local:e1"
    );
    assert_eq!(
        execution_arn("arn:aws:states:us-east-1:1:stateMachine:m:prod", "e"),
        "arn:aws:states:us-east-1:1:execution:m:e"
    );
    assert_eq!(
        machine_name("arn:aws:states:us-east-1:1:stateMachine:m:prod"),
        "m"
    );
    assert_eq!(machine_name("plain-name"), "plain-name");
}

// ---------------------------------------------------------------- robustness

/// Builds many small random definitions from plausible and implausible parts; loading must
/// never panic and whatever loads must run to an end without panicking.
#[tokio::test]
async fn random_definitions_never_panic() {
    let parts = [
        json!({"Type": "Pass", "Next": "B"}),
        json!({"Type": "Pass", "End": true, "Parameters": {"a.$": "$.x", "b.$": "States.ArrayLength($.l)"}}),
        json!({"Type": "Task", "Resource": "r", "End": true, "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}]}),
        json!({"Type": "Task", "Resource": "r", "Next": "B", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}], "ResultPath": "$.x.y"}),
        json!({"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "B"}], "Default": "A"}),
        json!({"Type": "Wait", "SecondsPath": "$.x", "Next": "B"}),
        json!({"Type": "Wait", "TimestampPath": "$.x", "End": true}),
        json!({"Type": "Map", "ItemsPath": "$.l", "Iterator": {"StartAt": "Z", "States": {}}, "End": true}),
        json!({"Type": "Fail", "ErrorPath": "$.x"}),
        json!({"Type": "Succeed", "OutputPath": "$.x"}),
        json!({"Type": "Parallel", "Branches": [{"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": true}}}], "End": true}),
        json!({"Type": "Pass", "InputPath": "$[", "End": true}),
        json!(null),
        json!({"Type": 5}),
        json!({"Type": "Pass", "Next": 3}),
    ];
    let inputs = [
        json!({}),
        json!({"x": 1, "l": [1, 2]}),
        json!({"x": "2024-01-01T00:00:00Z", "l": "no"}),
        json!([1]),
        json!(null),
    ];
    let mut rng = Rng::from_seed(99);
    let mut loaded = 0;
    for round in 0..300 {
        let pick = |rng: &mut Rng| parts[(rng.next_u64() % parts.len() as u64) as usize].clone();
        let def = json!({"StartAt": "A", "TimeoutSeconds": 100, "States": {"A": pick(&mut rng), "B": pick(&mut rng)}});
        let Ok(machine) = StateMachine::from_value(def) else {
            continue;
        };
        loaded += 1;
        let fake = Fake::new(Box::new(|_, input, _| {
            if input.is_object() {
                Ok(input.clone())
            } else {
                fail("NotObject", "")
            }
        }));
        let r = Runner::new(machine, fake.clone(), Arc::new(fake.clock.clone()))
            .with_max_history_events(200);
        let e = r
            .run(&format!("r{round}"), inputs[round % inputs.len()].clone())
            .await;
        assert!(matches!(
            e.history.last().unwrap().kind,
            HistoryEventKind::ExecutionSucceeded { .. }
                | HistoryEventKind::ExecutionFailed { .. }
                | HistoryEventKind::ExecutionTimedOut { .. }
        ));
    }
    assert!(loaded > 10, "only {loaded} definitions loaded");
}
