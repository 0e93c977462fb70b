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

/// The URL without scheme, host and query: the same file keeps this path while its signature
/// changes and whichever CDN host (`scontent-<pop>.cdninstagram.com`,
/// `instagram.f<pop>.fna.fbcdn.net`) a scrape happened to be given.
#[must_use]
pub fn file_path(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => path,
    }
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
        assert_eq!(file_path(url), "/v/t51.82787-19/804_n.jpg");
    }

    #[test]
    fn one_file_has_one_path_on_every_cdn_host() {
        let a = "https://scontent-dus1-1.cdninstagram.com/v/t51.2885-19/12_n.jpg?stp=dst-jpg_s150x150&oh=00_A&oe=6AAB16FB";
        let b = "https://instagram.fcgk9-1.fna.fbcdn.net/v/t51.2885-19/12_n.jpg?oh=00_B&oe=6AAB2000#x";
        assert_eq!(file_path(a), "/v/t51.2885-19/12_n.jpg");
        assert_eq!(file_path(a), file_path(b));
        assert_ne!(
            file_path(a),
            file_path("https://scontent-dus1-1.cdninstagram.com/v/t51.2885-19/13_n.jpg")
        );
        assert_eq!(file_path("http://127.0.0.1:8080"), "/");
    }

    #[test]
    fn default_avatar_marker() {
        assert!(is_default_avatar(
            "https://scontent.cdninstagram.com/v/t51.2885-19/44884218_345707102882519_2446069589734326272_n.jpg?_nc_ht=x&ig_cache_key=YW5vbnltb3VzX3Byb2ZpbGVfcGlj.2-ccb7-5"
        ));
        assert!(!is_default_avatar("https://scontent.cdninstagram.com/v/t51.2885-19/1_n.jpg"));
    }
}
