//! Start-up retries with exponential backoff, shared by the PostgreSQL and Redis connectors:
//! a node that boots before its database should wait for it, not crash-loop.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

/// Runs `attempt` until it succeeds or `backoff.attempts` have failed, doubling the pause between
/// attempts up to `backoff.max`. Returns the last error.
pub async fn with_backoff<T, E, F, Fut>(
    what: &str,
    backoff: Backoff,
    mut attempt: F,
) -> Result<T, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut pause = backoff.initial;
    let mut n = 1;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if n >= backoff.attempts => return Err(error),
            Err(error) => {
                tracing::warn!(
                    target = what,
                    attempt = n,
                    of = backoff.attempts,
                    retry_in_ms = pause.as_millis() as u64,
                    %error,
                    "could not connect, retrying"
                );
                // Sleeping is the point here: the dependency needs time to come up.
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(backoff.max);
                n += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gives_up_after_the_last_attempt_and_returns_its_error() {
        let mut calls = 0;
        let backoff = Backoff {
            attempts: 3,
            initial: Duration::ZERO,
            max: Duration::ZERO,
        };
        let result: Result<(), String> = with_backoff("test", backoff, || {
            calls += 1;
            let n = calls;
            async move { Err(format!("failure {n}")) }
        })
        .await;
        assert_eq!(result, Err("failure 3".to_string()));
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn returns_the_first_success() {
        let mut calls = 0;
        let backoff = Backoff {
            attempts: 5,
            initial: Duration::ZERO,
            max: Duration::ZERO,
        };
        let result: Result<u32, String> = with_backoff("test", backoff, || {
            calls += 1;
            let n = calls;
            async move { if n < 2 { Err("not yet".into()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result, Ok(2));
    }
}
