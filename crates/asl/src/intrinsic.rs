//! Intrinsic functions (`States.Format(...)` and friends): a parser run at load time and an
//! evaluator whose argument errors are `States.IntrinsicFailure` (catchable).

use serde_json::{Map, Number, Value};

use crate::error::Failure;
use crate::path::Path;
use crate::rng::Rng;
use crate::template::EvalEnv;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

const FUNCS: [(&str, Func, usize, usize); 17] = [
    ("States.Format", Func::Format, 1, usize::MAX),
    ("States.StringToJson", Func::StringToJson, 1, 1),
    ("States.JsonToString", Func::JsonToString, 1, 1),
    ("States.Array", Func::Array, 0, usize::MAX),
    ("States.ArrayPartition", Func::ArrayPartition, 2, 2),
    ("States.ArrayContains", Func::ArrayContains, 2, 2),
    ("States.ArrayRange", Func::ArrayRange, 3, 3),
    ("States.ArrayGetItem", Func::ArrayGetItem, 2, 2),
    ("States.ArrayLength", Func::ArrayLength, 1, 1),
    ("States.ArrayUnique", Func::ArrayUnique, 1, 1),
    ("States.Base64Encode", Func::Base64Encode, 1, 1),
    ("States.Base64Decode", Func::Base64Decode, 1, 1),
    ("States.JsonMerge", Func::JsonMerge, 3, 3),
    ("States.MathRandom", Func::MathRandom, 2, 3),
    ("States.MathAdd", Func::MathAdd, 2, 2),
    ("States.StringSplit", Func::StringSplit, 2, 2),
    ("States.UUID", Func::Uuid, 0, 0),
];

/// The AWS limit on Base64 function input.
const BASE64_MAX_CHARS: usize = 10_000;
/// The AWS limit on the array `States.ArrayRange` builds.
const ARRAY_RANGE_MAX: i128 = 1000;

impl Func {
    fn name(self) -> &'static str {
        FUNCS
            .iter()
            .find(|(_, f, _, _)| *f == self)
            .map_or("States.?", |(n, _, _, _)| n)
    }
}

/// Part of a quoted string: text, or an unescaped `{}` (a States.Format placeholder).
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Hole,
}

#[derive(Debug, Clone)]
enum Arg {
    Str(Vec<Piece>),
    Lit(Value),
    Path(Path),
    Context(Path),
    Call(Call),
}

/// A parsed intrinsic function call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    func: Func,
    args: Vec<Arg>,
}

