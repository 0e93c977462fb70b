//! What a profile-picture URL tells before downloading it: when its signature expires, which
//! file it is, and whether it is Instagram's default avatar.

use chrono::{DateTime, TimeZone, Utc};

/// The `oe` parameter: the link's expiry as hexadecimal Unix seconds.
#[must_use]
pub fn expires_at(url: &str) -> Option<DateTime<Utc>> {
    let query = url.split_once('?')?.1;
    let oe = query.split('&').find_map(|pair| pair.strip_prefix("oe="))?;
    let secs = i64::from_str_radix(oe.split('#').next()?, 16).ok()?;
    Utc.timestamp_opt(secs, 0).single()
}

/// The URL without its query: the same file keeps this path while its signature changes.
#[must_use]
pub fn file_path(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Instagram's grey default avatar, recognised from its URL: the cache key
/// `YW5vbnltb3VzX3Byb2ZpbGVfcGlj` (base64 of `anonymous_profile_pic`) or its well-known file.
#[must_use]
pub fn is_default_avatar(url: &str) -> bool {
    url.contains("YW5vbnltb3VzX3Byb2ZpbGVfcGlj")
        || url.contains("anonymous_profile_pic")
        || url.contains("44884218_345707102882519_2446069589734326272_n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oe_is_hex_unix_time() {
        let url = "https://scontent.cdninstagram.com/v/t51.82787-19/804_n.jpg?stp=dst-jpg_s150x150_tt6&oh=00_AQ&oe=6AAB16FB&_nc_sid=10d13b";
        assert_eq!(expires_at(url).map(|t| t.to_rfc3339()), Some("2026-09-16T22:23:55+00:00".to_owned()));
        assert_eq!(expires_at("https://x/a.jpg"), None);
        assert_eq!(expires_at("https://x/a.jpg?oe=zz"), None);
        assert_eq!(file_path(url), "https://scontent.cdninstagram.com/v/t51.82787-19/804_n.jpg");
    }

    #[test]
    fn default_avatar_marker() {
        assert!(is_default_avatar(
            "https://scontent.cdninstagram.com/v/t51.2885-19/44884218_345707102882519_2446069589734326272_n.jpg?_nc_ht=x&ig_cache_key=YW5vbnltb3VzX3Byb2ZpbGVfcGlj.2-ccb7-5"
        ));
        assert!(!is_default_avatar("https://scontent.cdninstagram.com/v/t51.2885-19/1_n.jpg"));
    }
}
