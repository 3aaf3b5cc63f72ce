//! Loading a definition: parsing every state into typed form and checking the rules of the
//! Amazon States Language, so that running it never meets a malformed definition.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::choice::{Rule, parse_timestamp};
use crate::error::{AslError, names};
use crate::path::Path;
use crate::template::{Expr, Template};

/// InputPath / OutputPath / ResultPath / ItemsPath: absent (the default `$`), `null`, or a path.
#[derive(Debug, Clone)]
pub(crate) enum PathField {
    Default,
    Null,
    Path(Path),
}

#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub errors: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub full_jitter: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Catcher {
    pub errors: Vec<String>,
    pub next: String,
    pub result_path: PathField,
}

/// The data flow and error handling shared by Task, Parallel and Map.
#[derive(Debug, Clone)]
pub(crate) struct Processing {
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub result_path: PathField,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

#[derive(Debug, Clone)]
pub(crate) enum WaitFor {
    Seconds(u64),
    SecondsPath(Path),
    Timestamp(DateTime<Utc>),
    TimestampPath(Path),
}

/// Error or Cause of a Fail state: a literal, or a path / intrinsic (ErrorPath, CausePath).
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Literal(String),
    Expr(Expr),
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Task {
        resource: String,
        processing: Processing,
        /// A static `TimeoutSeconds`: handed to the invoker, which must bound itself.
        timeout_seconds: Option<u64>,
    },
    Pass {
        parameters: Option<Template>,
        result: Option<Value>,
        result_path: PathField,
    },
    Choice {
        choices: Vec<(Rule, String)>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Succeed,
    Fail {
        error: Option<Source>,
        cause: Option<Source>,
    },
    Parallel {
        branches: Vec<Scope>,
        processing: Processing,
    },
    Map {
        processor: Box<Scope>,
        items_path: PathField,
        item_selector: Option<Template>,
        processing: Processing,
        /// `ProcessorConfig.Mode: DISTRIBUTED`: each item a child execution of its own.
        distributed: Option<Distributed>,
    },
}

/// A Map in Distributed mode: its iterations are child executions, each with a history of its
/// own, and it fails only past its tolerated failures.
#[derive(Debug, Clone)]
pub(crate) struct Distributed {
    pub tolerated_count: Option<Bound>,
    pub tolerated_percentage: Option<Bound>,
}

/// A number given in the definition, or read from the state's input.
#[derive(Debug, Clone)]
pub(crate) enum Bound {
    Fixed(f64),
    Path(Path),
}

#[derive(Debug, Clone)]
pub(crate) struct State {
    pub name: String,
    pub type_name: &'static str,
    pub input_path: PathField,
    pub output_path: PathField,
    /// `None` ends the scope (End: true, Succeed, Fail; Choice decides at run time).
    pub next: Option<String>,
    pub kind: Kind,
}

impl State {
    pub fn processing(&self) -> Option<&Processing> {
        match &self.kind {
            Kind::Task { processing, .. }
            | Kind::Parallel { processing, .. }
            | Kind::Map { processing, .. } => Some(processing),
            _ => None,
        }
    }
}

/// A set of states with a start: the machine itself, a Parallel branch or a Map processor.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

/// A parsed and validated state machine definition.
#[derive(Debug, Clone)]
pub struct StateMachine {
    definition: Value,
    pub(crate) root: Scope,
    pub(crate) timeout_seconds: Option<u64>,
}

impl StateMachine {
    /// Parses and validates an ASL JSON text.
    pub fn from_json(text: &str) -> Result<Self, AslError> {
        StateMachine::from_value(serde_json::from_str(text)?)
    }

    /// Validates an ASL definition already parsed as JSON.
    pub fn from_value(v: Value) -> Result<Self, AslError> {
        let loc = "state machine";
        let obj = object(&v, loc)?;
        check_fields(
            obj,
            loc,
            &[
                "StartAt",
                "States",
                "Comment",
                "Version",
                "TimeoutSeconds",
                "QueryLanguage",
            ],
        )?;
        check_query_language(obj, loc)?;
        let timeout_seconds = optional_uint(obj, "TimeoutSeconds", loc)?;
        if timeout_seconds == Some(0) {
            return Err(AslError::invalid(
                loc,
                "TimeoutSeconds must be positive, got 0",
            ));
        }
        let mut loader = Loader::default();
        let root = loader.scope(obj, loc)?;
        Ok(StateMachine {
            definition: v,
            root,
            timeout_seconds,
        })
    }

    /// The definition as given.
    pub fn definition(&self) -> &Value {
        &self.definition
    }

    /// Every Task `Resource` string in the machine, including inside Parallel branches and Map
    /// processors; sorted, without repeats.
    pub fn task_resources(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        visit(&self.root, &mut |state| {
            if let Kind::Task { resource, .. } = &state.kind {
                out.insert(resource.clone());
            }
        });
        out.into_iter().collect()
    }

