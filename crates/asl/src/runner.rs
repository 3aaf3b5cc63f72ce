//! Running a state machine: the interpreter loop, data flow, retries, catches and limits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::clock::Clock;
use crate::error::{Failure, error_matches, names};
use crate::history::{Execution, ExecutionStatus, HistoryEvent, HistoryEventKind};
use crate::model::{
    Bound, Distributed, Kind, PathField, Processing, Retrier, Scope, Source, State, StateMachine,
    WaitFor,
};
use crate::rng::Rng;
use crate::template::{EvalEnv, StateContext, Template, aws_timestamp};

/// The ARN a runner gives its machine unless told otherwise.
pub const DEFAULT_STATE_MACHINE_ARN: &str = "arn:aws:states:local:000000000000:stateMachine:local";
/// AWS Standard workflows fail an execution whose history passes 25,000 events.
pub const DEFAULT_MAX_HISTORY_EVENTS: usize = 25_000;
/// The AWS payload quota for a state's input or output, serialized: 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 262_144;
/// `$$.Execution.RoleArn` of a local execution.
pub const LOCAL_ROLE_ARN: &str = "arn:aws:iam::000000000000:role/switchyard-local-stepfunctions";

/// What a Task invocation knows about where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContext {
    /// The Task state's name.
    pub state_name: String,
    /// The execution ARN (`$$.Execution.Id`).
    pub execution_id: String,
    /// How many times this state has been retried so far (`$$.State.RetryCount`).
    pub retry_count: u32,
    /// The Task's static `TimeoutSeconds`: an invoker that waits (a `.sync` integration) fails
    /// with `States.Timeout` past it.
    pub timeout_seconds: Option<u64>,
}

/// A Task's failure: the error name (matched by Retry/Catch verbatim) and its cause.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskFailure {
    /// The error name, e.g. `Lambda.ServiceException` or a handler's own.
    pub error: String,
    /// A human-readable cause.
    pub cause: String,
}

impl TaskFailure {
    /// A failure with this error name and cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskFailure {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Does the work of Task states.
///
/// A Task's `TimeoutSeconds`/`HeartbeatSeconds` (and their `...Path` forms) are validated but not
/// enforced: an invoker that can hang must bound itself. The machine-level `TimeoutSeconds` is
/// enforced, on the runner's clock, once the invocation returns.
#[async_trait::async_trait]
pub trait TaskInvoker: Send + Sync {
    /// `resource` is the Task's Resource; `input` the effective input after InputPath/Parameters.
    async fn invoke(
        &self,
        resource: &str,
        input: Value,
        ctx: &TaskContext,
    ) -> Result<Value, TaskFailure>;
}

/// Sees every history event as it is appended (live progress).
pub trait Observer: Send + Sync {
    /// Called once per event, in order, on the executing task.
    fn on_event(&self, event: &HistoryEvent);
}

/// Runs executions of one state machine.
pub struct Runner {
    machine: StateMachine,
    invoker: Arc<dyn TaskInvoker>,
    clock: Arc<dyn Clock>,
    observer: Option<Arc<dyn Observer>>,
    state_machine_arn: String,
    max_history_events: usize,
    /// A bound of the runner's own on how long an execution may run, besides the machine's
    /// `TimeoutSeconds`.
    max_duration: Option<Duration>,
}

impl Runner {
    /// A runner invoking Tasks through `invoker` and telling time with `clock`.
    pub fn new(
        machine: StateMachine,
        invoker: Arc<dyn TaskInvoker>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Runner {
            machine,
            invoker,
            clock,
            observer: None,
            state_machine_arn: DEFAULT_STATE_MACHINE_ARN.to_owned(),
            max_history_events: DEFAULT_MAX_HISTORY_EVENTS,
            max_duration: None,
        }
    }

    /// Times out executions (`States.Timeout`) that run longer than `limit`, whatever the
    /// machine's `TimeoutSeconds` allows (Step Functions' own bound is a year). A local run on
    /// a virtual clock uses it so that a runaway machine does not carry the clock months ahead.
    pub fn with_max_duration(mut self, limit: Duration) -> Self {
        self.max_duration = Some(limit);
        self
    }

