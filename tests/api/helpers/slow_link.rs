//! A TCP proxy that holds every chunk of bytes for a fixed time in each direction, as if the
//! server behind it (Redis) were far away: a test can then tell one round trip per batch from
//! one per item by how long the work takes.
//!
//! ```text
//! client ─▶ listener ─▶ per connection, per direction: read ─▶ (due time, bytes) ─▶ wait ─▶ write ─▶ server
//! ```
//! Bytes keep their order and are delayed, not throttled: a chunk read while another waits goes
//! out `delay` after it was read.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub struct SlowLink {
    pub port: u16,
    /// Aborting it drops the connections' tasks too (they live in its `JoinSet`).
    listener: tokio::task::JoinHandle<()>,
}

impl SlowLink {
    /// Listens on a free port and forwards to 127.0.0.1:`target`, `delay` each way.
    pub async fn start(target: u16, delay: Duration) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let listener = tokio::spawn(async move {
            let mut links = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                client.set_nodelay(true).ok();
                server.set_nodelay(true).ok();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                links.spawn(forward(client_read, server_write, delay));
                links.spawn(forward(server_read, client_write, delay));
            }
        });
        Self { port, listener }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// One direction: a reader stamps each chunk with its due time, a writer sends it then.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (due, mut chunks) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = chunks.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        to.shutdown().await.ok();
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0
            || due
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
        {
            break;
        }
    }
    drop(due);
    writer.await.ok();
}
