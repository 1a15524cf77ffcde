//! The settings, one struct per `config.toml` section; every field is documented there.
//! Stays whole (over 400 lines): one schema in `config.toml`'s order, no logic to split by.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    pub worker_id: u16,
    pub lease_ttl_secs: u64,
    pub lease_wait_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: SecretString,
    pub key_prefix: String,
    pub connect_attempts: u32,
    pub connect_backoff_initial_ms: u64,
    pub connect_backoff_max_ms: u64,
    pub connection_timeout_ms: u64,
    pub response_timeout_ms: u64,
    /// Attempts to reconnect a lost connection that commands wait for, after the first
    /// (`redis_client`): each waits a doubling pause from 100 ms. 0: a command waits for one
    /// connection attempt at most.
    pub reconnect_retries: usize,
}

impl RedisSettings {
    /// Redis is optional: an empty URL means single-node mode.
    pub fn is_configured(&self) -> bool {
        !self.url.expose_secret().trim().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    pub allowed_origins: Vec<String>,
    pub allow_credentials: bool,
    pub max_age_secs: usize,
}

/// `code` steps: JavaScript in a child process (`src/sandbox/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    /// The binary run as `<program> sandbox`; empty: this one.
    pub program: String,
    /// QuickJS's heap and stack.
    pub memory_bytes: usize,
    pub stack_bytes: usize,
    /// The engine's deadline for one script (a node's `timeoutMs` may lower it).
    pub timeout_ms: u64,
    /// After the deadline, how long before the child is killed from outside.
    pub kill_grace_ms: u64,
    /// The child's whole address space (RLIMIT_AS).
    pub address_space_bytes: u64,
    /// The largest result (JSON bytes) a script may return.
    pub max_output_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    pub access_log: bool,
    pub flush_interval_ms: u64,
    pub buffer_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    pub cache_ttl_ms: u64,
    pub check_timeout_ms: u64,
    pub memory_degraded_percent: f64,
    pub memory_down_percent: f64,
    pub disk_degraded_percent: f64,
    pub disk_down_percent: f64,
    pub cpu_degraded_percent: f64,
    pub pool_wait_degraded_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSettings {
    pub admin_handle: String,
    pub admin_email: String,
    pub admin_password: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSettings {
    pub enabled: bool,
    pub lock_secs: u64,
    pub poll_interval_ms: u64,
    pub fetch_batch: u32,
    pub completion_batch: usize,
    pub completion_flush_ms: u64,
    pub max_attempts: i32,
    pub backoff_base_secs: u64,
    pub backoff_max_secs: u64,
    pub rescue_interval_secs: u64,
    pub retention_hours: u64,
    pub backlog_degraded: i64,
    pub backlog_down: i64,
    pub dead_down: i64,
    pub queues: QueuesSettings,
}

/// One entry per queue, so a typo in a queue name is an unknown-key error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuesSettings {
    pub email_send: QueueSettings,
    pub sms_message: QueueSettings,
    pub push_notification: QueueSettings,
    pub notification_create: QueueSettings,
    pub llm_completion: QueueSettings,
    pub run_start: QueueSettings,
    pub sandbox_execution: QueueSettings,
    pub import_user_data: QueueSettings,
    pub export_user_data: QueueSettings,
    pub maintenance: QueueSettings,
}

impl QueuesSettings {
    /// Every queue's settings with its key under `[jobs.queues]` (what validation names).
    /// `jobs::Queue` maps its queues onto these fields; a unit test there keeps both in step.
    pub fn named(&self) -> [(&'static str, &QueueSettings); 10] {
        [
            ("email_send", &self.email_send),
            ("sms_message", &self.sms_message),
            ("push_notification", &self.push_notification),
            ("notification_create", &self.notification_create),
            ("llm_completion", &self.llm_completion),
            ("run_start", &self.run_start),
            ("sandbox_execution", &self.sandbox_execution),
            ("import_user_data", &self.import_user_data),
            ("export_user_data", &self.export_user_data),
            ("maintenance", &self.maintenance),
        ]
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub concurrency: u32,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: String,
    pub smtp_password: SecretString,
    pub smtp_timeout_secs: u64,
    pub from: String,
    pub outbox_dir: PathBuf,
    pub ui_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub api_url: String,
    pub account_sid: String,
    pub auth_token: SecretString,
    pub from_number: String,
    pub timeout_secs: u64,
    pub outbox_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub access_minutes: u64,
    pub session_days: u64,
    pub private_key_file: String,
    pub public_key_file: String,
    pub key_dir: PathBuf,
    pub cookie_name: String,
    pub cookie_secure: bool,
    pub reset_code_minutes: i64,
    pub verification_code_days: i64,
    pub allow_localhost_origins: bool,
    pub password_min_length: usize,
    pub password_max_length: usize,
    pub max_token_bytes: usize,
    pub soft_lock_attempts: i32,
    pub soft_lock_minutes: i64,
    pub lockout_max_minutes: i64,
    pub max_api_keys_per_user: i64,
    /// Days a deleted account is kept (status Deleted, signed out) before it is purged.
    pub deleted_account_days: u64,
    pub verified_token_cache: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub default_per_day: u32,
    pub fail_open: bool,
    /// An API key's allowance is this many times a person's (the original: 1000).
    pub api_key_multiplier: u32,
    /// Named daily limits that routes may use instead of a number.
    pub presets: std::collections::BTreeMap<String, u32>,
    /// Route pattern → requests per day, as a number or a preset's name.
    pub routes: std::collections::BTreeMap<String, RouteLimit>,
}

/// A route's daily limit in `[rate_limit.routes]`: a number, or the name of a preset.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum RouteLimit {
    PerDay(u32),
    Preset(String),
}

impl RateLimitSettings {
    /// The daily limit of a route pattern: its own entry (resolving a preset), else the default.
    /// Validation guarantees every preset name resolves.
    pub fn per_day(&self, route: &str) -> u32 {
        match self.routes.get(route) {
            Some(RouteLimit::PerDay(n)) => *n,
            Some(RouteLimit::Preset(name)) => self
                .presets
                .get(name)
                .copied()
                .unwrap_or(self.default_per_day),
            None => self.default_per_day,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    pub system_key: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsSettings {
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
    pub outbound_queue: usize,
    pub outbound_queue_bytes: usize,
    pub heartbeat_interval_secs: u64,
    pub client_timeout_secs: u64,
    pub session_check_interval_secs: u64,
    pub max_connections_per_node: usize,
    pub max_connections_per_user: usize,
    pub max_rooms_per_connection: usize,
    pub room_mailbox: usize,
    pub close_grace_ms: u64,
    pub history_max_events: usize,
    pub history_max_bytes: usize,
    pub history_max_age_secs: u64,
    pub room_state_ttl_secs: u64,
    pub presence_ttl_secs: u64,
    pub presence_interval_secs: u64,
    pub node_request_timeout_ms: u64,
    pub typing_ttl_secs: u64,
    pub command_rate_per_sec: f64,
    pub command_burst: u32,
    pub outbox_sweep_interval_ms: u64,
    pub outbox_batch: i64,
    pub outbox_relays: usize,
    pub outbox_order_wait_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiSettings {
    pub default_model: String,
    pub cooldown_secs: u64,
    pub request_timeout_secs: u64,
    pub context_messages: i64,
    pub default_max_tokens: u32,
    /// After a streamed answer's first chunk, a chunk is published at most this often; what
    /// arrives meanwhile goes out with it (`ai::chunks`). 0: only what piled up during a publish.
    pub stream_interval_ms: u64,
    pub starting_credits: i64,
    /// What a team's account opens with (it pays for bots in team chats and for team runs).
    pub team_starting_credits: i64,
    pub min_balance_credits: i64,
    #[serde(default)]
    pub providers: Vec<AiProviderSettings>,
    #[serde(default)]
    pub models: Vec<AiModelSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsSettings {
    /// A routine graph with more nodes than this is refused (422 `InvalidRoutineGraph`).
    pub max_graph_nodes: usize,
    /// How deep routine versions may call each other (`subroutine`), and how deep runs started
    /// by runs' `action` steps may nest (deeper: `RunTooDeep`).
    pub max_subroutine_depth: usize,
    /// The most routines one `POST /resource/import` may hold.
    pub max_import_resources: usize,
    /// A run's lease: how long it lasts, and how often its owner renews it.
    pub lease_ttl_ms: u64,
    pub lease_renew_ms: u64,
    /// How often each node looks for runs to take over (expired leases, due waits).
    pub sweep_interval_ms: u64,
    /// A step that takes longer fails with `StepTimeout` (retried per its policy).
    pub step_timeout_ms: u64,
    /// `http` steps: longest call, largest response, and whether private, loopback and
    /// link-local addresses may be called (off: a routine cannot reach the server's network).
    pub http_timeout_ms: u64,
    pub http_max_response_bytes: usize,
    pub allow_private_addresses: bool,
    /// Per run, lowered per run by `config.limits` at start: credits spent, steps taken, time
    /// spent inside steps.
    pub max_credits: i64,
    pub max_steps: i64,
    pub max_time_ms: i64,
    /// Steps of one run doing work at once (parallel branches, map items).
    pub max_concurrent_steps: usize,
    /// Items a `map` may have: its node's `maxItems` may lower this, never raise it.
    pub map_max_items: usize,
    /// The longest a `wait` node may last (`durationMs`, or `until` from now): a routine asking
    /// more is refused (422 `InvalidRoutineGraph`), a run reaching one fails (`WaitTooLong`).
    pub max_wait_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AiProviderKind {
    /// Any OpenAI-compatible chat completions API (OpenAI, OpenRouter, Ollama, vLLM, llama.cpp).
    Openai,
    /// Anthropic's messages API.
    Anthropic,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiProviderSettings {
    pub name: String,
    pub kind: AiProviderKind,
    pub base_url: String,
    #[serde(default)]
    pub api_key: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiModelSettings {
    /// What bots name in their settings.
    pub name: String,
    pub provider: String,
    /// The provider's name for the model (defaults to `name`).
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub input_cents_per_million: i64,
    #[serde(default)]
    pub output_cents_per_million: i64,
    /// Models tried in order when this one's provider fails before answering.
    #[serde(default)]
    pub fallbacks: Vec<String>,
}

/// Web Push (RFC 8030/8291/8292): notices to the browsers people subscribed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSettings {
    /// The VAPID private key: the 32-byte P-256 scalar, base64url (what `web-push
    /// generate-vapid-keys` prints as the private key). Empty: the kept one (`generate_vapid_key`).
    pub vapid_private_key: SecretString,
    /// With no `vapid_private_key`: make one at first start into `auth.key_dir` and keep it
    /// (`notifications/vapid_key.rs`); false: push is off.
    pub generate_vapid_key: bool,
    /// Who runs this server, for push services to reach (`mailto:` or `https:`).
    pub vapid_subject: String,
    /// How long a push service keeps an undelivered notice.
    pub ttl_secs: u64,
    /// Seconds to wait for a push service.
    pub timeout_secs: u64,
    /// Browsers one user may subscribe.
    pub max_devices_per_user: i64,
    /// Subscriptions whose endpoint is plain http or names a private address (tests only).
    pub allow_insecure_endpoints: bool,
}

impl PushSettings {
    pub fn enabled(&self) -> bool {
        !self.vapid_private_key.expose_secret().is_empty()
    }
}

/// Data exports (`src/exports/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSettings {
    /// The largest archive; a bigger account's export fails as `TooLarge`, keeping nothing.
    pub max_bytes: u64,
    /// Bytes per stored chunk (the most held in memory while an archive is made).
    pub chunk_bytes: usize,
    /// The largest archive `POST /user/importData` takes (413 `BodyTooLarge` beyond it). An
    /// import holds its archive whole in memory while it is checked and written.
    pub import_max_bytes: usize,
    /// How long a Ready archive waits to be downloaded before it expires (status `Expired`, its
    /// chunks deleted).
    pub ready_ttl_secs: u64,
    /// How often the `exports.expire-ready` job looks for archives past `ready_ttl_secs`.
    pub expire_every_secs: u64,
}
