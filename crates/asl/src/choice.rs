//! Choice rules: comparisons, `And`/`Or`/`Not`, and their evaluation.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};

use crate::error::Failure;
use crate::path::Path;
use crate::template::EvalEnv;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

impl Relation {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Relation::Equals => ord == Ordering::Equal,
            Relation::LessThan => ord == Ordering::Less,
            Relation::GreaterThan => ord == Ordering::Greater,
            Relation::LessThanEquals => ord != Ordering::Greater,
            Relation::GreaterThanEquals => ord != Ordering::Less,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeTest {
    Null,
    Present,
    Numeric,
    String,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone)]
enum Operand {
    Literal(Value),
    Path(Variable),
}

#[derive(Debug, Clone)]
enum Test {
    Compare(Family, Relation, Operand),
    Matches(Vec<GlobToken>),
    Is(TypeTest, bool),
}

/// A path into the input (`$...`) or the context object (`$$...`).
#[derive(Debug, Clone)]
struct Variable {
    context: bool,
    path: Path,
}

impl Variable {
    fn parse(text: &str) -> Result<Variable, String> {
        match text.strip_prefix("$$") {
            Some(rest) => Ok(Variable {
                context: true,
                path: Path::parse(&format!("${rest}"))?,
            }),
            None => Ok(Variable {
                context: false,
                path: Path::parse(text)?,
            }),
        }
    }

    fn read(&self, env: &mut EvalEnv<'_>) -> Option<Value> {
        if self.context {
            self.path.read(env.context())
        } else {
            self.path.read(env.input)
        }
    }

    fn text(&self) -> String {
        if self.context {
            format!("${}", self.path)
        } else {
            self.path.to_string()
        }
    }
}

/// A Boolean expression of a Choice state.
#[derive(Debug, Clone)]
pub(crate) struct Rule(Node);

#[derive(Debug, Clone)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Test { variable: Variable, test: Test },
}

#[derive(Debug, Clone, PartialEq)]
enum GlobToken {
    Char(char),
    Star,
}

fn compile_glob(pattern: &str) -> Vec<GlobToken> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(GlobToken::Char(chars.next().unwrap_or('\\'))),
            '*' => out.push(GlobToken::Star),
            c => out.push(GlobToken::Char(c)),
        }
    }
    out
}