    /// Every error name used in any Retry/Catch ErrorEquals, with the state using it; in state
    /// name order within each scope, Retry before Catch, without repeats.
    pub fn error_names(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        visit(&self.root, &mut |state| {
            if let Some(p) = state.processing() {
                let errors = p
                    .retry
                    .iter()
                    .flat_map(|r| &r.errors)
                    .chain(p.catch.iter().flat_map(|c| &c.errors));
                for error in errors {
                    let pair = (state.name.clone(), error.clone());
                    if !out.contains(&pair) {
                        out.push(pair);
                    }
                }
            }
        });
        out
    }
}

fn visit(scope: &Scope, f: &mut dyn FnMut(&State)) {
    for state in scope.states.values() {
        f(state);
        match &state.kind {
            Kind::Parallel { branches, .. } => {
                for b in branches {
                    visit(b, f);
                }
            }
            Kind::Map { processor, .. } => visit(processor, f),
            _ => {}
        }
    }
}

fn object<'v>(v: &'v Value, loc: &str) -> Result<&'v Map<String, Value>, AslError> {
    v.as_object()
        .ok_or_else(|| AslError::invalid(loc, format!("expected a JSON object, got {v}")))
}

/// Fields the language defines but this interpreter does not run: rejecting them beats
/// silently doing something else than AWS would.
const UNSUPPORTED: [&str; 8] = [
    "Assign",
    "Arguments",
    "Output",
    "Items",
    "ItemReader",
    "ResultWriter",
    "ItemBatcher",
    "Credentials",
];

/// Fields only a Map in Distributed mode may have.
const DISTRIBUTED_ONLY: [&str; 5] = [
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "Label",
];

fn check_fields(obj: &Map<String, Value>, loc: &str, allowed: &[&str]) -> Result<(), AslError> {
    for key in obj.keys() {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        if UNSUPPORTED.contains(&key.as_str()) {
            return Err(AslError::invalid(
                loc,
                format!("field {key} is not supported by this interpreter"),
            ));
        }
        return Err(AslError::invalid(loc, format!("unknown field {key}")));
    }
    Ok(())
}

fn check_query_language(obj: &Map<String, Value>, loc: &str) -> Result<(), AslError> {
    match obj.get("QueryLanguage") {
        None => Ok(()),
        Some(Value::String(s)) if s == "JSONPath" => Ok(()),
        Some(other) => Err(AslError::invalid(
            loc,
            format!("QueryLanguage {other} is not supported (only \"JSONPath\")"),
        )),
    }
}

fn optional_str<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    loc: &str,
) -> Result<Option<&'v str>, AslError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(AslError::invalid(
            loc,
            format!("{key} must be a string, got {other}"),
        )),
    }
}

fn required_str<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    loc: &str,
) -> Result<&'v str, AslError> {
    optional_str(obj, key, loc)?
        .ok_or_else(|| AslError::invalid(loc, format!("missing required field {key}")))
}

fn optional_uint(obj: &Map<String, Value>, key: &str, loc: &str) -> Result<Option<u64>, AslError> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            AslError::invalid(
                loc,
                format!("{key} must be a non-negative integer, got {v}"),
            )
        }),
    }
}

fn path_field(
    obj: &Map<String, Value>,
    key: &str,
    loc: &str,
    reference: bool,
) -> Result<PathField, AslError> {
    match obj.get(key) {
        None => Ok(PathField::Default),
        Some(Value::Null) => Ok(PathField::Null),
        Some(Value::String(s)) => {
            let parsed = if reference {
                Path::parse_reference_path(s)
            } else {
                Path::parse(s)
            };
            parsed
                .map(PathField::Path)
                .map_err(|e| AslError::invalid(loc, format!("{key}: {e}")))
        }
        Some(other) => Err(AslError::invalid(
            loc,
            format!("{key} must be a path string or null, got {other}"),
        )),
    }
}

fn template(obj: &Map<String, Value>, key: &str, loc: &str) -> Result<Option<Template>, AslError> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => Template::compile(v)
            .map(Some)
            .map_err(|e| AslError::invalid(loc, format!("{key}: {e}"))),
    }
}

