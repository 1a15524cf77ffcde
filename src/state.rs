//! What handlers share: built once in `startup`, handed to every worker as `web::Data<AppState>`.

use std::sync::Arc;

use crate::auth::AuthService;
use crate::auth::api_keys::ApiKeys;
use crate::health::HealthService;
use crate::health::host::HostProbe;
use crate::ids::Snowflake;
use crate::jobs::JobStore;
use crate::metrics::Metrics;
use secrecy::SecretString;

#[derive(Clone)]
pub struct AppState {
    pub ids: Arc<Snowflake>,
    pub health: Arc<HealthService>,
    pub metrics: Arc<Metrics>,
    pub host: HostProbe,
    /// Sessions and tokens.
    pub auth: Arc<AuthService>,
    /// API keys (with their lookup cache).
    pub api_keys: Arc<ApiKeys>,
    /// Enqueue jobs here (inside your transaction with `enqueue_in`).
    pub jobs: JobStore,
    /// `admin.system_key`; empty disables the admin routes.
    pub admin_key: SecretString,
    /// `log.access_log`: one "request finished" line per request.
    pub access_log: bool,
    /// The node's actor system: WebSocket sessions, rooms, the cross-node broker.
    pub hub: vrooli_actors::Hub,
    /// Chats and messages (writes publish to the chat's room).
    pub chats: crate::chat::ChatService,
    pub credits: crate::credits::Credits,
    pub notifications: crate::notifications::Notifications,
    /// Routines and their versions (graphs checked on every write).
    pub routines: crate::routines::RoutineService,
    /// Runs: start, stop, answer, read (executed by run actors, `crate::runs`).
    pub runs: crate::runs::RunService,
    /// Teams, members and their invites (who may do what: `teams::access`).
    pub teams: crate::teams::TeamService,
    /// The caller's own profile and notification settings.
    pub profiles: crate::profile::Profiles,
    /// Data exports (made by the export-user-data job, downloaded once).
    pub exports: crate::exports::Exports,
    /// Data imports (checked when sent, recreated by the import-user-data job).
    pub imports: crate::imports::Imports,
    /// Web Push subscriptions (and the server's VAPID public key).
    pub push: crate::notifications::push::PushDevices,
    /// People as others see them (public fields only).
    pub people: crate::people::Directory,
    /// Stripe checkout, portal and webhook.
    pub billing: crate::billing::Billing,
    /// Uploads and their storage (local or S3).
    pub files: crate::files::FileService,
    /// The MCP server at `/mcp` (rmcp, stateless).
    pub mcp: crate::mcp::Mcp,
}
