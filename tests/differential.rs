//! Differential test: our ASL interpreter (`switchyard-asl`) against an independent one, moto's
//! Step Functions interpreter (a port of LocalStack's), on the corpus in `tests/asl/`.
//!
//! Each case runs in our `Runner` (a scripted `TaskInvoker`, a `ManualClock`, so no real waiting)
//! and in moto's server (Lambda Task results queued through moto's lambda-simple backend). Compared:
//! status, output (as JSON values), error, cause, the states entered (in order; inside a Parallel
//! regrouped branch by branch, as moto runs branches concurrently) and the inputs the Task states
//! were invoked with. A difference must be listed in `tests/asl/KNOWN_DIFFERENCES.md`
//! (where moto is wrong against the ASL specification) or the test fails; so does a listed
//! difference that no longer occurs.
//!
//! Needs the moto server that `tests/run` starts (`SWITCHYARD_TEST_MOTO_URL`).
//!
//! Corpus file: `{"comment", "definition" | "definition_file" (+ "substitutions"), "input",
//! "task_results": [{"ok": <json>} | {"error": "...", "cause": "..."}]}`. moto's lambda-simple
//! backend can only fail an invocation one way (a response over Lambda's 6 MB limit), so an error
//! result must be `Function.ResponseSizeTooLarge` with moto's cause ([`MOTO_LAMBDA_ERROR`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_sfn::Client;
use chrono::{DateTime, Utc};
use common::moto_post;
use serde_json::{Value, json};
use switchyard_asl::{
    LOCAL_ROLE_ARN, ManualClock, Runner, StateMachine, TaskContext, TaskFailure, TaskInvoker,
    substitute,
};

/// The only error moto's lambda-simple backend can produce: a response bigger than 6 MB.
const MOTO_LAMBDA_ERROR: &str = "Function.ResponseSizeTooLarge";
const MOTO_LAMBDA_CAUSE: &str = r#"{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}"#;
/// Bytes that make moto's Lambda response "too large" (it checks `sys.getsizeof > 6_000_000`).
const OVERSIZED_RESPONSE: usize = 6_000_001;
/// How long one moto execution may run before the case is given up.
const MOTO_EXECUTION_LIMIT: Duration = Duration::from_secs(10);
/// A Lambda ARN for the drain machine; lambda-simple accepts any function name.
const DRAIN_FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:differential-drain";

/// The fields compared.
const FIELDS: [&str; 6] = ["status", "output", "error", "cause", "states", "tasks"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ------------------------------------------------------------------------------------------
// The corpus
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum TaskResult {
    Ok(Value),
    Err { error: String, cause: String },
}

#[derive(Debug)]
struct Case {
    name: String,
    definition: Value,
    input: Value,
    task_results: Vec<TaskResult>,
}

fn load_case(path: &Path) -> Case {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let obj = doc
        .as_object()
        .unwrap_or_else(|| panic!("{}: not an object", path.display()));
    for key in obj.keys() {
        assert!(
            [
                "comment",
                "definition",
                "definition_file",
                "substitutions",
                "input",
                "task_results"
            ]
            .contains(&key.as_str()),
            "{name}: unknown field {key}"
        );
    }
    assert!(
        obj.get("comment").is_some_and(Value::is_string),
        "{name}: needs a comment"
    );
    let definition = match (obj.get("definition"), obj.get("definition_file")) {
        (Some(d), None) => d.clone(),
        (None, Some(Value::String(file))) => {
            let text = std::fs::read_to_string(root().join(file))
                .unwrap_or_else(|e| panic!("{name}: {file}: {e}"));
            let vars: BTreeMap<String, String> = obj
                .get("substitutions")
                .map(|v| serde_json::from_value(v.clone()).unwrap())
                .unwrap_or_default();
            let text = substitute(&text, &vars).unwrap_or_else(|e| panic!("{name}: {e}"));
            serde_json::from_str(&text).unwrap()
        }
        _ => panic!("{name}: needs exactly one of definition and definition_file"),
    };
    let task_results = obj
        .get("task_results")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{name}: needs task_results (an array)"))
        .iter()
        .map(|r| match (r.get("ok"), r.get("error"), r.get("cause")) {
            (Some(v), None, None) => TaskResult::Ok(v.clone()),
            (None, Some(Value::String(error)), Some(Value::String(cause))) => {
                assert!(
                    error == MOTO_LAMBDA_ERROR && cause == MOTO_LAMBDA_CAUSE,
                    "{name}: moto's lambda-simple backend can only fail with {MOTO_LAMBDA_ERROR} \
                     and the cause {MOTO_LAMBDA_CAUSE}; for other errors use a Fail state"
                );
                TaskResult::Err {
                    error: error.clone(),
                    cause: cause.clone(),
                }
            }
            _ => panic!("{name}: a task result is {{\"ok\": ..}} or {{\"error\", \"cause\"}}"),
        })
        .collect();
    let input = obj
        .get("input")
        .cloned()
        .unwrap_or_else(|| panic!("{name}: needs an input"));
    Case {
        name,
        definition,
        input,
        task_results,
    }
}

fn load_corpus() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/asl"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.iter().map(|f| load_case(f)).collect()
}

