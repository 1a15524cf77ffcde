//! `/api/v2/admin/*`: operator routes, behind the system key ([`super::system_key`]).
//! Queues: counts by state; dead jobs: list (Relay page), retry, discard; pending jobs: cancel.
//! Users: lock (revoking every session at once) and unlock. Rooms: publish an event, presence;
//! nodes: stats through the node's mailbox.

mod jobs;
mod rooms;
mod users;

use actix_web::web;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/queues").route(web::get().to(jobs::queue_counts)))
        .service(web::resource("/admin/jobs/dead").route(web::get().to(jobs::list_dead)))
        .service(web::resource("/admin/jobs/{id}/retry").route(web::post().to(jobs::retry)))
        .service(web::resource("/admin/jobs/{id}/cancel").route(web::post().to(jobs::cancel)))
        .service(web::resource("/admin/jobs/{id}").route(web::delete().to(jobs::discard)))
        .service(web::resource("/admin/users/{id}/lock").route(web::post().to(users::lock)))
        .service(web::resource("/admin/users/{id}/unlock").route(web::post().to(users::unlock)))
        .service(web::resource("/admin/rooms/publish").route(web::post().to(rooms::publish)))
        .service(
            web::resource("/admin/rooms/{room}/presence").route(web::get().to(rooms::presence)),
        )
        .service(web::resource("/admin/nodes/{id}/stats").route(web::get().to(rooms::node_stats)));
}
