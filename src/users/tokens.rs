//! Access tokens: HS256 JWTs carrying the user id, with `iat` and `exp` checked.

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: i64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("ttl_secs", &self.ttl_secs).finish_non_exhaustive()
    }
}

impl TokenKeys {
    #[must_use]
    pub fn new(secret: &SecretString, ttl_secs: i64) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            ttl_secs,
        }
    }

    /// A token for `user_id`, valid for the configured time; returns it with its expiry.
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn issue(&self, user_id: i64) -> jsonwebtoken::errors::Result<(String, i64)> {
        let now = Utc::now().timestamp();
        let claims = Claims { sub: user_id.to_string(), iat: now, exp: now + self.ttl_secs };
        Ok((jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?, claims.exp))
    }

    /// The user id in a valid, unexpired token signed with our secret.
    #[must_use]
    pub fn verify(&self, token: &str) -> Option<i64> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok()?;
        // A token issued in the future is forged or from a badly wrong clock.
        if data.claims.iat > Utc::now().timestamp() + 60 {
            return None;
        }
        data.claims.sub.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_tampering_fails() {
        let keys = TokenKeys::new(&SecretString::from("0123456789abcdef0123456789abcdef"), 3600);
        let (token, exp) = keys.issue(42).expect("token");
        assert!(exp > Utc::now().timestamp());
        assert_eq!(keys.verify(&token), Some(42));
        let other = TokenKeys::new(&SecretString::from("another secret of enough length!!"), 3600);
        assert_eq!(other.verify(&token), None);
        let expired = TokenKeys::new(&SecretString::from("0123456789abcdef0123456789abcdef"), -120);
        let (old, _) = expired.issue(42).expect("token");
        assert_eq!(keys.verify(&old), None);
        assert_eq!(keys.verify("not.a.token"), None);
    }
}