/// One listed difference: the field that differs, and for `output` and `tasks` optionally the
/// JSON pointer of the part that differs (in the output, or in every task input); the rest of
/// that field is still compared.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    case: String,
    field: String,
    pointer: Option<String>,
}

/// Reads the `- case-name: field [/json/pointer]` lines of KNOWN_DIFFERENCES.md.
fn load_known(cases: &[Case]) -> Vec<Known> {
    let text = std::fs::read_to_string(root().join("tests/asl/KNOWN_DIFFERENCES.md")).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(entry) = line.strip_prefix("- ") else {
            continue;
        };
        let Some((case, rest)) = entry.split_once(": ") else {
            continue;
        };
        if case.contains(' ') || case.contains('`') {
            continue;
        }
        let mut words = rest.split_whitespace();
        let field = words.next().unwrap_or_default().to_owned();
        let pointer = words.next().map(str::to_owned);
        assert!(
            words.next().is_none(),
            "KNOWN_DIFFERENCES.md: '{line}' is not `- case: field [/pointer]`"
        );
        assert!(
            FIELDS.contains(&field.as_str()),
            "KNOWN_DIFFERENCES.md: '{line}': unknown field {field}"
        );
        assert!(
            pointer.is_none() || field == "output" || field == "tasks",
            "KNOWN_DIFFERENCES.md: '{line}': only output and tasks take a pointer"
        );
        assert!(
            cases.iter().any(|c| c.name == case),
            "KNOWN_DIFFERENCES.md: '{line}': no case named {case}"
        );
        out.push(Known {
            case: case.to_owned(),
            field,
            pointer,
        });
    }
    out
}

// ------------------------------------------------------------------------------------------
// What an execution did, on either side
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct Outcome {
    status: String,
    output: Option<Value>,
    error: Option<String>,
    cause: Option<String>,
    states: Vec<String>,
    /// The effective input of every Task invocation, in order.
    tasks: Vec<Value>,
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn remove_pointer(value: &mut Value, pointer: &str) -> Option<Value> {
    let (parent, last) = pointer.rsplit_once('/')?;
    let parent = if parent.is_empty() {
        Some(value)
    } else {
        value.pointer_mut(parent)
    }?;
    match parent {
        Value::Object(map) => map.remove(last),
        _ => None,
    }
}

/// A Parallel state's branches run concurrently in moto, so the states they enter interleave
/// at random. Both sides' sequences are put in one canonical order: after a Parallel state is
/// entered, the run of states that belong to its branches is regrouped branch by branch (order
/// within a branch kept), recursively.
struct Scopes {
    /// state name -> the (Parallel name, branch index) pairs enclosing it, outermost first.
    enclosing: BTreeMap<String, Vec<(String, usize)>>,
    branches: BTreeMap<String, usize>,
}

impl Scopes {
    fn of(definition: &Value) -> Scopes {
        let mut scopes = Scopes {
            enclosing: BTreeMap::new(),
            branches: BTreeMap::new(),
        };
        scopes.walk(definition, &[]);
        scopes
    }

    fn walk(&mut self, scope: &Value, outer: &[(String, usize)]) {
        let Some(states) = scope.get("States").and_then(Value::as_object) else {
            return;
        };
        for (name, state) in states {
            self.enclosing.insert(name.clone(), outer.to_vec());
            if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
                self.branches.insert(name.clone(), branches.len());
                for (i, branch) in branches.iter().enumerate() {
                    let mut inner = outer.to_vec();
                    inner.push((name.clone(), i));
                    self.walk(branch, &inner);
                }
            }
            for key in ["ItemProcessor", "Iterator"] {
                if let Some(processor) = state.get(key) {
                    self.walk(processor, outer);
                }
            }
        }
    }

    fn branch_in(&self, state: &str, parallel: &str) -> Option<usize> {
        self.enclosing
            .get(state)?
            .iter()
            .find(|(p, _)| p == parallel)
            .map(|(_, i)| *i)
    }

    fn canonical(&self, seq: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(seq.len());
        let mut i = 0;
        while i < seq.len() {
            let name = &seq[i];
            out.push(name.clone());
            i += 1;
            if let Some(&n) = self.branches.get(name) {
                let mut j = i;
                while j < seq.len() && self.branch_in(&seq[j], name).is_some() {
                    j += 1;
                }
                for b in 0..n {
                    let part: Vec<String> = seq[i..j]
                        .iter()
                        .filter(|s| self.branch_in(s, name) == Some(b))
                        .cloned()
                        .collect();
                    out.extend(self.canonical(&part));
                }
                i = j;
            }
        }
        out
    }
}

