//! Domain types parsed at the edge: once a value is a `Handle`, an `EmailAddress`, a
//! `MessageText` or a `ChatName`, everything inside can trust it.

pub mod address;
mod email;
mod handle;
pub mod rfc3339;
pub mod secret;
mod text;

pub use email::EmailAddress;
pub use handle::Handle;
pub use text::{ChatName, InvalidChatName, InvalidText, MAX_MESSAGE_CHARS, MessageText};