    /// Reports every event to `observer` as it happens.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The machine's ARN, shown as `$$.StateMachine.Id` and used to form execution ARNs.
    pub fn with_state_machine_arn(mut self, arn: impl Into<String>) -> Self {
        self.state_machine_arn = arn.into();
        self
    }

    /// Fails executions (`States.Runtime`) whose history would pass `n` events.
    pub fn with_max_history_events(mut self, n: usize) -> Self {
        self.max_history_events = n;
        self
    }

    fn limit_seconds(&self) -> (Option<u64>, Option<u64>) {
        (
            self.machine.timeout_seconds,
            self.max_duration.map(|limit| limit.as_secs()),
        )
    }

    /// The earlier of the machine's `TimeoutSeconds` and the runner's own bound.
    fn deadline(
        &self,
        start: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let (machine, runner) = self.limit_seconds();
        let seconds = match (machine, runner) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }?;
        start.checked_add_signed(chrono::Duration::seconds(i64::try_from(seconds).ok()?))
    }

    fn timeout_cause(&self) -> String {
        match self.limit_seconds() {
            (Some(machine), runner) if runner.is_none_or(|r| machine <= r) => {
                format!("the execution ran past its TimeoutSeconds of {machine}")
            }
            (_, Some(runner)) => {
                format!("the execution ran past the local runner's limit of {runner} seconds")
            }
            _ => "the execution timed out".to_owned(),
        }
    }

    /// The machine this runner runs.
    pub fn machine(&self) -> &StateMachine {
        &self.machine
    }