// ------------------------------------------------------------------------------------------
// Our interpreter
// ------------------------------------------------------------------------------------------

struct Scripted {
    results: Mutex<VecDeque<TaskResult>>,
}

#[async_trait::async_trait]
impl TaskInvoker for Scripted {
    async fn invoke(
        &self,
        _resource: &str,
        input: Value,
        _ctx: &TaskContext,
    ) -> Result<Value, TaskFailure> {
        let next = self.results.lock().unwrap().pop_front();
        match next {
            Some(TaskResult::Ok(v)) => Ok(v),
            Some(TaskResult::Err { error, cause }) => Err(TaskFailure::new(error, cause)),
            // What moto's lambda-simple backend does with an empty queue: echo the input.
            None => Ok(input),
        }
    }
}

async fn run_ours(
    case: &Case,
    machine_arn: &str,
    execution_name: &str,
    start: DateTime<Utc>,
) -> Outcome {
    let machine = match StateMachine::from_value(case.definition.clone()) {
        Ok(m) => m,
        Err(e) => {
            return Outcome {
                status: "REJECTED".into(),
                cause: Some(e.to_string()),
                ..Outcome::default()
            };
        }
    };
    let invoker = Arc::new(Scripted {
        results: Mutex::new(case.task_results.iter().cloned().collect()),
    });
    let runner = Runner::new(machine, invoker, Arc::new(ManualClock::new(start)))
        .with_state_machine_arn(machine_arn);
    let execution = runner.run(execution_name, case.input.clone()).await;
    let tasks = execution
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            switchyard_asl::HistoryEventKind::TaskScheduled { parameters, .. } => {
                Some(parameters.clone())
            }
            _ => None,
        })
        .collect();
    Outcome {
        status: execution.status.as_str().to_owned(),
        output: execution.output.clone(),
        error: execution.error.clone(),
        cause: execution.cause.clone(),
        states: execution.states_entered(),
        tasks,
    }
}

// ------------------------------------------------------------------------------------------
// moto
// ------------------------------------------------------------------------------------------

/// A plain HTTP/1.1 POST to moto's own API (no signing needed there).
struct Moto {
    url: String,
    client: Client,
    run_id: u128,
    counter: usize,
}

struct MotoRun {
    machine_arn: String,
    execution_name: String,
    start: DateTime<Utc>,
    outcome: Outcome,
    /// Set when describe_execution failed and the outcome was read from the history instead.
    note: Option<String>,
}

