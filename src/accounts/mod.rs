//! Tracked accounts: the Instagram accounts a user analyses.
//!
//! Owns: `tracked_accounts`. Uses: `db`.

pub mod handle;

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
