//! A run's context and templates: `{"input": {...}, "nodes": {"<id>": {outputs}}}`, rebuilt from
//! the stored step outputs (never from memory), and `{{path}}` filled from it.
//!
//! A string that is exactly one template takes the value itself (a number stays a number in a
//! JSON body); a template inside text is written as text (strings bare, anything else as JSON).
//! A path that names nothing is an error naming it: the run fails there with `MissingOutput`.

use serde_json::{Map, Value};

/// What a template could not find.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} has no value")]
pub struct Missing(pub String);

#[derive(Debug, Clone, Default)]
pub struct Context {
    pub input: Value,
    pub nodes: Map<String, Value>,
    /// Inside a map: the current item and its index.
    pub item: Option<(Value, usize)>,
}

impl Context {
    pub fn new(input: Value) -> Self {
        Self {
            input,
            nodes: Map::new(),
            item: None,
        }
    }

    /// The value at a dotted path: `input.x`, `nodes.<id>.<output>[.<key>…]`, `item`, `index`.
    pub fn lookup(&self, path: &str) -> Option<Value> {
        let mut parts = path.trim().split('.');
        let root = match parts.next()? {
            "input" => self.input.clone(),
            "nodes" => Value::Object(self.nodes.clone()),
            "item" => self.item.as_ref()?.0.clone(),
            "index" => Value::from(self.item.as_ref()?.1),
            _ => return None, // `context.<name>`: a Sequential name nothing provides
        };
        let mut value = root;
        for part in parts {
            value = match value {
                Value::Object(mut map) => map.remove(part)?,
                Value::Array(items) => items.into_iter().nth(part.parse().ok()?)?,
                _ => return None,
            };
        }
        (!value.is_null()).then_some(value)
    }

    /// Fills every template in a JSON value.
    pub fn render(&self, value: &Value) -> Result<Value, Missing> {
        Ok(match value {
            Value::String(text) => self.render_text(text)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render(v)?)))
                    .collect::<Result<_, Missing>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Fills the templates of a string; the whole value when the string is one template.
    pub fn render_text(&self, text: &str) -> Result<Value, Missing> {
        let trimmed = text.trim();
        if let Some(inner) = trimmed
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
            .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
        {
            return self
                .lookup(inner)
                .ok_or_else(|| Missing(inner.trim().into()));
        }
        Ok(Value::String(self.render_string(text)?))
    }

    /// A string with its templates written as text.
    pub fn render_string(&self, text: &str) -> Result<String, Missing> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                out.push_str(&rest[open..]);
                return Ok(out);
            };
            let path = after[..close].trim();
            match self.lookup(path) {
                Some(Value::String(s)) => out.push_str(&s),
                Some(other) => out.push_str(&other.to_string()),
                None => return Err(Missing(path.to_owned())),
            }
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// `$.a.b` (or `$`) into a value; `None` when the path leads nowhere.
pub fn json_path(value: &Value, path: &str) -> Option<Value> {
    let path = path.trim();
    let rest = path.strip_prefix('$')?;
    let mut current = value.clone();
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        current = match current {
            Value::Object(mut map) => map.remove(part)?,
            Value::Array(items) => items.into_iter().nth(part.parse().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context() -> Context {
        let mut c = Context::new(json!({"text": "hello", "n": 3}));
        c.nodes
            .insert("a".into(), json!({"label": "bug", "deep": {"id": 7}}));
        c
    }

    #[test]
    fn a_whole_template_keeps_the_value_and_text_gets_text() {
        let c = context();
        assert_eq!(c.render_text("{{input.n}}").unwrap(), json!(3));
        assert_eq!(
            c.render_text("n={{ input.n }}, {{nodes.a.label}}").unwrap(),
            json!("n=3, bug")
        );
        assert_eq!(
            c.render(&json!({"id": "{{nodes.a.deep.id}}", "t": ["{{input.text}}!"]}))
                .unwrap(),
            json!({"id": 7, "t": ["hello!"]})
        );
    }

    #[test]
    fn a_missing_value_names_its_path() {
        let c = context();
        assert_eq!(
            c.render_text("x {{nodes.a.colour}}"),
            Err(Missing("nodes.a.colour".into()))
        );
        assert_eq!(
            c.render_text("{{context.ghost}}"),
            Err(Missing("context.ghost".into()))
        );
    }

    #[test]
    fn json_paths_walk_objects_and_lists() {
        let v = json!({"a": {"b": [10, 20]}});
        assert_eq!(json_path(&v, "$.a.b.1"), Some(json!(20)));
        assert_eq!(json_path(&v, "$"), Some(v.clone()));
        assert_eq!(json_path(&v, "$.x"), None);
        assert_eq!(json_path(&v, "a"), None);
    }
}
