//! Creating and dropping whole databases: scratch databases for benchmarks and tests, made on
//! the same server as the configured one.

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};

use super::DbError;

/// `url` with its database name replaced by `name`.
#[must_use]
pub fn url_for_database(url: &SecretString, name: &str) -> SecretString {
    match reqwest::Url::parse(url.expose_secret()) {
        Ok(mut parsed) => {
            parsed.set_path(&format!("/{name}"));
            SecretString::from(parsed.to_string())
        }
        Err(_) => url.clone(),
    }
}

/// Database names we create are plain identifiers, so quoting is never ambiguous.
fn checked(name: &str) -> Result<&str, DbError> {
    if !name.is_empty()
        && name.len() < 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(name)
    } else {
        Err(DbError::Migration(format!("refusing odd database name {name:?}")))
    }
}

async fn admin(url: &SecretString) -> Result<AsyncPgConnection, DbError> {
    Ok(AsyncPgConnection::establish(url_for_database(url, "postgres").expose_secret()).await?)
}

/// Creates database `name` (optionally as a copy of `template`) on `url`'s server.
///
/// # Errors
/// When the server refuses.
pub async fn create_database(url: &SecretString, name: &str, template: Option<&str>) -> Result<(), DbError> {
    let mut conn = admin(url).await?;
    let sql = match template {
        Some(t) => format!("CREATE DATABASE \"{}\" TEMPLATE \"{}\"", checked(name)?, checked(t)?),
        None => format!("CREATE DATABASE \"{}\"", checked(name)?),
    };
    diesel::sql_query(sql).execute(&mut conn).await?;
    Ok(())
}

/// Drops database `name`, disconnecting anyone still connected.
///
/// # Errors
/// When the server refuses.
pub async fn drop_database(url: &SecretString, name: &str) -> Result<(), DbError> {
    let mut conn = admin(url).await?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", checked(name)?))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Whether database `name` exists on `url`'s server.
///
/// # Errors
/// When the server cannot be reached.
pub async fn database_exists(url: &SecretString, name: &str) -> Result<bool, DbError> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = admin(url).await?;
    let n: N = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(name)
        .get_result(&mut conn)
        .await?;
    Ok(n.n > 0)
}
