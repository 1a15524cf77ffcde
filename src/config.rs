//! Settings: one struct, loaded once, validated before anything starts.
//!
//! Layers, later wins: the repository's `config.toml` (embedded in the binary, so it is the single
//! list of defaults) → the file given with `--config` (or `./config.toml` when present) →
//! environment variables `VROOLI__SECTION__KEY` → CLI flags (`--port`). Every struct denies
//! unknown keys, so a typo is an error rather than a silently ignored setting. Secrets are
//! `SecretString`, whose `Debug` prints `[REDACTED]`, so `{:?}` of the settings is safe to log.
//! Each component receives only its own section.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The embedded defaults: the same text as the repository's `config.toml`.
pub const DEFAULTS: &str = include_str!("../config.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub node: NodeSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub cors: CorsSettings,
    pub log: LogSettings,
    pub health: HealthSettings,
    pub seed: SeedSettings,
    pub jobs: JobsSettings,
    pub email: EmailSettings,
    pub sms: SmsSettings,
    pub admin: AdminSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    pub json_body_limit_bytes: usize,
    pub body_limit_bytes: usize,
    pub keep_alive_secs: u64,
    pub client_request_timeout_secs: u64,
    pub max_connections_per_worker: usize,
    pub backlog: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    pub worker_id: u16,
    pub lease_ttl_secs: u64,
    pub lease_wait_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_ms: u64,
    pub idle_timeout_secs: u64,
    pub connect_attempts: u32,
    pub connect_backoff_initial_ms: u64,
    pub connect_backoff_max_ms: u64,
    pub statement_timeout_ms: u64,
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
    pub pool_degraded_percent: f64,
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
pub struct AdminSettings {
    pub system_key: SecretString,
}

/// Where the settings come from, besides the embedded defaults and the environment.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `--config PATH`; when absent, `./config.toml` is read if it exists.
    pub file: Option<PathBuf>,
    /// `--port`.
    pub port: Option<u16>,
}

/// Why the settings could not be loaded. Every message names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Parse(String),
    #[error("invalid settings:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

