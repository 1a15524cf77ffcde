//! HTTP plumbing the remote providers share: sending a streaming request (a failure status
//! becomes the error kind that decides cooldown or disabling) and reading its body as
//! server-sent events into a `Sink`.

use tokio_util::sync::CancellationToken;

use super::provider::{ProviderError, Sink};
use super::sse;

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
