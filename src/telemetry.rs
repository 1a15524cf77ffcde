//! Logs: `tracing` to stdout, JSON lines by default (`log.format = "pretty"` for people).
//! Events inside a request carry that request's span, whose `request_id` is also the
//! `X-Request-Id` header and the `trace` of any error envelope.
//!
//! Lines are formatted where they are logged and written by one logging thread, in batches
//! (tracing-appender's non-blocking writer over a 64 KiB buffer, flushed whenever the queue is
//! empty): a line per request was a `write` system call per request on the request's thread.
//! The queue is not lossy: when it is full, loggers wait, as they did on stdout.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Keeps the logging thread; dropping it flushes what is queued. Hold it until exit.
#[must_use = "dropping the guard stops the logging thread"]
pub struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.level`. A second call
/// (tests build many apps) keeps the first subscriber.
pub fn init(settings: &LogSettings) -> LogGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("vrooli-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    };
    LogGuard(installed.is_ok().then_some(guard))
}
