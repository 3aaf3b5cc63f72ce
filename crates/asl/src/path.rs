//! JSONPath as Step Functions uses it. A *reference path* (`$`, `.name`, `['name']`, `[n]`)
//! selects at most one node and can be written to (ResultPath); anything else (wildcards,
//! filters, slices, recursive descent) goes to `serde_json_path` and yields the array of
//! matches, the way the Jayway library behind AWS returns indefinite paths.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Index(i64),
}

#[derive(Debug, Clone)]
enum Kind {
    Reference(Vec<Seg>),
    Query(Box<JsonPath>),
}

/// A parsed path such as `$.a.b[0]`. Context paths (`$$...`) are stored with one `$` removed
/// and read against the context object.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    text: String,
    kind: Kind,
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Path {
    /// Parses a path starting with `$`.
    pub fn parse(text: &str) -> Result<Path, String> {
        if !text.starts_with('$') {
            return Err(format!("path '{text}' does not start with '$'"));
        }
        if let Some(segs) = parse_reference(text) {
            return Ok(Path {
                text: text.to_owned(),
                kind: Kind::Reference(segs),
            });
        }
        match JsonPath::parse(text) {
            Ok(query) => Ok(Path {
                text: text.to_owned(),
                kind: Kind::Query(Box::new(query)),
            }),
            Err(e) => Err(format!("invalid path '{text}': {e}")),
        }
    }

    /// Parses a path that must be a reference path (only `.name`, `['name']`, `[n]` with n >= 0).
    pub fn parse_reference_path(text: &str) -> Result<Path, String> {
        let path = Path::parse(text)?;
        match &path.kind {
            Kind::Reference(segs) if segs.iter().all(|s| !matches!(s, Seg::Index(i) if *i < 0)) => {
                Ok(path)
            }
            _ => Err(format!(
                "'{text}' is not a reference path (only $, .field, ['field'] and [n] are allowed)"
            )),
        }
    }

    /// The selected value: the single node of a reference path (`None` when absent), or the
    /// array of every match of another query.
    pub fn read(&self, root: &Value) -> Option<Value> {
        match &self.kind {
            Kind::Reference(segs) => {
                let mut node = root;
                for seg in segs {
                    node = match (seg, node) {
                        (Seg::Key(k), Value::Object(map)) => map.get(k)?,
                        (Seg::Index(i), Value::Array(items)) => {
                            let idx = if *i < 0 {
                                items.len().checked_sub(i.unsigned_abs() as usize)?
                            } else {
                                usize::try_from(*i).ok()?
                            };
                            items.get(idx)?
                        }
                        _ => return None,
                    };
                }
                Some(node.clone())
            }
            Kind::Query(query) => Some(Value::Array(
                query.query(root).all().into_iter().cloned().collect(),
            )),
        }
    }

    /// Places `value` at this reference path inside `target`, creating missing objects on the
    /// way, as ResultPath does.
    pub fn write(&self, target: Value, value: Value) -> Result<Value, String> {
        let Kind::Reference(segs) = &self.kind else {
            return Err(format!("'{}' is not a reference path", self.text));
        };
        let mut root = target;
        let mut node = &mut root;
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            node = match seg {
                Seg::Key(key) => {
                    let Value::Object(map) = node else {
                        return Err(format!(
                            "unable to apply ResultPath '{}': the value at '{}' is not an object",
                            self.text,
                            prefix_text(&segs[..i])
                        ));
                    };
                    map.entry(key.clone()).or_insert_with(|| {
                        if last {
                            Value::Null
                        } else {
                            Value::Object(Map::new())
                        }
                    })
                }
                Seg::Index(idx) => {
                    let at = prefix_text(&segs[..i]);
                    let Value::Array(items) = node else {
                        return Err(format!(
                            "unable to apply ResultPath '{}': the value at '{at}' is not an array",
                            self.text
                        ));
                    };
                    let len = items.len();
                    usize::try_from(*idx)
                        .ok()
                        .and_then(|u| items.get_mut(u))
                        .ok_or_else(|| {
                            format!(
                                "unable to apply ResultPath '{}': index {idx} is out of bounds of the array at '{at}' (length {len})",
                                self.text
                            )
                        })?
                }
            };
        }
        *node = value;
        Ok(root)
    }
}