fn error_equals(obj: &Map<String, Value>, loc: &str) -> Result<Vec<String>, AslError> {
    let Some(Value::Array(items)) = obj.get("ErrorEquals") else {
        return Err(AslError::invalid(
            loc,
            "ErrorEquals must be a non-empty array of error names",
        ));
    };
    let errors = items
        .iter()
        .map(|v| {
            v.as_str().map(str::to_owned).ok_or_else(|| {
                AslError::invalid(loc, format!("ErrorEquals entries must be strings, got {v}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if errors.is_empty() {
        return Err(AslError::invalid(
            loc,
            "ErrorEquals must be a non-empty array of error names",
        ));
    }
    if errors.len() > 1 && errors.iter().any(|e| e == names::ALL) {
        return Err(AslError::invalid(
            loc,
            format!("States.ALL must appear alone in ErrorEquals, got {errors:?}"),
        ));
    }
    Ok(errors)
}

fn positive_number(
    obj: &Map<String, Value>,
    key: &str,
    loc: &str,
) -> Result<Option<u64>, AslError> {
    match optional_uint(obj, key, loc)? {
        Some(0) => Err(AslError::invalid(
            loc,
            format!("{key} must be positive, got 0"),
        )),
        other => Ok(other),
    }
}

fn retriers(obj: &Map<String, Value>, loc: &str) -> Result<Vec<Retrier>, AslError> {
    let Some(value) = obj.get("Retry") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(AslError::invalid(
            loc,
            format!("Retry must be an array, got {value}"),
        ));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let rloc = format!("{loc} Retry[{i}]");
        let r = object(item, &rloc)?;
        check_fields(
            r,
            &rloc,
            &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ],
        )?;
        let errors = error_equals(r, &rloc)?;
        if errors[0] == names::ALL && i + 1 != items.len() {
            return Err(AslError::invalid(
                rloc,
                "a retrier on States.ALL must be the last retrier",
            ));
        }
        let interval = positive_number(r, "IntervalSeconds", &rloc)?.unwrap_or(1);
        let max_attempts = optional_uint(r, "MaxAttempts", &rloc)?.unwrap_or(3);
        let backoff_rate = match r.get("BackoffRate") {
            None => 2.0,
            Some(v) => match v.as_f64() {
                Some(rate) if rate >= 1.0 => rate,
                _ => {
                    return Err(AslError::invalid(
                        rloc,
                        format!("BackoffRate must be a number >= 1.0, got {v}"),
                    ));
                }
            },
        };
        let max_delay = positive_number(r, "MaxDelaySeconds", &rloc)?;
        let full_jitter = match optional_str(r, "JitterStrategy", &rloc)? {
            None | Some("NONE") => false,
            Some("FULL") => true,
            Some(other) => {
                return Err(AslError::invalid(
                    rloc,
                    format!("JitterStrategy must be FULL or NONE, got \"{other}\""),
                ));
            }
        };
        out.push(Retrier {
            errors,
            interval_seconds: interval as f64,
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            backoff_rate,
            max_delay_seconds: max_delay.map(|d| d as f64),
            full_jitter,
        });
    }
    Ok(out)
}

fn catchers(obj: &Map<String, Value>, loc: &str) -> Result<Vec<Catcher>, AslError> {
    let Some(value) = obj.get("Catch") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(AslError::invalid(
            loc,
            format!("Catch must be an array, got {value}"),
        ));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let cloc = format!("{loc} Catch[{i}]");
        let c = object(item, &cloc)?;
        check_fields(c, &cloc, &["ErrorEquals", "Next", "ResultPath", "Comment"])?;
        let errors = error_equals(c, &cloc)?;
        if errors[0] == names::ALL && i + 1 != items.len() {
            return Err(AslError::invalid(
                cloc,
                "a catcher on States.ALL must be the last catcher",
            ));
        }
        out.push(Catcher {
            errors,
            next: required_str(c, "Next", &cloc)?.to_owned(),
            result_path: path_field(c, "ResultPath", &cloc, true)?,
        });
    }
    Ok(out)
}

fn processing(
    obj: &Map<String, Value>,
    loc: &str,
    with_parameters: bool,
) -> Result<Processing, AslError> {
    Ok(Processing {
        parameters: if with_parameters {
            template(obj, "Parameters", loc)?
        } else {
            None
        },
        result_selector: template(obj, "ResultSelector", loc)?,
        result_path: path_field(obj, "ResultPath", loc, true)?,
        retry: retriers(obj, loc)?,
        catch: catchers(obj, loc)?,
    })
}

fn source(
    obj: &Map<String, Value>,
    literal: &str,
    path: &str,
    loc: &str,
) -> Result<Option<Source>, AslError> {
    match (
        optional_str(obj, literal, loc)?,
        optional_str(obj, path, loc)?,
    ) {
        (Some(_), Some(_)) => Err(AslError::invalid(
            loc,
            format!("{literal} and {path} are mutually exclusive"),
        )),
        (Some(text), None) => Ok(Some(Source::Literal(text.to_owned()))),
        (None, Some(text)) => Expr::parse(text)
            .map(|e| Some(Source::Expr(e)))
            .map_err(|e| AslError::invalid(loc, format!("{path}: {e}"))),
        (None, None) => Ok(None),
    }
}

const COMMON: [&str; 2] = ["Type", "Comment"];
const IO: [&str; 2] = ["InputPath", "OutputPath"];
const FLOW: [&str; 2] = ["Next", "End"];
const ERRORS: [&str; 5] = [
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "Retry",
    "Catch",
];

fn allowed(groups: &[&[&'static str]]) -> Vec<&'static str> {
    let mut out = vec!["QueryLanguage"];
    for g in groups {
        out.extend_from_slice(g);
    }
    out
}

#[derive(Default)]
struct Loader {
    names: HashSet<String>,
}

impl Loader {
    fn scope(&mut self, obj: &Map<String, Value>, loc: &str) -> Result<Scope, AslError> {
        let start_at = required_str(obj, "StartAt", loc)?.to_owned();
        let states_obj = match obj.get("States") {
            Some(Value::Object(m)) if !m.is_empty() => m,
            Some(Value::Object(_)) => {
                return Err(AslError::invalid(loc, "States must not be empty"));
            }
            Some(other) => {
                return Err(AslError::invalid(
                    loc,
                    format!("States must be an object, got {other}"),
                ));
            }
            None => return Err(AslError::invalid(loc, "missing required field States")),
        };
        let mut states = BTreeMap::new();
        for (name, def) in states_obj {
            let state = self.state(name, def)?;
            states.insert(name.clone(), state);
        }
        if !states.contains_key(&start_at) {
            return Err(AslError::invalid(
                loc,
                format!("StartAt \"{start_at}\" is not a state of this scope"),
            ));
        }
        for state in states.values() {
            let sloc = format!("state \"{}\"", state.name);
            for (field, target) in targets(state) {
                if !states.contains_key(target) {
                    return Err(AslError::invalid(
                        sloc,
                        format!("{field} \"{target}\" is not a state of this scope"),
                    ));
                }
            }
        }
        let mut reached = HashSet::from([start_at.as_str()]);
        let mut queue = VecDeque::from([start_at.as_str()]);
        while let Some(name) = queue.pop_front() {
            if let Some(state) = states.get(name) {
                for (_, target) in targets(state) {
                    if reached.insert(target) {
                        queue.push_back(target);
                    }
                }
            }
        }
        if let Some(unreached) = states.keys().find(|n| !reached.contains(n.as_str())) {
            return Err(AslError::invalid(
                format!("state \"{unreached}\""),
                format!("the state is not reachable from StartAt \"{start_at}\""),
            ));
        }
        Ok(Scope { start_at, states })
    }

    fn state(&mut self, name: &str, def: &Value) -> Result<State, AslError> {
        let loc = format!("state \"{name}\"");
        if name.chars().count() > 128 {
            return Err(AslError::invalid(
                loc,
                "a state name must be at most 128 characters",
            ));
        }
        if !self.names.insert(name.to_owned()) {
            return Err(AslError::invalid(
                loc,
                "state names must be unique in the whole state machine",
            ));
        }
        let obj = object(def, &loc)?;
        check_query_language(obj, &loc)?;
        let type_text = required_str(obj, "Type", &loc)?;
        let (type_name, fields): (&'static str, Vec<&'static str>) = match type_text {
            "Task" => (
                "Task",
                allowed(&[
                    &COMMON,
                    &IO,
                    &FLOW,
                    &ERRORS,
                    &[
                        "Resource",
                        "TimeoutSeconds",
                        "TimeoutSecondsPath",
                        "HeartbeatSeconds",
                        "HeartbeatSecondsPath",
                    ],
                ]),
            ),
            "Pass" => (
                "Pass",
                allowed(&[&COMMON, &IO, &FLOW, &["Parameters", "Result", "ResultPath"]]),
            ),
            "Choice" => ("Choice", allowed(&[&COMMON, &IO, &["Choices", "Default"]])),
            "Wait" => (
                "Wait",
                allowed(&[
                    &COMMON,
                    &IO,
                    &FLOW,
                    &["Seconds", "SecondsPath", "Timestamp", "TimestampPath"],
                ]),
            ),
            "Succeed" => ("Succeed", allowed(&[&COMMON, &IO])),
            "Fail" => (
                "Fail",
                allowed(&[&COMMON, &["Error", "ErrorPath", "Cause", "CausePath"]]),
            ),
            "Parallel" => (
                "Parallel",
                allowed(&[&COMMON, &IO, &FLOW, &ERRORS, &["Branches"]]),
            ),
            "Map" => (
                "Map",
                allowed(&[
                    &COMMON,
                    &IO,
                    &FLOW,
                    &ERRORS,
                    &[
                        "Iterator",
                        "ItemProcessor",
                        "ItemsPath",
                        "ItemSelector",
                        "MaxConcurrency",
                        "MaxConcurrencyPath",
                    ],
                    &DISTRIBUTED_ONLY,
                ]),
            ),
            other => {
                return Err(AslError::invalid(
                    loc,
                    format!("unknown state Type \"{other}\""),
                ));
            }
        };
        check_fields(obj, &loc, &fields)?;

        let next = if fields.contains(&"Next") {
            let next = optional_str(obj, "Next", &loc)?;
            let end = match obj.get("End") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(AslError::invalid(
                        &loc,
                        format!("End must be true or false, got {other}"),
                    ));
                }
            };
            match (next, end) {
                (Some(_), true) => {
                    return Err(AslError::invalid(
                        &loc,
                        "Next and End: true are mutually exclusive",
                    ));
                }
                (None, false) => {
                    return Err(AslError::invalid(
                        &loc,
                        "a non-terminal state needs Next or End: true",
                    ));
                }
                (next, _) => next.map(str::to_owned),
            }
        } else {
            None
        };

        let kind = match type_name {
            "Task" => {
                for key in ["TimeoutSeconds", "HeartbeatSeconds"] {
                    positive_number(obj, key, &loc)?;
                }
                for key in ["TimeoutSecondsPath", "HeartbeatSecondsPath"] {
                    path_field(obj, key, &loc, true)?;
                }
                Kind::Task {
                    resource: required_str(obj, "Resource", &loc)?.to_owned(),
                    processing: processing(obj, &loc, true)?,
                    timeout_seconds: obj
                        .get("TimeoutSeconds")
                        .and_then(Value::as_u64)
                        .filter(|seconds| *seconds > 0),
                }
            }
            "Pass" => Kind::Pass {
                parameters: template(obj, "Parameters", &loc)?,
                result: obj.get("Result").cloned(),
                result_path: path_field(obj, "ResultPath", &loc, true)?,
            },
            "Choice" => self.choice(obj, &loc)?,
            "Wait" => wait(obj, &loc)?,
            "Succeed" => Kind::Succeed,
            "Fail" => Kind::Fail {
                error: source(obj, "Error", "ErrorPath", &loc)?,
                cause: source(obj, "Cause", "CausePath", &loc)?,
            },
            "Parallel" => {
                let Some(Value::Array(items)) = obj.get("Branches") else {
                    return Err(AslError::invalid(
                        loc,
                        "Branches must be an array of state machines",
                    ));
                };
                if items.is_empty() {
                    return Err(AslError::invalid(loc, "Branches must not be empty"));
                }
                let mut branches = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let bloc = format!("{loc} branch {i}");
                    let b = object(item, &bloc)?;
                    check_fields(b, &bloc, &["StartAt", "States", "Comment"])?;
                    branches.push(self.scope(b, &bloc)?);
                }
                Kind::Parallel {
                    branches,
                    processing: processing(obj, &loc, true)?,
                }
            }
            _ => self.map(obj, &loc)?,
        };
        Ok(State {
            name: name.to_owned(),
            type_name,
            input_path: path_field(obj, "InputPath", &loc, false)?,
            output_path: path_field(obj, "OutputPath", &loc, false)?,
            next,
            kind,
        })
    }

    fn choice(&mut self, obj: &Map<String, Value>, loc: &str) -> Result<Kind, AslError> {
        let Some(Value::Array(items)) = obj.get("Choices") else {
            return Err(AslError::invalid(
                loc,
                "Choices must be a non-empty array of rules",
            ));
        };
        if items.is_empty() {
            return Err(AslError::invalid(loc, "Choices must not be empty"));
        }
        let mut choices = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let cloc = format!("{loc} Choices[{i}]");
            let rule = object(item, &cloc)?;
            let next = required_str(rule, "Next", &cloc)?.to_owned();
            let rule = Rule::parse(rule, true).map_err(|e| AslError::invalid(&cloc, e))?;
            choices.push((rule, next));
        }
        Ok(Kind::Choice {
            choices,
            default: optional_str(obj, "Default", loc)?.map(str::to_owned),
        })
    }

    fn map(&mut self, obj: &Map<String, Value>, loc: &str) -> Result<Kind, AslError> {
        let mut distributed = false;
        let processor = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
            (Some(_), Some(_)) => {
                return Err(AslError::invalid(
                    loc,
                    "ItemProcessor and Iterator are mutually exclusive",
                ));
            }
            (Some(p), None) => {
                let ploc = format!("{loc} ItemProcessor");
                let p = object(p, &ploc)?;
                check_fields(
                    p,
                    &ploc,
                    &["StartAt", "States", "Comment", "ProcessorConfig"],
                )?;
                if let Some(config) = p.get("ProcessorConfig") {
                    let config = object(config, &ploc)?;
                    check_fields(config, &ploc, &["Mode", "ExecutionType"])?;
                    let execution_type = optional_str(config, "ExecutionType", &ploc)?;
                    match (optional_str(config, "Mode", &ploc)?, execution_type) {
                        (None | Some("INLINE"), None) => {}
                        (None | Some("INLINE"), Some(_)) => {
                            return Err(AslError::invalid(
                                ploc,
                                "ExecutionType belongs to a Map in Distributed mode",
                            ));
                        }
                        (Some("DISTRIBUTED"), Some("STANDARD" | "EXPRESS")) => distributed = true,
                        (Some("DISTRIBUTED"), other) => {
                            return Err(AslError::invalid(
                                ploc,
                                format!(
                                    "a Map in Distributed mode needs ExecutionType STANDARD or EXPRESS, got {}",
                                    other.map_or("none".to_owned(), |t| format!("\"{t}\""))
                                ),
                            ));
                        }
                        (Some(other), _) => {
                            return Err(AslError::invalid(
                                ploc,
                                format!(
                                    "ProcessorConfig Mode must be INLINE or DISTRIBUTED, got \"{other}\""
                                ),
                            ));
                        }
                    }
                }
                self.scope(p, &ploc)?
            }
            (None, Some(it)) => {
                let iloc = format!("{loc} Iterator");
                let it = object(it, &iloc)?;
                check_fields(it, &iloc, &["StartAt", "States", "Comment"])?;
                self.scope(it, &iloc)?
            }
            (None, None) => {
                return Err(AslError::invalid(
                    loc,
                    "missing required field ItemProcessor (or Iterator)",
                ));
            }
        };
        let item_selector = match (
            template(obj, "ItemSelector", loc)?,
            template(obj, "Parameters", loc)?,
        ) {
            (Some(_), Some(_)) => {
                return Err(AslError::invalid(
                    loc,
                    "ItemSelector and Parameters are mutually exclusive",
                ));
            }
            (a, b) => a.or(b),
        };
        optional_uint(obj, "MaxConcurrency", loc)?;
        path_field(obj, "MaxConcurrencyPath", loc, true)?;
        let items_path = match path_field(obj, "ItemsPath", loc, true)? {
            PathField::Null => {
                return Err(AslError::invalid(
                    loc,
                    "ItemsPath must be a reference path, got null",
                ));
            }
            other => other,
        };
        let distributed = if distributed {
            if let Some(label) = optional_str(obj, "Label", loc)?
                && (label.is_empty()
                    || label.chars().count() > 40
                    || label.chars().any(|c| {
                        c.is_whitespace()
                            || c.is_control()
                            || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
                    }))
            {
                return Err(AslError::invalid(
                    loc,
                    format!(
                        "Label must be 1 to 40 characters, none of them whitespace, wildcards or punctuation Step Functions reserves, got {label:?}"
                    ),
                ));
            }
            Some(Distributed {
                tolerated_count: bound(obj, "ToleratedFailureCount", loc, None)?,
                tolerated_percentage: bound(obj, "ToleratedFailurePercentage", loc, Some(100.0))?,
            })
        } else {
            if let Some(field) = DISTRIBUTED_ONLY.iter().find(|f| obj.contains_key(**f)) {
                return Err(AslError::invalid(
                    loc,
                    format!(
                        "{field} belongs to a Map in Distributed mode (ProcessorConfig Mode DISTRIBUTED)"
                    ),
                ));
            }
            None
        };
        Ok(Kind::Map {
            processor: Box::new(processor),
            items_path,
            item_selector,
            processing: processing(obj, loc, false)?,
            distributed,
        })
    }
}

