//! Cursor pagination: a page of items plus an opaque cursor for the next page.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Items per page (1-500, default 50).
    pub limit: Option<i64>,
}

impl PageQuery {
    /// The page size and the position after which to continue (`None`: from the start).
    ///
    /// # Errors
    /// A bad cursor or limit.
    pub fn parse(&self) -> Result<(i64, Option<i64>), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}")));
        }
        let position = match &self.cursor {
            None => None,
            Some(c) => Some(decode(c).ok_or_else(|| ApiError::BadRequest("invalid cursor".into()))?),
        };
        Ok((limit, position))
    }
}

/// Cursors are opaque to clients: `c` and the position in hex.
#[must_use]
pub fn encode(position: i64) -> String {
    format!("c{position:x}")
}

fn decode(cursor: &str) -> Option<i64> {
    i64::from_str_radix(cursor.strip_prefix('c')?, 16).ok().filter(|n| *n >= 0)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when there may be more: pass it as `cursor`.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `items` fetched with `limit + 1` rows: the extra row only tells that another page exists.
    pub fn from_rows(mut items: Vec<T>, limit: i64, position: impl Fn(&T) -> i64) -> Self {
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_cursor = if more { items.last().map(|i| encode(position(i))) } else { None };
        Self { items, next_cursor }
    }
}
