//! `[database]`: the PostgreSQL pool (`src/db/`).

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    /// 0: [`DatabaseSettings::pool_size`] picks it from the CPUs.
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_ms: u64,
    pub idle_timeout_secs: u64,
    pub connect_attempts: u32,
    pub connect_backoff_initial_ms: u64,
    pub connect_backoff_max_ms: u64,
    pub statement_timeout_ms: u64,
    /// A pooled connection idle at least this long is pinged before it is handed out.
    pub ping_after_idle_ms: u64,
    /// Connections the hot reads hand on to each other (`db::warm`); see
    /// [`DatabaseSettings::warm_size`].
    pub warm_connections: u32,
}

impl DatabaseSettings {
    /// The most pooled connections: `max_connections`, or when it is 0 twice the CPUs this
    /// process may use plus one (Prisma's default, the original's ORM), and at least
    /// [`MIN_AUTO_POOL`].
    ///
    /// Why so few: more backends than cores do not run more queries at once. Each query then
    /// wakes an idle backend, and PostgreSQL spends more CPU per query. On a 2-CPU machine,
    /// sharing PostgreSQL, the page GET cost 0.17–0.22 ms of PostgreSQL's CPU per request with
    /// 20 connections, 0.12–0.15 ms with 8 and 0.11 ms with 4 (docs/BENCHMARKS.md, issue 13).
    pub fn pool_size(&self) -> u32 {
        if self.max_connections > 0 {
            return self.max_connections;
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        u32::try_from(cpus * 2 + 1)
            .unwrap_or(u32::MAX)
            .max(MIN_AUTO_POOL)
    }
}

impl DatabaseSettings {
    /// How many connections `db::warm` keeps out of the pool: `warm_connections`, and at most
    /// half the pool, so the rest of the node (jobs, writes, transactions) always has the other
    /// half.
    pub fn warm_size(&self) -> usize {
        self.warm_connections.min(self.pool_size() / 2) as usize
    }
}

/// The smallest pool `max_connections = 0` picks: a margin for small machines, where 2×CPUs+1
/// would leave a few long statements (an export, a purge, a run's step) able to hold most of
/// the pool while requests wait behind them.
pub const MIN_AUTO_POOL: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn with_max(max_connections: u32) -> DatabaseSettings {
        DatabaseSettings {
            url: SecretString::from("postgres://localhost/x"),
            max_connections,
            min_connections: 0,
            acquire_timeout_ms: 1,
            idle_timeout_secs: 1,
            connect_attempts: 1,
            connect_backoff_initial_ms: 1,
            connect_backoff_max_ms: 1,
            statement_timeout_ms: 0,
            ping_after_idle_ms: 1,
            warm_connections: 4,
        }
    }

    #[test]
    fn a_set_pool_size_is_kept_and_0_follows_the_cpus() {
        assert_eq!(with_max(20).pool_size(), 20);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        assert_eq!(with_max(0).pool_size(), (cpus * 2 + 1).max(MIN_AUTO_POOL));
    }

    #[test]
    fn warm_connections_take_at_most_half_the_pool() {
        assert_eq!(with_max(20).warm_size(), 4);
        assert_eq!(with_max(6).warm_size(), 3);
        assert_eq!(with_max(1).warm_size(), 0);
    }
}
