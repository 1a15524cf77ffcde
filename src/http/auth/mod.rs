//! `/api/v2/auth/*`: email sign-up and login, guest login, password reset, email verification, logout (one
//! account or everywhere), session validation and account switching. The session middleware and extractors are in `session`.

mod handlers;
pub mod session;

use actix_web::web;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/email/signup").route(web::post().to(handlers::signup)))
        .service(web::resource("/auth/email/login").route(web::post().to(handlers::login)))
        .service(
            web::resource("/auth/email/requestPasswordChange")
                .route(web::post().to(handlers::request_password_change)),
        )
        .service(
            web::resource("/auth/email/resetPassword")
                .route(web::post().to(handlers::reset_password)),
        )
        .service(web::resource("/auth/guest/login").route(web::post().to(handlers::guest_login)))
        .service(web::resource("/auth/email/verify").route(web::post().to(handlers::verify_email)))
        .service(web::resource("/auth/refresh").route(web::post().to(handlers::refresh)))
        .service(web::resource("/auth/logout").route(web::post().to(handlers::logout)))
        .service(web::resource("/auth/logoutAll").route(web::post().to(handlers::logout_all)))
        .service(
            web::resource("/auth/validateSession")
                .route(web::post().to(handlers::validate_session)),
        )
        .service(
            web::resource("/auth/switchCurrentAccount")
                .route(web::post().to(handlers::switch_current_account)),
        );
}
