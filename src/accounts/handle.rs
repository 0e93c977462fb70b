//! Instagram handles, parsed once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A valid Instagram username, lowercase: 1 to 30 of `a-z 0-9 . _`, not starting or ending
/// with a period and without two periods in a row (Instagram's own rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstagramHandle(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an Instagram handle: {problem}")]
pub struct HandleError {
    pub input: String,
    pub problem: &'static str,
}

impl InstagramHandle {
    /// Accepts `name`, `@name` or a profile URL (`https://www.instagram.com/name/`).
    ///
    /// # Errors
    /// When what remains breaks Instagram's username rules.
    pub fn parse(input: &str) -> Result<Self, HandleError> {
        let err = |problem| HandleError { input: input.chars().take(100).collect(), problem };
        let mut s = input.trim();
        for prefix in ["https://", "http://"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                s = rest;
            }
        }
        for host in ["www.instagram.com/", "instagram.com/", "m.instagram.com/"] {
            if let Some(rest) = s.strip_prefix(host) {
                s = rest.split(['/', '?', '#']).next().unwrap_or_default();
            }
        }
        let s = s.strip_prefix('@').unwrap_or(s).to_ascii_lowercase();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.len() > 30 {
            return Err(err("it is longer than 30 characters"));
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_') {
            return Err(err("only letters, digits, periods and underscores are allowed"));
        }
        if s.starts_with('.') || s.ends_with('.') {
            return Err(err("it cannot start or end with a period"));
        }
        if s.contains("..") {
            return Err(err("it cannot contain two periods in a row"));
        }
        Ok(Self(s))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The profile URL the scrapers take.
    #[must_use]
    pub fn profile_url(&self) -> String {
        format!("https://www.instagram.com/{}/", self.0)
    }
}

impl fmt::Display for InstagramHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for InstagramHandle {
    type Error = HandleError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<InstagramHandle> for String {
    fn from(h: InstagramHandle) -> Self {
        h.0
    }
}

impl std::str::FromStr for InstagramHandle {
    type Err = HandleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_instagram_forms() {
        for input in [
            "humansofny",
            "@HumansOfNY",
            "https://www.instagram.com/humansofny/",
            "instagram.com/humansofny?hl=en",
        ] {
            assert_eq!(InstagramHandle::parse(input).map(|h| h.0), Ok("humansofny".to_owned()), "{input}");
        }
        assert!(InstagramHandle::parse("a.b_c.1").is_ok());
        assert!(InstagramHandle::parse(&"a".repeat(30)).is_ok());
    }

    #[test]
    fn rejects_what_instagram_rejects() {
        for input in ["", "@", ".abc", "abc.", "a..b", "has space", "emoji😀", "dash-name", &"a".repeat(31)]
        {
            assert!(InstagramHandle::parse(input).is_err(), "{input}");
        }
    }
}
