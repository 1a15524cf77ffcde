//! Log lines gathered in memory and written to stdout by one thread, every
//! `log.flush_interval_ms` or sooner once `log.buffer_bytes / 4` are waiting.
//!
//! ```text
//! logger (any thread) ─ line ─▶ Mutex<Vec<u8>> ─▶ vrooli-log thread: every interval, one write
//!        └─ buffer full (log.buffer_bytes): writes everything waiting itself, then its line
//! ```
//!
//! Why not a queue with a thread waiting on it (tracing-appender, before): a line into an empty
//! queue wakes that thread, so every request paid a wake-up of another thread. Without it the
//! server's CPU per page GET fell by 3–16% (`docs/BENCHMARKS.md`, issue 13, aim 3). Here a
//! logger only appends under a lock; the thread wakes on its own clock, or when a quarter of
//! the buffer waits. Nothing is dropped for being too much: a full buffer makes the logger
//! write, as a logger on stdout would. Lines stay in order: every write to stdout takes the
//! buffer's contents while holding `out`.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

struct Shared {
    waiting: Mutex<Waiting>,
    /// Woken early when a quarter of the buffer waits, and to stop.
    wake: Condvar,
    /// Stdout (a test's buffer in tests), held while writing, so that batches go out in the
    /// order they were taken.
    out: Mutex<Box<dyn Write + Send>>,
    limit: usize,
}

struct Waiting {
    lines: Vec<u8>,
    stop: bool,
}

/// The writer given to `tracing_subscriber`.
pub struct Batched(Arc<Shared>);

/// Stops the thread when dropped, after it wrote what was waiting.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer to `out` over `limit` bytes of buffer flushed every `interval`, and its thread.
pub fn batched(limit: usize, interval: Duration, out: Box<dyn Write + Send>) -> (Batched, Flusher) {
    let shared = Arc::new(Shared {
        waiting: Mutex::new(Waiting {
            lines: Vec::with_capacity(limit.min(64 * 1024)),
            stop: false,
        }),
        wake: Condvar::new(),
        out: Mutex::new(out),
        limit,
    });
    let for_thread = Arc::clone(&shared);
    // Like any thread the server needs at start-up: failing to spawn it is fatal.
    let thread = std::thread::Builder::new()
        .name("vrooli-log".into())
        .spawn(move || run(&for_thread, interval))
        .expect("the logging thread starts");
    (
        Batched(Arc::clone(&shared)),
        Flusher {
            shared,
            thread: Some(thread),
        },
    )
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A logger that panicked mid-append left at worst a partial line: keep logging.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run(shared: &Shared, interval: Duration) {
    loop {
        let stop = {
            let waiting = lock(&shared.waiting);
            let (waiting, _) = shared
                .wake
                .wait_timeout_while(waiting, interval, |w| {
                    !w.stop && w.lines.len() < shared.limit / 4
                })
                .unwrap_or_else(PoisonError::into_inner);
            waiting.stop
        };
        shared.write_waiting(&[]);
        if stop {
            return;
        }
    }
}

impl Shared {
    /// Writes what is waiting, then `line`, to `out`.
    fn write_waiting(&self, line: &[u8]) {
        let mut out = lock(&self.out);
        let lines = std::mem::take(&mut lock(&self.waiting).lines);
        // A failed write (stdout closed, disk full) loses this batch: there is nowhere to
        // report it, and holding it would only grow the buffer.
        let _ = out.write_all(&lines);
        let _ = out.write_all(line);
        let _ = out.flush();
        drop(out);
        // Give the allocation back for the next batch, unless something was appended meanwhile.
        let mut waiting = lock(&self.waiting);
        if waiting.lines.is_empty() {
            let mut lines = lines;
            lines.clear();
            waiting.lines = lines;
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        lock(&self.shared.waiting).stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Lines logged after the thread's last batch.
        self.shared.write_waiting(&[]);
    }
}

/// One line's writer: a borrow of the buffer, not a clone of the `Arc` per line.
pub struct Line<'a>(&'a Shared);

impl Write for Line<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = self.0;
        let mut waiting = lock(&shared.waiting);
        if waiting.lines.len() + line.len() <= shared.limit {
            waiting.lines.extend_from_slice(line);
            let early = waiting.lines.len() >= shared.limit / 4;
            drop(waiting);
            if early {
                shared.wake.notify_one();
            }
        } else {
            drop(waiting);
            shared.write_waiting(line);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Lines go out on the thread's clock; see the module header.
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test reads back, and waits on.
    #[derive(Clone, Default)]
    struct Sink(Arc<(Mutex<Vec<u8>>, Condvar)>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.0.lock().unwrap().extend_from_slice(bytes);
            self.0.1.notify_all();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.0.lock().unwrap().clone()).unwrap()
        }

        /// Waits until something was written, at most `limit`.
        fn wait_for_bytes(&self, limit: Duration) -> String {
            let written = self.0.0.lock().unwrap();
            let (written, _) = self
                .0
                .1
                .wait_timeout_while(written, limit, |w| w.is_empty())
                .unwrap();
            String::from_utf8(written.clone()).unwrap()
        }
    }

    fn log(writer: &Batched, line: &str) {
        writer.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_and_in_each_threads_order() {
        let sink = Sink::default();
        // A small buffer, so that loggers also write batches themselves, racing the thread.
        let (writer, flusher) = batched(4096, Duration::from_millis(1), Box::new(sink.clone()));
        std::thread::scope(|scope| {
            for t in 0..4 {
                let writer = &writer;
                scope.spawn(move || {
                    for n in 0..2000 {
                        log(writer, &format!("{t} {n}\n"));
                    }
                });
            }
        });
        drop(flusher);
        let text = sink.text();
        let mut next = [0; 4];
        for line in text.lines() {
            let (t, n) = line.split_once(' ').unwrap();
            let t: usize = t.parse().unwrap();
            assert_eq!(
                n.parse::<i32>().unwrap(),
                next[t],
                "thread {t}'s lines in order"
            );
            next[t] += 1;
        }
        assert_eq!(next, [2000; 4], "every line arrived");
    }

    #[test]
    fn a_line_goes_out_on_the_threads_clock_without_a_flush() {
        let sink = Sink::default();
        let (writer, _flusher) =
            batched(1 << 20, Duration::from_millis(20), Box::new(sink.clone()));
        log(&writer, "one\n");
        assert_eq!(sink.wait_for_bytes(Duration::from_secs(5)), "one\n");
    }

    #[test]
    fn a_filling_buffer_goes_out_before_the_clock_and_the_guard_writes_the_rest() {
        let sink = Sink::default();
        // The thread's clock is far away: only a full buffer or the guard writes.
        let (writer, flusher) = batched(4096, Duration::from_secs(10), Box::new(sink.clone()));
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..100 {
            log(&writer, &line);
        }
        // 10,000 bytes through a 4,096-byte buffer: most are out already (the thread also
        // wakes early at a quarter full), none lost.
        assert!(sink.text().len() >= 10_000 - 4096);
        drop(flusher);
        assert_eq!(sink.text().len(), 10_000);
    }
}
