//! The kernel's floor under fan-out (issue 13, aim 2): what one `send` of a small WebSocket
//! frame on a loopback TCP socket costs the sending process here, with nothing of ours around it.
//!
//! ```text
//! this process ──accept──▶ SOCKETS loopback TCP connections ◀──connect── child process (reader)
//!   every 1/PACE s: for each socket, one `send` of BATCH frames (one frame every BATCH rounds)
//!   sender's user + system CPU (/proc/self/stat) ÷ frames sent  ──▶  µs per frame
//! ```
//!
//! On loopback the receiver's TCP input and its wake-up run in the sender's context (softirq), as
//! they do for our nodes under `ws_load`, so this is the floor of "server CPU per delivery" there
//! for one frame per `send`, and shows how it falls when several frames share one `send` — which
//! at a room's 100 events/s means holding a frame back up to (BATCH − 1) × 10 ms.
//!
//! Run: `cargo bench --bench send_floor` with SOCKETS (default 500: one node's share of the
//! 1,000-member room), FRAME (payload bytes, default 213: a 100-byte payload in our envelope),
//! PACE (events/s, default 100), SECONDS_PER_ROW (default 4), BATCHES (default 1,2,4,8).
//! The sender is plain blocking `std`; the reader, a child process so that its CPU is not the
//! sender's, drains the sockets on a tokio runtime, as `ws_load`'s clients do.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

#[path = "common/load.rs"]
mod load;
use load::{cpu_secs, env_or};

/// The child: connect `sockets` times to `addr` and drain every connection, on a tokio runtime
/// as `ws_load`'s clients are (one reader task per socket; threads wake per readiness batch, not
/// per frame).
fn reader(addr: &str, sockets: usize) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let mut tasks = Vec::with_capacity(sockets);
        for _ in 0..sockets {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    });
}

/// One server-to-client WebSocket text frame (unmasked) of `payload` bytes.
fn frame(payload: usize) -> Vec<u8> {
    let mut out = vec![0x81];
    if payload < 126 {
        out.push(payload as u8);
    } else {
        out.push(126);
        out.extend_from_slice(&(payload as u16).to_be_bytes());
    }
    out.extend(std::iter::repeat_n(b'x', payload));
    out
}

fn main() {
    if let Ok(addr) = std::env::var("SEND_FLOOR_READER") {
        reader(&addr, env_or("SOCKETS", 500));
        return;
    }
    let sockets = env_or("SOCKETS", 500);
    let payload = env_or("FRAME", 213);
    let pace = env_or("PACE", 100);
    let seconds = env_or("SECONDS_PER_ROW", 4);
    let batches: Vec<usize> = std::env::var("BATCHES")
        .unwrap_or_else(|_| "1,2,4,8".into())
        .split(',')
        .map(|b| {
            b.trim()
                .parse()
                .expect("BATCHES: numbers separated by commas")
        })
        .collect();

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut child: Child = Command::new(std::env::current_exe().expect("current_exe"))
        .env("SEND_FLOOR_READER", &addr)
        .env("SOCKETS", sockets.to_string())
        .spawn()
        .expect("spawn the reader");
    let mut streams: Vec<TcpStream> = (0..sockets)
        .map(|_| {
            let (stream, _) = listener.accept().expect("accept");
            // As the nodes' WebSockets: every frame goes out when written.
            stream.set_nodelay(true).expect("TCP_NODELAY");
            stream
        })
        .collect();

    let one = frame(payload);
    println!(
        "send floor: {sockets} loopback sockets, {}-byte frames, {pace} events/s, {seconds} s per row",
        one.len()
    );
    println!("frames per send | held back up to | frames sent | sender CPU per frame");
    for batch in batches {
        let bytes: Vec<u8> = one.repeat(batch);
        // One `send` per socket every `batch` events: the same frames per second for every row.
        let period = Duration::from_secs_f64(batch as f64 / pace as f64);
        let rounds = (seconds * pace / batch).max(1);
        let start_cpu = cpu_secs("self");
        let mut next = Instant::now();
        for _ in 0..rounds {
            for stream in &mut streams {
                stream.write_all(&bytes).expect("send");
            }
            next += period;
            // The pace is the measure's condition (a room's events/s), not a wait for a result:
            // the sender idles until the next round is due, as a node does between events.
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let cpu = cpu_secs("self") - start_cpu;
        let frames = rounds * batch * sockets;
        println!(
            "{batch:>15} | {:>12.0} ms | {frames:>11} | {:>8.2} µs",
            (batch - 1) as f64 * 1000.0 / pace as f64,
            cpu * 1e6 / frames as f64
        );
    }
    drop(streams);
    let _ = child.kill();
    let _ = child.wait();
}
