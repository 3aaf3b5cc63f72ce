//! `cargo bench -p switchyard-asl --bench transitions`: what the local interpreter costs a state
//! transition. Runs every machine of the ASL corpus (`tests/asl`, the differential test's cases:
//! each definition with its input and scripted task answers, the deploy machine's among them) on a
//! virtual clock, many times over, and prints the median time per state transition, as the
//! Runner counts them (Step Functions' billing unit). Issue 15 quoted 1.1 µs without saying how
//! it was measured; this benchmark, run on `main` before the runner stopped copying a state's data
//! for its default paths, read 3.9-4.1 µs (median 4.0), which is its line: no worse than that.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use serde_json::Value;
use switchyard_asl::{
    ManualClock, Runner, StateMachine, TaskContext, TaskFailure, TaskInvoker, substitute,
};

const ROUNDS: usize = 7;
const REPEATS: usize = 40;
const BASELINE_US: f64 = 4.0;

struct Case {
    definition: Value,
    input: Value,
    answers: Vec<Result<Value, (String, String)>>,
}

/// Answers Tasks in the case's order; echoes the input when the script runs out, as the
/// differential test's moto backend does.
struct Scripted(Mutex<VecDeque<Result<Value, (String, String)>>>);

#[async_trait::async_trait]
impl TaskInvoker for Scripted {
    async fn invoke(
        &self,
        _resource: &str,
        input: Value,
        _ctx: &TaskContext,
    ) -> Result<Value, TaskFailure> {
        let next = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        match next {
            Some(Ok(value)) => Ok(value),
            Some(Err((error, cause))) => Err(TaskFailure::new(error, cause)),
            None => Ok(input),
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(path: &Path) -> Option<Case> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let definition = match (doc.get("definition"), doc.get("definition_file")) {
        (Some(definition), _) => definition.clone(),
        (None, Some(Value::String(file))) => {
            let vars: BTreeMap<String, String> = doc
                .get("substitutions")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            let text = std::fs::read_to_string(root().join(file)).ok()?;
            serde_json::from_str(&substitute(&text, &vars).ok()?).ok()?
        }
        _ => return None,
    };
    let answers = doc
        .get("task_results")?
        .as_array()?
        .iter()
        .map(|r| match (r.get("ok"), r.get("error"), r.get("cause")) {
            (Some(v), _, _) => Ok(v.clone()),
            (_, Some(e), Some(c)) => Err((
                e.as_str().unwrap_or_default().to_owned(),
                c.as_str().unwrap_or_default().to_owned(),
            )),
            _ => Ok(Value::Null),
        })
        .collect();
    Some(Case {
        definition,
        input: doc.get("input")?.clone(),
        answers,
    })
}

/// One runner per case, built once; its script is dealt again before each run.
struct Bench<'a> {
    runner: Runner,
    script: Arc<Scripted>,
    case: &'a Case,
}

/// Runs every case once; the state transitions they made.
async fn run_all(benches: &[Bench<'_>]) -> u64 {
    let mut transitions = 0;
    for bench in benches {
        *bench.script.0.lock().unwrap_or_else(|p| p.into_inner()) =
            bench.case.answers.iter().cloned().collect();
        transitions += bench
            .runner
            .run("bench", bench.case.input.clone())
            .await
            .state_transitions;
    }
    transitions
}

fn main() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/asl"))
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    let cases: Vec<Case> = files
        .iter()
        .filter_map(|f| {
            let case = load(f);
            if case.is_none() {
                eprintln!("{}: not a corpus case, left out", f.display());
            }
            case
        })
        .collect();
    let start = Utc::now();
    // Cases whose definition Step Functions refuses are about validation, not transitions.
    let benches: Vec<Bench<'_>> = cases
        .iter()
        .filter_map(|case| {
            let machine = StateMachine::from_value(case.definition.clone()).ok()?;
            let script = Arc::new(Scripted(Mutex::new(VecDeque::new())));
            let runner = Runner::new(machine, script.clone(), Arc::new(ManualClock::new(start)));
            Some(Bench {
                runner,
                script,
                case,
            })
        })
        .collect();
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("no tokio runtime");
        return;
    };
    let mut per_transition = Vec::new();
    let mut transitions_per_pass = 0;
    for _ in 0..ROUNDS {
        let began = Instant::now();
        let mut transitions = 0;
        for _ in 0..REPEATS {
            transitions += runtime.block_on(run_all(&benches));
        }
        let elapsed = began.elapsed().as_secs_f64();
        transitions_per_pass = transitions / REPEATS as u64;
        per_transition.push(elapsed * 1e6 / transitions.max(1) as f64);
    }
    per_transition.sort_by(f64::total_cmp);
    let median = per_transition[per_transition.len() / 2];
    println!("| measure (median of {ROUNDS} rounds) | value | target |");
    println!("|---|---|---|");
    println!(
        "| ASL runner, per state transition ({} corpus machines, {transitions_per_pass} transitions a pass) | {median:.2} µs | {} (<= {BASELINE_US} µs) |",
        benches.len(),
        if median <= BASELINE_US { "ok" } else { "OVER" }
    );
}
