//! People who use AudienceLens (not Instagram users).
//!
//! Owns: `users`. Uses: `db`.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::users;

/// The local owner that command-line imports belong to when no user is named: the first admin,
/// created (without a password: it cannot log in until one is set) when there are no users.
pub const LOCAL_OWNER_EMAIL: &str = "owner@localhost";

/// Id of the user with `email`, if any.
pub async fn find_by_email(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<Option<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let row: Option<Id> = diesel::sql_query("SELECT id FROM users WHERE lower(email) = lower($1)")
        .bind::<diesel::sql_types::Text, _>(email)
        .get_result(conn)
        .await
        .optional()?;
    Ok(row.map(|r| r.id))
}

/// The first admin's id, creating the local owner when nobody exists yet.
pub async fn default_owner(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    let first_admin: Option<i64> = users::table
        .filter(users::is_admin.eq(true))
        .order(users::id)
        .select(users::id)
        .first(conn)
        .await
        .optional()?;
    if let Some(id) = first_admin {
        return Ok(id);
    }
    diesel::sql_query(
        "INSERT INTO users (email, password_hash, is_admin) VALUES ($1, '!', true)
         ON CONFLICT ((lower(email))) DO NOTHING",
    )
    .bind::<diesel::sql_types::Text, _>(LOCAL_OWNER_EMAIL)
    .execute(conn)
    .await?;
    find_by_email(conn, LOCAL_OWNER_EMAIL).await?.ok_or(diesel::result::Error::NotFound)
}