    /// Runs one execution to its end. Never panics: every problem becomes a failed execution.
    pub async fn run(&self, execution_name: &str, input: Value) -> Execution {
        let start = self.clock.now();
        let execution_arn = execution_arn(&self.state_machine_arn, execution_name);
        let mut exec = Exec {
            runner: self,
            execution_ctx: json!({
                "Id": execution_arn,
                "Input": input,
                "Name": execution_name,
                "RoleArn": LOCAL_ROLE_ARN,
                "StartTime": aws_timestamp(start),
                "RedriveCount": 0,
            }),
            machine_ctx: json!({
                "Id": self.state_machine_arn,
                "Name": machine_name(&self.state_machine_arn),
            }),
            execution_arn: execution_arn.clone(),
            history: Vec::new(),
            transitions: 0,
            rng: Rng::from_name(execution_name),
            deadline: self.deadline(start),
        };
        let outcome = match exec.emit(HistoryEventKind::ExecutionStarted {
            input: input.clone(),
        }) {
            Err(e) => Err(e),
            Ok(()) => match check_size(&input, "execution input") {
                Err(f) => Err(Interrupt::Failed(f)),
                Ok(()) => exec.run_scope(&self.machine.root, input.clone()).await,
            },
        };
        let (status, output, error, cause) = match outcome {
            Ok(output) => (ExecutionStatus::Succeeded, Some(output), None, None),
            Err(Interrupt::Failed(f)) => (
                ExecutionStatus::Failed,
                None,
                non_empty(f.error),
                non_empty(f.cause),
            ),
            Err(Interrupt::TimedOut) => (
                ExecutionStatus::TimedOut,
                None,
                Some(names::TIMEOUT.to_owned()),
                Some(self.timeout_cause()),
            ),
            Err(Interrupt::HistoryFull) => (
                ExecutionStatus::Failed,
                None,
                Some(names::RUNTIME.to_owned()),
                Some(format!(
                    "the execution history reached the limit of {} events",
                    self.max_history_events
                )),
            ),
        };
        // The closing event is the one event allowed past the history limit: without it the
        // history would not say how the execution ended.
        exec.record(match status {
            ExecutionStatus::Succeeded => HistoryEventKind::ExecutionSucceeded {
                output: output.clone().unwrap_or(Value::Null),
            },
            ExecutionStatus::TimedOut => HistoryEventKind::ExecutionTimedOut {
                error: error.clone(),
                cause: cause.clone(),
            },
            _ => HistoryEventKind::ExecutionFailed {
                error: error.clone(),
                cause: cause.clone(),
            },
        });
        Execution {
            execution_arn,
            name: execution_name.to_owned(),
            status,
            input,
            output,
            error,
            cause,
            start_date: start,
            stop_date: self.clock.now(),
            state_transitions: exec.transitions,
            history: exec.history,
        }
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn execution_arn(machine_arn: &str, name: &str) -> String {
    match machine_arn.split_once(":stateMachine:") {
        Some((prefix, rest)) => {
            let machine = rest.split(':').next().unwrap_or(rest);
            format!("{prefix}:execution:{machine}:{name}")
        }
        None => format!("{machine_arn}:{name}"),
    }
}

fn machine_name(machine_arn: &str) -> String {
    match machine_arn.split_once(":stateMachine:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_owned(),
        None => machine_arn
            .rsplit(':')
            .next()
            .unwrap_or(machine_arn)
            .to_owned(),
    }
}

/// Counts serialized bytes without building the text.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check_size(value: &Value, what: &str) -> Result<(), Failure> {
    let mut counter = ByteCounter(0);
    // Writing a Value to a sink that cannot fail cannot fail either.
    let _ = serde_json::to_writer(&mut counter, value);
    if counter.0 > MAX_PAYLOAD_BYTES {
        return Err(Failure::new(
            names::DATA_LIMIT_EXCEEDED,
            format!(
                "the {what} has {} bytes, more than the limit of {MAX_PAYLOAD_BYTES}",
                counter.0
            ),
        ));
    }
    Ok(())
}

/// Reads InputPath / OutputPath / ItemsPath: absent keeps the value, `null` gives `{}`.
fn select(field: &PathField, value: &Value, name: &str) -> Result<Value, Failure> {
    match field {
        PathField::Default => Ok(value.clone()),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(path) => path.read(value).ok_or_else(|| {
            Failure::runtime(format!(
                "invalid {name} '{path}': it selects nothing in {}",
                crate::template::preview(value)
            ))
        }),
    }
}

/// [`select`] of a value the caller is done with: the default path moves it rather than copying
/// (a state's data is copied enough for its history already).
fn select_owned(field: &PathField, value: Value, name: &str) -> Result<Value, Failure> {
    match field {
        PathField::Default => Ok(value),
        _ => select(field, &value, name),
    }
}

fn apply_result_path(field: &PathField, raw: &Value, result: Value) -> Result<Value, Failure> {
    match field {
        PathField::Default => Ok(result),
        PathField::Null => Ok(raw.clone()),
        PathField::Path(path) => path.write(raw.clone(), result).map_err(Failure::runtime),
    }
}

/// Why a scope stopped early. Only `Failed` can be retried or caught.
#[derive(Debug)]
enum Interrupt {
    Failed(Failure),
    TimedOut,
    HistoryFull,
}

impl From<Failure> for Interrupt {
    fn from(f: Failure) -> Self {
        Interrupt::Failed(f)
    }
}

/// Which history events frame the children of a Parallel or Map state.
#[derive(Clone, Copy)]
enum Children {
    ParallelBranches,
    MapIterations,
}

impl Children {
    fn started(self, index: usize) -> HistoryEventKind {
        match self {
            Children::ParallelBranches => HistoryEventKind::ParallelBranchStarted { index },
            Children::MapIterations => HistoryEventKind::MapIterationStarted { index },
        }
    }

    fn succeeded(self, index: usize) -> HistoryEventKind {
        match self {
            Children::ParallelBranches => HistoryEventKind::ParallelBranchSucceeded { index },
            Children::MapIterations => HistoryEventKind::MapIterationSucceeded { index },
        }
    }

    fn failed(self, index: usize) -> HistoryEventKind {
        match self {
            Children::ParallelBranches => HistoryEventKind::ParallelBranchFailed { index },
            Children::MapIterations => HistoryEventKind::MapIterationFailed { index },
        }
    }
}

/// One visit of a state.
struct Visit<'s> {
    state: &'s State,
    entered: DateTime<Utc>,
    retry_count: u32,
}

type ScopeFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, Interrupt>> + Send + 'a>>;

/// The mutable side of one execution.
struct Exec<'r> {
    runner: &'r Runner,
    execution_arn: String,
    execution_ctx: Value,
    machine_ctx: Value,
    history: Vec<HistoryEvent>,
    transitions: u64,
    rng: Rng,
    deadline: Option<DateTime<Utc>>,
}

