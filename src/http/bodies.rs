//! Small answer shapes several routes share. Each is the type the handler serialises, so the
//! OpenAPI document describes exactly what is sent.

use serde::Serialize;
use utoipa::ToSchema;

/// `{"id": …, "deleted": true}`: what a delete answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted<I> {
    pub id: I,
    pub deleted: bool,
}

impl<I> Deleted<I> {
    pub fn new(id: I) -> Self {
        Self { id, deleted: true }
    }
}

/// The longest note an invite (to a chat or a team) may carry; also the columns' size.
pub const MAX_INVITE_MESSAGE_CHARS: usize = 4096;

/// Refuses an invite note over [`MAX_INVITE_MESSAGE_CHARS`] (422 `InvalidMessage`).
pub fn check_invite_message(message: Option<&str>) -> Result<(), super::error::ApiError> {
    if message.is_some_and(|m| m.chars().count() > MAX_INVITE_MESSAGE_CHARS) {
        return Err(super::error::ApiError::of(
            crate::errors::Code::InvalidMessage,
            "An invite message is at most 4,096 characters",
        ));
    }
    Ok(())
}
