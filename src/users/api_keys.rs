//! API keys for scripts: shown once at creation, stored only as a SHA-256 hash, revocable.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bytea, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryResult};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Every key starts with this, so a key is never mistaken for a token.
pub const KEY_PREFIX: &str = "alk_";

#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    /// The key's first characters, to tell keys apart.
    #[diesel(sql_type = Text)]
    pub key_prefix: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub revoked_at: Option<DateTime<Utc>>,
}

fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Creates a key; returns the key itself (the only time it exists outside the caller) and
/// what is stored about it.
pub async fn create_key(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    name: &str,
) -> QueryResult<(String, ApiKeyInfo)> {
    let random: [u8; 32] = rand::rng().random();
    let key = format!("{KEY_PREFIX}{}", hex::encode(random));
    let info = diesel::sql_query(
        "INSERT INTO api_keys (user_id, name, key_prefix, key_hash) VALUES ($1, $2, $3, $4)
         RETURNING id, name, key_prefix, created_at, last_used_at, revoked_at",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(name)
    .bind::<Text, _>(&key[..KEY_PREFIX.len() + 6])
    .bind::<Bytea, _>(digest(&key))
    .get_result(conn)
    .await?;
    Ok((key, info))
}

/// The user a valid, unrevoked key belongs to, with their admin flag (and notes its use).
pub async fn user_for_key(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<Option<(i64, bool)>> {
    #[derive(QueryableByName)]
    struct Owner {
        #[diesel(sql_type = BigInt)]
        user_id: i64,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        is_admin: bool,
    }
    let owner: Option<Owner> = diesel::sql_query(
        "UPDATE api_keys k SET last_used_at = now() FROM users u
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.id = k.user_id
         RETURNING k.user_id, u.is_admin",
    )
    .bind::<Bytea, _>(digest(key))
    .get_result(conn)
    .await
    .optional()?;
    Ok(owner.map(|o| (o.user_id, o.is_admin)))
}

pub async fn list_keys(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<ApiKeyInfo>> {
    diesel::sql_query(
        "SELECT id, name, key_prefix, created_at, last_used_at, revoked_at FROM api_keys
         WHERE user_id = $1 ORDER BY id",
    )
    .bind::<BigInt, _>(user_id)
    .load(conn)
    .await
}

/// Revokes the user's key `id`; false when the user has no such key.
pub async fn revoke_key(conn: &mut AsyncPgConnection, user_id: i64, id: i64) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND user_id = $2",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(user_id)
    .execute(conn)
    .await?;
    Ok(n == 1)
}
