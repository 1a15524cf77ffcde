//! What handlers share: built once in `startup`, handed to every worker as `web::Data<AppState>`.

use std::sync::Arc;

use sqlx::PgPool;

use crate::health::HealthService;
use crate::health::host::HostProbe;
use crate::ids::Snowflake;
use crate::metrics::Metrics;
use crate::redis_client::RedisClient;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// `None` in single-node mode.
    pub redis: Option<RedisClient>,
    pub ids: Arc<Snowflake>,
    pub health: Arc<HealthService>,
    pub metrics: Arc<Metrics>,
    pub host: HostProbe,
    /// `log.access_log`: one "request finished" line per request.
    pub access_log: bool,
}
