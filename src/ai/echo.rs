//! The built-in `echo` model: answers with the last message it got, word by word. It needs no
//! network and costs nothing, so a single node with nothing configured still has working bots.

use tokio_util::sync::CancellationToken;

use super::provider::{BoxFut, Prompt, Provider, ProviderError, Role, Sink, Usage};

pub struct Echo;

impl Provider for Echo {
    fn stream<'a>(
        &'a self,
        _model: &'a str,
        prompt: &'a Prompt,
        sink: &'a mut Sink,
        cancel: &'a CancellationToken,
    ) -> BoxFut<'a, Result<Usage, ProviderError>> {
        Box::pin(async move {
            let last = prompt
                .turns
                .iter()
                .rev()
                .find(|(role, _)| *role == Role::User)
                .map(|(_, text)| text.as_str())
                .unwrap_or("");
            let words: Vec<&str> = last.split_whitespace().collect();
            let mut first = true;
            for word in &words {
                if cancel.is_cancelled() {
                    return Err(ProviderError::Cancelled);
                }
                let chunk = if first {
                    (*word).to_owned()
                } else {
                    format!(" {word}")
                };
                first = false;
                sink.send(&chunk).await?;
                tokio::task::yield_now().await;
            }
            let input = prompt
                .turns
                .iter()
                .map(|(_, t)| t.split_whitespace().count())
                .sum::<usize>();
            Ok(Usage {
                input_tokens: input as i64,
                output_tokens: words.len() as i64,
            })
        })
    }
}
