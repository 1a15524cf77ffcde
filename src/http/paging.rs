//! Relay-style pages, as every list answers: `take` (default 20, 1–100) and an `after` cursor
//! (the id of the last row of the previous page) in; `{edges: [{cursor, node}], pageInfo:
//! {hasNextPage, endCursor}}` out. Queries fetch `take + 1` rows so one extra row tells whether
//! another page exists.

use serde::Serialize;

use super::error::ApiError;
use crate::errors::Code;

pub const DEFAULT_TAKE: i64 = 20;
pub const MAX_TAKE: i64 = 100;

/// Checks `take` and `after` (a decimal id).
pub fn params(take: Option<i64>, after: Option<&str>) -> Result<(i64, Option<i64>), ApiError> {
    let take = take.unwrap_or(DEFAULT_TAKE);
    if !(1..=MAX_TAKE).contains(&take) {
        return Err(ApiError::of(
            Code::InvalidTake,
            "take must be between 1 and 100",
        ));
    }
    let after = match after {
        None => None,
        Some(cursor) => Some(cursor.parse().map_err(|_| {
            ApiError::of(Code::InvalidCursor, "after is not a cursor from this list")
        })?),
    };
    Ok((take, after))
}

/// A page from up to `take + 1` rows.
pub fn relay<T: Serialize>(mut rows: Vec<T>, take: i64, cursor: impl Fn(&T) -> String) -> Relay<T> {
    let has_next_page = rows.len() as i64 > take;
    rows.truncate(take as usize);
    let end_cursor = rows.last().map(&cursor);
    let edges = rows
        .into_iter()
        .map(|node| Edge {
            cursor: cursor(&node),
            node,
        })
        .collect();
    Relay {
        edges,
        page_info: PageInfo {
            has_next_page,
            end_cursor,
        },
    }
}

/// A Relay page, serialised straight from the rows (no `serde_json::Value` in between).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Relay<T> {
    pub edges: Vec<Edge<T>>,
    pub page_info: PageInfo,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Edge<T> {
    /// Pass as `after` to read on from this row.
    pub cursor: String,
    pub node: T,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}
