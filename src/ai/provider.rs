//! What a provider is (`Provider`) and what it is given and gives back: the prompt, the `Sink`
//! its chunks go to, the usage, its errors; and the streaming request and server-sent-event loop
//! the remote providers share. Below the providers (`openai`, `anthropic`, `echo`) and the
//! registry (`mod.rs`) that picks among them.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::sse;

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

/// Maps a provider's HTTP status to the error kinds that decide cooldown or disabling.
pub fn status_error(status: reqwest::StatusCode, body: &str) -> ProviderError {
    match status.as_u16() {
        401 | 403 => ProviderError::Auth,
        429 => ProviderError::RateLimited,
        503 | 529 => ProviderError::Overloaded,
        _ => ProviderError::Api(format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        )),
    }
}

/// Sends a streaming request (given up on cancellation); a failure status becomes the error
/// kind that decides cooldown or disabling.
pub async fn send_streaming(
    request: reqwest::RequestBuilder,
    cancel: &CancellationToken,
) -> Result<reqwest::Response, ProviderError> {
    let response = tokio::select! {
        _ = cancel.cancelled() => return Err(ProviderError::Cancelled),
        r = request.send() => r.map_err(|e| ProviderError::Network(e.to_string()))?,
    };
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        return Err(status_error(status, &text));
    }
    Ok(response)
}

/// Reads a streamed response body as server-sent events, stopping on cancellation.
pub async fn for_each_event(
    response: reqwest::Response,
    cancel: &CancellationToken,
    mut on_event: impl FnMut(
        sse::SseEvent,
    ) -> std::ops::ControlFlow<Result<(), ProviderError>, Option<String>>,
    sink: &mut Sink,
) -> Result<bool, ProviderError> {
    use futures_util::StreamExt;
    let mut parser = sse::SseParser::default();
    let mut body = response.bytes_stream();
    loop {
        let piece = tokio::select! {
            _ = cancel.cancelled() => return Err(ProviderError::Cancelled),
            piece = body.next() => piece,
        };
        let Some(piece) = piece else {
            return Ok(false); // ended without the provider's end marker
        };
        let bytes = piece.map_err(|e| ProviderError::Network(e.to_string()))?;
        for event in parser.push(&bytes) {
            match on_event(event) {
                std::ops::ControlFlow::Continue(Some(text)) => sink.send(&text).await?,
                std::ops::ControlFlow::Continue(None) => {}
                std::ops::ControlFlow::Break(result) => return result.map(|()| true),
            }
        }
    }
}
