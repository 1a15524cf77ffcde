//! `/api/v2/auth/*`: email sign-up and login, guest login, password reset, email verification,
//! logout (one account or everywhere), session validation and account switching.
//! `handlers` (sign-up, in and out, refresh, switch) and `emailed` (the flows a mailed code
//! completes) → `bodies` (what is read and answered; the services' errors say their codes in
//! `crate::errors`). The session middleware and extractors are in `session`, the readers
//! (public or private data) in `readers`.

mod bodies;
mod emailed;
mod handlers;
pub mod readers;
mod rules;
pub(crate) use rules::{check_password_rules, parse_email};
pub mod session;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::signup)
        .service(handlers::login)
        .service(emailed::request_password_change)
        .service(emailed::reset_password)
        .service(handlers::guest_login)
        .service(emailed::verify_email)
        .service(handlers::refresh)
        .service(handlers::logout)
        .service(handlers::logout_all)
        .service(handlers::validate_session)
        .service(handlers::switch_current_account);
}
