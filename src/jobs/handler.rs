//! Typed job handlers. A handler declares its kind, its queue and its payload type; the registry
//! erases the type so workers can dispatch by `jobs.kind`. A payload that does not decode, or a
//! kind nobody handles, is a permanent failure: the job goes straight to dead with the reason
//! (retrying cannot fix it).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::queue::Queue;
use super::store::{JobId, NewJob};

/// Why an attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (a provider timed out, a connection dropped).
    #[error("{0}")]
    Retryable(String),
    /// Will fail the same way every time (bad payload, unknown kind): dead at once.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn retryable(error: impl std::fmt::Display) -> Self {
        Self::Retryable(error.to_string())
    }

    pub fn permanent(error: impl std::fmt::Display) -> Self {
        Self::Permanent(error.to_string())
    }
}

/// What a handler knows about the attempt it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub id: JobId,
    pub attempt: i32,
    pub max_attempts: i32,
}

pub trait JobHandler: Send + Sync + 'static {
    /// Stored in `jobs.kind`; unique across handlers.
    const KIND: &'static str;
    /// The queue its jobs go to.
    const QUEUE: Queue;
    type Payload: Serialize + DeserializeOwned + Send + 'static;

    fn handle(
        &self,
        payload: Self::Payload,
        ctx: JobContext,
    ) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Called once when a job of this kind has died (a permanent failure, or its last attempt
    /// failed, panicked or timed out), with why: whatever the job stood for is marked failed
    /// here, so nothing waits for it forever (an import left `Pending` blocks every later one).
    /// Jobs buried by the rescue sweep or an operator do not come here; their owners must
    /// not rely on it alone. By default, nothing.
    fn on_dead(&self, payload: Self::Payload, reason: &str) -> impl Future<Output = ()> + Send {
        let _ = (payload, reason);
        std::future::ready(())
    }

    /// A job for this handler (priority 100, due now; adjust with the `NewJob` setters).
    fn job(payload: &Self::Payload) -> Result<NewJob, serde_json::Error> {
        Ok(NewJob::new(
            Self::QUEUE,
            Self::KIND,
            serde_json::to_value(payload)?,
        ))
    }
}

type BoxFuture<T = Result<(), JobError>> = Pin<Box<dyn Future<Output = T> + Send>>;

trait ErasedHandler: Send + Sync {
    fn call(&self, payload: Value, ctx: JobContext) -> BoxFuture;
    fn dead(&self, payload: Value, reason: String) -> BoxFuture<()>;
}

struct Typed<H>(Arc<H>);

impl<H: JobHandler> ErasedHandler for Typed<H> {
    fn call(&self, payload: Value, ctx: JobContext) -> BoxFuture {
        let handler = Arc::clone(&self.0);
        Box::pin(async move {
            let payload: H::Payload = serde_json::from_value(payload).map_err(|e| {
                JobError::Permanent(format!("payload of {} does not decode: {e}", H::KIND))
            })?;
            handler.handle(payload, ctx).await
        })
    }

    fn dead(&self, payload: Value, reason: String) -> BoxFuture<()> {
        let handler = Arc::clone(&self.0);
        Box::pin(async move {
            // A payload that does not decode stood for nothing the handler could mark.
            if let Ok(payload) = serde_json::from_value::<H::Payload>(payload) {
                handler.on_dead(payload, &reason).await;
            }
        })
    }
}

/// Handlers by kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, (Queue, Arc<dyn ErasedHandler>)>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a handler. Panics on a duplicate kind: two handlers for one kind is a wiring bug
    /// caught at start-up, never at run time.
    pub fn register<H: JobHandler>(mut self, handler: H) -> Self {
        let previous = self
            .handlers
            .insert(H::KIND, (H::QUEUE, Arc::new(Typed(Arc::new(handler)))));
        assert!(previous.is_none(), "two job handlers for kind {}", H::KIND);
        self
    }

    /// Queues that have at least one handler (only these get workers).
    pub fn queues(&self) -> Vec<Queue> {
        let mut queues: Vec<Queue> = self.handlers.values().map(|(q, _)| *q).collect();
        queues.sort();
        queues.dedup();
        queues
    }

    /// Tells the handler for `kind` that a job of it died (`JobHandler::on_dead`).
    pub(crate) fn bury(&self, kind: &str, payload: Value, reason: String) -> BoxFuture<()> {
        match self.handlers.get(kind) {
            Some((_, handler)) => handler.dead(payload, reason),
            None => Box::pin(std::future::ready(())),
        }
    }

    /// Runs the handler for `kind`.
    pub(crate) fn dispatch(&self, kind: &str, payload: Value, ctx: JobContext) -> BoxFuture {
        match self.handlers.get(kind) {
            Some((_, handler)) => handler.call(payload, ctx),
            None => {
                let kind = kind.to_owned();
                Box::pin(async move {
                    Err(JobError::Permanent(format!(
                        "no handler for job kind {kind}"
                    )))
                })
            }
        }
    }
}