/// `<key>` (a number, at most `max`) or `<key>Path` (a reference path read at run time), not both.
fn bound(
    obj: &Map<String, Value>,
    key: &str,
    loc: &str,
    max: Option<f64>,
) -> Result<Option<Bound>, AslError> {
    let path_key = format!("{key}Path");
    match (obj.get(key), path_field(obj, &path_key, loc, true)?) {
        (Some(_), PathField::Path(_)) => Err(AslError::invalid(
            loc,
            format!("{key} and {path_key} are mutually exclusive"),
        )),
        (Some(v), _) => match v.as_f64() {
            Some(n)
                if n >= 0.0
                    && max.is_none_or(|max| n <= max)
                    && (max.is_some() || n.fract() == 0.0) =>
            {
                Ok(Some(Bound::Fixed(n)))
            }
            _ => Err(AslError::invalid(
                loc,
                match max {
                    Some(max) => format!("{key} must be a number from 0 to {max}, got {v}"),
                    None => format!("{key} must be a non-negative integer, got {v}"),
                },
            )),
        },
        (None, PathField::Path(path)) => Ok(Some(Bound::Path(path))),
        (None, PathField::Null) => Err(AslError::invalid(
            loc,
            format!("{path_key} must be a reference path, got null"),
        )),
        (None, PathField::Default) => Ok(None),
    }
}

