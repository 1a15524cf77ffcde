//! Start-up: what the run executor of this node uses (`runs::RunDeps`), from the settings and
//! the services already built.

use std::sync::Arc;
use std::time::Duration;

use super::error::StartupError;
use crate::ai::AiRegistry;
use crate::chat::ChatService;
use crate::config::Settings;
use crate::jobs::JobStore;
use crate::runs::RunDeps;

pub(super) fn run_deps(
    settings: &Settings,
    chats: &ChatService,
    job_store: &JobStore,
    ai: Arc<AiRegistry>,
) -> Result<Arc<RunDeps>, StartupError> {
    let r = &settings.runs;
    let egress = crate::egress::Egress::from_settings(&settings.egress, r.allow_private_addresses)
        .map_err(|e| StartupError::Delivery(std::io::Error::other(e)))?;
    Ok(Arc::new(RunDeps {
        pool: chats.pool.clone(),
        ids: Arc::clone(&chats.ids),
        hub: chats.hub.clone(),
        outbox: chats.outbox.clone(),
        ai,
        credits: chats.credits.clone(),
        http: egress
            .client()
            .build()
            .map_err(|e| StartupError::Delivery(std::io::Error::other(e)))?,
        http_limits: crate::runs::nodes::HttpLimits {
            egress,
            max_response_bytes: r.http_max_response_bytes,
            timeout: Duration::from_millis(r.http_timeout_ms),
        },
        code: Arc::default(),
        jobs: job_store.clone(),
        actions: std::sync::OnceLock::new(),
        lease_ttl: Duration::from_millis(r.lease_ttl_ms),
        renew_every: Duration::from_millis(r.lease_renew_ms),
        step_timeout: Duration::from_millis(r.step_timeout_ms),
        max_concurrent_steps: r.max_concurrent_steps,
        map_max_items: r.map_max_items,
        max_wait_ms: r.max_wait_ms,
        default_max_tokens: settings.ai.default_max_tokens,
        node: i32::from(chats.hub.node_id()),
    }))
}
