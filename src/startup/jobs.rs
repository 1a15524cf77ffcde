//! Start-up: the job handlers, worker pools, listener, rescue sweep and scheduler.

use std::sync::Arc;
use std::time::Duration;

use super::error::StartupError;
use crate::chat::ChatService;
use crate::chat::answer::LlmCompletion;
use crate::config::Settings;
use crate::email::{Mailer, SendEmailHandler};
use crate::jobs::scheduler::Scheduler;
use crate::jobs::{Executor, JobRuntime, JobStore, Registry, maintenance};
use crate::sms::{SendSmsHandler, SmsSender};

/// The services whose jobs run here (besides the chats').
pub(super) struct JobServices<'a> {
    pub runs: &'a Arc<crate::runs::RunDeps>,
    pub routines: &'a crate::routines::RoutineService,
    pub billing: &'a crate::billing::Billing,
    pub files: &'a crate::files::FileService,
    pub exports: &'a crate::exports::Exports,
}

/// The job handlers this node runs, its pools, and the scheduler.
pub(super) fn start_jobs(
    store: &JobStore,
    settings: &Settings,
    chats: &ChatService,
    services: JobServices<'_>,
    vapid: Option<Arc<crate::notifications::push::Vapid>>,
) -> Result<JobRuntime, StartupError> {
    let JobServices {
        runs,
        routines,
        billing,
        files,
        exports,
    } = services;
    let push_egress = crate::egress::Egress::from_settings(
        &settings.egress,
        settings.push.allow_insecure_endpoints,
    )
    .map_err(|e| StartupError::Delivery(std::io::Error::other(e)))?;
    let push_http = push_egress
        .client()
        .timeout(Duration::from_secs(settings.push.timeout_secs))
        .build()
        .map_err(|e| StartupError::Delivery(std::io::Error::other(e)))?;
    let jobs = Arc::new(settings.jobs.clone());
    let mailer = Mailer::from_settings(&settings.email).map_err(StartupError::Delivery)?;
    tracing::info!(to = mailer.describe(&settings.email), "email delivery");
    let from = settings
        .email
        .from
        .parse()
        .map_err(|e| StartupError::Delivery(std::io::Error::other(e)))?;
    let sms = SmsSender::from_settings(&settings.sms).map_err(StartupError::Delivery)?;
    let registry = Registry::new()
        .register(maintenance::PruneJobs {
            store: store.clone(),
            retention: Duration::from_secs(jobs.retention_hours * 3600),
        })
        .register(maintenance::CleanupSessions {
            store: store.clone(),
        })
        .register(maintenance::PurgeDeletedAccounts {
            store: store.clone(),
            after: Duration::from_secs(settings.auth.deleted_account_days * 86_400),
        })
        .register(SendEmailHandler {
            mailer,
            from,
            ui_url: settings.email.ui_url.clone(),
            pool: chats.pool.clone(),
        })
        .register(SendSmsHandler { sender: sms })
        .register(crate::exports::ExportUserData {
            pool: chats.pool.clone(),
            chunk_bytes: settings.exports.chunk_bytes,
            max_bytes: settings.exports.max_bytes,
        })
        .register(crate::billing::premium::GrantPremiumCredits {
            billing: billing.clone(),
        })
        .register(crate::files::orphans::DeleteOrphans {
            files: files.clone(),
        })
        .register(crate::exports::ExpireExports {
            exports: exports.clone(),
        })
        .register(crate::imports::ImportUserData {
            pool: chats.pool.clone(),
            ids: Arc::clone(&runs.ids),
            routines: routines.clone(),
        })
        .register(crate::notifications::push::SendPush {
            pool: chats.pool.clone(),
            http: push_http,
            egress: push_egress,
            vapid,
            ttl: Duration::from_secs(settings.push.ttl_secs),
        })
        .register(crate::runs::RunStart {
            deps: Arc::clone(runs),
        })
        .register(crate::runs::code::SandboxExecution {
            pool: runs.pool.clone(),
            sandbox: crate::sandbox::Sandbox::new(&settings.sandbox)
                .map_err(StartupError::Delivery)?,
            results: Arc::clone(&runs.code),
        })
        .register(LlmCompletion {
            pool: chats.pool.clone(),
            chats: chats.clone(),
            hub: chats.hub.clone(),
            // The same registry the chats price answers with.
            registry: Arc::clone(&chats.ai),
            credits: chats.credits.clone(),
            context_messages: settings.ai.context_messages,
            default_max_tokens: settings.ai.default_max_tokens,
        });
    let mut schedules = maintenance::schedules();
    schedules.push(crate::files::orphans::schedule());
    schedules.push(crate::exports::schedule(Duration::from_secs(
        settings.exports.expire_every_secs,
    )));
    if billing.enabled() {
        schedules.push(crate::billing::premium::schedule());
    }
    let scheduler = Scheduler::new(store.clone(), schedules);
    let executor = Arc::new(Executor::new(store.clone(), registry, jobs));
    let drain_deadline = Duration::from_secs(settings.server.shutdown_timeout_secs);
    Ok(JobRuntime::start(executor, Some(scheduler), drain_deadline))
}
