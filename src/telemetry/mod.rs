//! Logs: `tracing` to stdout, JSON lines by default (`log.format = "pretty"` for people: one
//! line per event, coloured only on a terminal). Every line names its node (`node`). Events
//! inside a request carry that request's span, whose `request_id` is also the `X-Request-Id`
//! header and the `trace` of any error envelope.
//!
//! Lines are formatted where they are logged and written to stdout in batches by one thread
//! (`batched`): every `log.flush_interval_ms`, without waking that thread per line. A span's
//! field recorded after it opened (the request's `user_id`) is appended to its JSON (`fields`).

mod batched;
mod fields;
mod node;

use std::io::IsTerminal;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Keeps the logging thread; dropping it writes what is waiting. Hold it until exit.
#[must_use = "dropping the guard stops the logging thread"]
pub struct LogGuard(#[allow(dead_code)] Option<batched::Flusher>);

/// Installs the global subscriber; `node` is this node's `node.worker_id`, on every line.
/// `RUST_LOG`, when set, overrides `log.level`. A second call (tests build many apps) keeps the
/// first subscriber.
pub fn init(settings: &LogSettings, node: u16) -> LogGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let (writer, guard) = batched::batched(
        settings.buffer_bytes,
        Duration::from_millis(settings.flush_interval_ms),
        Box::new(std::io::stdout()),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match settings.format {
        LogFormat::Json => builder
            .fmt_fields(fields::AppendingJsonFields::default())
            .event_format(node::Stamped {
                node,
                json: true,
                inner: tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            })
            .try_init(),
        LogFormat::Pretty => {
            // Colour for a person at a terminal; plain text for a file or a log collector.
            let ansi = std::io::stdout().is_terminal();
            builder
                .with_ansi(ansi)
                .event_format(node::Stamped {
                    node,
                    json: false,
                    inner: tracing_subscriber::fmt::format().with_ansi(ansi),
                })
                .try_init()
        }
    };
    LogGuard(installed.is_ok().then_some(guard))
}
