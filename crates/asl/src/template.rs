//! Payload templates (Parameters, ResultSelector, ItemSelector): JSON whose keys ending in `.$`
//! take a path, a context path or an intrinsic function call.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::error::Failure;
use crate::intrinsic::Call;
use crate::path::Path;
use crate::rng::Rng;

/// What `$$` shows a state: the context object's parts.
pub(crate) struct StateContext<'a> {
    pub execution: &'a Value,
    pub state_machine: &'a Value,
    pub state_name: &'a str,
    pub entered_time: DateTime<Utc>,
    pub retry_count: u32,
    pub map_item: Option<(usize, &'a Value)>,
}

/// RFC 3339 UTC with milliseconds and `Z`, the way Step Functions writes context timestamps.
pub(crate) fn aws_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl StateContext<'_> {
    pub fn to_value(&self) -> Value {
        let mut ctx = json!({
            "Execution": self.execution,
            "StateMachine": self.state_machine,
            "State": {
                "Name": self.state_name,
                "EnteredTime": aws_timestamp(self.entered_time),
                "RetryCount": self.retry_count,
            },
        });
        if let Some((index, value)) = self.map_item {
            ctx["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        ctx
    }
}

/// A JSON value shortened for an error cause: causes name the data without repeating 256 KiB
/// of it.
pub(crate) fn preview(value: &Value) -> String {
    const MAX: usize = 500;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Everything an expression may read: `$` (the input), `$$` (built only when asked for), and
/// the execution's random source.
pub(crate) struct EvalEnv<'a> {
    pub input: &'a Value,
    state: &'a StateContext<'a>,
    context: Option<Value>,
    pub rng: &'a mut Rng,
}

impl<'a> EvalEnv<'a> {
    pub fn new(input: &'a Value, state: &'a StateContext<'a>, rng: &'a mut Rng) -> Self {
        EvalEnv {
            input,
            state,
            context: None,
            rng,
        }
    }

    pub fn context(&mut self) -> &Value {
        self.context.get_or_insert_with(|| self.state.to_value())
    }
}

/// A value source written as a string: `$...`, `$$...` or `States.Fn(...)`.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Path(Path),
    Context(Path),
    Call(Call),
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, String> {
        if let Some(rest) = text.strip_prefix("$$") {
            Ok(Expr::Context(Path::parse(&format!("${rest}"))?))
        } else if text.starts_with('$') {
            Ok(Expr::Path(Path::parse(text)?))
        } else if text.starts_with("States.") {
            Ok(Expr::Call(Call::parse(text)?))
        } else {
            Err(format!(
                "'{text}' is neither a path, a context path nor an intrinsic function call"
            ))
        }
    }

    /// `what` names the field for the failure message, e.g. `the field 'x.$'`.
    pub fn eval(&self, env: &mut EvalEnv<'_>, what: &str) -> Result<Value, Failure> {
        match self {
            Expr::Path(path) => path.read(env.input).ok_or_else(|| {
                Failure::runtime(format!(
                    "the JSONPath '{path}' specified for {what} could not be found in the input {}",
                    preview(env.input)
                ))
            }),
            Expr::Context(path) => path.read(env.context()).ok_or_else(|| {
                Failure::runtime(format!(
                    "the JSONPath '${path}' specified for {what} could not be found in the context object"
                ))
            }),
            Expr::Call(call) => call.eval(env),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Template {
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    Dynamic { field: String, expr: Expr },
}

impl Template {
    pub fn compile(value: &Value) -> Result<Template, String> {
        match value {
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                let mut all_literal = true;
                for (key, v) in map {
                    let field = if let Some(name) = key.strip_suffix(".$") {
                        let Value::String(text) = v else {
                            return Err(format!(
                                "the value of field '{key}' must be a string (a path or an intrinsic function call), not {v}"
                            ));
                        };
                        let expr = Expr::parse(text).map_err(|e| format!("field '{key}': {e}"))?;
                        (
                            name.to_owned(),
                            Template::Dynamic {
                                field: key.clone(),
                                expr,
                            },
                        )
                    } else {
                        (key.clone(), Template::compile(v)?)
                    };
                    all_literal &= matches!(field.1, Template::Literal(_));
                    fields.push(field);
                }
                if all_literal {
                    Ok(Template::Literal(value.clone()))
                } else {
                    Ok(Template::Object(fields))
                }
            }
            Value::Array(items) => {
                let items = items
                    .iter()
                    .map(Template::compile)
                    .collect::<Result<Vec<_>, _>>()?;
                if items.iter().all(|t| matches!(t, Template::Literal(_))) {
                    Ok(Template::Literal(value.clone()))
                } else {
                    Ok(Template::Array(items))
                }
            }
            other => Ok(Template::Literal(other.clone())),
        }
    }

    pub fn eval(&self, env: &mut EvalEnv<'_>) -> Result<Value, Failure> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Object(fields) => {
                let mut out = Map::new();
                for (key, t) in fields {
                    out.insert(key.clone(), t.eval(env)?);
                }
                Ok(Value::Object(out))
            }
            Template::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|t| t.eval(env))
                    .collect::<Result<_, _>>()?,
            )),
            Template::Dynamic { field, expr } => expr.eval(env, &format!("the field '{field}'")),
        }
    }

    #[cfg(test)]
    pub fn is_literal(&self) -> bool {
        matches!(self, Template::Literal(_))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn with_env<R>(input: &Value, f: impl FnOnce(&mut EvalEnv<'_>) -> R) -> R {
        let execution = json!({"Id": "arn:exec", "Name": "exec", "Input": {"in": 1}});
        let machine = json!({"Id": "arn:sm", "Name": "sm"});
        let item = json!("item-value");
        let state = StateContext {
            execution: &execution,
            state_machine: &machine,
            state_name: "S",
            entered_time: DateTime::parse_from_rfc3339("2024-05-06T07:08:09.5Z")
                .unwrap()
                .with_timezone(&Utc),
            retry_count: 2,
            map_item: Some((3, &item)),
        };
        let mut rng = Rng::from_seed(1);
        let mut env = EvalEnv::new(input, &state, &mut rng);
        f(&mut env)
    }

    fn eval(template: Value, input: Value) -> Result<Value, Failure> {
        let t = Template::compile(&template).unwrap();
        with_env(&input, |env| t.eval(env))
    }

    #[test]
    fn fields_ending_in_dollar_take_paths_nested() {
        let out = eval(
            json!({
                "static": {"k": [1, 2]},
                "a.$": "$.x",
                "nested": {"b.$": "$.y[0]", "list": [{"c.$": "$"}]},
            }),
            json!({"x": "ex", "y": [true]}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "static": {"k": [1, 2]},
                "a": "ex",
                "nested": {"b": true, "list": [{"c": {"x": "ex", "y": [true]}}]},
            })
        );
    }

    #[test]
    fn context_paths_read_the_context_object() {
        let out = eval(
            json!({
                "id.$": "$$.Execution.Id",
                "state.$": "$$.State.Name",
                "entered.$": "$$.State.EnteredTime",
                "retries.$": "$$.State.RetryCount",
                "index.$": "$$.Map.Item.Index",
                "value.$": "$$.Map.Item.Value",
                "input.$": "$$.Execution.Input.in",
            }),
            json!({}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "id": "arn:exec", "state": "S", "entered": "2024-05-06T07:08:09.500Z",
                "retries": 2, "index": 3, "value": "item-value", "input": 1,
            })
        );
    }

    #[test]
    fn a_missing_path_is_a_runtime_failure_naming_it() {
        let err = eval(json!({"a.$": "$.nope"}), json!({"x": 1})).unwrap_err();
        assert_eq!(err.error, "States.Runtime");
        assert!(err.cause.contains("'$.nope'"), "{}", err.cause);
        assert!(err.cause.contains("'a.$'"), "{}", err.cause);
        let err = eval(json!({"a.$": "$$.Nope"}), json!({})).unwrap_err();
        assert!(err.cause.contains("'$$.Nope'"), "{}", err.cause);
    }

    #[test]
    fn compile_rejects_bad_dynamic_fields() {
        let err = Template::compile(&json!({"a.$": 3})).unwrap_err();
        assert!(err.contains("'a.$'"), "{err}");
        let err = Template::compile(&json!({"a.$": "plain"})).unwrap_err();
        assert!(err.contains("'plain'"), "{err}");
        let err = Template::compile(&json!({"a.$": "States.Nope()"})).unwrap_err();
        assert!(err.contains("States.Nope"), "{err}");
        assert!(
            Template::compile(&json!({"a": {"b": [1]}}))
                .unwrap()
                .is_literal()
        );
    }
}
