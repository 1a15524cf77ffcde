//! Sandboxed JavaScript for `code` steps (the original's isolated-vm steps), run by QuickJS in a
//! child process of this very binary (`vrooli sandbox`, `child.rs`):
//!
//! ```text
//! `sandbox-execution` job (its pool's concurrency bounds the children of a node)
//!      ─▶ Sandbox::run ─▶ spawn `vrooli sandbox`, env cleared
//!      ─▶ request on stdin {code, input, limits} ─▶ child: OS limits (address space, CPU,
//!         no new files or processes) ─▶ QuickJS (memory, stack, interrupt at the deadline)
//!      ─▶ reply on stdout {ok, result | kind, message} ─▶ parent: kill at the wall clock,
//!         bounded output, a crash (signal, no reply) is a failed step — never the node's.
//! ```
//!
//! In-engine limits have known escapes, hence the process and its OS limits; the engine has no
//! host functions at all (no `require`, `fetch`, `process`, timers, file system or network).

pub mod child;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::SandboxSettings;

/// Why a script gave no result (stored with a `code` step's outcome, hence serde).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail")]
pub enum SandboxError {
    /// The script threw, or its result is not JSON.
    #[error("the script failed: {0}")]
    Script(String),
    #[error("the script ran past its deadline of {0} ms")]
    Timeout(u64),
    #[error("the script ran out of memory")]
    OutOfMemory,
    /// The child died without a reply (a signal, an abort): the step fails, the node goes on.
    #[error("the sandbox crashed: {0}")]
    Crashed(String),
    #[error("the script's result is over {0} bytes")]
    OutputTooLarge(usize),
    /// The child could not be started (the program is missing, no processes left).
    #[error("the sandbox could not start: {0}")]
    Unavailable(String),
}

/// What the parent sends the child.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub code: String,
    pub input: Value,
    pub memory_bytes: usize,
    pub stack_bytes: usize,
    pub timeout_ms: u64,
    pub address_space_bytes: u64,
}

/// What the child answers: a result, or why not.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Reply {
    Ok { result: Value },
    Script { message: String },
    Timeout,
    OutOfMemory,
}

#[derive(Clone)]
pub struct Sandbox {
    program: PathBuf,
    settings: SandboxSettings,
}

impl Sandbox {
    /// `sandbox.program` or, when empty, this binary.
    pub fn new(settings: &SandboxSettings) -> std::io::Result<Self> {
        let program = if settings.program.is_empty() {
            std::env::current_exe()?
        } else {
            PathBuf::from(&settings.program)
        };
        Ok(Self {
            program,
            settings: settings.clone(),
        })
    }

    /// Runs `code` (a function body; `input` is its argument, its return value the result)
    /// within `timeout` (at most `sandbox.timeout_ms`).
    pub async fn run(
        &self,
        code: &str,
        input: &Value,
        timeout: Option<Duration>,
    ) -> Result<Value, SandboxError> {
        let s = &self.settings;
        let timeout_ms = timeout.map_or(s.timeout_ms, |t| (t.as_millis() as u64).min(s.timeout_ms));
        let request = serde_json::to_vec(&Request {
            code: code.to_owned(),
            input: input.clone(),
            memory_bytes: s.memory_bytes,
            stack_bytes: s.stack_bytes,
            timeout_ms,
            address_space_bytes: s.address_space_bytes,
        })
        .map_err(|e| SandboxError::Script(e.to_string()))?;
        let mut child = tokio::process::Command::new(&self.program)
            .arg("sandbox")
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SandboxError::Unavailable(e.to_string()))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(SandboxError::Unavailable("no pipes to the child".into()));
        };
        let max = s.max_output_bytes;
        let exchange = async move {
            // A child that dies before reading all of it breaks the pipe: its exit says why.
            let _ = stdin.write_all(&request).await;
            drop(stdin);
            let mut out = Vec::new();
            let read = stdout.take(max as u64 + 1).read_to_end(&mut out).await;
            (read, out)
        };
        // The wall clock: the engine's deadline, then the CPU limit, should stop it first.
        let wall = Duration::from_millis(timeout_ms + s.kill_grace_ms);
        let outcome = tokio::time::timeout(wall, async {
            let (read, out) = exchange.await;
            if out.len() > max {
                // It would block writing the rest: no need to wait for it.
                let _ = child.start_kill();
            }
            let status = child.wait().await;
            (read, out, status)
        })
        .await;
        let Ok((read, out, status)) = outcome else {
            // kill_on_drop ends it; this waits for the kill so no zombie is left.
            let _ = child.kill().await;
            return Err(SandboxError::Timeout(timeout_ms));
        };
        if out.len() > max {
            return Err(SandboxError::OutputTooLarge(max));
        }
        let status = status.map_err(|e| SandboxError::Crashed(e.to_string()))?;
        match (read, serde_json::from_slice::<Reply>(&out)) {
            (Ok(_), Ok(reply)) if status.success() => match reply {
                Reply::Ok { result } => Ok(result),
                Reply::Script { message } => Err(SandboxError::Script(message)),
                Reply::Timeout => Err(SandboxError::Timeout(timeout_ms)),
                Reply::OutOfMemory => Err(SandboxError::OutOfMemory),
            },
            _ => Err(crashed(status, timeout_ms)),
        }
    }
}

/// Why a child that gave no reply ended.
fn crashed(status: std::process::ExitStatus, timeout_ms: u64) -> SandboxError {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        // The CPU limit (RLIMIT_CPU) past the engine's deadline.
        Some(libc::SIGXCPU) => SandboxError::Timeout(timeout_ms),
        Some(signal) => SandboxError::Crashed(format!("killed by signal {signal}")),
        None => SandboxError::Crashed(format!("exited with {status} and no reply")),
    }
}
