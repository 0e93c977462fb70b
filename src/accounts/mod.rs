//! Tracked accounts: the Instagram accounts a user analyses.
//!
//! Owns: `tracked_accounts`, `share_links`. Uses: `db`.

pub mod handle;
pub mod share_links;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

pub use handle::{HandleError, InstagramHandle};

use crate::db::schema::tracked_accounts;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, serde::Serialize)]
#[diesel(table_name = tracked_accounts)]
pub struct TrackedAccount {
    pub id: i64,
    pub user_id: i64,
    pub handle: String,
    pub ig_user_id: Option<String>,
    pub followers_count: Option<i64>,
    pub schedule: String,
    pub max_posts: i32,
    pub max_comments_per_post: i32,
    pub budget_micro_usd: Option<i64>,
    pub last_analyzed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn get_account(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<TrackedAccount> {
    tracked_accounts::table.find(id).select(TrackedAccount::as_select()).first(conn).await
}

/// The user's account for `handle`, created with default settings if it does not exist.
pub async fn find_or_create_account(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    handle: &InstagramHandle,
) -> QueryResult<TrackedAccount> {
    diesel::sql_query(
        "WITH new AS (
            INSERT INTO tracked_accounts (user_id, handle) VALUES ($1, $2)
            ON CONFLICT (user_id, lower(handle)) DO NOTHING
            RETURNING *
         )
         SELECT * FROM new
         UNION ALL
         SELECT * FROM tracked_accounts WHERE user_id = $1 AND lower(handle) = $2
         LIMIT 1",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(handle.as_str())
    .get_result(conn)
    .await
}

/// The user's account for `handle`, if tracked.
pub async fn find_user_account_by_handle(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    handle: &InstagramHandle,
) -> QueryResult<Option<TrackedAccount>> {
    diesel::sql_query("SELECT * FROM tracked_accounts WHERE user_id = $1 AND lower(handle) = $2")
        .bind::<BigInt, _>(user_id)
        .bind::<Text, _>(handle.as_str())
        .get_result(conn)
        .await
        .optional()
}

/// Records what a profile scrape or import said about the account itself; absent values
/// leave what is stored.
pub async fn update_account_details(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    ig_user_id: Option<&str>,
    followers_count: Option<i64>,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE tracked_accounts SET ig_user_id = coalesce($2, ig_user_id),
                followers_count = coalesce($3, followers_count), updated_at = now()
         WHERE id = $1",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Nullable<Text>, _>(ig_user_id)
    .bind::<Nullable<BigInt>, _>(followers_count)
    .execute(conn)
    .await?;
    Ok(())
}

/// Limits an account's settings may take.
pub const MAX_POSTS_LIMIT: i32 = 500;
pub const MAX_COMMENTS_PER_POST_LIMIT: i32 = 5_000;

/// Settings a user can change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct AccountChanges {
    pub schedule: Option<Schedule>,
    pub max_posts: Option<i32>,
    pub max_comments_per_post: Option<i32>,
    /// `Some(None)` removes the budget.
    pub budget_micro_usd: Option<Option<i64>>,
}

/// How often an account is analysed again on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Off,
    Daily,
    Weekly,
}

impl Schedule {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
        }
    }
}

/// Checks the numeric settings; the message names the field.
///
/// # Errors
/// A message for the client.
pub fn validate_changes(c: &AccountChanges) -> Result<(), String> {
    if let Some(n) = c.max_posts
        && !(1..=MAX_POSTS_LIMIT).contains(&n)
    {
        return Err(format!("max_posts must be between 1 and {MAX_POSTS_LIMIT}"));
    }
    if let Some(n) = c.max_comments_per_post
        && !(1..=MAX_COMMENTS_PER_POST_LIMIT).contains(&n)
    {
        return Err(format!("max_comments_per_post must be between 1 and {MAX_COMMENTS_PER_POST_LIMIT}"));
    }
    if let Some(Some(b)) = c.budget_micro_usd
        && b < 0
    {
        return Err("budget_usd cannot be negative".into());
    }
    Ok(())
}

/// Creates the user's account for `handle`; `None` when they track it already.
pub async fn create_account(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    handle: &InstagramHandle,
    c: &AccountChanges,
) -> QueryResult<Option<TrackedAccount>> {
    diesel::sql_query(
        "INSERT INTO tracked_accounts (user_id, handle, schedule, max_posts, max_comments_per_post, budget_micro_usd)
         VALUES ($1, $2, coalesce($3, 'off'), coalesce($4, 12), coalesce($5, 50), $6)
         ON CONFLICT (user_id, lower(handle)) DO NOTHING
         RETURNING *",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(handle.as_str())
    .bind::<Nullable<Text>, _>(c.schedule.map(Schedule::as_str))
    .bind::<Nullable<diesel::sql_types::Integer>, _>(c.max_posts)
    .bind::<Nullable<diesel::sql_types::Integer>, _>(c.max_comments_per_post)
    .bind::<Nullable<BigInt>, _>(c.budget_micro_usd.flatten())
    .get_result(conn)
    .await
    .optional()
}

/// The user's account `id` (never another user's).
pub async fn get_user_account(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    id: i64,
) -> QueryResult<Option<TrackedAccount>> {
    tracked_accounts::table
        .filter(tracked_accounts::id.eq(id).and(tracked_accounts::user_id.eq(user_id)))
        .select(TrackedAccount::as_select())
        .first(conn)
        .await
        .optional()
}

/// The user's accounts after `after` (an id), oldest first.
pub async fn list_user_accounts(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<TrackedAccount>> {
    tracked_accounts::table
        .filter(tracked_accounts::user_id.eq(user_id).and(tracked_accounts::id.gt(after)))
        .order(tracked_accounts::id)
        .limit(limit)
        .select(TrackedAccount::as_select())
        .load(conn)
        .await
}

/// Applies `c` to the user's account `id`; `None` when the user has no such account.
pub async fn update_user_account(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    id: i64,
    c: &AccountChanges,
) -> QueryResult<Option<TrackedAccount>> {
    diesel::sql_query(
        "UPDATE tracked_accounts SET
            schedule = coalesce($3, schedule),
            max_posts = coalesce($4, max_posts),
            max_comments_per_post = coalesce($5, max_comments_per_post),
            budget_micro_usd = CASE WHEN $6 THEN $7 ELSE budget_micro_usd END,
            updated_at = now()
         WHERE id = $1 AND user_id = $2
         RETURNING *",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(user_id)
    .bind::<Nullable<Text>, _>(c.schedule.map(Schedule::as_str))
    .bind::<Nullable<diesel::sql_types::Integer>, _>(c.max_posts)
    .bind::<Nullable<diesel::sql_types::Integer>, _>(c.max_comments_per_post)
    .bind::<diesel::sql_types::Bool, _>(c.budget_micro_usd.is_some())
    .bind::<Nullable<BigInt>, _>(c.budget_micro_usd.flatten())
    .get_result(conn)
    .await
    .optional()
}

/// Deletes the user's account `id` (its analyses go with it; the shared Instagram data stays
/// until retention removes it). False when the user has no such account.
pub async fn delete_user_account(conn: &mut AsyncPgConnection, user_id: i64, id: i64) -> QueryResult<bool> {
    let n = diesel::delete(
        tracked_accounts::table
            .filter(tracked_accounts::id.eq(id).and(tracked_accounts::user_id.eq(user_id))),
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}
