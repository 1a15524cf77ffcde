//! `[server]`: the HTTP listener and its limits, and how many HTTP worker threads serve it.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    pub drain_secs: u64,
    pub json_body_limit_bytes: usize,
    pub body_limit_bytes: usize,
    pub keep_alive_secs: u64,
    pub client_request_timeout_secs: u64,
    pub max_connections_per_worker: usize,
    pub backlog: u32,
    pub behind_proxy: bool,
    pub development: bool,
    pub message_json_body_limit_bytes: usize,
    /// The routine routes (a routine's config, an import of the original's routines).
    pub routine_json_body_limit_bytes: usize,
}

impl ServerSettings {
    /// HTTP worker threads: `workers`, or with 0 one per CPU less one, at least one.
    ///
    /// Why one less: a worker is not the node's only busy thread (the main thread drives the
    /// Redis connection and the job pools; the log writer and the runs have threads of their
    /// own), and in a one-machine
    /// deployment PostgreSQL shares the cores. A worker per CPU left them none, and requests
    /// paid for threads taking turns: on a 2-CPU machine with PostgreSQL and the load generator
    /// on it, one worker served the page GET faster than two in 14 of 15 pairs (up to 42%), and
    /// spent less CPU per fan-out delivery. A route that needs neither PostgreSQL nor Redis
    /// (anonymous `validateSession`) lost 10–27% of its requests/s (docs/BENCHMARKS.md, issue 13).
    pub fn http_workers(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        cpus.saturating_sub(1).max(1)
    }
}