fn glob_matches(tokens: &[GlobToken], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(GlobToken::Star) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(GlobToken::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((bp, bt)) => {
                    p = bp + 1;
                    t = bt + 1;
                    backtrack = Some((bp, bt + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p.min(tokens.len())..]
        .iter()
        .all(|tok| *tok == GlobToken::Star)
}

/// Parses an RFC 3339 timestamp the way Step Functions accepts it: an uppercase `T` between date
/// and time and an uppercase `Z` (or a numeric offset).
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if text.as_bytes().get(10) != Some(&b'T') || text.contains('z') {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(crate) fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Step Functions runs on Java, whose strings compare by UTF-16 code unit.
fn compare_strings(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn compare(family: Family, a: &Value, b: &Value) -> Option<Ordering> {
    match (family, a, b) {
        (Family::String, Value::String(x), Value::String(y)) => Some(compare_strings(x, y)),
        (Family::Numeric, Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Family::Boolean, Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Family::Timestamp, Value::String(x), Value::String(y)) => {
            Some(parse_timestamp(x)?.cmp(&parse_timestamp(y)?))
        }
        _ => None,
    }
}

const FAMILIES: [(&str, Family); 4] = [
    ("String", Family::String),
    ("Numeric", Family::Numeric),
    ("Boolean", Family::Boolean),
    ("Timestamp", Family::Timestamp),
];

const RELATIONS: [(&str, Relation); 5] = [
    ("Equals", Relation::Equals),
    ("LessThanEquals", Relation::LessThanEquals),
    ("GreaterThanEquals", Relation::GreaterThanEquals),
    ("LessThan", Relation::LessThan),
    ("GreaterThan", Relation::GreaterThan),
];

const TYPE_TESTS: [(&str, TypeTest); 6] = [
    ("IsNull", TypeTest::Null),
    ("IsPresent", TypeTest::Present),
    ("IsNumeric", TypeTest::Numeric),
    ("IsString", TypeTest::String),
    ("IsBoolean", TypeTest::Boolean),
    ("IsTimestamp", TypeTest::Timestamp),
];

fn parse_comparison(key: &str, value: &Value) -> Result<Option<Test>, String> {
    if key == "StringMatches" {
        let Value::String(pattern) = value else {
            return Err(format!("StringMatches must be a string, got {value}"));
        };
        return Ok(Some(Test::Matches(compile_glob(pattern))));
    }
    if let Some(&(_, t)) = TYPE_TESTS.iter().find(|(n, _)| *n == key) {
        let Value::Bool(b) = value else {
            return Err(format!("{key} must be true or false, got {value}"));
        };
        return Ok(Some(Test::Is(t, *b)));
    }
    let Some(&(fname, family)) = FAMILIES.iter().find(|(n, _)| key.starts_with(n)) else {
        return Ok(None);
    };
    let rest = &key[fname.len()..];
    let (rest, is_path) = match rest.strip_suffix("Path") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let Some(&(_, relation)) = RELATIONS.iter().find(|(n, _)| *n == rest) else {
        return Ok(None);
    };
    if family == Family::Boolean && relation != Relation::Equals {
        return Ok(None);
    }
    if is_path {
        let Value::String(text) = value else {
            return Err(format!("{key} must be a path string, got {value}"));
        };
        let var = Variable::parse(text).map_err(|e| format!("{key}: {e}"))?;
        return Ok(Some(Test::Compare(family, relation, Operand::Path(var))));
    }
    let well_typed = match family {
        Family::String => value.is_string(),
        Family::Numeric => value.is_number(),
        Family::Boolean => value.is_boolean(),
        Family::Timestamp => value.as_str().and_then(parse_timestamp).is_some(),
    };
    if !well_typed {
        let wanted = match family {
            Family::String => "a string",
            Family::Numeric => "a number",
            Family::Boolean => "true or false",
            Family::Timestamp => "an RFC 3339 timestamp such as 2016-03-14T01:59:00Z",
        };
        return Err(format!("{key} must be {wanted}, got {value}"));
    }
    Ok(Some(Test::Compare(
        family,
        relation,
        Operand::Literal(value.clone()),
    )))
}

impl Rule {
    /// Parses a rule; top-level rules carry `Next` (handled by the caller), nested ones must not.
    pub fn parse(map: &Map<String, Value>, top_level: bool) -> Result<Rule, String> {
        Node::parse(map, top_level).map(Rule)
    }

    pub fn eval(&self, env: &mut EvalEnv<'_>) -> Result<bool, Failure> {
        self.0.eval(env)
    }
}

impl Node {
    fn parse(map: &Map<String, Value>, top_level: bool) -> Result<Node, String> {
        let allowed_extra = |k: &str| k == "Comment" || (top_level && k == "Next");
        if !top_level && map.contains_key("Next") {
            return Err("a rule nested in And, Or or Not must not have Next".to_owned());
        }
        let nested = |v: &Value| -> Result<Node, String> {
            match v {
                Value::Object(m) => Node::parse(m, false),
                other => Err(format!("a nested rule must be an object, got {other}")),
            }
        };
        let keys: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed_extra(k))
            .collect();
        if let Some(op) = ["And", "Or", "Not"]
            .into_iter()
            .find(|op| map.contains_key(*op))
        {
            if keys.len() != 1 {
                return Err(format!(
                    "a rule with {op} must have no other operator or Variable, found {keys:?}"
                ));
            }
            let value = &map[op];
            return match op {
                "Not" => Ok(Node::Not(Box::new(nested(value)?))),
                _ => {
                    let Value::Array(items) = value else {
                        return Err(format!("{op} must be an array of rules, got {value}"));
                    };
                    if items.is_empty() {
                        return Err(format!("{op} must not be empty"));
                    }
                    let rules = items.iter().map(nested).collect::<Result<Vec<_>, _>>()?;
                    Ok(if op == "And" {
                        Node::And(rules)
                    } else {
                        Node::Or(rules)
                    })
                }
            };
        }
        let Some(var_text) = map.get("Variable") else {
            return Err(format!(
                "a rule needs Variable and one comparison, or And, Or or Not; found {keys:?}"
            ));
        };
        let Value::String(var_text) = var_text else {
            return Err(format!("Variable must be a path string, got {var_text}"));
        };
        let variable = Variable::parse(var_text)?;
        let ops: Vec<&str> = keys.into_iter().filter(|k| *k != "Variable").collect();
        let [op] = ops.as_slice() else {
            return Err(format!(
                "a rule on {var_text} must have exactly one comparison operator, found {ops:?}"
            ));
        };
        match parse_comparison(op, &map[*op])? {
            Some(test) => Ok(Node::Test { variable, test }),
            None => Err(format!("unknown comparison operator '{op}'")),
        }
    }

    fn eval(&self, env: &mut EvalEnv<'_>) -> Result<bool, Failure> {
        match self {
            Node::And(rules) => {
                for r in rules {
                    if !r.eval(env)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Node::Or(rules) => {
                for r in rules {
                    if r.eval(env)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Node::Not(rule) => Ok(!rule.eval(env)?),
            Node::Test { variable, test } => {
                let value = variable.read(env);
                if let Test::Is(TypeTest::Present, expected) = test {
                    return Ok(value.is_some() == *expected);
                }
                let Some(value) = value else {
                    return Err(Failure::runtime(format!(
                        "invalid path '{}': the choice state's condition path references an undefined value",
                        variable.text()
                    )));
                };
                Ok(match test {
                    Test::Is(kind, expected) => {
                        let is = match kind {
                            TypeTest::Null => value.is_null(),
                            TypeTest::Numeric => value.is_number(),
                            TypeTest::String => value.is_string(),
                            TypeTest::Boolean => value.is_boolean(),
                            TypeTest::Timestamp => {
                                value.as_str().and_then(parse_timestamp).is_some()
                            }
                            TypeTest::Present => true,
                        };
                        is == *expected
                    }
                    Test::Matches(glob) => value.as_str().is_some_and(|s| glob_matches(glob, s)),
                    Test::Compare(family, relation, operand) => {
                        let other = match operand {
                            Operand::Literal(v) => v.clone(),
                            Operand::Path(var) => var.read(env).ok_or_else(|| {
                                Failure::runtime(format!(
                                    "invalid path '{}': the choice state's comparison path references an undefined value",
                                    var.text()
                                ))
                            })?,
                        };
                        compare(*family, &value, &other).is_some_and(|o| relation.holds(o))
                    }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::with_env;
    use serde_json::json;

    fn rule(v: Value) -> Rule {
        Rule::parse(v.as_object().unwrap(), false).unwrap()
    }

    fn check(r: Value, input: Value) -> Result<bool, Failure> {
        let r = rule(r);
        with_env(&input, |env| r.eval(env))
    }

    fn t(r: Value, input: &Value) -> bool {
        check(r, input.clone()).unwrap()
    }

    #[test]
    fn every_comparison_family_and_relation() {
        let input = json!({
            "s": "b", "n": 10, "f": 2.5, "t": true,
            "ts": "2024-01-02T00:00:00Z", "other_s": "a", "other_n": 10, "other_ts": "2024-01-01T23:00:00-02:00"
        });
        let cases = [
            (json!({"Variable": "$.s", "StringEquals": "b"}), true),
            (json!({"Variable": "$.s", "StringLessThan": "c"}), true),
            (json!({"Variable": "$.s", "StringGreaterThan": "c"}), false),
            (
                json!({"Variable": "$.s", "StringLessThanEquals": "b"}),
                true,
            ),
            (
                json!({"Variable": "$.s", "StringGreaterThanEquals": "b"}),
                true,
            ),
            (
                json!({"Variable": "$.s", "StringEqualsPath": "$.other_s"}),
                false,
            ),
            (
                json!({"Variable": "$.s", "StringGreaterThanPath": "$.other_s"}),
                true,
            ),
            (
                json!({"Variable": "$.s", "StringLessThanPath": "$.other_s"}),
                false,
            ),
            (
                json!({"Variable": "$.s", "StringLessThanEqualsPath": "$.other_s"}),
                false,
            ),
            (
                json!({"Variable": "$.s", "StringGreaterThanEqualsPath": "$.other_s"}),
                true,
            ),
            (json!({"Variable": "$.n", "NumericEquals": 10.0}), true),
            (json!({"Variable": "$.n", "NumericLessThan": 10}), false),
            (json!({"Variable": "$.f", "NumericLessThan": 3}), true),
            (json!({"Variable": "$.n", "NumericGreaterThan": 9.5}), true),
            (
                json!({"Variable": "$.n", "NumericLessThanEquals": 10}),
                true,
            ),
            (
                json!({"Variable": "$.f", "NumericGreaterThanEquals": 2.5}),
                true,
            ),
            (
                json!({"Variable": "$.n", "NumericEqualsPath": "$.other_n"}),
                true,
            ),
            (
                json!({"Variable": "$.f", "NumericLessThanPath": "$.n"}),
                true,
            ),
            (
                json!({"Variable": "$.f", "NumericGreaterThanPath": "$.n"}),
                false,
            ),
            (
                json!({"Variable": "$.n", "NumericLessThanEqualsPath": "$.other_n"}),
                true,
            ),
            (
                json!({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.f"}),
                true,
            ),
            (json!({"Variable": "$.t", "BooleanEquals": true}), true),
            (json!({"Variable": "$.t", "BooleanEqualsPath": "$.t"}), true),
            (
                json!({"Variable": "$.ts", "TimestampEquals": "2024-01-02T00:00:00.000Z"}),
                true,
            ),
            (
                json!({"Variable": "$.ts", "TimestampLessThan": "2024-01-02T00:00:01Z"}),
                true,
            ),
            (
                json!({"Variable": "$.ts", "TimestampGreaterThan": "2024-01-02T00:00:01Z"}),
                false,
            ),
            (
                json!({"Variable": "$.ts", "TimestampLessThanEquals": "2024-01-02T00:00:00Z"}),
                true,
            ),
            (
                json!({"Variable": "$.ts", "TimestampGreaterThanEquals": "2024-01-03T00:00:00Z"}),
                false,
            ),
            (
                json!({"Variable": "$.ts", "TimestampEqualsPath": "$.other_ts"}),
                false,
            ),
            (
                json!({"Variable": "$.ts", "TimestampGreaterThanPath": "$.other_ts"}),
                false,
            ),
            (
                json!({"Variable": "$.ts", "TimestampLessThanPath": "$.other_ts"}),
                true,
            ),
            (
                json!({"Variable": "$.ts", "TimestampLessThanEqualsPath": "$.ts"}),
                true,
            ),
            (
                json!({"Variable": "$.ts", "TimestampGreaterThanEqualsPath": "$.ts"}),
                true,
            ),
        ];
        for (r, expected) in cases {
            assert_eq!(t(r.clone(), &input), expected, "{r}");
        }
    }

    #[test]
    fn a_type_mismatch_compares_false() {
        let input = json!({"n": 1, "s": "1", "bad_ts": "2024-01-02 00:00:00"});
        assert!(!t(json!({"Variable": "$.n", "StringEquals": "1"}), &input));
        assert!(!t(json!({"Variable": "$.s", "NumericEquals": 1}), &input));
        assert!(!t(
            json!({"Variable": "$.s", "BooleanEquals": true}),
            &input
        ));
        assert!(!t(
            json!({"Variable": "$.bad_ts", "TimestampLessThan": "2030-01-01T00:00:00Z"}),
            &input
        ));
    }

    #[test]
    fn string_matches_wildcards_and_escapes() {
        let input = json!({"s": "log-2024*.txt", "plain": "abc"});
        assert!(t(
            json!({"Variable": "$.s", "StringMatches": "log-*.txt"}),
            &input
        ));
        assert!(t(
            json!({"Variable": "$.s", "StringMatches": "*\\*.txt"}),
            &input
        ));
        assert!(!t(
            json!({"Variable": "$.plain", "StringMatches": "a\\*"}),
            &input
        ));
        assert!(t(
            json!({"Variable": "$.plain", "StringMatches": "a*c*"}),
            &input
        ));
        assert!(t(
            json!({"Variable": "$.plain", "StringMatches": "*"}),
            &input
        ));
        assert!(!t(
            json!({"Variable": "$.plain", "StringMatches": "*d*"}),
            &input
        ));
        assert!(t(
            json!({"Variable": "$.plain", "StringMatches": "abc"}),
            &input
        ));
        assert!(!t(
            json!({"Variable": "$.plain", "StringMatches": "ab"}),
            &input
        ));
    }

    #[test]
    fn type_tests() {
        let input =
            json!({"null": null, "n": 1.5, "s": "x", "b": false, "ts": "2024-01-02T03:04:05Z"});
        assert!(t(json!({"Variable": "$.null", "IsNull": true}), &input));
        assert!(t(json!({"Variable": "$.s", "IsNull": false}), &input));
        assert!(t(json!({"Variable": "$.n", "IsNumeric": true}), &input));
        assert!(t(json!({"Variable": "$.s", "IsNumeric": false}), &input));
        assert!(t(json!({"Variable": "$.s", "IsString": true}), &input));
        assert!(t(json!({"Variable": "$.b", "IsBoolean": true}), &input));
        assert!(t(json!({"Variable": "$.ts", "IsTimestamp": true}), &input));
        assert!(t(json!({"Variable": "$.s", "IsTimestamp": false}), &input));
        assert!(t(json!({"Variable": "$.null", "IsPresent": true}), &input));
        assert!(t(
            json!({"Variable": "$.missing", "IsPresent": false}),
            &input
        ));
        assert!(!t(
            json!({"Variable": "$.missing", "IsPresent": true}),
            &input
        ));
    }

    #[test]
    fn boolean_operators() {
        let input = json!({"a": 1, "b": "x"});
        assert!(t(
            json!({"And": [
                {"Variable": "$.a", "NumericEquals": 1},
                {"Not": {"Variable": "$.b", "StringEquals": "y"}},
                {"Or": [{"Variable": "$.a", "NumericEquals": 2}, {"Variable": "$.b", "IsString": true}]}
            ]}),
            &input
        ));
        assert!(!t(
            json!({"And": [{"Variable": "$.a", "NumericEquals": 1}, {"Variable": "$.a", "NumericEquals": 2}]}),
            &input
        ));
        assert!(!t(
            json!({"Or": [{"Variable": "$.a", "NumericEquals": 3}]}),
            &input
        ));
    }

    #[test]
    fn a_missing_variable_is_a_runtime_failure() {
        let err = check(json!({"Variable": "$.nope", "IsNull": true}), json!({})).unwrap_err();
        assert_eq!(err.error, "States.Runtime");
        assert!(err.cause.contains("'$.nope'"), "{}", err.cause);
        let err = check(
            json!({"Variable": "$.a", "NumericEqualsPath": "$.nope"}),
            json!({"a": 1}),
        )
        .unwrap_err();
        assert!(err.cause.contains("'$.nope'"), "{}", err.cause);
    }

    #[test]
    fn context_variables() {
        assert!(t(
            json!({"Variable": "$$.State.Name", "StringEquals": "S"}),
            &json!({})
        ));
    }

    #[test]
    fn malformed_rules_are_rejected() {
        let bad = [
            (json!({"Variable": "$.a"}), "exactly one"),
            (
                json!({"Variable": "$.a", "StringEquals": 1}),
                "StringEquals must be a string",
            ),
            (
                json!({"Variable": "$.a", "NumericEquals": "1"}),
                "must be a number",
            ),
            (
                json!({"Variable": "$.a", "TimestampEquals": "yesterday"}),
                "timestamp",
            ),
            (
                json!({"Variable": "$.a", "BooleanLessThan": true}),
                "unknown comparison operator 'BooleanLessThan'",
            ),
            (
                json!({"Variable": "$.a", "StringEquals": "x", "NumericEquals": 1}),
                "exactly one",
            ),
            (json!({"Variable": "a", "IsNull": true}), "'a'"),
            (
                json!({"Variable": "$.a", "IsNull": "yes"}),
                "IsNull must be true or false",
            ),
            (json!({"And": []}), "And must not be empty"),
            (
                json!({"Not": {"Variable": "$.a", "IsNull": true, "Next": "X"}}),
                "must not have Next",
            ),
            (json!({"Frobnicate": 1}), "needs Variable"),
        ];
        for (r, message) in bad {
            let err = Rule::parse(r.as_object().unwrap(), true).unwrap_err();
            assert!(err.contains(message), "{r}: {err}");
        }
    }

    #[test]
    fn timestamps_need_uppercase_t_and_z() {
        assert!(parse_timestamp("2016-03-14T01:59:00Z").is_some());
        assert!(parse_timestamp("2016-03-14T01:59:00.123+02:00").is_some());
        assert!(parse_timestamp("2016-03-14t01:59:00Z").is_none());
        assert!(parse_timestamp("2016-03-14T01:59:00z").is_none());
        assert!(parse_timestamp("2016-03-14 01:59:00Z").is_none());
        assert!(parse_timestamp("2016-03-14").is_none());
    }
}
