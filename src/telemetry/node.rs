//! Every line names the node that logged it (`node.worker_id`), so the lines of a cluster can be
//! read together: `{"node":3,…}` first in a JSON line, `node=3 ` before a pretty one.
//!
//! ```text
//! event ─▶ Stamped ─▶ inner format (JSON or one-line text) ─▶ stamped line ─▶ batched writer
//! ```

use std::cell::RefCell;
use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// An event format that puts the node's id in front of what `inner` writes.
pub struct Stamped<F> {
    pub node: u16,
    pub json: bool,
    pub inner: F,
}

thread_local! {
    /// The JSON line before its stamp: one buffer per thread, kept between lines.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, N, F> FormatEvent<S, N> for Stamped<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !self.json {
            write!(writer, "node={} ", self.node)?;
            return self.inner.format_event(ctx, writer, event);
        }
        // A JSON object cannot be prefixed: the inner line is written aside, then opened again
        // with the node as its first field. (A line logged while formatting one on this thread
        // would find the buffer taken: it is written unstamped rather than lost.)
        LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else {
                return self.inner.format_event(ctx, writer, event);
            };
            line.clear();
            self.inner
                .format_event(ctx, Writer::new(&mut *line), event)?;
            match line.strip_prefix('{') {
                Some(rest) => write!(writer, "{{\"node\":{},{rest}", self.node),
                None => writer.write_str(&line),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn logged(json: bool) -> String {
        let out = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false);
        let dispatch = if json {
            tracing::Dispatch::new(
                builder
                    .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                    .event_format(Stamped {
                        node: 7,
                        json,
                        inner: tracing_subscriber::fmt::format().json().flatten_event(true),
                    })
                    .finish(),
            )
        } else {
            tracing::Dispatch::new(
                builder
                    .event_format(Stamped {
                        node: 7,
                        json,
                        inner: tracing_subscriber::fmt::format().with_ansi(false),
                    })
                    .finish(),
            )
        };
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(run_id = 5, "step finished");
        });
        let mut text = out.0.lock().unwrap().clone();
        text.flush().unwrap();
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn a_json_line_carries_the_node_first() {
        let line = logged(true);
        assert!(line.starts_with("{\"node\":7,"), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(parsed["run_id"], 5);
    }

    #[test]
    fn a_text_line_is_one_line_without_colour_and_names_the_node() {
        let line = logged(false);
        assert!(line.starts_with("node=7 "), "{line}");
        assert!(!line.contains('\u{1b}'), "no colour codes: {line:?}");
        assert!(line.contains("run_id=5"), "{line}");
    }
}
