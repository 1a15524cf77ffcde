//! A streamed answer's chunks, gathered for publishing.
//!
//! ```text
//! Provider ─▶ Sink ─▶ channel ─▶ Chunks::next ─▶ one published event (chat::answer, runs' llm steps)
//! ```
//!
//! A provider may stream a word at a time, far faster than anyone reads; each published chunk is
//! a Redis round trip and a frame to every member of the room. The first chunk goes out as soon
//! as it comes, so an answer starts without delay; after that, a publish starts at most once per
//! `ai.stream_interval_ms`, carrying everything that arrived meanwhile, in order. The last chunk
//! goes out as soon as the stream ends. Nothing is dropped: the chunks only get fewer and longer.

use tokio::sync::mpsc;
use tokio::time::{Duration, Instant, timeout_at};

pub struct Chunks {
    rx: mpsc::Receiver<String>,
    interval: Duration,
    last: Option<Instant>,
}

impl Chunks {
    pub fn new(rx: mpsc::Receiver<String>, interval: Duration) -> Self {
        Self {
            rx,
            interval,
            last: None,
        }
    }

    /// The next text to publish; `None` once the stream has ended and all of it was given.
    /// Waits for a chunk, then, unless this is the first, gathers until an interval has passed
    /// since the previous one was given (or the stream ends).
    pub async fn next(&mut self) -> Option<String> {
        let mut text = self.rx.recv().await?;
        if let Some(last) = self.last {
            let due = last + self.interval;
            while let Ok(Some(more)) = timeout_at(due, self.rx.recv()).await {
                text.push_str(&more);
            }
        }
        // Whatever is already waiting goes too (the interval may be zero, or long past).
        while let Ok(more) = self.rx.try_recv() {
            text.push_str(&more);
        }
        self.last = Some(Instant::now());
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_chunk_goes_at_once_and_the_next_gathers_for_an_interval() {
        let interval = Duration::from_millis(300);
        let (tx, rx) = mpsc::channel(64);
        let mut chunks = Chunks::new(rx, interval);
        tx.send("a".to_owned()).await.unwrap();
        let start = Instant::now();
        assert_eq!(chunks.next().await.as_deref(), Some("a"));
        assert!(
            start.elapsed() < interval,
            "the first chunk waits for nothing"
        );

        tx.send("b".to_owned()).await.unwrap();
        let sender = tx.clone();
        let later = tokio::spawn(async move {
            // A word that arrives inside the interval: the condition under test, not a wait.
            tokio::time::sleep(Duration::from_millis(20)).await;
            sender.send("c".to_owned()).await.unwrap();
        });
        assert_eq!(
            chunks.next().await.as_deref(),
            Some("bc"),
            "in order, together"
        );
        assert!(start.elapsed() >= interval, "not before the interval");
        later.await.unwrap();
        drop(tx);
        assert_eq!(chunks.next().await, None, "the stream ended");
    }

    #[tokio::test]
    async fn the_end_of_the_stream_sends_what_was_gathered_without_waiting() {
        let (tx, rx) = mpsc::channel(64);
        let mut chunks = Chunks::new(rx, Duration::from_secs(60));
        tx.send("a".to_owned()).await.unwrap();
        assert_eq!(chunks.next().await.as_deref(), Some("a"));
        tx.send("b".to_owned()).await.unwrap();
        tx.send("c".to_owned()).await.unwrap();
        drop(tx);
        let start = Instant::now();
        assert_eq!(chunks.next().await.as_deref(), Some("bc"));
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no wait for the interval"
        );
        assert_eq!(chunks.next().await, None);
    }

    #[tokio::test]
    async fn with_no_interval_what_piled_up_still_goes_together() {
        let (tx, rx) = mpsc::channel(64);
        let mut chunks = Chunks::new(rx, Duration::ZERO);
        for word in ["a", "b", "c"] {
            tx.send(word.to_owned()).await.unwrap();
        }
        assert_eq!(chunks.next().await.as_deref(), Some("abc"));
        drop(tx);
        assert_eq!(chunks.next().await, None);
    }
}
