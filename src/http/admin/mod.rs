//! `/api/v2/admin/*`: operator routes, behind the system key ([`super::system_key`]).
//! Queues: counts by state; dead jobs: list (Relay page), retry, discard; pending jobs: cancel.
//! Users: lock (revoking every session at once) and unlock. Rooms: publish an event, presence;
//! nodes: stats through the node's mailbox.

mod jobs;
mod rooms;
mod users;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(jobs::queue_counts)
        .service(jobs::list_dead)
        .service(jobs::retry)
        .service(jobs::cancel)
        .service(jobs::discard)
        .service(users::lock)
        .service(users::unlock)
        .service(rooms::publish)
        .service(rooms::presence)
        .service(rooms::node_stats);
}
