//! The seed's "Environment Validation": every value checked before anything starts, every
//! problem reported at once, each naming its key.
//! Stays whole (just over 400 lines): one function, one report of every check; split, it scatters.

use secrecy::ExposeSecret;

use super::{ConfigError, RouteLimit, Settings};

/// `runs.max_wait_ms` at most 100 years: a wait's due time stays far inside what chrono and
/// PostgreSQL can hold.
const MAX_WAIT_MS: u64 = 100 * 366 * 24 * 3600 * 1000;

impl Settings {
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
            s.server.message_json_body_limit_bytes > 0
                && s.server.routine_json_body_limit_bytes > 0,
            "server.message_json_body_limit_bytes and server.routine_json_body_limit_bytes must be above 0",
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
            s.database.min_connections <= s.database.pool_size(),
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
        // 10 doubling pauses from 100 ms already add up to almost two minutes.
        check(
            s.redis.reconnect_retries <= 10,
            "redis.reconnect_retries must be at most 10",
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
            (1..=10_000).contains(&s.log.flush_interval_ms),
            "log.flush_interval_ms must be 1 to 10000",
        );
        check(
            s.log.buffer_bytes >= 4096,
            "log.buffer_bytes must be at least 4096",
        );
        check(
            s.health.check_timeout_ms > 0,
            "health.check_timeout_ms must be above 0",
        );
        let h = &s.health;
        // A wait past the check's timeout reads Down, so Degraded must come before it.
        check(
            h.pool_wait_degraded_ms > 0 && h.pool_wait_degraded_ms < h.check_timeout_ms,
            "health.pool_wait_degraded_ms must be above 0 and below health.check_timeout_ms",
        );
        for (key, value) in [
            ("health.memory_degraded_percent", h.memory_degraded_percent),
            ("health.memory_down_percent", h.memory_down_percent),
            ("health.disk_degraded_percent", h.disk_degraded_percent),
            ("health.disk_down_percent", h.disk_down_percent),
            ("health.cpu_degraded_percent", h.cpu_degraded_percent),
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
        for (key, q) in j.queues.named() {
            check(
                q.concurrency >= 1,
                &format!("jobs.queues.{key}.concurrency must be at least 1"),
            );
            check(
                q.timeout_secs >= 1,
                &format!("jobs.queues.{key}.timeout_secs must be at least 1"),
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
        let a = &s.auth;
        check(
            a.access_minutes >= 1,
            "auth.access_minutes must be at least 1",
        );
        check(a.session_days >= 1, "auth.session_days must be at least 1");
        check(
            a.private_key_file.is_empty() == a.public_key_file.is_empty(),
            "auth.private_key_file and auth.public_key_file must be set together",
        );
        check(
            !a.cookie_name.is_empty()
                && a.cookie_name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "auth.cookie_name must be letters, digits, - or _",
        );
        check(
            a.password_min_length >= 1 && a.password_min_length <= a.password_max_length,
            "auth.password_min_length must be at least 1 and at most auth.password_max_length",
        );
        check(
            s.rate_limit.default_per_day >= 1,
            "rate_limit.default_per_day must be at least 1",
        );
        check(
            s.rate_limit.api_key_multiplier >= 1,
            "rate_limit.api_key_multiplier must be at least 1",
        );
        for per_day in s.rate_limit.presets.values() {
            check(
                *per_day >= 1,
                "rate_limit.presets values must be at least 1",
            );
        }
        for (route, limit) in &s.rate_limit.routes {
            let valid = match limit {
                RouteLimit::PerDay(n) => *n >= 1,
                RouteLimit::Preset(name) => s.rate_limit.presets.contains_key(name),
            };
            check(
                route.starts_with('/') && valid,
                "rate_limit.routes keys must be route patterns starting with / and values a number \
                 of at least 1 or the name of a rate_limit.presets entry",
            );
        }
        check(
            a.max_token_bytes >= 512,
            "auth.max_token_bytes must be at least 512",
        );
        check(
            a.soft_lock_attempts >= 1,
            "auth.soft_lock_attempts must be at least 1",
        );
        check(
            a.soft_lock_minutes >= 1 && a.lockout_max_minutes >= a.soft_lock_minutes,
            "auth.soft_lock_minutes must be at least 1 and at most auth.lockout_max_minutes",
        );
        check(
            a.max_api_keys_per_user >= 1,
            "auth.max_api_keys_per_user must be at least 1",
        );
        let w = &s.ws;
        check(
            w.outbox_sweep_interval_ms >= 10 && w.outbox_batch >= 1 && w.outbox_relays >= 1,
            "ws.outbox_sweep_interval_ms must be at least 10, ws.outbox_batch and ws.outbox_relays at least 1",
        );
        check(
            w.outbound_queue_bytes >= 1024 && w.history_max_bytes >= 1024,
            "ws.outbound_queue_bytes and ws.history_max_bytes must be at least 1024",
        );
        check(
            w.command_rate_per_sec > 0.0 && w.command_burst >= 1,
            "ws.command_rate_per_sec must be above 0 and ws.command_burst at least 1",
        );
        check(
            w.max_frame_bytes >= 1024 && w.max_message_bytes >= w.max_frame_bytes,
            "ws.max_frame_bytes must be at least 1024 and at most ws.max_message_bytes",
        );
        check(
            [
                w.outbound_queue,
                w.max_connections_per_node,
                w.max_connections_per_user,
                w.max_rooms_per_connection,
                w.room_mailbox,
                w.history_max_events,
            ]
            .iter()
            .all(|n| *n >= 1),
            "ws queue, connection, room and history limits must be at least 1",
        );
        check(
            w.heartbeat_interval_secs >= 1 && w.heartbeat_interval_secs < w.client_timeout_secs,
            "ws.heartbeat_interval_secs must be at least 1 and below ws.client_timeout_secs",
        );
        check(
            w.presence_interval_secs >= 1 && w.presence_interval_secs < w.presence_ttl_secs,
            "ws.presence_interval_secs must be at least 1 and below ws.presence_ttl_secs",
        );
        check(
            w.session_check_interval_secs >= 1
                && w.history_max_age_secs >= 1
                && w.room_state_ttl_secs >= w.history_max_age_secs
                && w.node_request_timeout_ms >= 1
                && w.typing_ttl_secs >= 1,
            "ws intervals must be at least 1 and ws.room_state_ttl_secs at least ws.history_max_age_secs",
        );
        let ai = &s.ai;
        check(
            ai.cooldown_secs >= 1
                && ai.request_timeout_secs >= 1
                && ai.context_messages >= 1
                && ai.default_max_tokens >= 1
                && ai.starting_credits >= 0
                && ai.team_starting_credits >= 0
                && ai.min_balance_credits >= 0,
            "ai durations, context_messages and default_max_tokens must be at least 1; credits not negative",
        );
        for model in &ai.models {
            check(
                model.name != "echo"
                    && ai.providers.iter().any(|p| p.name == model.provider)
                    && model
                        .fallbacks
                        .iter()
                        .all(|f| f == "echo" || ai.models.iter().any(|m| &m.name == f)),
                "ai.models: each model names a configured provider, fallbacks name configured models, and \"echo\" is built in",
            );
        }
        check(
            ai.default_model == "echo" || ai.models.iter().any(|m| m.name == ai.default_model),
            "ai.default_model must be \"echo\" or a configured model",
        );
        let r = &s.runs;
        check(
            (1..=10_000).contains(&r.max_graph_nodes)
                && (1..=32).contains(&r.max_subroutine_depth)
                && (1..=10_000).contains(&r.max_import_resources),
            "runs.max_graph_nodes must be 1-10000 and runs.max_subroutine_depth 1-32",
        );
        check(
            r.lease_renew_ms >= 1
                && r.lease_ttl_ms >= 2 * r.lease_renew_ms
                && r.sweep_interval_ms >= 1
                && r.step_timeout_ms >= 1
                && r.http_timeout_ms >= 1
                && r.http_max_response_bytes >= 1
                && r.max_credits >= 1
                && r.max_steps >= 1
                && r.max_time_ms >= 1
                && (1..=1000).contains(&r.max_concurrent_steps)
                && (1..=100_000).contains(&r.map_max_items)
                && (1..=MAX_WAIT_MS).contains(&r.max_wait_ms),
            "runs: intervals and limits at least 1, runs.max_wait_ms at most 100 years, and runs.lease_ttl_ms at least twice runs.lease_renew_ms",
        );
        let b = &s.sandbox;
        check(
            b.memory_bytes >= 1024 * 1024
                && b.stack_bytes >= 64 * 1024
                && b.timeout_ms >= 1
                && b.address_space_bytes >= 64 * 1024 * 1024
                && b.max_output_bytes >= 1,
            "sandbox: memory_bytes at least 1 MiB, stack_bytes 64 KiB, address_space_bytes 64 MiB; timeout_ms and max_output_bytes at least 1",
        );
        check(
            s.exports.ready_ttl_secs > 0 && s.exports.expire_every_secs > 0,
            "exports.ready_ttl_secs and exports.expire_every_secs must be above 0",
        );
        let fs = &s.storage;
        check(
            fs.max_file_bytes >= 1024
                && fs.max_form_fields >= 3
                && fs.max_text_field_bytes >= 32
                && fs.max_image_pixels >= 1
                && fs.max_decode_bytes >= 1024 * 1024
                && fs.url_ttl_secs >= 1
                && fs.orphan_after_hours >= 1
                && (fs.backend != super::StorageBackend::S3
                    || (!fs.s3.bucket.is_empty() && !fs.s3.region.is_empty())),
            "storage: max_file_bytes at least 1024, max_form_fields 3, max_text_field_bytes 32, max_decode_bytes 1 MiB, the rest at least 1; the s3 backend needs storage.s3.bucket and region",
        );
        check(
            s.egress.table().is_ok(),
            "egress.hosts: each line an address, then one or more names (as in /etc/hosts)",
        );
        let st = &s.stripe;
        check(
            st.tolerance_secs >= 1
                && st.timeout_secs >= 1
                && st.min_amount_cents >= 50
                && st.max_amount_cents >= st.min_amount_cents
                && st.premium_monthly_credits >= 0
                && (st.api_url.starts_with("https://") || st.api_url.starts_with("http://")),
            "stripe: tolerance_secs and timeout_secs at least 1, min_amount_cents at least 50 (Stripe's minimum) and at most max_amount_cents, api_url an http(s) URL",
        );
        check(
            !st.enabled() || st.webhook_secret.expose_secret().starts_with("whsec_"),
            "stripe.webhook_secret must be set (whsec_…) when stripe.secret_key is",
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }
}
