//! What one step of a kind does, given its rendered inputs: an HTTP call, a model's answer, a
//! decision. No SQL here; the executor stores what these return.
//!
//! ```text
//! http ─▶ address allowed (an IP literal now, a name as it is resolved: `crate::egress`)? ─▶ request (Idempotency-Key: step key, timeout) ─▶ body ≤ limit
//!      ─▶ outputs {status, response, <name>: $.path}
//! llm  ─▶ AI registry stream (chunks ─▶ step/stream) ─▶ outputs {response, <json keys>, <name>}
//! decision ─▶ first branch whose condition holds, else default ─▶ outputs {branch}
//! code ─▶ sandbox (a child process, src/sandbox/) ─▶ outputs {result, <name>: $.path}
//! action ─▶ one of the server's own tools (ActionTools) with the run's scope ─▶ outputs {result, …}
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::context::{Context, json_path};
use crate::egress::{Egress, Refused};
use crate::routines::graph::{Branch, Condition, Op};

/// Why a step failed, and whether another attempt could help.
#[derive(Debug, Clone)]
pub struct StepFailure {
    pub reason: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl StepFailure {
    pub fn permanent(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            retryable: false,
        }
    }

    pub fn retryable(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            retryable: true,
        }
    }
}

/// The limits of `http` steps (`[runs]` in config.toml).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Which addresses a step may reach (`runs.allow_private_addresses`); the step's client
    /// was built from it, so what it dials is what was checked.
    pub egress: Egress,
    pub max_response_bytes: usize,
    pub timeout: Duration,
}

fn refused(why: &Refused) -> StepFailure {
    if why.is_private() {
        StepFailure::permanent("PrivateAddress", why.to_string())
    } else {
        StepFailure::retryable("HttpError", why.to_string())
    }
}

/// One HTTP call. `body` and `headers` are rendered already.
#[allow(clippy::too_many_arguments)]
pub async fn http(
    client: &reqwest::Client,
    limits: &HttpLimits,
    method: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    body: Option<&Value>,
    outputs: &BTreeMap<String, String>,
    step_key: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Value, StepFailure> {
    let url = reqwest::Url::parse(url)
        .map_err(|e| StepFailure::permanent("InvalidUrl", format!("{url:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(StepFailure::permanent(
            "InvalidUrl",
            "only http and https URLs",
        ));
    }
    // A literal here; a name when the client resolves it (`crate::egress`).
    limits.egress.check_literal(&url).map_err(|r| refused(&r))?;
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| StepFailure::permanent("InvalidMethod", method.to_owned()))?;
    let mut request = client
        .request(method, url)
        .timeout(timeout.min(limits.timeout))
        .header("Idempotency-Key", step_key);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let call = async {
        let mut response = request
            .send()
            .await
            .map_err(|e| match crate::egress::refused(&e) {
                Some(why) => refused(why),
                None => StepFailure::retryable("HttpError", format!("request failed: {e}")),
            })?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| StepFailure::retryable("HttpError", format!("body broke off: {e}")))?
        {
            if bytes.len() + chunk.len() > limits.max_response_bytes {
                return Err(StepFailure::permanent(
                    "ResponseTooLarge",
                    format!("the response is over {} bytes", limits.max_response_bytes),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, bytes))
    };
    let (status, bytes) = tokio::select! {
        result = call => result?,
        _ = cancel.cancelled() => return Err(StepFailure::permanent("Cancelled", "stopped")),
    };
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        return Err(StepFailure::retryable(
            "HttpError",
            format!("the service answered {status}"),
        ));
    }
    if !status.is_success() {
        return Err(StepFailure::permanent(
            "HttpError",
            format!(
                "the service answered {status}: {}",
                truncate(&body.to_string(), 300)
            ),
        ));
    }
    let mut out = Map::new();
    out.insert("status".into(), json!(status.as_u16()));
    for (name, path) in outputs {
        let value = json_path(&body, path).ok_or_else(|| {
            StepFailure::permanent(
                "MissingOutput",
                format!("the response has nothing at {path} for output {name:?}"),
            )
        })?;
        out.insert(name.clone(), value);
    }
    out.insert("response".into(), body);
    Ok(Value::Object(out))
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The outputs of a model's answer: `response` (the text), each key of a JSON object answer
/// (bare or in a ```json fence), and each declared output (`$.text` is the whole answer).
pub fn llm_outputs(text: &str, declared: &BTreeMap<String, String>) -> Result<Value, StepFailure> {
    let mut out = Map::new();
    let trimmed = text.trim();
    let fenced = trimmed
        .strip_prefix("```json")
        .and_then(|t| t.strip_suffix("```"))
        .map(str::trim);
    if let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(fenced.unwrap_or(trimmed)) {
        out.extend(keys);
    }
    let mut answer = Value::Object(out.clone());
    answer["text"] = json!(text);
    for (name, path) in declared {
        let value = json_path(&answer, path).ok_or_else(|| {
            StepFailure::permanent(
                "MissingOutput",
                format!("the answer has nothing at {path} for output {name:?}"),
            )
        })?;
        out.insert(name.clone(), value);
    }
    out.insert("response".into(), json!(text));
    Ok(Value::Object(out))
}

/// Whether a condition holds in the context. A path that names nothing holds only `exists`'s
/// negation.
pub fn holds(condition: &Condition, context: &Context) -> bool {
    let value = context.lookup(&condition.path);
    match condition.op {
        Op::Exists => value.is_some() == condition.value.as_bool().unwrap_or(true),
        Op::Eq => value.as_ref() == Some(&condition.value),
        Op::Ne => value.as_ref() != Some(&condition.value),
        Op::Lt | Op::Gt => match (
            value.as_ref().and_then(Value::as_f64),
            condition.value.as_f64(),
        ) {
            (Some(a), Some(b)) => {
                if condition.op == Op::Lt {
                    a < b
                } else {
                    a > b
                }
            }
            _ => false,
        },
        Op::In => condition
            .value
            .as_array()
            .is_some_and(|items| value.as_ref().is_some_and(|v| items.contains(v))),
    }
}

/// The branch a decision takes.
pub fn decide<'a>(branches: &'a [Branch], default: &'a str, context: &Context) -> &'a str {
    branches
        .iter()
        .find(|b| holds(&b.when, context))
        .map_or(default, |b| b.to.as_str())
}

/// What `action` steps call: the server's own tools (the MCP tools of `src/mcp/tools/`, set
/// on [`super::RunDeps::actions`] at start-up, so this module needs nothing of MCP). `scope` is
/// who the run acts for and with what (`super::scope`): the tools check it as they check an
/// MCP caller. An error is a stable code and a message.
pub trait ActionTools: Send + Sync {
    fn call<'a>(
        &'a self,
        scope: super::scope::RunScope,
        tool: &'a str,
        arguments: Value,
    ) -> ActionCall<'a>;
}