fn wait(obj: &Map<String, Value>, loc: &str) -> Result<Kind, AslError> {
    let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
        .into_iter()
        .filter(|k| obj.contains_key(*k))
        .collect();
    let [how] = given.as_slice() else {
        return Err(AslError::invalid(
            loc,
            format!(
                "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath; found {given:?}"
            ),
        ));
    };
    let path = |key: &str| match path_field(obj, key, loc, true)? {
        PathField::Path(p) => Ok(p),
        _ => Err(AslError::invalid(
            loc,
            format!("{key} must be a reference path"),
        )),
    };
    Ok(Kind::Wait(match *how {
        "Seconds" => WaitFor::Seconds(optional_uint(obj, "Seconds", loc)?.unwrap_or(0)),
        "SecondsPath" => WaitFor::SecondsPath(path("SecondsPath")?),
        "Timestamp" => {
            let text = required_str(obj, "Timestamp", loc)?;
            WaitFor::Timestamp(parse_timestamp(text).ok_or_else(|| {
                AslError::invalid(
                    loc,
                    format!("Timestamp \"{text}\" is not an RFC 3339 timestamp such as 2016-03-14T01:59:00Z"),
                )
            })?)
        }
        _ => WaitFor::TimestampPath(path("TimestampPath")?),
    }))
}

