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