impl Settings {
    /// Loads and validates the settings from every layer, reading the process environment.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        Self::load_with_env(sources, std::env::vars())
    }

    /// Like [`Settings::load`], with the environment given explicitly (tests pass their own).
    pub fn load_with_env(
        sources: &Sources,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        use config::{Config, Environment, File, FileFormat};

        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));

        let file = match &sources.file {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from("config.toml")).filter(|p| p.is_file()),
        };
        if let Some(path) = file {
            let text = read_file(&path)?;
            builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
        }

        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("VROOLI__"))
            .collect();
        builder = builder.add_source(
            Environment::with_prefix("VROOLI")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("cors.allowed_origins")
                .source(Some(env)),
        );

        if let Some(port) = sources.port {
            builder = builder
                .set_override("server.port", port)
                .map_err(|e| ConfigError::Parse(e.to_string()))?;
        }

        let settings: Settings = builder
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| ConfigError::Parse(describe(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The seed's "Environment Validation": every value checked, every problem reported at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, message: &str| {
            if !ok {
                errors.push(message.to_string());
            }
        };
        let s = self;
        check(
            !s.server.host.trim().is_empty(),
            "server.host must not be empty",
        );
        check(
            s.server.host.parse::<std::net::IpAddr>().is_ok() || s.server.host == "localhost",
            "server.host must be an IP address (or localhost)",
        );
        check(
            s.server.json_body_limit_bytes > 0,
            "server.json_body_limit_bytes must be above 0",
        );
        check(
            s.server.body_limit_bytes > 0,
            "server.body_limit_bytes must be above 0",
        );
        check(
            s.server.max_connections_per_worker > 0,
            "server.max_connections_per_worker must be above 0",
        );
        check(
            s.node.worker_id <= crate::ids::snowflake::MAX_WORKER_ID,
            "node.worker_id must be between 0 and 4095",
        );
        check(
            s.node.lease_ttl_secs >= 3,
            "node.lease_ttl_secs must be at least 3",
        );
        let db_url = s.database.url.expose_secret();
        check(!db_url.trim().is_empty(), "database.url must be set");
        check(
            db_url.trim().is_empty()
                || db_url.parse::<sqlx::postgres::PgConnectOptions>().is_ok()
                    && (db_url.starts_with("postgres://") || db_url.starts_with("postgresql://")),
            "database.url must be a postgres:// URL",
        );
        check(
            s.database.max_connections >= 1,
            "database.max_connections must be at least 1",
        );
        check(
            s.database.min_connections <= s.database.max_connections,
            "database.min_connections must not exceed database.max_connections",
        );
        check(
            s.database.acquire_timeout_ms > 0,
            "database.acquire_timeout_ms must be above 0",
        );
        check(
            s.database.connect_attempts >= 1,
            "database.connect_attempts must be at least 1",
        );
        if s.redis.is_configured() {
            check(
                redis::Client::open(s.redis.url.expose_secret().trim()).is_ok(),
                "redis.url must be a redis:// or rediss:// URL (or empty for single-node mode)",
            );
        }
        check(
            s.redis.connect_attempts >= 1,
            "redis.connect_attempts must be at least 1",
        );
        check(
            s.redis.response_timeout_ms > 0,
            "redis.response_timeout_ms must be above 0",
        );
        check(
            s.redis.connection_timeout_ms > 0,
            "redis.connection_timeout_ms must be above 0",
        );
        for origin in &s.cors.allowed_origins {
            check(
                origin == "*" || origin.starts_with("http://") || origin.starts_with("https://"),
                "cors.allowed_origins entries must be \"*\" or start with http:// or https://",
            );
        }
        check(
            !(s.cors.allow_credentials && s.cors.allowed_origins.iter().any(|o| o == "*")),
            "cors.allow_credentials cannot be true when cors.allowed_origins contains \"*\"",
        );
        check(
            tracing_subscriber::EnvFilter::try_new(&s.log.level).is_ok(),
            "log.level must be a tracing filter such as \"info\" or \"info,sqlx=warn\"",
        );
        check(
            s.health.check_timeout_ms > 0,
            "health.check_timeout_ms must be above 0",
        );
        let h = &s.health;
        for (key, value) in [
            ("health.memory_degraded_percent", h.memory_degraded_percent),
            ("health.memory_down_percent", h.memory_down_percent),
            ("health.disk_degraded_percent", h.disk_degraded_percent),
            ("health.disk_down_percent", h.disk_down_percent),
            ("health.cpu_degraded_percent", h.cpu_degraded_percent),
            ("health.pool_degraded_percent", h.pool_degraded_percent),
        ] {
            check(
                (0.0..=100.0).contains(&value),
                &format!("{key} must be between 0 and 100"),
            );
        }
        check(
            crate::domain::Handle::parse(&s.seed.admin_handle).is_ok(),
            "seed.admin_handle must be 3-16 letters, digits or underscores",
        );
        check(
            crate::domain::EmailAddress::parse(&s.seed.admin_email).is_ok(),
            "seed.admin_email must be an email address",
        );
        let j = &s.jobs;
        check(j.lock_secs >= 3, "jobs.lock_secs must be at least 3");
        check(
            j.poll_interval_ms > 0,
            "jobs.poll_interval_ms must be above 0",
        );
        check(j.fetch_batch >= 1, "jobs.fetch_batch must be at least 1");
        check(
            j.completion_batch >= 1,
            "jobs.completion_batch must be at least 1",
        );
        check(j.max_attempts >= 1, "jobs.max_attempts must be at least 1");
        check(
            j.backoff_max_secs >= j.backoff_base_secs,
            "jobs.backoff_max_secs must be at least jobs.backoff_base_secs",
        );
        check(
            j.rescue_interval_secs >= 1,
            "jobs.rescue_interval_secs must be at least 1",
        );
        for queue in crate::jobs::Queue::ALL {
            let q = j.queues.get(queue);
            check(
                q.concurrency >= 1,
                &format!(
                    "jobs.queues.{}.concurrency must be at least 1",
                    queue.config_key()
                ),
            );
            check(
                q.timeout_secs >= 1,
                &format!(
                    "jobs.queues.{}.timeout_secs must be at least 1",
                    queue.config_key()
                ),
            );
        }
        check(
            s.email.from.parse::<lettre::message::Mailbox>().is_ok(),
            "email.from must be an address like \"Vrooli <no-reply@example.com>\"",
        );
        check(
            s.email.smtp_timeout_secs >= 1,
            "email.smtp_timeout_secs must be at least 1",
        );
        check(
            s.email.ui_url.starts_with("http://") || s.email.ui_url.starts_with("https://"),
            "email.ui_url must start with http:// or https://",
        );
        if !s.sms.account_sid.is_empty() {
            check(
                s.sms.api_url.starts_with("http://") || s.sms.api_url.starts_with("https://"),
                "sms.api_url must start with http:// or https://",
            );
            check(
                !s.sms.auth_token.expose_secret().is_empty(),
                "sms.auth_token must be set when sms.account_sid is",
            );
            check(
                s.sms.from_number.starts_with('+') && s.sms.from_number.len() > 4,
                "sms.from_number must be an E.164 number such as +15551234567",
            );
        }
        check(
            s.sms.timeout_secs >= 1,
            "sms.timeout_secs must be at least 1",
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The config crate's messages already name the key for type errors ("for key `server.port`");
/// unknown and missing fields only name the field, so say which layer to look in.
fn describe(error: config::ConfigError) -> String {
    let text = error.to_string();
    if text.contains("unknown field") || text.contains("missing field") {
        format!("{text} (check config files and VROOLI__* environment variables)")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::load_with_env(&Sources::default(), env)
    }

    #[test]
    fn defaults_are_valid() {
        let s = load(&[]).expect("embedded defaults load");
        assert_eq!(s.server.port, 5329);
        assert_eq!(s.node.worker_id, 0);
        assert!(s.redis.is_configured());
    }

    #[test]
    fn environment_overrides_file() {
        let s = load(&[
            ("VROOLI__SERVER__PORT", "6000"),
            ("VROOLI__NODE__WORKER_ID", "17"),
            ("VROOLI__REDIS__URL", ""),
            ("VROOLI__DATABASE__URL", "postgres://u:p@db:5432/x"),
        ])
        .unwrap();
        assert_eq!(s.server.port, 6000);
        assert_eq!(s.node.worker_id, 17);
        assert!(!s.redis.is_configured());
        assert_eq!(s.database.url.expose_secret(), "postgres://u:p@db:5432/x");
    }

    #[test]
    fn secrets_never_print() {
        let s = load(&[("VROOLI__DATABASE__URL", "postgres://u:hunter2@db/x")]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = load(&[("VROOLI__NODE__WORKER_ID", "5000")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("node.worker_id"), "{err}");
        let err = load(&[("VROOLI__SERVER__PORT", "abc")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.port"), "{err}");
        let err = load(&[("VROOLI__DATABASE__URL", "")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = load(&[("VROOLI__SERVER__PROT", "1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("prot"), "{err}");
    }
}