impl Moto {
    async fn connect(url: &str) -> Moto {
        // Global and idempotent: moto runs executions only with this set.
        moto_post(
            url,
            "/moto-api/config",
            r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#,
        );
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(url)
            .region("us-east-1")
            .credentials_provider(aws_sdk_sfn::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .load()
            .await;
        Moto {
            url: url.to_owned(),
            client: Client::new(&config),
            run_id: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
            counter: 0,
        }
    }

    /// Queues Lambda results; lambda-simple pops them first in, first out, one per invocation.
    fn queue(&self, results: &[TaskResult]) {
        if results.is_empty() {
            return;
        }
        let oversized = "x".repeat(OVERSIZED_RESPONSE);
        let results: Vec<String> = results
            .iter()
            .map(|r| match r {
                TaskResult::Ok(v) => v.to_string(),
                TaskResult::Err { .. } => oversized.clone(),
            })
            .collect();
        moto_post(
            &self.url,
            "/moto-api/static/lambda-simple/response",
            &json!({ "results": results }).to_string(),
        );
    }

    async fn run(&mut self, label: &str, definition: &Value, input: &Value) -> MotoRun {
        self.counter += 1;
        let machine_name = format!("diff-{}-{}", self.run_id, self.counter);
        let execution_name = format!("{label}-{}", self.counter);
        let created = match self
            .client
            .create_state_machine()
            .name(&machine_name)
            .definition(definition.to_string())
            .role_arn(LOCAL_ROLE_ARN)
            .send()
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return MotoRun {
                    machine_arn: String::new(),
                    execution_name,
                    start: Utc::now(),
                    outcome: Outcome {
                        status: "REJECTED".into(),
                        cause: Some(format!("{e:?}")),
                        ..Outcome::default()
                    },
                    note: None,
                };
            }
        };
        let machine_arn = created.state_machine_arn().to_owned();
        let started = self
            .client
            .start_execution()
            .state_machine_arn(&machine_arn)
            .name(&execution_name)
            .input(input.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{label}: moto start_execution: {e:?}"));
        let execution_arn = started.execution_arn().to_owned();
        let start_date = started.start_date();
        let start = DateTime::from_timestamp(start_date.secs(), start_date.subsec_nanos())
            .unwrap_or_else(Utc::now);

        let deadline = Instant::now() + MOTO_EXECUTION_LIMIT;
        let mut described = None;
        let mut note = None;
        loop {
            match self
                .client
                .describe_execution()
                .execution_arn(&execution_arn)
                .send()
                .await
            {
                Ok(d) if d.status().as_str() != "RUNNING" => {
                    described = Some(d);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    // moto 5.2.5 answers 500 when the output holds $$.Execution.StartTime (a
                    // Python datetime it cannot serialize); the history still has the outcome.
                    let events = self.history(&execution_arn).await;
                    if events.iter().any(|e| terminal(e).is_some()) {
                        note = Some(format!(
                            "describe_execution failed ({}), outcome read from the history",
                            short_error(&e)
                        ));
                        break;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{label}: moto's execution {execution_arn} still runs after {MOTO_EXECUTION_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let events = self.history(&execution_arn).await;
        let mut outcome = Outcome::default();
        for e in &events {
            let kind = e.r#type().as_str();
            if let Some(d) = e
                .state_entered_event_details()
                .filter(|_| kind.ends_with("StateEntered"))
            {
                outcome.states.push(d.name().to_owned());
            }
            if kind == "LambdaFunctionScheduled" {
                let input = e
                    .lambda_function_scheduled_event_details()
                    .and_then(|d| d.input())
                    .map(|s| serde_json::from_str(s).unwrap_or(Value::String(s.to_owned())))
                    .unwrap_or(Value::Null);
                outcome.tasks.push(input);
            }
        }
        match described {
            Some(d) => {
                outcome.status = d.status().as_str().to_owned();
                outcome.output = d.output().map(parse_json);
                outcome.error = d.error().map(str::to_owned);
                outcome.cause = d.cause().map(str::to_owned);
            }
            None => {
                let end = events.iter().find_map(terminal).unwrap();
                outcome.status = end.0;
                outcome.output = end.1;
                outcome.error = end.2;
                outcome.cause = end.3;
            }
        }
        MotoRun {
            machine_arn,
            execution_name,
            start,
            outcome,
            note,
        }
    }

    async fn history(&self, execution_arn: &str) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_execution_history()
                .execution_arn(execution_arn)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("moto get_execution_history: {e:?}"));
            events.extend(page.events().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        events
    }

    /// Consumes `n` queued Lambda results that an execution left unused, so that they do not
    /// leak into the next case.
    async fn drain(&mut self, n: usize) {
        let definition = json!({
            "StartAt": "Drain",
            "States": {"Drain": {
                "Type": "Map", "MaxConcurrency": 1, "End": true,
                "ItemProcessor": {"StartAt": "Take", "States": {
                    "Take": {"Type": "Task", "Resource": DRAIN_FUNCTION, "End": true,
                             "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Dropped"}]},
                    "Dropped": {"Type": "Pass", "End": true}}}}}
        });
        let items: Vec<usize> = (0..n).collect();
        let run = self.run("drain", &definition, &json!(items)).await;
        assert_eq!(
            run.outcome.tasks.len(),
            n,
            "could not drain moto's lambda-simple queue"
        );
    }
}

type Terminal = (String, Option<Value>, Option<String>, Option<String>);

fn terminal(e: &aws_sdk_sfn::types::HistoryEvent) -> Option<Terminal> {
    match e.r#type().as_str() {
        "ExecutionSucceeded" => Some((
            "SUCCEEDED".into(),
            e.execution_succeeded_event_details()
                .and_then(|d| d.output())
                .map(parse_json),
            None,
            None,
        )),
        "ExecutionFailed" => {
            let d = e.execution_failed_event_details();
            Some((
                "FAILED".into(),
                None,
                d.and_then(|d| d.error()).map(str::to_owned),
                d.and_then(|d| d.cause()).map(str::to_owned),
            ))
        }
        "ExecutionTimedOut" => {
            let d = e.execution_timed_out_event_details();
            Some((
                "TIMED_OUT".into(),
                None,
                d.and_then(|d| d.error()).map(str::to_owned),
                d.and_then(|d| d.cause()).map(str::to_owned),
            ))
        }
        "ExecutionAborted" => Some(("ABORTED".into(), None, None, None)),
        _ => None,
    }
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(format!("<not JSON> {text}")))
}

