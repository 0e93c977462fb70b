//! People who use AudienceLens (not Instagram users): accounts, passwords, tokens, API keys.
//!
//! Owns: `users`, `api_keys`, `sessions`. Uses: `db`.

pub mod api_keys;
pub mod password;
pub mod sessions;
pub mod tokens;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::users;

/// A plausible email address, lowercased: one `@`, something on both sides, a dot in the
/// domain, no spaces, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim().to_ascii_lowercase();
        let ok = s.len() <= 254
            && !s.chars().any(char::is_whitespace)
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            });
        if ok {
            Ok(Self(s))
        } else {
            Err(format!("{:?} is not an email address", input.chars().take(80).collect::<String>()))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, QueryableByName)]
pub struct Credentials {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub password_hash: String,
    #[diesel(sql_type = Bool)]
    pub is_admin: bool,
}

/// Creates a user; `None` when the email is taken.
pub async fn create_user(
    conn: &mut AsyncPgConnection,
    email: &Email,
    password_hash: &str,
    is_admin: bool,
) -> QueryResult<Option<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let row: Option<Id> = diesel::sql_query(
        "INSERT INTO users (email, password_hash, is_admin) VALUES ($1, $2, $3)
         ON CONFLICT ((lower(email))) DO NOTHING RETURNING id",
    )
    .bind::<Text, _>(email.as_str())
    .bind::<Text, _>(password_hash)
    .bind::<Bool, _>(is_admin)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| r.id))
}

/// What a login checks, if the user exists.
pub async fn credentials(conn: &mut AsyncPgConnection, email: &Email) -> QueryResult<Option<Credentials>> {
    diesel::sql_query("SELECT id, password_hash, is_admin FROM users WHERE lower(email) = $1")
        .bind::<Text, _>(email.as_str())
        .get_result(conn)
        .await
        .optional()
}

/// Whether user `id` exists and is an admin (`None`: no such user).
pub async fn is_admin(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<bool>> {
    users::table.find(id).select(users::is_admin).first(conn).await.optional()
}

/// A user's email address and admin flag.
pub async fn profile(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<(String, bool)>> {
    users::table.find(id).select((users::email, users::is_admin)).first(conn).await.optional()
}

/// Sets a user's password hash (and admin flag).
pub async fn set_password(
    conn: &mut AsyncPgConnection,
    id: i64,
    password_hash: &str,
    is_admin: bool,
) -> QueryResult<()> {
    diesel::sql_query("UPDATE users SET password_hash = $2, is_admin = $3, updated_at = now() WHERE id = $1")
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(password_hash)
        .bind::<Bool, _>(is_admin)
        .execute(conn)
        .await?;
    Ok(())
}

/// The local owner that command-line imports belong to when no user is named: the first admin,
/// created (without a password: it cannot log in until one is set) when there are no users.
pub const LOCAL_OWNER_EMAIL: &str = "owner@localhost";

/// Id of the user with `email`, if any.
pub async fn find_by_email(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<Option<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let row: Option<Id> = diesel::sql_query("SELECT id FROM users WHERE lower(email) = lower($1)")
        .bind::<Text, _>(email)
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
    .bind::<Text, _>(LOCAL_OWNER_EMAIL)
    .execute(conn)
    .await?;
    find_by_email(conn, LOCAL_OWNER_EMAIL).await?.ok_or(diesel::result::Error::NotFound)
}