fn prefix_text(segs: &[Seg]) -> String {
    let mut out = String::from("$");
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Characters that make a dotted name something other than a plain field name.
fn is_special(c: char) -> bool {
    matches!(
        c,
        '.' | '[' | ']' | '*' | '?' | '@' | '(' | ')' | '\'' | '"' | ',' | '$'
    ) || c.is_whitespace()
}

fn parse_reference(text: &str) -> Option<Vec<Seg>> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 1;
    let mut segs = Vec::new();
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                    if is_special(chars[end]) {
                        return None;
                    }
                    end += 1;
                }
                if end == start {
                    return None;
                }
                segs.push(Seg::Key(chars[start..end].iter().collect()));
                i = end;
            }
            '[' => {
                let q = *chars.get(i + 1)?;
                if q == '\'' || q == '"' {
                    let mut key = String::new();
                    let mut j = i + 2;
                    loop {
                        let c = *chars.get(j)?;
                        if c == '\\' {
                            key.push(*chars.get(j + 1)?);
                            j += 2;
                        } else if c == q {
                            break;
                        } else {
                            key.push(c);
                            j += 1;
                        }
                    }
                    if chars.get(j + 1) != Some(&']') {
                        return None;
                    }
                    segs.push(Seg::Key(key));
                    i = j + 2;
                } else {
                    let close = chars[i..].iter().position(|&c| c == ']')? + i;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let digits = inner.strip_prefix('-').unwrap_or(&inner);
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    segs.push(Seg::Index(inner.parse().ok()?));
                    i = close + 1;
                }
            }
            _ => return None,
        }
    }
    Some(segs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(path: &str, v: &Value) -> Option<Value> {
        Path::parse(path).unwrap().read(v)
    }

    #[test]
    fn reference_paths_select_one_node() {
        let v = json!({"a": {"b": [10, 20, {"c": true}]}, "my-key": 1, "x y": 2});
        assert_eq!(read("$", &v), Some(v.clone()));
        assert_eq!(read("$.a.b[1]", &v), Some(json!(20)));
        assert_eq!(read("$.a.b[-1].c", &v), Some(json!(true)));
        assert_eq!(read("$['a']['b'][0]", &v), Some(json!(10)));
        assert_eq!(read("$.my-key", &v), Some(json!(1)));
        assert_eq!(read("$['x y']", &v), Some(json!(2)));
        assert_eq!(read("$.a.missing", &v), None);
        assert_eq!(read("$.a.b[7]", &v), None);
        assert_eq!(read("$.a.b.c", &v), None);
    }

    #[test]
    fn other_queries_return_every_match() {
        let v = json!({"items": [{"n": 1}, {"n": 2}, {"n": 3}]});
        assert_eq!(read("$.items[*].n", &v), Some(json!([1, 2, 3])));
        assert_eq!(read("$.items[?(@.n > 1)].n", &v), Some(json!([2, 3])));
        assert_eq!(read("$..n", &v), Some(json!([1, 2, 3])));
        assert_eq!(read("$.items[5:].n", &v), Some(json!([])));
    }

    #[test]
    fn bad_paths_are_rejected_naming_them() {
        let err = Path::parse("a.b").unwrap_err();
        assert!(err.contains("'a.b'"), "{err}");
        let err = Path::parse("$.a[").unwrap_err();
        assert!(err.contains("'$.a['"), "{err}");
        let err = Path::parse_reference_path("$.a[*]").unwrap_err();
        assert!(err.contains("not a reference path"), "{err}");
        assert!(Path::parse_reference_path("$.a[-1]").is_err());
    }

    #[test]
    fn write_creates_intermediate_objects() {
        let p = Path::parse_reference_path("$.a.b.c").unwrap();
        let out = p.write(json!({"keep": 1}), json!("x")).unwrap();
        assert_eq!(out, json!({"keep": 1, "a": {"b": {"c": "x"}}}));
        let p = Path::parse_reference_path("$.keep").unwrap();
        assert_eq!(
            p.write(json!({"keep": 1}), json!(2)).unwrap(),
            json!({"keep": 2})
        );
        let p = Path::parse_reference_path("$").unwrap();
        assert_eq!(p.write(json!({"a": 1}), json!(5)).unwrap(), json!(5));
        let p = Path::parse_reference_path("$.list[1]").unwrap();
        assert_eq!(
            p.write(json!({"list": [1, 2]}), json!("z")).unwrap(),
            json!({"list": [1, "z"]})
        );
    }

    #[test]
    fn write_into_a_non_object_fails() {
        let p = Path::parse_reference_path("$.a.b").unwrap();
        let err = p.write(json!({"a": "text"}), json!(1)).unwrap_err();
        assert!(err.contains("'$.a'"), "{err}");
        let p = Path::parse_reference_path("$.a").unwrap();
        assert!(p.write(json!("scalar input"), json!(1)).is_err());
        let p = Path::parse_reference_path("$.l[3]").unwrap();
        let err = p.write(json!({"l": [1]}), json!(1)).unwrap_err();
        assert!(err.contains("out of bounds"), "{err}");
    }
}
