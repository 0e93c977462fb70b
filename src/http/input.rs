//! Control characters are refused at the edge. Postgres cannot store U+0000 in text, and no
//! field of this API holds a control character other than tab, line feed and carriage return,
//! so a JSON body holding one (in a value or a key, at any depth) or a query string holding
//! `%00` is answered 400 with the field's JSON path, before any handler runs.
//!
//! Owns: the control-character rule for request bodies and query strings. Uses: `error`.

use std::fmt::Write as _;

use actix_web::HttpMessage as _;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::BytesMut;
use futures_util::StreamExt as _;

use super::error::ApiError;

/// Whether `c` may appear in text this API accepts.
fn allowed(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r') || u32::from(c) > 0x9f
}

/// The path of the first string (or key) in `value` holding a control character, and it.
#[must_use]
pub fn first_control(value: &serde_json::Value) -> Option<(String, char)> {
    fn walk(value: &serde_json::Value, path: &mut String) -> Option<(String, char)> {
        match value {
            serde_json::Value::String(s) => s.chars().find(|c| !allowed(*c)).map(|c| (path.clone(), c)),
            serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
                let len = path.len();
                let _ = write!(path, "[{i}]");
                let found = walk(v, path);
                path.truncate(len);
                found
            }),
            serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.chars().filter(|c| allowed(*c)).collect::<String>());
                let found =
                    k.chars().find(|c| !allowed(*c)).map(|c| (path.clone(), c)).or_else(|| walk(v, path));
                path.truncate(len);
                found
            }),
            _ => None,
        }
    }
    walk(value, &mut String::new())
}

fn refusal(field: &str, c: char) -> ApiError {
    let field = if field.is_empty() { "the body" } else { field };
    ApiError::BadRequest(format!(
        "{field} holds a control character (U+{:04X}); text may hold tab and line breaks only",
        u32::from(c)
    ))
}

/// The middleware: checks the query string and, for JSON bodies, the parsed body (then hands
/// the same bytes on). A body that is not valid JSON is left for the handler to refuse.
pub async fn refuse_control_characters(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let query = req.query_string();
    if let Some(i) = query.to_ascii_lowercase().find("%00") {
        let name = query[..i].rsplit('&').next().unwrap_or_default().split('=').next().unwrap_or_default();
        let field = format!("query parameter {}", if name.is_empty() { "?" } else { name });
        return Ok(req.error_response(refusal(&field, '\0')));
    }
    let json =
        req.headers().get(actix_web::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(
            |v| {
                let v = v.to_ascii_lowercase();
                v.starts_with("application/json") || v.contains("+json")
            },
        );
    if json {
        let max = req
            .app_data::<actix_web::web::Data<crate::app::AppState>>()
            .map_or(usize::MAX, |s| s.config.settings.server.max_body_bytes);
        let mut payload = req.take_payload();
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk?;
            if body.len() + chunk.len() > max {
                let refused = ApiError::PayloadTooLarge(format!("the body is larger than {max} bytes"));
                return Ok(req.error_response(refused));
            }
            body.extend_from_slice(&chunk);
        }
        let body = body.freeze();
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body)
            && let Some((field, c)) = first_control(&value)
        {
            return Ok(req.error_response(refusal(&field, c)));
        }
        req.set_payload(Payload::from(body));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_control_character_with_its_path() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"email":"a@b.c","items":[{"name":"ok\n"},{"name":"x\u0000"}]}"#)
                .unwrap();
        assert_eq!(first_control(&v), Some(("items[1].name".to_owned(), '\0')));
        let key: serde_json::Value = serde_json::from_str(r#"{"a\u0001b":1}"#).unwrap();
        assert_eq!(first_control(&key), Some(("ab".to_owned(), '\u{1}')));
        let fine: serde_json::Value =
            serde_json::from_str(r#"{"text":"tab\tline\r\nemoji 😀 rtl \u202e zw \u200b","n":[1,2]}"#)
                .unwrap();
        assert_eq!(first_control(&fine), None);
        let top: serde_json::Value = serde_json::from_str(r#""\u0007""#).unwrap();
        assert_eq!(first_control(&top), Some((String::new(), '\u{7}')));
    }
}
