//! Access tokens: HS256 JWTs carrying the user id and their login's session id (`sid`, checked
//! against `sessions` on every request, so a logout ends it at once), with `iat` and `exp`
//! checked, and when the user last gave their password (`auth_time`): refreshing never carries
//! a session past `auth.max_session_hours` from then.

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
    /// When the password was given (Unix seconds); absent in older tokens, read as `iat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The login's session (`sessions.id`); a token without one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<uuid::Uuid>,
}

/// A verified token: who, since when they are logged in, and in which session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub user_id: i64,
    pub auth_time: i64,
    pub sid: uuid::Uuid,
}

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: i64,
    max_session_secs: i64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("ttl_secs", &self.ttl_secs)
            .field("max_session_secs", &self.max_session_secs)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    #[must_use]
    pub fn new(secret: &SecretString, ttl_secs: i64, max_session_secs: i64) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            ttl_secs,
            max_session_secs,
        }
    }

    /// A token for `user_id`, who has just given their password and opened session `sid`;
    /// returns it with its expiry.
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn issue(&self, user_id: i64, sid: uuid::Uuid) -> jsonwebtoken::errors::Result<(String, i64)> {
        let now = Utc::now().timestamp();
        self.sign(Session { user_id, auth_time: now, sid }, now)
    }

    /// The longest a login lasts.
    #[must_use]
    pub fn max_session(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::try_from(self.max_session_secs).unwrap_or(0))
    }

    /// A fresh token in the same session, or `None` once the session has reached
    /// `max_session_secs` (the user must log in again).
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn refresh(&self, session: Session) -> jsonwebtoken::errors::Result<Option<(String, i64)>> {
        let now = Utc::now().timestamp();
        if now >= session.auth_time.saturating_add(self.max_session_secs) {
            return Ok(None);
        }
        self.sign(session, now).map(Some)
    }

    fn sign(&self, session: Session, now: i64) -> jsonwebtoken::errors::Result<(String, i64)> {
        let exp = (now + self.ttl_secs).min(session.auth_time.saturating_add(self.max_session_secs));
        let claims = Claims {
            sub: session.user_id.to_string(),
            iat: now,
            exp,
            auth_time: Some(session.auth_time),
            sid: Some(session.sid),
        };
        Ok((jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?, exp))
    }

    /// The session in a valid, unexpired token signed with our secret.
    #[must_use]
    pub fn verify(&self, token: &str) -> Option<Session> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok()?;
        // A token issued in the future is forged or from a badly wrong clock.
        let now = Utc::now().timestamp();
        if data.claims.iat > now + 60 {
            return None;
        }
        let auth_time = data.claims.auth_time.unwrap_or(data.claims.iat);
        if auth_time > data.claims.iat || now >= auth_time.saturating_add(self.max_session_secs) {
            return None;
        }
        Some(Session { user_id: data.claims.sub.parse().ok()?, auth_time, sid: data.claims.sid? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_tampering_fails() {
        let keys = TokenKeys::new(&SecretString::from("0123456789abcdef0123456789abcdef"), 3600, 86_400);
        let sid = uuid::Uuid::new_v4();
        let (token, exp) = keys.issue(42, sid).expect("token");
        assert!(exp > Utc::now().timestamp());
        assert_eq!(keys.verify(&token).map(|s| s.user_id), Some(42));
        let other = TokenKeys::new(&SecretString::from("another secret of enough length!!"), 3600, 86_400);
        assert_eq!(other.verify(&token), None);
        let expired = TokenKeys::new(&SecretString::from("0123456789abcdef0123456789abcdef"), -120, 86_400);
        let (old, _) = expired.issue(42, sid).expect("token");
        assert_eq!(keys.verify(&old), None);
        assert_eq!(keys.verify("not.a.token"), None);
    }

    #[test]
    fn refreshing_keeps_the_login_time_and_ends_with_the_session() {
        let keys = TokenKeys::new(&SecretString::from("0123456789abcdef0123456789abcdef"), 3600, 86_400);
        let now = Utc::now().timestamp();
        // Logged in 23.5 hours ago: a refresh is valid only for the half hour left.
        let sid = uuid::Uuid::new_v4();
        let late = Session { user_id: 7, auth_time: now - 23 * 3600 - 1800, sid };
        let (token, exp) = keys.refresh(late).expect("sign").expect("still in the session");
        assert!((now + 1795..=now + 1805).contains(&exp), "{exp} vs {now}");
        assert_eq!(keys.verify(&token), Some(late), "the login time is carried over");
        // A day after login, no more refreshes, and tokens of that session are refused.
        let over = Session { user_id: 7, auth_time: now - 86_400, sid };
        assert_eq!(keys.refresh(over).expect("sign"), None);
        let long = TokenKeys::new(&SecretString::from("0123456789abcdef0123456789abcdef"), 3600, 10 * 86_400);
        let (token, _) = long.refresh(over).expect("sign").expect("token");
        assert_eq!(keys.verify(&token), None, "a shorter maximum applies to tokens already issued");
    }
}
