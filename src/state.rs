//! What handlers share: built once in `startup` (`startup/services.rs`), handed to every worker
//! as one `web::Data<AppState>`.
//!
//! Grouped, not one `web::Data` per service. `AppState` is a handful of parts, each named after a
//! capability (`state.infra`, `state.auth`, `state.chat`, `state.runs`, `state.people`,
//! `state.money`, `state.files`), and a handler reads `state.<part>.<service>`. Why this and not
//! a `web::Data<Service>` per service: a handler's extractor for a service that was never
//! registered compiles and fails at run time (a 500 on that route only), while a field of
//! `AppState` that is not built does not compile; the middleware (session, edge, system key)
//! and the WebSocket upgrade reach the state from a bare `HttpRequest`, where one type to look up
//! is simpler than several; and every part clones cheaply (pools and `Arc`s), as the whole did.
//! The part in a handler's body still says which capability it uses.

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
    /// The node itself: ids, health, metrics, the job queue, the actor system.
    pub infra: Infra,
    /// Who is calling: sessions, API keys, the system key.
    pub auth: Auth,
    /// Chats and messages.
    pub chat: Chat,
    /// Routines, their runs, and the MCP server that calls them.
    pub runs: Runs,
    /// People and what is theirs: the directory, profiles, teams, notices, their data.
    pub people: People,
    /// Credits and payments.
    pub money: Money,
    /// Uploads and their storage (local or S3): profile images and chat attachments.
    pub files: crate::files::FileService,
}

/// The node: what every capability leans on and no single one owns.
#[derive(Clone)]
pub struct Infra {
    pub ids: Arc<Snowflake>,
    pub health: Arc<HealthService>,
    pub metrics: Arc<Metrics>,
    pub host: HostProbe,
    /// Enqueue jobs here (inside your transaction with `enqueue_in`).
    pub jobs: JobStore,
    /// The node's actor system: WebSocket sessions, rooms, the cross-node broker.
    pub hub: vrooli_actors::Hub,
    /// `log.access_log`: one "request finished" line per request.
    pub access_log: bool,
}

/// Who is calling.
#[derive(Clone)]
pub struct Auth {
    /// Sessions and tokens; password checks, resets, verification, admin locks.
    pub sessions: Arc<AuthService>,
    /// API keys (with their lookup cache).
    pub api_keys: Arc<ApiKeys>,
    /// `admin.system_key`; empty disables the admin routes.
    pub admin_key: SecretString,
}

#[derive(Clone)]
pub struct Chat {
    /// Chats and messages (writes publish to the chat's room).
    pub chats: crate::chat::ChatService,
}

#[derive(Clone)]
pub struct Runs {
    /// Routines and their versions (graphs checked on every write).
    pub routines: crate::routines::RoutineService,
    /// Runs: start, stop, answer, read (executed by run actors, `crate::runs`).
    pub runs: crate::runs::RunService,
    /// The MCP server at `/mcp` (rmcp, stateless).
    pub mcp: crate::mcp::Mcp,
}

#[derive(Clone)]
pub struct People {
    /// People as others see them (public fields only).
    pub directory: crate::people::Directory,
    /// The caller's own profile and notification settings.
    pub profiles: crate::profile::Profiles,
    /// Teams, members and their invites (who may do what: `teams::access`).
    pub teams: crate::teams::TeamService,
    pub notifications: crate::notifications::Notifications,
    /// Web Push subscriptions (and the server's VAPID public key).
    pub push: crate::notifications::push::PushDevices,
    /// Data exports (made by the export-user-data job, downloaded once).
    pub exports: crate::exports::Exports,
    /// Data imports (checked when sent, recreated by the import-user-data job).
    pub imports: crate::imports::Imports,
}

#[derive(Clone)]
pub struct Money {
    /// Balances, holds and settlement (`Payer`: a person or a team).
    pub credits: crate::credits::Credits,
    /// Stripe checkout, portal and webhook.
    pub billing: crate::billing::Billing,
}
