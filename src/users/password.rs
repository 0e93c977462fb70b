//! Password hashing with Argon2id (PHC strings), off the async runtime: a hash costs tens of
//! milliseconds of CPU by design.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};

/// Shortest password accepted at registration.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted (argon2 hashes any length; this bounds the work a request asks).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Whether `password` may be set: 10 to 1,024 characters, no control characters.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!("the password must have at least {MIN_PASSWORD_CHARS} characters"));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!("the password must have at most {MAX_PASSWORD_CHARS} characters"));
    }
    if password.chars().any(char::is_control) {
        return Err("the password must not contain control characters".to_owned());
    }
    Ok(())
}

/// Hashes `password` with a fresh random salt.
///
/// # Errors
/// Only if hashing itself fails (it does not for valid inputs).
pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// Whether `password` matches `hash`. A malformed or locked hash (e.g. `!`) never matches.
pub async fn verify_password(password: SecretString, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A hash that takes as long to check as a real one, for users that do not exist: logins for
/// unknown and known emails take the same time.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$WpX1s8zrZ5n9dUbx0l1uJJ6Yw3PzJ3d1KbBO3m3gR3Q";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_locked_hashes_never_do() {
        let hash = hash_password(SecretString::from("correct horse battery")).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(SecretString::from("correct horse battery"), hash.clone()).await);
        assert!(!verify_password(SecretString::from("wrong"), hash).await);
        assert!(!verify_password(SecretString::from(""), "!".to_owned()).await);
        assert!(!verify_password(SecretString::from("x"), DUMMY_HASH.to_owned()).await);
        // It must parse, with the parameters real hashes get, or unknown emails would skip the work.
        let dummy = PasswordHash::new(DUMMY_HASH).expect("the dummy hash parses");
        let real = PasswordHash::new(&hash_password(SecretString::from("p")).await.expect("hash"))
            .expect("parses")
            .params
            .to_string();
        assert_eq!(dummy.params.to_string(), real);
    }
}
