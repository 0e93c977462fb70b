//! The dashboard: the files of `web/`, embedded in the binary at build time (one file to
//! deploy; no network, no CDN), served at `/` with an `ETag` and `Cache-Control: no-cache` (a
//! browser asks again and gets 304 until the binary changes). The dashboard talks to the
//! server only through `/api/v1`, like any other client.
//!
//! Owns: the embedded front end and its security headers. Uses: nothing else.

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of `web/` that is served (a test keeps this list and the folder in step).
pub static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/format.js", JS),
    asset!("js/charts.js", JS),
    asset!("js/report.js", JS),
    asset!("js/pages/login.js", JS),
    asset!("js/pages/accounts.js", JS),
    asset!("js/pages/account.js", JS),
    asset!("js/pages/upload.js", JS),
    asset!("js/pages/history.js", JS),
    asset!("js/pages/compare.js", JS),
    asset!("js/pages/settings.js", JS),
    asset!("js/pages/admin.js", JS),
    asset!("js/pages/methodology.js", JS),
    asset!("js/pages/shared.js", JS),
];

/// Files `web/` holds that are not served (documentation of the folder).
pub const NOT_SERVED: &[&str] = &["VENDOR.md"];

/// The policy every response carries: scripts, styles and connections from this origin only,
/// no inline script or style, no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

static ETAGS: LazyLock<HashMap<&'static str, String>> = LazyLock::new(|| {
    ASSETS.iter().map(|a| (a.path, format!("\"{}\"", hex::encode(&Sha256::digest(a.body)[..12])))).collect()
});

/// The embedded file at `path` (`""` is the dashboard's page), if any.
#[must_use]
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// Serves an embedded file, or 304 when the browser has this version.
#[must_use]
pub fn respond(req: &HttpRequest, asset: &'static Asset) -> HttpResponse {
    let etag = ETAGS.get(asset.path).cloned().unwrap_or_default();
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response.insert_header((header::ETAG, etag)).insert_header((header::CACHE_CONTROL, "no-cache"));
    if fresh { response.finish() } else { response.content_type(asset.content_type).body(asset.body) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_web_is_served_and_every_served_file_exists() {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("web/").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else if let Ok(rel) = path.strip_prefix(root) {
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut files = Vec::new();
        walk(&root, &root, &mut files);
        for file in &files {
            assert!(
                find(file).is_some() || NOT_SERVED.contains(&file.as_str()),
                "web/{file} is not in ASSETS (src/http/web.rs)"
            );
        }
        assert_eq!(ASSETS.len() + NOT_SERVED.len(), files.len(), "{files:?}");
    }

    #[test]
    fn the_page_loads_nothing_inline() {
        let page = std::str::from_utf8(find("").expect("index").body).expect("utf-8");
        assert!(
            !page.contains("<script>") && !page.contains(" style=") && !page.contains("<style"),
            "{page}"
        );
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(asset.body).expect("utf-8");
            for risky in
                ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"]
            {
                assert!(
                    !text.contains(risky),
                    "{} uses {risky}: hostile text must render as text",
                    asset.path
                );
            }
        }
    }
}
