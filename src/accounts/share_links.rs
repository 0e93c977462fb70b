//! Read-only links to one account's latest report: an unguessable random token (only its
//! SHA-256 is stored, so a link is shown once), an expiry, and a revocation.
//!
//! Owns: `share_links`. Uses: `db`.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bytea, Integer, Text};
use diesel::{OptionalExtension as _, QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngExt as _;
use sha2::{Digest, Sha256};

/// Longest a link may live, in days.
pub const MAX_DAYS: i32 = 365;

/// A link as listed (never its token).
#[derive(Debug, Clone, QueryableByName, serde::Serialize, utoipa::ToSchema)]
pub struct ShareLink {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    /// The token's first characters, to tell links apart.
    #[diesel(sql_type = Text)]
    pub token_prefix: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    pub revoked_at: Option<DateTime<Utc>>,
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

const COLUMNS: &str =
    "id, tracked_account_id AS account_id, token_prefix, created_at, expires_at, revoked_at";

/// Creates a link to the user's account `account_id` valid for `days`; returns the token (the
/// only time it exists outside the link) and the link. `None`: no such account of theirs.
pub async fn create(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    account_id: i64,
    days: i32,
) -> QueryResult<Option<(String, ShareLink)>> {
    let random: [u8; 32] = rand::rng().random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
    let link: Option<ShareLink> = diesel::sql_query(format!(
        "INSERT INTO share_links (tracked_account_id, token_hash, token_prefix, expires_at)
         SELECT id, $3, $4, now() + make_interval(days => $5) FROM tracked_accounts WHERE id = $1 AND user_id = $2
         RETURNING {COLUMNS}"
    ))
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(user_id)
    .bind::<Bytea, _>(digest(&token))
    .bind::<Text, _>(&token[..8])
    .bind::<Integer, _>(days)
    .get_result(conn)
    .await
    .optional()?;
    Ok(link.map(|l| (token, l)))
}

/// The links of the user's account, newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    account_id: i64,
) -> QueryResult<Vec<ShareLink>> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM share_links
         WHERE tracked_account_id = $1 AND tracked_account_id IN (SELECT id FROM tracked_accounts WHERE user_id = $2)
         ORDER BY id DESC"
    ))
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(user_id)
    .load(conn)
    .await
}

/// Revokes the user's link `id`; false when they have no such live link.
pub async fn revoke(conn: &mut AsyncPgConnection, user_id: i64, id: i64) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE share_links SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
           AND tracked_account_id IN (SELECT id FROM tracked_accounts WHERE user_id = $2)",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(user_id)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// The account a live (unexpired, unrevoked) token opens, with the link.
pub async fn resolve(conn: &mut AsyncPgConnection, token: &str) -> QueryResult<Option<ShareLink>> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM share_links WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()"
    ))
    .bind::<Bytea, _>(digest(token))
    .get_result(conn)
    .await
    .optional()
}