fn short_error<E: std::fmt::Debug>(e: &E) -> String {
    let text = format!("{e:?}");
    text.chars().take(120).collect()
}

// ------------------------------------------------------------------------------------------
// Comparing
// ------------------------------------------------------------------------------------------

/// One field that differs.
#[derive(Debug)]
struct Difference {
    field: &'static str,
    ours: String,
    moto: String,
    /// The listed entry that covers it, if any.
    known: Option<Known>,
}

fn show<T: serde::Serialize>(v: &T) -> String {
    let text = serde_json::to_string(v).unwrap();
    if text.chars().count() > 400 {
        format!("{}...", text.chars().take(400).collect::<String>())
    } else {
        text
    }
}

fn compare(
    case: &Case,
    ours: &Outcome,
    moto: &Outcome,
    known: &[Known],
) -> (Vec<Difference>, Vec<String>) {
    let scopes = Scopes::of(&case.definition);
    let listed = |field: &str| {
        known
            .iter()
            .find(|k| k.case == case.name && k.field == field && k.pointer.is_none())
            .cloned()
    };
    let mut diffs = Vec::new();
    let mut stale = Vec::new();
    // Output and task inputs, minus the listed pointers (each of which must really differ).
    let (mut o_out, mut m_out) = (ours.output.clone(), moto.output.clone());
    let (mut o_tasks, mut m_tasks) = (ours.tasks.clone(), moto.tasks.clone());
    for k in known
        .iter()
        .filter(|k| k.case == case.name && k.pointer.is_some())
    {
        let p = k.pointer.as_deref().unwrap_or_default();
        let (ours_values, moto_values): (Vec<&mut Value>, Vec<&mut Value>) = if k.field == "output"
        {
            (o_out.iter_mut().collect(), m_out.iter_mut().collect())
        } else {
            (o_tasks.iter_mut().collect(), m_tasks.iter_mut().collect())
        };
        let removed_ours: Vec<Option<Value>> = ours_values
            .into_iter()
            .map(|v| remove_pointer(v, p))
            .collect();
        let removed_moto: Vec<Option<Value>> = moto_values
            .into_iter()
            .map(|v| remove_pointer(v, p))
            .collect();
        let differs = removed_ours
            .iter()
            .zip(&removed_moto)
            .any(|pair| match pair {
                (Some(a), Some(b)) => !json_eq(a, b),
                _ => false,
            });
        if differs {
            diffs.push(Difference {
                field: if k.field == "output" {
                    "output"
                } else {
                    "tasks"
                },
                ours: format!("{p}: {}", show(&removed_ours)),
                moto: format!("{p}: {}", show(&removed_moto)),
                known: Some(k.clone()),
            });
        } else {
            stale.push(format!(
                "{}: {} {p} is listed but does not differ (ours {}, moto {})",
                case.name,
                k.field,
                show(&removed_ours),
                show(&removed_moto)
            ));
        }
    }
    let same_output = match (&o_out, &m_out) {
        (Some(a), Some(b)) => json_eq(a, b),
        (None, None) => true,
        _ => false,
    };
    let same_tasks =
        o_tasks.len() == m_tasks.len() && o_tasks.iter().zip(&m_tasks).all(|(a, b)| json_eq(a, b));

    let mut check = |field: &'static str, same: bool, o: String, m: String| {
        let entry = listed(field);
        if !same {
            diffs.push(Difference {
                field,
                ours: o,
                moto: m,
                known: entry,
            });
        } else if let Some(k) = entry {
            stale.push(format!("{}: {} is listed but agrees", k.case, k.field));
        }
    };
    check(
        "status",
        ours.status == moto.status,
        ours.status.clone(),
        moto.status.clone(),
    );

    check("output", same_output, show(&o_out), show(&m_out));
    check(
        "error",
        ours.error == moto.error,
        show(&ours.error),
        show(&moto.error),
    );
    check(
        "cause",
        ours.cause == moto.cause,
        show(&ours.cause),
        show(&moto.cause),
    );
    let (o_states, m_states) = (
        scopes.canonical(&ours.states),
        scopes.canonical(&moto.states),
    );
    check(
        "states",
        o_states == m_states,
        show(&o_states),
        show(&m_states),
    );
    check("tasks", same_tasks, show(&o_tasks), show(&m_tasks));
    (diffs, stale)
}

