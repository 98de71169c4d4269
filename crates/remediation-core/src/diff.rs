//! A small structural diff of JSON values, used to show drift and plan changes.

use serde_json::Value;

/// One difference between two JSON values.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// JSON Pointer (RFC 6901) to the changed value.
    pub path: String,
    /// The value on the left, if present.
    pub left: Option<Value>,
    /// The value on the right, if present.
    pub right: Option<Value>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "(absent)".to_owned(), Value::to_string);
        write!(
            f,
            "{}: {} -> {}",
            if self.path.is_empty() { "/" } else { &self.path },
            show(&self.left),
            show(&self.right)
        )
    }
}

/// Lists the paths where `left` and `right` differ, in a stable order.
pub fn json_diff(left: &Value, right: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(String::new(), Some(left), Some(right), &mut out);
    out
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn walk(path: String, l: Option<&Value>, r: Option<&Value>, out: &mut Vec<Change>) {
    match (l, r) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                walk(format!("{path}/{}", escape(k)), a.get(k), b.get(k), out);
            }
        }
        (Some(a), Some(b)) if a == b => {}
        _ => out.push(Change { path, left: l.cloned(), right: r.cloned() }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn check(l: Value, r: Value, expected: &[&str]) {
        let got: Vec<String> = json_diff(&l, &r).iter().map(ToString::to_string).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn diffs() {
        check(json!({"a": 1}), json!({"a": 1}), &[]);
        check(json!({"a": 1}), json!({"a": 2}), &["/a: 1 -> 2"]);
        check(json!({"a": {"b/c": true}}), json!({"a": {}}), &["/a/b~1c: true -> (absent)"]);
        check(json!({"g": ["x", "y"]}), json!({"g": ["x"]}), &["/g: [\"x\",\"y\"] -> [\"x\"]"]);
        check(json!(1), json!("1"), &["/: 1 -> \"1\""]);
    }
}