/// Every transition out of a state, with the field that names it.
fn targets(state: &State) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    if let Some(next) = &state.next {
        out.push(("Next", next.as_str()));
    }
    if let Kind::Choice { choices, default } = &state.kind {
        out.extend(choices.iter().map(|(_, n)| ("Choices Next", n.as_str())));
        if let Some(d) = default {
            out.push(("Default", d.as_str()));
        }
    }
    if let Some(p) = state.processing() {
        out.extend(p.catch.iter().map(|c| ("Catch Next", c.next.as_str())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load_err(v: Value) -> String {
        StateMachine::from_value(v).unwrap_err().to_string()
    }

    fn one_state(state: Value) -> Value {
        json!({"StartAt": "A", "States": {"A": state}})
    }

    #[test]
    fn loads_every_state_type() {
        let m = StateMachine::from_value(json!({
            "Comment": "all types", "TimeoutSeconds": 60,
            "StartAt": "P",
            "States": {
                "P": {"Type": "Pass", "Result": 1, "ResultPath": "$.r", "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.r", "NumericEquals": 1, "Next": "W"}], "Default": "F"},
                "W": {"Type": "Wait", "Seconds": 1, "Next": "T"},
                "T": {"Type": "Task", "Resource": "arn:t", "TimeoutSeconds": 5, "Retry": [{"ErrorEquals": ["States.ALL"]}],
                      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F"}], "Next": "Par"},
                "Par": {"Type": "Parallel", "Branches": [
                    {"StartAt": "B1", "States": {"B1": {"Type": "Task", "Resource": "arn:b", "End": true}}}
                ], "Next": "M"},
                "M": {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "I", "States": {"I": {"Type": "Task", "Resource": "arn:i",
                        "Retry": [{"ErrorEquals": ["Boom"]}], "End": true}}
                }, "Next": "S"},
                "S": {"Type": "Succeed"},
                "F": {"Type": "Fail", "Error": "E", "Cause": "C"}
            }
        }))
        .unwrap();
        assert_eq!(m.task_resources(), ["arn:b", "arn:i", "arn:t"]);
        assert_eq!(
            m.error_names(),
            [
                ("I".to_owned(), "Boom".to_owned()),
                ("T".to_owned(), "States.ALL".to_owned())
            ]
        );
        assert_eq!(m.timeout_seconds, Some(60));
        assert_eq!(m.definition()["StartAt"], "P");
    }

    #[test]
    fn structural_errors_name_the_state() {
        let cases = [
            (json!([]), "expected a JSON object"),
            (json!({"States": {}}), "missing required field StartAt"),
            (
                json!({"StartAt": "A", "States": {}}),
                "States must not be empty",
            ),
            (
                one_state(json!({"Type": "Pass", "End": true})).tap_start("B"),
                "StartAt \"B\"",
            ),
            (
                one_state(json!({"Type": "Bogus", "End": true})),
                "state \"A\": unknown state Type \"Bogus\"",
            ),
            (
                one_state(json!({"Type": "Pass"})),
                "state \"A\": a non-terminal state needs Next or End",
            ),
            (
                one_state(json!({"Type": "Pass", "Next": "A", "End": true})),
                "mutually exclusive",
            ),
            (
                one_state(json!({"Type": "Pass", "Next": "Nowhere"})),
                "state \"A\": Next \"Nowhere\"",
            ),
            (
                one_state(json!({"Type": "Task", "End": true})),
                "state \"A\": missing required field Resource",
            ),
            (
                one_state(json!({"Type": "Pass", "End": true, "ResultsPath": "$"})),
                "unknown field ResultsPath",
            ),
            (
                one_state(json!({"Type": "Pass", "End": true, "Assign": {}})),
                "Assign is not supported",
            ),
            (
                one_state(json!({"Type": "Succeed", "Next": "A"})),
                "unknown field Next",
            ),
            (
                one_state(json!({"Type": "Choice", "Choices": []})),
                "Choices must not be empty",
            ),
            (
                one_state(
                    json!({"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": true}]}),
                ),
                "missing required field Next",
            ),
            (
                one_state(json!({"Type": "Wait", "End": true})),
                "exactly one of Seconds",
            ),
            (
                one_state(json!({"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": true})),
                "exactly one of Seconds",
            ),
            (
                one_state(json!({"Type": "Wait", "Timestamp": "tomorrow", "End": true})),
                "Timestamp \"tomorrow\"",
            ),
            (
                one_state(json!({"Type": "Wait", "Seconds": -1, "End": true})),
                "Seconds must be a non-negative integer, got -1",
            ),
            (
                one_state(json!({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"})),
                "mutually exclusive",
            ),
            (
                one_state(json!({"Type": "Pass", "InputPath": "nope", "End": true})),
                "InputPath: path 'nope'",
            ),
            (
                one_state(json!({"Type": "Pass", "ResultPath": "$.a[*]", "End": true})),
                "not a reference path",
            ),
            (
                one_state(
                    json!({"Type": "Pass", "Parameters": {"x.$": "States.Bogus()"}, "End": true}),
                ),
                "States.Bogus",
            ),
            (
                one_state(json!({"Type": "Parallel", "Branches": [], "End": true})),
                "Branches must not be empty",
            ),
            (
                one_state(json!({"Type": "Map", "End": true})),
                "missing required field ItemProcessor",
            ),
            (
                one_state(
                    json!({"Type": "Map", "ItemReader": {}, "ItemProcessor": {}, "End": true}),
                ),
                "ItemReader is not supported",
            ),
            (
                json!({"StartAt": "A", "QueryLanguage": "JSONata", "States": {"A": {"Type": "Succeed"}}}),
                "JSONata",
            ),
            (
                json!({"StartAt": "A", "TimeoutSeconds": 0, "States": {"A": {"Type": "Succeed"}}}),
                "TimeoutSeconds must be positive",
            ),
        ];
        for (definition, message) in cases {
            let err = load_err(definition.clone());
            assert!(err.contains(message), "{definition}: {err}");
        }
    }

    trait TapStart {
        fn tap_start(self, start: &str) -> Value;
    }
    impl TapStart for Value {
        fn tap_start(mut self, start: &str) -> Value {
            self["StartAt"] = json!(start);
            self
        }
    }

    #[test]
    fn retry_and_catch_rules() {
        let task = |extra: Value| {
            let mut s = json!({"Type": "Task", "Resource": "r", "Next": "Done"});
            for (k, v) in extra.as_object().unwrap() {
                s[k] = v.clone();
            }
            json!({"StartAt": "A", "States": {"A": s, "Done": {"Type": "Succeed"}}})
        };
        let cases = [
            (json!({"Retry": [{"ErrorEquals": []}]}), "non-empty"),
            (
                json!({"Retry": [{"ErrorEquals": ["States.ALL", "X"]}]}),
                "States.ALL must appear alone",
            ),
            (
                json!({"Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]}),
                "state \"A\" Retry[0]: a retrier on States.ALL must be the last",
            ),
            (
                json!({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}, {"ErrorEquals": ["X"], "Next": "Done"}]}),
                "must be the last catcher",
            ),
            (
                json!({"Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}]}),
                "BackoffRate must be a number >= 1.0, got 0.5",
            ),
            (
                json!({"Retry": [{"ErrorEquals": ["X"], "IntervalSeconds": 0}]}),
                "IntervalSeconds must be positive",
            ),
            (
                json!({"Retry": [{"ErrorEquals": ["X"], "MaxAttempts": -1}]}),
                "MaxAttempts must be a non-negative integer",
            ),
            (
                json!({"Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}]}),
                "\"HALF\"",
            ),
            (
                json!({"Catch": [{"ErrorEquals": ["X"], "Next": "Nowhere"}]}),
                "Catch Next \"Nowhere\"",
            ),
            (
                json!({"Catch": [{"ErrorEquals": ["X"]}]}),
                "state \"A\" Catch[0]: missing required field Next",
            ),
        ];
        for (extra, message) in cases {
            let err = load_err(task(extra.clone()));
            assert!(err.contains(message), "{extra}: {err}");
        }
    }

    #[test]
    fn scopes_are_separate_and_names_unique() {
        let err = load_err(json!({
            "StartAt": "P",
            "States": {
                "P": {"Type": "Parallel", "Next": "After", "Branches": [
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "Next": "After"}}}
                ]},
                "After": {"Type": "Succeed"}
            }
        }));
        assert!(
            err.contains("state \"B\": Next \"After\" is not a state of this scope"),
            "{err}"
        );
        let err = load_err(json!({
            "StartAt": "P",
            "States": {
                "P": {"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}
                ]}
            }
        }));
        assert!(err.contains("unique"), "{err}");
    }

    #[test]
    fn unreachable_states_are_rejected() {
        let err = load_err(json!({
            "StartAt": "A",
            "States": {"A": {"Type": "Succeed"}, "Orphan": {"Type": "Succeed"}}
        }));
        assert!(
            err.contains("state \"Orphan\": the state is not reachable"),
            "{err}"
        );
    }

    #[test]
    fn invalid_json_text_is_an_error() {
        let err = StateMachine::from_json("{not json").unwrap_err();
        assert!(err.to_string().starts_with("invalid json"), "{err}");
    }
}