impl<'r> Exec<'r> {
    fn record(&mut self, kind: HistoryEventKind) {
        let event = HistoryEvent {
            id: self.history.len() as u64 + 1,
            timestamp: self.runner.clock.now(),
            kind,
        };
        tracing::trace!(id = event.id, kind = ?event.kind, "history event");
        if let Some(observer) = &self.runner.observer {
            observer.on_event(&event);
        }
        self.history.push(event);
    }

    fn emit(&mut self, kind: HistoryEventKind) -> Result<(), Interrupt> {
        if self.history.len() >= self.runner.max_history_events {
            return Err(Interrupt::HistoryFull);
        }
        self.record(kind);
        Ok(())
    }

    fn check_deadline(&self) -> Result<(), Interrupt> {
        match self.deadline {
            Some(deadline) if self.runner.clock.now() >= deadline => Err(Interrupt::TimedOut),
            _ => Ok(()),
        }
    }

    /// Sleeps on the clock, but no further than the execution's deadline.
    async fn sleep(&mut self, duration: Duration) -> Result<(), Interrupt> {
        if let Some(deadline) = self.deadline {
            let left = (deadline - self.runner.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            if duration >= left {
                self.runner.clock.sleep(left).await;
                return Err(Interrupt::TimedOut);
            }
        }
        self.runner.clock.sleep(duration).await;
        Ok(())
    }

    fn eval<R>(
        &mut self,
        visit: &Visit<'_>,
        input: &Value,
        map_item: Option<(usize, &Value)>,
        f: impl FnOnce(&mut EvalEnv<'_>) -> R,
    ) -> R {
        let ctx = StateContext {
            execution: &self.execution_ctx,
            state_machine: &self.machine_ctx,
            state_name: &visit.state.name,
            entered_time: visit.entered,
            retry_count: visit.retry_count,
            map_item,
        };
        let mut env = EvalEnv::new(input, &ctx, &mut self.rng);
        f(&mut env)
    }

    fn template(
        &mut self,
        visit: &Visit<'_>,
        template: Option<&Template>,
        input: Value,
    ) -> Result<Value, Failure> {
        match template {
            None => Ok(input),
            Some(t) => self.eval(visit, &input, None, |env| t.eval(env)),
        }
    }

    /// InputPath, then Parameters.
    fn effective_input(
        &mut self,
        visit: &Visit<'_>,
        raw: &Value,
        parameters: Option<&Template>,
    ) -> Result<Value, Failure> {
        let input = select(&visit.state.input_path, raw, "InputPath")?;
        let input = self.template(visit, parameters, input)?;
        check_size(&input, &format!("input of state '{}'", visit.state.name))?;
        Ok(input)
    }

    /// ResultSelector, ResultPath, OutputPath.
    fn finish(
        &mut self,
        visit: &Visit<'_>,
        raw: &Value,
        result: Value,
        selector: Option<&Template>,
        result_path: &PathField,
    ) -> Result<Value, Failure> {
        let result = self.template(visit, selector, result)?;
        let output = apply_result_path(result_path, raw, result)?;
        let output = select_owned(&visit.state.output_path, output, "OutputPath")?;
        check_size(&output, &format!("output of state '{}'", visit.state.name))?;
        Ok(output)
    }

    fn run_scope<'a>(&'a mut self, scope: &'r Scope, input: Value) -> ScopeFuture<'a> {
        Box::pin(async move {
            let mut input = input;
            let mut current = scope.start_at.as_str();
            loop {
                self.check_deadline()?;
                let Some(state) = scope.states.get(current) else {
                    return Err(Failure::runtime(format!("no state named '{current}'")).into());
                };
                self.transitions += 1;
                let entered = self.runner.clock.now();
                self.emit(HistoryEventKind::StateEntered {
                    state_type: state.type_name.to_owned(),
                    name: state.name.clone(),
                    input: input.clone(),
                })?;
                let (output, next) = self.run_state(state, input, entered).await?;
                self.emit(HistoryEventKind::StateExited {
                    name: state.name.clone(),
                    output: output.clone(),
                })?;
                match next {
                    Some(next) => {
                        current = next;
                        input = output;
                    }
                    None => return Ok(output),
                }
            }
        })
    }

    async fn run_state(
        &mut self,
        state: &'r State,
        raw: Value,
        entered: DateTime<Utc>,
    ) -> Result<(Value, Option<&'r str>), Interrupt> {
        let visit = Visit {
            state,
            entered,
            retry_count: 0,
        };
        let next = state.next.as_deref();
        match &state.kind {
            Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map { .. } => {
                self.run_with_retries(state, raw, entered).await
            }
            Kind::Pass {
                parameters,
                result,
                result_path,
            } => {
                let input = self.effective_input(&visit, &raw, parameters.as_ref())?;
                let result = result.clone().unwrap_or(input);
                Ok((self.finish(&visit, &raw, result, None, result_path)?, next))
            }
            Kind::Choice { choices, default } => {
                let input = select_owned(&state.input_path, raw, "InputPath")?;
                let mut chosen = None;
                for (rule, target) in choices {
                    if self.eval(&visit, &input, None, |env| rule.eval(env))? {
                        chosen = Some(target.as_str());
                        break;
                    }
                }
                let Some(target) = chosen.or(default.as_deref()) else {
                    return Err(Failure::new(
                        names::NO_CHOICE_MATCHED,
                        format!(
                            "no choice rule of state '{}' matched and it has no Default",
                            state.name
                        ),
                    )
                    .into());
                };
                let output = select_owned(&state.output_path, input, "OutputPath")?;
                Ok((output, Some(target)))
            }
            Kind::Wait(how) => {
                let input = select_owned(&state.input_path, raw, "InputPath")?;
                let duration = self.wait_duration(how, &input)?;
                self.emit(HistoryEventKind::WaitStarted {
                    name: state.name.clone(),
                    seconds: duration.as_secs_f64(),
                })?;
                self.sleep(duration).await?;
                Ok((select_owned(&state.output_path, input, "OutputPath")?, next))
            }
            Kind::Succeed => {
                let input = select_owned(&state.input_path, raw, "InputPath")?;
                Ok((select_owned(&state.output_path, input, "OutputPath")?, None))
            }
            Kind::Fail { error, cause } => {
                let error = self.fail_text(&visit, error.as_ref(), &raw, "ErrorPath")?;
                let cause = self.fail_text(&visit, cause.as_ref(), &raw, "CausePath")?;
                Err(Failure::new(error, cause).into())
            }
        }
    }

    fn fail_text(
        &mut self,
        visit: &Visit<'_>,
        source: Option<&Source>,
        raw: &Value,
        field: &str,
    ) -> Result<String, Failure> {
        match source {
            None => Ok(String::new()),
            Some(Source::Literal(text)) => Ok(text.clone()),
            Some(Source::Expr(expr)) => {
                let what = format!("the field '{field}'");
                match self.eval(visit, raw, None, |env| expr.eval(env, &what))? {
                    Value::String(s) => Ok(s),
                    other => Err(Failure::runtime(format!(
                        "{field} of state '{}' must select a string, got {other}",
                        visit.state.name
                    ))),
                }
            }
        }
    }

    fn wait_duration(&self, how: &WaitFor, input: &Value) -> Result<Duration, Failure> {
        let until = |t: DateTime<Utc>| {
            (t - self.runner.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
        };
        match how {
            WaitFor::Seconds(s) => Ok(Duration::from_secs(*s)),
            WaitFor::Timestamp(t) => Ok(until(*t)),
            WaitFor::SecondsPath(path) => {
                let value = path.read(input).ok_or_else(|| {
                    Failure::runtime(format!("invalid SecondsPath '{path}': it selects nothing"))
                })?;
                let seconds = value.as_u64().or_else(|| {
                    value
                        .as_f64()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e15)
                        .map(|f| f as u64)
                });
                seconds.map(Duration::from_secs).ok_or_else(|| {
                    Failure::runtime(format!(
                        "SecondsPath '{path}' must select a non-negative integer, got {value}"
                    ))
                })
            }
            WaitFor::TimestampPath(path) => {
                let value = path.read(input).ok_or_else(|| {
                    Failure::runtime(format!(
                        "invalid TimestampPath '{path}': it selects nothing"
                    ))
                })?;
                value
                    .as_str()
                    .and_then(crate::choice::parse_timestamp)
                    .map(until)
                    .ok_or_else(|| {
                        Failure::runtime(format!(
                            "TimestampPath '{path}' must select an RFC 3339 timestamp, got {value}"
                        ))
                    })
            }
        }
    }

    async fn run_with_retries(
        &mut self,
        state: &'r State,
        raw: Value,
        entered: DateTime<Utc>,
    ) -> Result<(Value, Option<&'r str>), Interrupt> {
        let (retriers, catchers): (&[Retrier], _) = match state.processing() {
            Some(p) => (&p.retry, p.catch.as_slice()),
            None => (&[], &[][..]),
        };
        let mut attempts = vec![0u32; retriers.len()];
        let mut retry_count = 0u32;
        loop {
            let visit = Visit {
                state,
                entered,
                retry_count,
            };
            let failure = match self.attempt(&visit, &raw).await {
                Ok(output) => return Ok((output, state.next.as_deref())),
                Err(Interrupt::Failed(f)) => f,
                Err(other) => return Err(other),
            };
            // The first retrier naming the error decides, even when it has no attempts left.
            if let Some(i) = retriers
                .iter()
                .position(|r| r.errors.iter().any(|e| error_matches(e, &failure.error)))
            {
                let retrier = &retriers[i];
                if attempts[i] < retrier.max_attempts {
                    let delay = self.backoff(retrier, attempts[i]);
                    attempts[i] += 1;
                    retry_count += 1;
                    self.emit(HistoryEventKind::RetryScheduled {
                        state: state.name.clone(),
                        error: failure.error.clone(),
                        attempt: retry_count,
                        delay_seconds: delay.as_secs_f64(),
                    })?;
                    self.sleep(delay).await?;
                    self.transitions += 1;
                    continue;
                }
            }
            let Some(catcher) = catchers
                .iter()
                .find(|c| c.errors.iter().any(|e| error_matches(e, &failure.error)))
            else {
                return Err(failure.into());
            };
            self.emit(HistoryEventKind::CatchMatched {
                state: state.name.clone(),
                error: failure.error.clone(),
                next: catcher.next.clone(),
            })?;
            let mut error_output = Map::new();
            error_output.insert("Error".into(), Value::String(failure.error));
            if !failure.cause.is_empty() {
                error_output.insert("Cause".into(), Value::String(failure.cause));
            }
            let output =
                apply_result_path(&catcher.result_path, &raw, Value::Object(error_output))?;
            check_size(&output, &format!("output of state '{}'", state.name))?;
            return Ok((output, Some(catcher.next.as_str())));
        }
    }

    /// IntervalSeconds × BackoffRate^n, capped by MaxDelaySeconds, then FULL jitter if asked.
    fn backoff(&mut self, retrier: &Retrier, previous_attempts: u32) -> Duration {
        let exponent = i32::try_from(previous_attempts).unwrap_or(i32::MAX);
        let mut seconds = retrier.interval_seconds * retrier.backoff_rate.powi(exponent);
        if let Some(cap) = retrier.max_delay_seconds {
            seconds = seconds.min(cap);
        }
        if retrier.full_jitter {
            seconds *= self.rng.next_f64();
        }
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    }

    async fn attempt(&mut self, visit: &Visit<'r>, raw: &Value) -> Result<Value, Interrupt> {
        let state = visit.state;
        match &state.kind {
            Kind::Task {
                resource,
                processing,
                timeout_seconds,
            } => {
                self.task(visit, raw, resource, processing, *timeout_seconds)
                    .await
            }
            Kind::Parallel {
                branches,
                processing,
            } => {
                let input = self.effective_input(visit, raw, processing.parameters.as_ref())?;
                self.run_children(
                    Children::ParallelBranches,
                    visit,
                    raw,
                    processing,
                    branches.iter().map(|branch| (branch, ())),
                    |_, _, ()| Ok(input.clone()),
                )
                .await
            }
            Kind::Map {
                processor,
                items_path,
                item_selector,
                processing,
                distributed,
            } => {
                let input = self.effective_input(visit, raw, None)?;
                let items = match select(items_path, &input, "ItemsPath")? {
                    Value::Array(items) => items,
                    other => {
                        return Err(Failure::runtime(format!(
                            "the items of Map state '{}' must be an array, got {}",
                            state.name,
                            crate::template::preview(&other)
                        ))
                        .into());
                    }
                };
                if let Some(distributed) = distributed {
                    return self
                        .map_run(
                            visit,
                            raw,
                            processing,
                            processor,
                            items,
                            item_selector.as_ref(),
                            &input,
                            distributed,
                        )
                        .await;
                }
                self.run_children(
                    Children::MapIterations,
                    visit,
                    raw,
                    processing,
                    items.into_iter().map(|item| (&**processor, item)),
                    |exec, index, item| match item_selector {
                        Some(t) => {
                            Ok(exec.eval(visit, &input, Some((index, &item)), |env| t.eval(env))?)
                        }
                        None => Ok(item),
                    },
                )
                .await
            }
            _ => Err(Failure::runtime(format!("state '{}' cannot be retried", state.name)).into()),
        }
    }

    /// Runs the children of a Parallel or Map state one after another, each
    /// framed by its Started and Succeeded / Failed events, then finishes the
    /// state with their outputs as an array. `child_input` builds a child's
    /// input just before it starts.
    async fn run_children<T>(
        &mut self,
        children: Children,
        visit: &Visit<'r>,
        raw: &Value,
        processing: &Processing,
        scopes: impl ExactSizeIterator<Item = (&'r Scope, T)> + Send,
        mut child_input: impl FnMut(&mut Self, usize, T) -> Result<Value, Interrupt> + Send,
    ) -> Result<Value, Interrupt>
    where
        T: Send,
    {
        let mut results = Vec::with_capacity(scopes.len());
        for (index, (scope, seed)) in scopes.enumerate() {
            let input = child_input(self, index, seed)?;
            self.emit(children.started(index))?;
            match self.run_scope(scope, input).await {
                Ok(output) => {
                    self.emit(children.succeeded(index))?;
                    results.push(output);
                }
                Err(Interrupt::Failed(f)) => {
                    self.emit(children.failed(index))?;
                    return Err(f.into());
                }
                Err(other) => return Err(other),
            }
        }
        Ok(self.finish(
            visit,
            raw,
            Value::Array(results),
            processing.result_selector.as_ref(),
            &processing.result_path,
        )?)
    }

    /// A Map in Distributed mode: each item runs as a child execution with a history (and a
    /// 25,000-event limit) of its own, so the parent's history holds only the Map Run's start and
    /// end. Children that fail are counted against ToleratedFailureCount / -Percentage (none
    /// given: no failure is tolerated); past them the state fails with
    /// `States.ExceedToleratedFailureThreshold`. The output is the succeeded children's outputs,
    /// in item order (a tolerated failure contributes none). Children run one after another on
    /// the runner's clock, as every iteration here does.
    #[allow(clippy::too_many_arguments)]
    async fn map_run(
        &mut self,
        visit: &Visit<'r>,
        raw: &Value,
        processing: &Processing,
        processor: &'r Scope,
        items: Vec<Value>,
        item_selector: Option<&Template>,
        input: &Value,
        distributed: &Distributed,
    ) -> Result<Value, Interrupt> {
        let total = items.len();
        let tolerated_count = resolve_bound(
            distributed.tolerated_count.as_ref(),
            input,
            "ToleratedFailureCountPath",
            None,
        )?;
        let tolerated_percentage = resolve_bound(
            distributed.tolerated_percentage.as_ref(),
            input,
            "ToleratedFailurePercentagePath",
            Some(100.0),
        )?;
        let over = |failed: usize| -> bool {
            let by_count = tolerated_count.is_some_and(|n| failed as f64 > n);
            let by_share = match tolerated_percentage {
                Some(p) => total > 0 && failed as f64 * 100.0 / total as f64 > p,
                // Neither given: the first failure is too many.
                None => tolerated_count.is_none() && failed > 0,
            };
            by_count || by_share
        };
        self.emit(HistoryEventKind::MapRunStarted { items: total })?;
        let mut results = Vec::with_capacity(total);
        let mut failed = 0usize;
        for (index, item) in items.into_iter().enumerate() {
            let child_input = match item_selector {
                Some(t) => self.eval(visit, input, Some((index, &item)), |env| t.eval(env))?,
                None => item,
            };
            let parent_history = std::mem::take(&mut self.history);
            let child_id = format!(
                "{}/{}:{index}",
                self.execution_arn,
                visit.state.name.replace(' ', "_")
            );
            let child_ctx = json!({
                "Id": child_id,
                "Input": child_input,
                "Name": format!("{}:{index}", visit.state.name.replace(' ', "_")),
                "RoleArn": LOCAL_ROLE_ARN,
                "StartTime": aws_timestamp(self.runner.clock.now()),
                "RedriveCount": 0,
            });
            let parent_ctx = std::mem::replace(&mut self.execution_ctx, child_ctx);
            let outcome = self.run_scope(processor, child_input).await;
            self.execution_ctx = parent_ctx;
            self.history = parent_history;
            let failure = match outcome {
                Ok(output) => {
                    results.push(output);
                    continue;
                }
                Err(Interrupt::Failed(f)) => f,
                Err(Interrupt::HistoryFull) => Failure::runtime(format!(
                    "child execution {index} reached the history limit of {} events",
                    self.runner.max_history_events
                )),
                // The parent's own deadline.
                Err(other) => return Err(other),
            };
            failed += 1;
            if over(failed) {
                let cause = format!(
                    "{failed} of {total} child executions failed, more than tolerated; item {index} failed with {}: {}",
                    failure.error, failure.cause
                );
                self.emit(HistoryEventKind::MapRunFailed {
                    error: names::EXCEED_TOLERATED_FAILURE_THRESHOLD.to_owned(),
                    cause: cause.clone(),
                })?;
                return Err(Failure::new(names::EXCEED_TOLERATED_FAILURE_THRESHOLD, cause).into());
            }
        }
        self.emit(HistoryEventKind::MapRunSucceeded { failed })?;
        Ok(self.finish(
            visit,
            raw,
            Value::Array(results),
            processing.result_selector.as_ref(),
            &processing.result_path,
        )?)
    }

    async fn task(
        &mut self,
        visit: &Visit<'r>,
        raw: &Value,
        resource: &str,
        processing: &Processing,
        timeout_seconds: Option<u64>,
    ) -> Result<Value, Interrupt> {
        let input = self.effective_input(visit, raw, processing.parameters.as_ref())?;
        self.emit(HistoryEventKind::TaskScheduled {
            resource: resource.to_owned(),
            parameters: input.clone(),
        })?;
        let ctx = TaskContext {
            state_name: visit.state.name.clone(),
            execution_id: self.execution_arn.clone(),
            retry_count: visit.retry_count,
            timeout_seconds,
        };
        let outcome = self.runner.invoker.invoke(resource, input, &ctx).await;
        self.check_deadline()?;
        match outcome {
            Ok(result) => {
                self.emit(HistoryEventKind::TaskSucceeded {
                    resource: resource.to_owned(),
                    output: result.clone(),
                })?;
                check_size(&result, &format!("result of task '{}'", visit.state.name))?;
                Ok(self.finish(
                    visit,
                    raw,
                    result,
                    processing.result_selector.as_ref(),
                    &processing.result_path,
                )?)
            }
            Err(failure) => {
                self.emit(HistoryEventKind::TaskFailed {
                    resource: resource.to_owned(),
                    error: failure.error.clone(),
                    cause: failure.cause.clone(),
                })?;
                Err(Failure::new(failure.error, failure.cause).into())
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// A tolerance given in the definition, or read from the state's input at run time.
fn resolve_bound(
    bound: Option<&Bound>,
    input: &Value,
    field: &str,
    max: Option<f64>,
) -> Result<Option<f64>, Failure> {
    match bound {
        None => Ok(None),
        Some(Bound::Fixed(n)) => Ok(Some(*n)),
        Some(Bound::Path(path)) => {
            let value = select(&PathField::Path(path.clone()), input, field)?;
            match value.as_f64() {
                Some(n) if n >= 0.0 && max.is_none_or(|max| n <= max) => Ok(Some(n)),
                _ => Err(Failure::runtime(format!(
                    "{field} must resolve to a number from 0 to {}, got {}",
                    max.map_or("any".to_owned(), |m| m.to_string()),
                    crate::template::preview(&value)
                ))),
            }
        }
    }
}
