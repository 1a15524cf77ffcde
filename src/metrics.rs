//! Prometheus metrics, one registry per `Application` (not a global recorder, so two servers in
//! one test process keep their own counts). The HTTP edge middleware records every request;
//! gauges that describe state (pool, memory) are read when `/metrics` is scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The matched route pattern (`/api/v2/chat/{id}`), never the raw path, so label
    /// cardinality stays bounded; requests that matched no route share "unmatched".
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PurposeLabels {
    pub purpose: String,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;
type QueueHistogramFamily = Family<QueueLabels, Histogram, fn() -> Histogram>;

/// Job counters and timings, by queue.
pub struct JobMetrics {
    pub enqueued: Family<QueueLabels, Counter>,
    pub completed: Family<QueueLabels, Counter>,
    pub retried: Family<QueueLabels, Counter>,
    pub dead: Family<QueueLabels, Counter>,
    pub rescued: Counter,
    /// From `run_at` (when the job became due) to the start of the attempt.
    pub wait_seconds: QueueHistogramFamily,
    /// From the start of the attempt to its end.
    pub run_seconds: QueueHistogramFamily,
}

impl JobMetrics {
    pub fn inc(family: &Family<QueueLabels, Counter>, queue: &str, by: u64) {
        family
            .get_or_create(&QueueLabels {
                queue: queue.to_owned(),
            })
            .inc_by(by);
    }

    pub fn observe(family: &QueueHistogramFamily, queue: &str, seconds: f64) {
        family
            .get_or_create(&QueueLabels {
                queue: queue.to_owned(),
            })
            .observe(seconds);
    }
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily,
    pub db_pool_size: Gauge,
    pub db_pool_idle: Gauge,
    pub db_pool_max: Gauge,
    pub process_resident_memory_bytes: Gauge,
    pub jobs: JobMetrics,
    pub ws: WsMetrics,
    files_uploaded: Family<PurposeLabels, Counter>,
    files_uploaded_bytes: Family<PurposeLabels, Counter>,
}

/// The actor system's figures, copied from the hub at scrape time.
#[derive(Default)]
pub struct WsMetrics {
    pub connections: Gauge,
    pub users: Gauge,
    pub rooms: Gauge,
    pub delivered: Counter,
    pub slow_disconnects: Counter,
    pub gaps: Counter,
    pub mailbox_drops: Counter,
    pub room_restarts: Counter,
}

impl WsMetrics {
    pub fn update(&self, hub: &vrooli_actors::Hub) {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = hub.stats();
        self.connections.set(stats.connections as i64);
        self.users.set(stats.users as i64);
        self.rooms.set(stats.rooms as i64);
        let c = hub.counters();
        for (counter, value) in [
            (&self.delivered, &c.delivered),
            (&self.slow_disconnects, &c.slow_disconnects),
            (&self.gaps, &c.gaps),
            (&self.mailbox_drops, &c.mailbox_drops),
            (&self.room_restarts, &c.room_restarts),
        ] {
            counter.inner().store(value.load(Relaxed), Relaxed);
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "ws_connections",
            "Open WebSocket connections",
            self.connections.clone(),
        );
        registry.register(
            "ws_users",
            "Users with an open WebSocket",
            self.users.clone(),
        );
        registry.register(
            "ws_rooms",
            "Rooms with members on this node",
            self.rooms.clone(),
        );
        registry.register(
            "ws_deliveries",
            "Event frames queued to sockets",
            self.delivered.clone(),
        );
        registry.register(
            "ws_slow_disconnects",
            "Connections cut off because their outbound queue filled",
            self.slow_disconnects.clone(),
        );
        registry.register(
            "ws_gaps",
            "Room gaps reported to clients",
            self.gaps.clone(),
        );
        registry.register(
            "ws_mailbox_drops",
            "Events dropped at a full room mailbox (refetched from the history)",
            self.mailbox_drops.clone(),
        );
        registry.register(
            "ws_room_restarts",
            "Room actors restarted after a panic",
            self.room_restarts.clone(),
        );
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s: covers a cached health check up to a slow LLM-backed call.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// One stored upload.
    pub fn files_uploaded(&self, purpose: &str, bytes: i64) {
        let labels = PurposeLabels {
            purpose: purpose.to_owned(),
        };
        self.files_uploaded.get_or_create(&labels).inc();
        self.files_uploaded_bytes
            .get_or_create(&labels)
            .inc_by(bytes.max(0) as u64);
    }

    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vrooli");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = HistogramFamily::new_with_constructor(latency_histogram);
        let db_pool_size = Gauge::default();
        let db_pool_idle = Gauge::default();
        let db_pool_max = Gauge::default();
        let process_resident_memory_bytes = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head",
            http_duration.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open PostgreSQL connections",
            db_pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle PostgreSQL connections",
            db_pool_idle.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Configured pool limit",
            db_pool_max.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of this process",
            process_resident_memory_bytes.clone(),
        );
        let jobs = JobMetrics {
            enqueued: Family::default(),
            completed: Family::default(),
            retried: Family::default(),
            dead: Family::default(),
            rescued: Counter::default(),
            wait_seconds: QueueHistogramFamily::new_with_constructor(latency_histogram),
            run_seconds: QueueHistogramFamily::new_with_constructor(latency_histogram),
        };
        registry.register(
            "jobs_enqueued",
            "Jobs enqueued by this node",
            jobs.enqueued.clone(),
        );
        registry.register(
            "jobs_completed",
            "Job attempts completed",
            jobs.completed.clone(),
        );
        registry.register(
            "jobs_retried",
            "Job attempts failed and scheduled for retry",
            jobs.retried.clone(),
        );
        registry.register("jobs_dead", "Jobs that failed for good", jobs.dead.clone());
        registry.register(
            "jobs_rescued",
            "Jobs retried because their worker's lock expired",
            jobs.rescued.clone(),
        );
        registry.register(
            "job_wait_seconds",
            "From a job becoming due to its attempt starting",
            jobs.wait_seconds.clone(),
        );
        registry.register(
            "job_run_seconds",
            "Duration of job attempts",
            jobs.run_seconds.clone(),
        );
        let ws = WsMetrics::default();
        ws.register(&mut registry);
        let files_uploaded = Family::<PurposeLabels, Counter>::default();
        let files_uploaded_bytes = Family::<PurposeLabels, Counter>::default();
        registry.register(
            "files_uploaded",
            "Files stored by uploads to this node, by purpose",
            files_uploaded.clone(),
        );
        registry.register(
            "files_uploaded_bytes",
            "Bytes of the originals stored by uploads to this node, by purpose",
            files_uploaded_bytes.clone(),
        );
        Self {
            registry,
            jobs,
            ws,
            files_uploaded,
            files_uploaded_bytes,
            http_requests,
            http_duration,
            db_pool_size,
            db_pool_idle,
            db_pool_max,
            process_resident_memory_bytes,
        }
    }

    pub fn observe_http(&self, labels: &HttpLabels, seconds: f64) {
        self.http_requests.get_or_create(labels).inc();
        self.http_duration.get_or_create(labels).observe(seconds);
    }

    /// The OpenMetrics text exposition (Prometheus scrapes it natively).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_status() {
        let m = Metrics::new();
        let labels = HttpLabels {
            method: "GET".into(),
            route: "/healthcheck".into(),
            status: 200,
        };
        m.observe_http(&labels, 0.002);
        m.observe_http(&labels, 0.004);
        let text = m.render();
        assert!(
            text.contains(
                r#"vrooli_http_requests_total{method="GET",route="/healthcheck",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains("vrooli_http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
