//! Settings: one struct, loaded once, validated before anything starts.
//!
//! Layers, later wins: the repository's `config.toml` (embedded in the binary, so it is the single
//! list of defaults) → the file given with `--config` (or `./config.toml` when present) →
//! environment variables `VROOLI__SECTION__KEY` → CLI flags (`--port`). Every struct denies
//! unknown keys, so a typo is an error rather than a silently ignored setting. Secrets are
//! `SecretString`, whose `Debug` prints `[REDACTED]`, so `{:?}` of the settings is safe to log.
//! Each component receives only its own section. The sections are in `sections.rs`, the
//! checks in `validate.rs`; a few sections have their own files (`database.rs`, `storage.rs`,
//! `stripe.rs`).

mod database;
mod egress;
mod sections;
mod server;
mod storage;
mod stripe;
mod validate;

pub use database::*;
pub use egress::*;
pub use sections::*;
pub use server::*;
pub use storage::*;
pub use stripe::*;

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The embedded defaults: the same text as the repository's `config.toml`.
pub const DEFAULTS: &str = include_str!("../../config.toml");

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
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub admin: AdminSettings,
    pub ws: WsSettings,
    pub ai: AiSettings,
    pub runs: RunsSettings,
    pub sandbox: SandboxSettings,
    pub push: PushSettings,
    pub exports: ExportSettings,
    pub stripe: StripeSettings,
    pub storage: StorageSettings,
    pub egress: EgressSettings,
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

    /// Whether the node listens on loopback only (nothing outside this machine can reach it).
    pub fn bound_to_loopback(&self) -> bool {
        let host = self.server.host.trim();
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Turns the security settings into what this node actually does (secure by default):
    /// `Secure` cookies unless bound to loopback or in development; localhost origins only in
    /// development. Called once by start-up before anything reads them.
    pub fn resolve_security(&mut self) {
        let development = self.server.development;
        if !(development || self.bound_to_loopback()) {
            self.auth.cookie_secure = true;
        }
        if !development {
            self.auth.allow_localhost_origins = false;
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
    use secrecy::ExposeSecret;

    fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::load_with_env(&Sources::default(), env)
    }

    /// Every `VROOLI__…=value` the README shows is a setting the server takes (unknown keys and
    /// bad values stop the start), so a reader who copies one gets what it says.
    #[test]
    fn the_readmes_variables_are_settings() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let mut seen = 0;
        for word in readme.split(|c: char| c.is_whitespace() || c == '`') {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            if !key.starts_with("VROOLI__") || key.contains(['$', '{']) {
                continue;
            }
            // A value built in the shell (`$((BASE + i))`) stands for a number.
            let value = if value.starts_with('$') {
                "5331"
            } else {
                value
            };
            load(&[(key, value)]).unwrap_or_else(|e| panic!("README's {key}={value}: {e}"));
            seen += 1;
        }
        assert!(seen >= 5, "found {seen} variables in the README");
        assert!(
            load(&[("VROOLI__RATE_LIMIT__ENABLD", "false")]).is_err(),
            "a typo is caught"
        );
    }

    #[test]
    fn defaults_are_valid() {
        let s = load(&[]).expect("embedded defaults load");
        assert_eq!(s.server.port, 5329);
        assert_eq!(s.node.worker_id, 0);
        assert!(s.redis.is_configured());
    }

    #[test]
    fn set_workers_are_kept_and_0_leaves_a_cpu() {
        let s = load(&[("VROOLI__SERVER__WORKERS", "3")]).unwrap();
        assert_eq!(s.server.http_workers(), 3);
        let s = load(&[]).unwrap();
        assert_eq!(s.server.workers, 0);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(s.server.http_workers(), (cpus - 1).max(1));
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
        for (key, value, name) in [
            (
                "VROOLI__LOG__FLUSH_INTERVAL_MS",
                "0",
                "log.flush_interval_ms",
            ),
            ("VROOLI__LOG__BUFFER_BYTES", "100", "log.buffer_bytes"),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = load(&[("VROOLI__SERVER__PROT", "1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn routes_take_a_number_or_a_preset() {
        let mut s = load(&[]).unwrap();
        assert_eq!(s.rate_limit.per_day("/api/v2/auth/guest/login"), 100);
        assert_eq!(s.rate_limit.per_day("/api/v2/auth/email/signup"), 10);
        assert_eq!(s.rate_limit.per_day("/api/v2/other"), 250);

        s.rate_limit
            .routes
            .insert("/api/v2/x".into(), RouteLimit::Preset("nonesuch".into()));
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("rate_limit.routes"), "{err}");
    }
}