struct Parser<'t> {
    text: &'t str,
    chars: Vec<char>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!(
            "invalid intrinsic function call '{}' at character {}: {what}",
            self.text, self.pos
        )
    }

    fn call(&mut self, depth: usize) -> Result<Call, String> {
        if depth > 10 {
            return Err(self.err("more than 10 nested intrinsic functions"));
        }
        self.skip_ws();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let Some(&(_, func, min, max)) = FUNCS.iter().find(|(n, _, _, _)| *n == name) else {
            return Err(if name == "States.Hash" {
                "intrinsic function States.Hash is not supported by this interpreter".to_owned()
            } else {
                format!("unknown intrinsic function '{name}' in '{}'", self.text)
            });
        };
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(self.err("expected '('"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                args.push(self.arg(depth)?);
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or ')'")),
                }
            }
        }
        if args.len() < min || args.len() > max {
            let expected = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(format!(
                "{name} takes {expected} argument(s), got {} in '{}'",
                args.len(),
                self.text
            ));
        }
        Ok(Call { func, args })
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, String> {
        self.skip_ws();
        match self.peek() {
            Some('\'') => self.string(),
            Some('$') => {
                let start = self.pos;
                let (mut brackets, mut parens, mut quote) = (0i32, 0i32, None::<char>);
                while let Some(c) = self.peek() {
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), '\\') => self.pos += 1,
                        (Some(_), _) => {}
                        (None, '\'' | '"') => quote = Some(c),
                        (None, '[') => brackets += 1,
                        (None, ']') => brackets -= 1,
                        (None, '(') => parens += 1,
                        (None, ')') if parens > 0 => parens -= 1,
                        (None, ',' | ')') if brackets <= 0 => break,
                        _ => {}
                    }
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos.min(self.chars.len())]
                    .iter()
                    .collect();
                let text = text.trim_end();
                if let Some(rest) = text.strip_prefix("$$") {
                    Ok(Arg::Context(Path::parse(&format!("${rest}"))?))
                } else {
                    Ok(Arg::Path(Path::parse(text)?))
                }
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
                {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                match serde_json::from_str::<Number>(&text) {
                    Ok(n) => Ok(Arg::Lit(Value::Number(n))),
                    Err(_) => Err(self.err(&format!("invalid number '{text}'"))),
                }
            }
            Some(_) => {
                for (word, value) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    let end = self.pos + word.len();
                    let candidate: String = self.chars[self.pos..end.min(self.chars.len())]
                        .iter()
                        .collect();
                    let boundary = self
                        .chars
                        .get(end)
                        .is_none_or(|c| !c.is_ascii_alphanumeric() && *c != '_');
                    if candidate == word && boundary {
                        self.pos = end;
                        return Ok(Arg::Lit(value));
                    }
                }
                Ok(Arg::Call(self.call(depth + 1)?))
            }
            None => Err(self.err("expected an argument")),
        }
    }

    fn string(&mut self) -> Result<Arg, String> {
        self.pos += 1;
        let mut pieces = Vec::new();
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some('\'') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => match self.chars.get(self.pos + 1) {
                    Some(&c @ ('\'' | '{' | '}' | '\\')) => {
                        text.push(c);
                        self.pos += 2;
                    }
                    _ => {
                        return Err(self
                            .err("open escape: only \\' \\{ \\} and \\\\ may follow a backslash"));
                    }
                },
                Some('{') if self.chars.get(self.pos + 1) == Some(&'}') => {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Hole);
                    self.pos += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Arg::Str(pieces))
    }
}

fn pieces_text(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.as_str(),
            Piece::Hole => "{}",
        })
        .collect()
}

fn fail(func: Func, message: impl std::fmt::Display) -> Failure {
    Failure::intrinsic(format!("{}: {message}", func.name()))
}

/// The text States.Format gives a value: strings bare, JSON for scalars, and Java's
/// collection notation for arrays and objects (what the AWS service prints).
fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(format_value)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", format_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// An integral number, accepting `3.0` as 3.
fn integer(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// A number rounded to the nearest integer (half up, as Java's Math.round does).
fn rounded(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = (n.as_f64()? + 0.5).floor();
    (f.abs() < 9.0e18).then_some(f as i64)
}

fn array(func: Func, v: &Value, which: &str) -> Result<Vec<Value>, Failure> {
    match v {
        Value::Array(items) => Ok(items.clone()),
        other => Err(fail(
            func,
            format!("the {which} argument must be an array, got {other}"),
        )),
    }
}

fn string(func: Func, v: &Value, which: &str) -> Result<String, Failure> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(fail(
            func,
            format!("the {which} argument must be a string, got {other}"),
        )),
    }
}

impl Call {
    pub fn parse(text: &str) -> Result<Call, String> {
        let mut parser = Parser {
            text,
            chars: text.chars().collect(),
            pos: 0,
        };
        let call = parser.call(1)?;
        parser.skip_ws();
        if parser.pos != parser.chars.len() {
            return Err(parser.err("unexpected text after the call"));
        }
        Ok(call)
    }

    fn eval_arg(arg: &Arg, env: &mut EvalEnv<'_>) -> Result<Value, Failure> {
        match arg {
            Arg::Str(pieces) => Ok(Value::String(pieces_text(pieces))),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Path(path) => path.read(env.input).ok_or_else(|| {
                Failure::runtime(format!(
                    "the JSONPath '{path}' given to an intrinsic function could not be found in the input {}",
                    crate::template::preview(env.input)
                ))
            }),
            Arg::Context(path) => path.read(env.context()).ok_or_else(|| {
                Failure::runtime(format!(
                    "the JSONPath '${path}' given to an intrinsic function could not be found in the context object"
                ))
            }),
            Arg::Call(call) => call.eval(env),
        }
    }