/// A tool call in progress: its result, or a stable code and a message.
pub type ActionCall<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Value, (&'static str, String)>> + Send + 'a>,
>;

/// `result` and the declared outputs (JSON paths into it) of a step that returned `result`.
pub fn result_outputs(
    result: Value,
    declared: &BTreeMap<String, String>,
) -> Result<Value, StepFailure> {
    let mut out = Map::new();
    for (name, path) in declared {
        let value = json_path(&result, path).ok_or_else(|| {
            StepFailure::permanent(
                "MissingOutput",
                format!("the result has nothing at {path} for output {name:?}"),
            )
        })?;
        out.insert(name.clone(), value);
    }
    out.insert("result".into(), result);
    Ok(Value::Object(out))
}

/// The outputs of a `code` step: `result` (what the script returned) and each declared output
/// (a JSON path into it). A script's failure is the step's, with the sandbox's reason.
pub fn code_outputs(
    result: Result<Value, crate::sandbox::SandboxError>,
    declared: &BTreeMap<String, String>,
) -> Result<Value, StepFailure> {
    use crate::sandbox::SandboxError as E;
    let result = result.map_err(|error| {
        let message = error.to_string();
        match error {
            E::Script(_) => StepFailure::permanent("ScriptError", message),
            E::Timeout(_) => StepFailure::permanent("ScriptTimeout", message),
            E::OutOfMemory => StepFailure::permanent("ScriptOutOfMemory", message),
            E::OutputTooLarge(_) => StepFailure::permanent("ScriptOutputTooLarge", message),
            E::Crashed(_) => StepFailure::permanent("SandboxCrashed", message),
            // No process could be started (limits of the host): another attempt may find one.
            E::Unavailable(_) => StepFailure::retryable("SandboxUnavailable", message),
        }
    })?;
    result_outputs(result, declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::address::is_private;

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2001:4860::8888"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_json_answer_gives_its_keys_and_text_its_response() {
        let declared = BTreeMap::from([("label".to_owned(), "$.text".to_owned())]);
        let out = llm_outputs("bug", &declared).unwrap();
        assert_eq!(out["label"], "bug");
        assert_eq!(out["response"], "bug");
        let out = llm_outputs("```json\n{\"a\": 1}\n```", &BTreeMap::new()).unwrap();
        assert_eq!(out["a"], 1);
        let missing = BTreeMap::from([("x".to_owned(), "$.nope".to_owned())]);
        assert_eq!(
            llm_outputs("hi", &missing).unwrap_err().reason,
            "MissingOutput"
        );
    }

    #[test]
    fn decisions_take_the_first_branch_that_holds() {
        let mut context = Context::new(json!({}));
        context.insert_node("c".into(), json!({"label": "bug", "n": 5}));
        let branches: Vec<Branch> = serde_json::from_value(json!([
            {"when": {"path": "nodes.c.n", "op": "gt", "value": 9}, "to": "big"},
            {"when": {"path": "nodes.c.label", "op": "in", "value": ["bug", "crash"]}, "to": "file"}
        ]))
        .unwrap();
        assert_eq!(decide(&branches, "done", &context), "file");
        context.insert_node("c".into(), json!({"label": "idea", "n": 1}));
        assert_eq!(decide(&branches, "done", &context), "done");
    }
}
