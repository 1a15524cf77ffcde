//! Authentication: accounts and passwords (`accounts`, `password`), Ed25519-signed session tokens
//! (`keys`, `token`), sessions with silent refresh and revocation (`service`, `revocation`).
//! HTTP glue (cookie middleware, `AuthUser` extractors, routes) is in `src/http/auth/`.

pub mod accounts;
pub mod api_keys;
pub mod credentials;
pub mod keys;
pub mod password;
pub mod revocation;
pub mod service;
pub mod token;

pub use service::{AuthFailure, AuthService, Authenticated, Authentication, Device};
