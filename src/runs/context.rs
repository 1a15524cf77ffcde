//! A run's context and templates: `{"input": {...}, "nodes": {"<id>": {outputs}}}`, rebuilt from
//! the stored step outputs (never from memory), and `{{path}}` filled from it.
//!
//! A string that is exactly one template takes the value itself (a number stays a number in a
//! JSON body); a template inside text is written as text (strings bare, anything else as JSON).
//! A path that names nothing is an error naming it: the run fails there with `MissingOutput`;
//! except an input the routine's form marks optional (`isRequired: false`) and nobody filled:
//! that is null (a whole template), or nothing (inside text).
//!
//! The input and the nodes' outputs are shared (`Arc`): a map's items and a parallel's branches
//! each get a context of their own without copying what came before (a run's context can be
//! large, and a map may have many items); a node's outputs written into one copies it first.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value};

/// What a template could not find.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} has no value")]
pub struct Missing(pub String);

#[derive(Debug, Clone, Default)]
pub struct Context {
    pub input: Arc<Value>,
    /// Node id → its outputs.
    pub nodes: Arc<Map<String, Value>>,
    /// Inside a map: the current item and its index.
    pub item: Option<(Value, usize)>,
    /// Inputs that are null when unfilled (`Graph::optional_inputs`).
    pub optional: Arc<BTreeSet<String>>,
}

impl Context {
    pub fn new(input: Value) -> Self {
        Self {
            input: Arc::new(input),
            nodes: Arc::new(Map::new()),
            item: None,
            optional: Arc::default(),
        }
    }

    /// This context with `names` as optional inputs.
    pub fn with_optional(self, names: impl IntoIterator<Item = String>) -> Self {
        Self {
            optional: Arc::new(names.into_iter().collect()),
            ..self
        }
    }

    /// This context for a map's item: the same input and outputs (shared, not copied).
    pub fn with_item(&self, item: Value, index: usize) -> Self {
        Self {
            input: Arc::clone(&self.input),
            nodes: Arc::clone(&self.nodes),
            item: Some((item, index)),
            optional: Arc::clone(&self.optional),
        }
    }

    /// Stores a node's outputs (copying the outputs map first if another context shares it).
    pub fn insert_node(&mut self, id: String, outputs: Value) {
        Arc::make_mut(&mut self.nodes).insert(id, outputs);
    }

    /// Stores several nodes' outputs.
    pub fn extend_nodes(&mut self, nodes: Map<String, Value>) {
        Arc::make_mut(&mut self.nodes).extend(nodes);
    }

    /// The value at a dotted path: `input.x`, `nodes.<id>.<output>[.<key>…]`, `item`, `index`.
    /// Only the value found is copied, not what it is found in.
    pub fn lookup(&self, path: &str) -> Option<Value> {
        let mut parts = path.trim().split('.');
        let index;
        let mut value: &Value = match parts.next()? {
            "input" => &self.input,
            "nodes" => match parts.next() {
                Some(id) => self.nodes.get(id)?,
                None => return Some(Value::Object((*self.nodes).clone())),
            },
            "item" => &self.item.as_ref()?.0,
            "index" => {
                index = Value::from(self.item.as_ref()?.1);
                &index
            }
            _ => return None, // `context.<name>`: a Sequential name nothing provides
        };
        for part in parts {
            value = match value {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        (!value.is_null()).then(|| value.clone())
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
            return self.fill(inner);
        }
        Ok(Value::String(self.render_string(text)?))
    }

    /// What a template's path gives: its value, null for an optional input nobody filled (or a
    /// path into one), else `Missing`.
    fn fill(&self, path: &str) -> Result<Value, Missing> {
        let path = path.trim();
        if let Some(value) = self.lookup(path) {
            return Ok(value);
        }
        let mut parts = path.split('.');
        let unfilled = parts.next() == Some("input")
            && parts.next().is_some_and(|name| {
                self.optional.contains(name) && self.input.get(name).is_none_or(Value::is_null)
            });
        if unfilled {
            Ok(Value::Null)
        } else {
            Err(Missing(path.to_owned()))
        }
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
            match self.fill(path)? {
                Value::String(s) => out.push_str(&s),
                Value::Null => {} // an optional input left unfilled
                other => out.push_str(&other.to_string()),
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
        c.insert_node("a".into(), json!({"label": "bug", "deep": {"id": 7}}));
        c
    }

    #[test]
    fn paths_reach_into_outputs_lists_and_items() {
        let c = context().with_item(json!({"xs": [1, {"y": "z"}]}), 4);
        assert_eq!(c.lookup("nodes.a.deep.id"), Some(json!(7)));
        assert_eq!(
            c.lookup("nodes.a"),
            Some(json!({"label": "bug", "deep": {"id": 7}}))
        );
        assert_eq!(c.lookup("item.xs.1.y"), Some(json!("z")));
        assert_eq!(c.lookup("index"), Some(json!(4)));
        assert_eq!(c.lookup("nodes"), Some(json!({"a": c.lookup("nodes.a")})));
        assert_eq!(c.lookup("nodes.b"), None);
        assert_eq!(c.lookup("item.xs.9"), None);
        assert_eq!(c.lookup("input.text.x"), None);
    }

    #[test]
    fn an_items_context_shares_what_came_before_until_it_writes() {
        let base = context();
        let mut item = base.with_item(json!(1), 0);
        assert!(Arc::ptr_eq(&base.nodes, &item.nodes), "shared, not copied");
        item.insert_node("b".into(), json!({}));
        assert!(base.lookup("nodes.b").is_none(), "the base is not written");
        assert!(item.lookup("nodes.a.label").is_some());
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
    fn an_optional_input_left_unfilled_is_null_and_a_required_one_is_missing() {
        let c = Context::new(json!({"text": "hi", "given": null})).with_optional([
            "when".to_owned(),
            "given".to_owned(),
            "text".to_owned(),
        ]);
        assert_eq!(c.render_text("{{input.when}}"), Ok(Value::Null));
        assert_eq!(c.render_text("{{ input.given }}"), Ok(Value::Null));
        assert_eq!(c.render_text("{{input.when.from}}"), Ok(Value::Null));
        assert_eq!(c.render_text("[{{input.when}}]"), Ok(json!("[]")));
        assert_eq!(c.render_text("{{input.text}}"), Ok(json!("hi")));
        assert_eq!(
            c.render_text("{{input.text.deeper}}"),
            Err(Missing("input.text.deeper".into())),
            "a filled input's missing part is missing"
        );
        assert_eq!(
            c.render_text("{{input.other}}"),
            Err(Missing("input.other".into())),
            "not optional"
        );
        let required = Context::new(json!({}));
        assert_eq!(
            required.render_text("{{input.when}}"),
            Err(Missing("input.when".into()))
        );
        assert!(c.with_item(json!(1), 0).optional.contains("when"));
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