/// The differing fields, each named once, in comparison order.
fn fields<'a>(diffs: impl Iterator<Item = &'a Difference>) -> String {
    let mut names: Vec<&str> = Vec::new();
    for d in diffs {
        if !names.contains(&d.field) {
            names.push(d.field);
        }
    }
    names.join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_interpreter_agrees_with_motos_on_the_corpus() {
    let Ok(url) = std::env::var("SWITCHYARD_TEST_MOTO_URL") else {
        panic!(
            "SWITCHYARD_TEST_MOTO_URL is not set: this test compares our ASL interpreter with \
             moto's and needs the moto server that tests/run starts; run it through tests/run"
        );
    };
    let cases = load_corpus();
    assert!(
        cases.len() >= 40,
        "the corpus has only {} cases",
        cases.len()
    );
    let known = load_known(&cases);
    let mut moto = Moto::connect(&url).await;

    let mut table = String::new();
    let mut report = String::new();
    let (mut agree, mut known_count, mut different) = (0, 0, 0);
    let mut stale_all = Vec::new();
    let mut corpus_errors = Vec::new();
    let started = Instant::now();
    for case in &cases {
        moto.queue(&case.task_results);
        let run = moto.run(&case.name, &case.definition, &case.input).await;
        let leftover = case
            .task_results
            .len()
            .saturating_sub(run.outcome.tasks.len());
        if leftover > 0 {
            moto.drain(leftover).await;
        }
        let ours = run_ours(case, &run.machine_arn, &run.execution_name, run.start).await;
        if ours.tasks.len() != case.task_results.len() {
            corpus_errors.push(format!(
                "{}: our runner invoked {} tasks but the case scripts {} results",
                case.name,
                ours.tasks.len(),
                case.task_results.len()
            ));
        }
        let (diffs, stale) = compare(case, &ours, &run.outcome, &known);
        stale_all.extend(stale);
        let verdict = if diffs.is_empty() {
            agree += 1;
            "agree".to_owned()
        } else if diffs.iter().all(|d| d.known.is_some()) {
            known_count += 1;
            format!("known difference ({})", fields(diffs.iter()))
        } else {
            different += 1;
            format!(
                "DIFFERENT ({})",
                fields(diffs.iter().filter(|d| d.known.is_none()))
            )
        };
        writeln!(table, "{:<36} {verdict}", case.name).unwrap();
        if let Some(note) = &run.note {
            writeln!(report, "{}: note: {note}", case.name).unwrap();
        }
        for d in &diffs {
            let tag = if d.known.is_some() { "known" } else { "NEW" };
            writeln!(
                report,
                "{} [{tag}] {}:\n    ours: {}\n    moto: {}",
                case.name, d.field, d.ours, d.moto
            )
            .unwrap();
        }
    }
    println!("\n{:<36} verdict\n{table}", "case");
    if !report.is_empty() {
        println!("details:\n{report}");
    }
    let summary = format!(
        "{} cases, {agree} agree, {known_count} known differences ({:.1} s)",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{summary}");
    // Passing tests' output is captured; tests/run prints this file so the counts are seen.
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/differential-report.txt"),
        format!("{:<36} verdict\n{table}\n{summary}\n", "case"),
    );
    let mut problems = Vec::new();
    if different > 0 {
        problems.push(format!(
            "{different} case(s) differ in ways tests/asl/KNOWN_DIFFERENCES.md does not list"
        ));
    }
    problems.extend(stale_all);
    problems.extend(corpus_errors);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
