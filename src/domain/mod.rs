//! Domain types parsed at the edge: once a value is a `Handle` or an `EmailAddress`, everything
//! inside can trust it.

mod email;
mod handle;
pub mod secret;

pub use email::EmailAddress;
pub use handle::Handle;