    pub fn eval(&self, env: &mut EvalEnv<'_>) -> Result<Value, Failure> {
        let func = self.func;
        let args = self
            .args
            .iter()
            .map(|a| Call::eval_arg(a, env))
            .collect::<Result<Vec<_>, _>>()?;
        match func {
            Func::Format => {
                let template = match &self.args[0] {
                    Arg::Str(pieces) => pieces.clone(),
                    _ => {
                        let text = string(func, &args[0], "first")?;
                        let mut pieces = Vec::new();
                        for (i, part) in text.split("{}").enumerate() {
                            if i > 0 {
                                pieces.push(Piece::Hole);
                            }
                            pieces.push(Piece::Text(part.to_owned()));
                        }
                        pieces
                    }
                };
                let holes = template.iter().filter(|p| **p == Piece::Hole).count();
                if holes != args.len() - 1 {
                    return Err(fail(
                        func,
                        format!(
                            "the format string has {holes} placeholder(s) but {} value(s) were given",
                            args.len() - 1
                        ),
                    ));
                }
                let mut values = args[1..].iter();
                let mut out = String::new();
                for piece in &template {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Hole => {
                            out.push_str(&values.next().map(format_value).unwrap_or_default())
                        }
                    }
                }
                Ok(Value::String(out))
            }
            Func::StringToJson => {
                let text = string(func, &args[0], "first")?;
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(&text)
                    .map_err(|e| fail(func, format!("'{text}' is not JSON: {e}")))
            }
            Func::JsonToString => Ok(Value::String(args[0].to_string())),
            Func::Array => Ok(Value::Array(args)),
            Func::ArrayPartition => {
                let items = array(func, &args[0], "first")?;
                let size = integer(&args[1]).filter(|n| *n > 0).ok_or_else(|| {
                    fail(
                        func,
                        format!("the chunk size must be a positive integer, got {}", args[1]),
                    )
                })?;
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                Ok(Value::Array(
                    items
                        .chunks(size)
                        .map(|c| Value::Array(c.to_vec()))
                        .collect(),
                ))
            }
            Func::ArrayContains => {
                let items = array(func, &args[0], "first")?;
                Ok(Value::Bool(items.contains(&args[1])))
            }
            Func::ArrayRange => {
                let mut ints = [0i64; 3];
                for (slot, v) in ints.iter_mut().zip(&args) {
                    *slot = integer(v).ok_or_else(|| {
                        fail(func, format!("every argument must be an integer, got {v}"))
                    })?;
                }
                let [first, last, step] = ints.map(i128::from);
                if step == 0 {
                    return Err(fail(func, "the step must not be 0"));
                }
                let count = if (step > 0 && first > last) || (step < 0 && first < last) {
                    0
                } else {
                    (last - first) / step + 1
                };
                if count > ARRAY_RANGE_MAX {
                    return Err(fail(
                        func,
                        format!("the range would hold {count} items, more than {ARRAY_RANGE_MAX}"),
                    ));
                }
                Ok(Value::Array(
                    (0..count)
                        .map(|i| Value::from((first + i * step) as i64))
                        .collect(),
                ))
            }
            Func::ArrayGetItem => {
                let items = array(func, &args[0], "first")?;
                let index = integer(&args[1]).filter(|n| *n >= 0).ok_or_else(|| {
                    fail(
                        func,
                        format!("the index must be a non-negative integer, got {}", args[1]),
                    )
                })?;
                usize::try_from(index)
                    .ok()
                    .and_then(|i| items.get(i))
                    .cloned()
                    .ok_or_else(|| {
                        fail(
                            func,
                            format!(
                                "index {index} is out of bounds of an array of {} items",
                                items.len()
                            ),
                        )
                    })
            }
            Func::ArrayLength => Ok(Value::from(array(func, &args[0], "first")?.len())),
            Func::ArrayUnique => {
                let mut unique: Vec<Value> = Vec::new();
                for item in array(func, &args[0], "first")? {
                    if !unique.contains(&item) {
                        unique.push(item);
                    }
                }
                Ok(Value::Array(unique))
            }
            Func::Base64Encode | Func::Base64Decode => {
                let text = string(func, &args[0], "first")?;
                if text.chars().count() > BASE64_MAX_CHARS {
                    return Err(fail(
                        func,
                        format!("the input has more than {BASE64_MAX_CHARS} characters"),
                    ));
                }
                if func == Func::Base64Encode {
                    return Ok(Value::String(crate::base64::encode(text.as_bytes())));
                }
                let bytes = crate::base64::decode(&text)
                    .ok_or_else(|| fail(func, format!("'{text}' is not valid Base64")))?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| fail(func, format!("'{text}' does not decode to UTF-8 text")))
            }
            Func::JsonMerge => {
                let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                    return Err(fail(
                        func,
                        format!(
                            "both objects to merge must be JSON objects, got {} and {}",
                            args[0], args[1]
                        ),
                    ));
                };
                if args[2] != Value::Bool(false) {
                    return Err(fail(
                        func,
                        format!(
                            "only the shallow mode is supported: the third argument must be false, got {}",
                            args[2]
                        ),
                    ));
                }
                let mut merged: Map<String, Value> = a.clone();
                for (k, v) in b {
                    merged.insert(k.clone(), v.clone());
                }
                Ok(Value::Object(merged))
            }
            Func::MathRandom => {
                let bound = |v: &Value, which: &str| {
                    rounded(v).ok_or_else(|| {
                        fail(func, format!("the {which} must be an integer, got {v}"))
                    })
                };
                let start = bound(&args[0], "start")?;
                let end = bound(&args[1], "end")?;
                if start > end {
                    return Err(fail(
                        func,
                        format!("the start {start} is greater than the end {end}"),
                    ));
                }
                let n = match args.get(2) {
                    Some(seed) => {
                        let seed = bound(seed, "seed")?;
                        Rng::from_seed(seed as u64).range_inclusive(start, end)
                    }
                    None => env.rng.range_inclusive(start, end),
                };
                Ok(Value::from(n))
            }
            Func::MathAdd => {
                let a = rounded(&args[0]);
                let b = rounded(&args[1]);
                match (a, b) {
                    (Some(a), Some(b)) => a
                        .checked_add(b)
                        .map(Value::from)
                        .ok_or_else(|| fail(func, format!("{a} + {b} overflows"))),
                    _ => Err(fail(
                        func,
                        format!(
                            "both arguments must be integers, got {} and {}",
                            args[0], args[1]
                        ),
                    )),
                }
            }
            Func::StringSplit => {
                let text = string(func, &args[0], "first")?;
                let delimiters = string(func, &args[1], "second")?;
                Ok(Value::Array(
                    text.split(|c| delimiters.contains(c))
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                ))
            }
            Func::Uuid => Ok(Value::String(
                uuid::Builder::from_random_bytes(env.rng.bytes16())
                    .into_uuid()
                    .to_string(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::with_env;
    use serde_json::json;

    fn run(call: &str, input: Value) -> Result<Value, Failure> {
        let call = Call::parse(call).unwrap();
        with_env(&input, |env| call.eval(env))
    }

    fn ok(call: &str, input: Value) -> Value {
        run(call, input).unwrap()
    }

    fn intrinsic_failure(call: &str, input: Value) -> String {
        let err = run(call, input).unwrap_err();
        assert_eq!(
            err.error, "States.IntrinsicFailure",
            "{call}: {}",
            err.cause
        );
        err.cause
    }

    #[test]
    fn format_with_literals_paths_and_escapes() {
        let input = json!({"name": "Arnav", "template": "Hello, my name is {}.", "n": 3, "o": {"a": [1, "x"]}});
        assert_eq!(
            ok(
                "States.Format('Hello, my name is {}.', $.name)",
                input.clone()
            ),
            json!("Hello, my name is Arnav.")
        );
        assert_eq!(
            ok("States.Format($.template, $.name)", input.clone()),
            json!("Hello, my name is Arnav.")
        );
        assert_eq!(
            ok(
                r"States.Format('\{\} it\'s {} {} {} \\ {}', $.n, true, null, $.o)",
                input.clone()
            ),
            json!(r"{} it's 3 true null \ {a=[1, x]}")
        );
        assert_eq!(
            ok("States.Format('{}-{}', $$.State.Name, 2)", input.clone()),
            json!("S-2")
        );
        let cause = intrinsic_failure("States.Format('{} {}', 1)", input.clone());
        assert!(cause.contains("2 placeholder"), "{cause}");
        intrinsic_failure("States.Format($.n)", input);
    }

    #[test]
    fn json_string_conversions() {
        let input =
            json!({"s": "{\"foo\": \"bar\"}", "j": {"name": "Foo", "year": 2020}, "bad": "{nope"});
        assert_eq!(
            ok("States.StringToJson($.s)", input.clone()),
            json!({"foo": "bar"})
        );
        assert_eq!(
            ok("States.JsonToString($.j)", input.clone()),
            json!("{\"name\":\"Foo\",\"year\":2020}")
        );
        assert_eq!(ok("States.StringToJson('  ')", input.clone()), Value::Null);
        let cause = intrinsic_failure("States.StringToJson($.bad)", input.clone());
        assert!(cause.contains("{nope"), "{cause}");
        intrinsic_failure("States.StringToJson($.j)", input);
    }

    #[test]
    fn array_functions() {
        let input = json!({"a": [1, 2, 3, 3, 4, 5, 6, 7, 8, 9], "i": 5, "v": 7, "o": {"x": 1}});
        assert_eq!(
            ok(
                "States.Array('Foo', 2020, $.o, null, true, -1.5)",
                input.clone()
            ),
            json!(["Foo", 2020, {"x": 1}, null, true, -1.5])
        );
        assert_eq!(ok("States.Array()", input.clone()), json!([]));
        assert_eq!(
            ok("States.ArrayPartition($.a, 4)", input.clone()),
            json!([[1, 2, 3, 3], [4, 5, 6, 7], [8, 9]])
        );
        assert_eq!(
            ok("States.ArrayContains($.a, $.v)", input.clone()),
            json!(true)
        );
        assert_eq!(
            ok("States.ArrayContains($.a, 'x')", input.clone()),
            json!(false)
        );
        assert_eq!(
            ok("States.ArrayRange(1, 9, 2)", input.clone()),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            ok("States.ArrayRange(5, 1, -2)", input.clone()),
            json!([5, 3, 1])
        );
        assert_eq!(ok("States.ArrayRange(5, 1, 1)", input.clone()), json!([]));
        assert_eq!(ok("States.ArrayGetItem($.a, $.i)", input.clone()), json!(5));
        assert_eq!(ok("States.ArrayLength($.a)", input.clone()), json!(10));
        assert_eq!(
            ok("States.ArrayUnique($.a)", input.clone()),
            json!([1, 2, 3, 4, 5, 6, 7, 8, 9])
        );
        assert_eq!(
            ok(
                "States.ArrayLength(States.ArrayRange(1, 1000, 1))",
                input.clone()
            ),
            json!(1000)
        );
    }

    #[test]
    fn array_functions_reject_bad_arguments() {
        let input = json!({"a": [1, 2], "s": "str"});
        intrinsic_failure("States.ArrayPartition($.a, 0)", input.clone());
        intrinsic_failure("States.ArrayPartition($.s, 2)", input.clone());
        intrinsic_failure("States.ArrayContains($.s, 1)", input.clone());
        intrinsic_failure("States.ArrayRange(1, 9, 0)", input.clone());
        intrinsic_failure("States.ArrayRange(1, 9, 1.5)", input.clone());
        let cause = intrinsic_failure("States.ArrayRange(1, 1001, 1)", input.clone());
        assert!(cause.contains("1001 items"), "{cause}");
        let cause = intrinsic_failure("States.ArrayGetItem($.a, 2)", input.clone());
        assert!(cause.contains("index 2"), "{cause}");
        intrinsic_failure("States.ArrayGetItem($.a, -1)", input.clone());
        intrinsic_failure("States.ArrayLength($.s)", input.clone());
        intrinsic_failure("States.ArrayUnique('x')", input);
    }

    #[test]
    fn base64_functions() {
        let input = json!({"plain": "Data to encode", "coded": "RGF0YSB0byBlbmNvZGU=", "n": 1});
        assert_eq!(
            ok("States.Base64Encode($.plain)", input.clone()),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            ok("States.Base64Decode($.coded)", input.clone()),
            json!("Data to encode")
        );
        intrinsic_failure("States.Base64Decode('not base64!')", input.clone());
        intrinsic_failure("States.Base64Encode($.n)", input.clone());
        let long = json!({"s": "x".repeat(10_001)});
        let cause = intrinsic_failure("States.Base64Encode($.s)", long);
        assert!(cause.contains("10000"), "{cause}");
        let _ = input;
    }

    #[test]
    fn json_merge_is_shallow_only() {
        let input = json!({"a": {"a": {"a1": 1}, "b": 2}, "b": {"a": {"a3": 1}, "c": 3}});
        assert_eq!(
            ok("States.JsonMerge($.a, $.b, false)", input.clone()),
            json!({"a": {"a3": 1}, "b": 2, "c": 3})
        );
        let cause = intrinsic_failure("States.JsonMerge($.a, $.b, true)", input.clone());
        assert!(cause.contains("shallow"), "{cause}");
        intrinsic_failure("States.JsonMerge($.a, 'x', false)", input);
    }

    #[test]
    fn math_functions() {
        let input = json!({"v": 111, "step": -1, "s": "x"});
        assert_eq!(ok("States.MathAdd($.v, $.step)", input.clone()), json!(110));
        assert_eq!(ok("States.MathAdd(1.5, 2)", input.clone()), json!(4));
        intrinsic_failure("States.MathAdd($.s, 1)", input.clone());
        for _ in 0..50 {
            let n = ok("States.MathRandom(1, 3)", input.clone())
                .as_i64()
                .unwrap();
            assert!((1..=3).contains(&n), "{n}");
        }
        assert_eq!(
            ok("States.MathRandom(1, 1000, 42)", input.clone()),
            ok("States.MathRandom(1, 1000, 42)", input.clone())
        );
        intrinsic_failure("States.MathRandom(5, 1)", input.clone());
        intrinsic_failure("States.MathRandom($.s, 1)", input);
    }

    #[test]
    fn string_split_and_uuid() {
        let input = json!({"s": "This.is+a,test=string", "d": ".+,="});
        assert_eq!(
            ok("States.StringSplit($.s, $.d)", input.clone()),
            json!(["This", "is", "a", "test", "string"])
        );
        assert_eq!(
            ok("States.StringSplit('1,2,,3', ',')", input.clone()),
            json!(["1", "2", "3"])
        );
        intrinsic_failure("States.StringSplit(1, ',')", input.clone());
        let id = ok("States.UUID()", input);
        let id = uuid::Uuid::parse_str(id.as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 4);
    }

    #[test]
    fn nested_calls_and_tricky_paths() {
        let input = json!({"arn": "arn:aws:imagebuilder:us-east-1:1:image-recipe/my.recipe/1.0.0", "k,ey": [1, 2]});
        assert_eq!(
            ok(
                "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.arn, '/'), 2), '.'), 1))",
                input.clone()
            ),
            json!("1.0")
        );
        assert_eq!(ok("States.ArrayLength($['k,ey'])", input), json!(2));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let err = Call::parse("States.Nope(1)").unwrap_err();
        assert!(err.contains("'States.Nope'"), "{err}");
        let err = Call::parse("States.Hash('a', 'MD5')").unwrap_err();
        assert!(err.contains("not supported"), "{err}");
        let err = Call::parse("States.ArrayLength()").unwrap_err();
        assert!(err.contains("takes 1"), "{err}");
        let err = Call::parse(r"States.Format('a\n')").unwrap_err();
        assert!(err.contains("open escape"), "{err}");
        assert!(Call::parse("States.Format('abc").is_err());
        assert!(Call::parse("States.Array(1 2)").is_err());
        assert!(Call::parse("States.Array(1) extra").is_err());
        assert!(Call::parse("States.Array(nul)").is_err());
        let deep = format!("{}1{}", "States.Array(".repeat(12), ")".repeat(12));
        assert!(Call::parse(&deep).unwrap_err().contains("nested"));
    }

    #[test]
    fn a_missing_path_argument_is_a_runtime_failure() {
        let err = run("States.Array($.missing)", json!({})).unwrap_err();
        assert_eq!(err.error, "States.Runtime");
        assert!(err.cause.contains("'$.missing'"), "{}", err.cause);
    }
}
