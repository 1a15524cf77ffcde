//! What every provider shares: the prompt it is asked, the usage it reports, how it fails, and
//! the `Sink` it streams chunks into (which remembers whether anything was said, so the
//! registry knows whether a fallback may still answer).

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub type BoxFut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// What a model is asked.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub system: Option<String>,
    pub turns: Vec<(Role, String)>,
    pub max_tokens: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: i64,
    pub output_tokens: i64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("rate limited")]
    RateLimited,
    #[error("overloaded")]
    Overloaded,
    #[error("authentication failed")]
    Auth,
    #[error("provider error: {0}")]
    Api(String),
    #[error("network error: {0}")]
    Network(String),
    #[error("cancelled")]
    Cancelled,
}

/// Where a provider writes its chunks; remembers whether it wrote any.
pub struct Sink {
    tx: mpsc::Sender<String>,
    emitted: bool,
}

impl Sink {
    pub fn new(tx: mpsc::Sender<String>) -> Self {
        Self { tx, emitted: false }
    }

    pub async fn send(&mut self, text: &str) -> Result<(), ProviderError> {
        if text.is_empty() {
            return Ok(());
        }
        self.emitted = true;
        self.tx
            .send(text.to_owned())
            .await
            .map_err(|_| ProviderError::Cancelled)
    }

    pub fn emitted(&self) -> bool {
        self.emitted
    }
}

pub trait Provider: Send + Sync + 'static {
    fn stream<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
        sink: &'a mut Sink,
        cancel: &'a CancellationToken,
    ) -> BoxFut<'a, Result<Usage, ProviderError>>;
}
