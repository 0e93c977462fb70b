//! Tolerant field access on JSON items: a path is `"a/b"` for nested objects; numbers may
//! arrive as strings (CSV exports) and ids as numbers; a value of the wrong shape is absent.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

fn at<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('/');
    let mut value = map.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    (!value.is_null()).then_some(value)
}

/// The first of `paths` holding a string.
pub fn str_at<'a>(map: &'a Map<String, Value>, paths: &[&str]) -> Option<&'a str> {
    paths.iter().find_map(|p| match at(map, p)? {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    })
}

/// An identifier: a string, or an integer given as a JSON number.
pub fn id_at(map: &Map<String, Value>, paths: &[&str]) -> Option<String> {
    paths.iter().find_map(|p| match at(map, p)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    })
}

pub fn i64_at(map: &Map<String, Value>, paths: &[&str]) -> Option<i64> {
    paths.iter().find_map(|p| match at(map, p)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

pub fn bool_at(map: &Map<String, Value>, paths: &[&str]) -> Option<bool> {
    paths.iter().find_map(|p| match at(map, p)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

/// An ISO 8601 timestamp, or Unix seconds (number or numeric string).
pub fn time_at(map: &Map<String, Value>, paths: &[&str]) -> Option<DateTime<Utc>> {
    paths.iter().find_map(|p| {
        let v = at(map, p)?;
        let secs = match v {
            Value::String(s) => {
                if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
                    return Some(t.with_timezone(&Utc));
                }
                s.trim().parse::<i64>().ok()?
            }
            Value::Number(n) => n.as_i64()?,
            _ => return None,
        };
        // Plausible Unix seconds only (Instagram launched in 2010).
        (1_262_304_000..4_102_444_800).contains(&secs).then(|| Utc.timestamp_opt(secs, 0).single()).flatten()
    })
}

const SHORTCODE_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A post's media id from its shortcode (the shortcode is the id in base 64; longer codes of
/// private posts carry the id in their first 11 characters).
#[must_use]
pub fn shortcode_to_id(code: &str) -> Option<String> {
    let code = code.get(..code.len().min(11))?;
    if code.is_empty() {
        return None;
    }
    let mut n: u128 = 0;
    for b in code.bytes() {
        let digit = SHORTCODE_ALPHABET.iter().position(|c| *c == b)?;
        n = n * 64 + digit as u128;
    }
    (n > 0 && n <= i64::MAX as u128).then(|| n.to_string())
}

/// The media id of a post, reel or comment URL (`/p/CODE/`, `/reel/CODE/`, `/p/CODE/c/ID`).
#[must_use]
pub fn post_id_from_url(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let mut segments = path
        .split('/')
        .filter(|s| !s.is_empty())
        .skip_while(|s| !matches!(*s, "p" | "reel" | "reels" | "tv"));
    segments.next()?;
    shortcode_to_id(segments.next()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shortcodes_decode_to_media_ids() {
        assert_eq!(shortcode_to_id("DMsI5LsyOvL").as_deref(), Some("3687361308854381515"));
        assert_eq!(
            post_id_from_url("https://www.instagram.com/p/DMsI5LsyOvL/").as_deref(),
            Some("3687361308854381515")
        );
        assert_eq!(
            post_id_from_url("https://www.instagram.com/p/DMsI5LsyOvL/c/18093536360613690").as_deref(),
            Some("3687361308854381515")
        );
        assert_eq!(
            post_id_from_url("https://www.instagram.com/reel/DMsI5LsyOvL/?hl=en").as_deref(),
            Some("3687361308854381515")
        );
        assert_eq!(post_id_from_url("https://www.instagram.com/humansofny/"), None);
        assert_eq!(shortcode_to_id("not*valid"), None);
    }

    #[test]
    fn fields_tolerate_types() {
        let m = json!({"a": {"b": "x"}, "n": "42", "f": 3.0, "t": "true", "ts": "2024-11-20T22:39:43.000Z", "u": 1_732_142_383, "id": 123})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(str_at(&m, &["missing", "a/b"]), Some("x"));
        assert_eq!(i64_at(&m, &["n"]), Some(42));
        assert_eq!(i64_at(&m, &["f"]), Some(3));
        assert_eq!(bool_at(&m, &["t"]), Some(true));
        assert_eq!(time_at(&m, &["ts"]).map(|t| t.timestamp()), Some(1_732_142_383));
        assert_eq!(time_at(&m, &["u"]).map(|t| t.timestamp()), Some(1_732_142_383));
        assert_eq!(id_at(&m, &["id"]).as_deref(), Some("123"));
        assert_eq!(str_at(&m, &["id"]), None);
    }
}
