//! Logins as rows, so that they can end. A token login's JWT carries its session id; the
//! dashboard's cookie carries a random secret (only its SHA-256 is stored). Every request
//! looks its session up, so a logout, a new password or an operator's change takes effect at
//! once on every API process.
//!
//! Owns: `sessions`. Uses: `db`.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Bytea, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension as _, QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngExt as _;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How a session was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/auth/login`: a bearer JWT carrying the session id.
    Token,
    /// `/auth/session`: the dashboard's `HttpOnly` cookie.
    Cookie,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Cookie => "cookie",
        }
    }
}

/// A live session and its user.
#[derive(Debug, Clone, QueryableByName)]
pub struct Live {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Bool)]
    pub is_admin: bool,
    /// When the password was given.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Opens a session for `user_id`, who has just given their password. A cookie session also
/// gets its secret (the only time it exists outside the browser).
pub async fn open(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    kind: Kind,
) -> QueryResult<(Uuid, Option<String>)> {
    let id = Uuid::new_v4();
    let secret = (kind == Kind::Cookie).then(|| {
        let random: [u8; 32] = rand::rng().random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    });
    diesel::sql_query("INSERT INTO sessions (id, user_id, kind, secret_hash) VALUES ($1, $2, $3, $4)")
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(user_id)
        .bind::<Text, _>(kind.as_str())
        .bind::<Nullable<Bytea>, _>(secret.as_deref().map(digest))
        .execute(conn)
        .await?;
    Ok((id, secret))
}

const LIVE: &str =
    "SELECT s.id, s.user_id, u.is_admin, s.created_at FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.ended_at IS NULL AND s.created_at > now() - make_interval(secs => $2)";

/// The live token session `id` (younger than `max_age`), with its user.
pub async fn token_session(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    max_age: std::time::Duration,
) -> QueryResult<Option<Live>> {
    diesel::sql_query(format!("{LIVE} AND s.id = $1 AND s.kind = 'token'"))
        .bind::<SqlUuid, _>(id)
        .bind::<Double, _>(max_age.as_secs_f64())
        .get_result(conn)
        .await
        .optional()
}

/// The live cookie session whose secret is `secret`, with its user.
pub async fn cookie_session(
    conn: &mut AsyncPgConnection,
    secret: &str,
    max_age: std::time::Duration,
) -> QueryResult<Option<Live>> {
    diesel::sql_query(format!("{LIVE} AND s.secret_hash = $1 AND s.kind = 'cookie'"))
        .bind::<Bytea, _>(digest(secret))
        .bind::<Double, _>(max_age.as_secs_f64())
        .get_result(conn)
        .await
        .optional()
}

/// Ends session `id` (a logout).
pub async fn end(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    let n = diesel::sql_query("UPDATE sessions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL")
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Ends every live session of `user_id` but `keep`; returns how many.
pub async fn end_all(conn: &mut AsyncPgConnection, user_id: i64, keep: Option<Uuid>) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE sessions SET ended_at = now() WHERE user_id = $1 AND ended_at IS NULL AND id IS DISTINCT FROM $2",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Nullable<SqlUuid>, _>(keep)
    .execute(conn)
    .await
}

/// Deletes sessions ended, or older than `max_age`, more than a day ago (housekeeping).
pub async fn purge(conn: &mut AsyncPgConnection, max_age: std::time::Duration) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM sessions WHERE ended_at < now() - interval '1 day'
            OR created_at < now() - make_interval(secs => $1) - interval '1 day'",
    )
    .bind::<Double, _>(max_age.as_secs_f64())
    .execute(conn)
    .await
}
