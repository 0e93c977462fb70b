//! Local stand-ins for the outside services, answering as their documented APIs do: Apify v2
//! (runs, run polling, paged dataset items, error bodies) and Instagram's picture CDN.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const APIFY_TOKEN: &str = "apify_api_TESTTOKEN";

/// A run object with the fields Apify's clients require.
pub fn run_object(run_id: &str, status: &str) -> Value {
    json!({"data": {
        "id": run_id, "actId": "shu8hvrXbJbY3Eb9W", "userId": "U1",
        "startedAt": "2026-11-20T05:14:16.984Z", "finishedAt": "2026-11-20T05:14:38.668Z",
        "status": status, "statusMessage": format!("run {status}"),
        "meta": {"origin": "API"}, "stats": {"runTimeSecs": 21.5, "computeUnits": 0.006},
        "options": {"build": "latest", "timeoutSecs": 604_800, "memoryMbytes": 1024, "diskMbytes": 2048},
        "buildId": "pWD7zeObnJmJH4gaG", "exitCode": 0,
        "defaultKeyValueStoreId": format!("KVS-{run_id}"), "defaultDatasetId": format!("DS-{run_id}"),
        "defaultRequestQueueId": format!("RQ-{run_id}"), "usageTotalUsd": 0.0123
    }})
}

pub fn apify_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {"type": kind, "message": message}}))
}

/// Serves dataset items page by page from `offset`/`limit`, with the pagination headers.
struct Pages(Vec<Value>);

impl Respond for Pages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let param = |name: &str| {
            request.url.query_pairs().find(|(k, _)| k == name).and_then(|(_, v)| v.parse::<usize>().ok())
        };
        let offset = param("offset").unwrap_or(0).min(self.0.len());
        let limit = param("limit").unwrap_or(999_999_999_999);
        let page: Vec<Value> = self.0.iter().skip(offset).take(limit).cloned().collect();
        ResponseTemplate::new(200)
            .insert_header("x-apify-pagination-total", self.0.len().to_string())
            .insert_header("x-apify-pagination-offset", offset.to_string())
            .insert_header("x-apify-pagination-count", page.len().to_string())
            .insert_header("x-apify-pagination-limit", limit.to_string())
            .insert_header("x-apify-pagination-desc", "false")
            .set_body_json(Value::Array(page))
    }
}

/// Counts how often a mock answered.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Counting(Counter, ResponseTemplate);

impl Respond for Counting {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.0.fetch_add(1, Ordering::SeqCst);
        self.1.clone()
    }
}

pub struct ApifyStub {
    pub server: MockServer,
}

impl ApifyStub {
    pub async fn start() -> Self {
        let stub = Self { server: MockServer::start().await };
        stub.refuse_others().await;
        stub
    }

    /// Forgets every actor, run and recorded request (same address).
    pub async fn reset(&self) {
        self.server.reset().await;
        self.refuse_others().await;
    }

    /// Anything without the right token, or not mounted, is refused, as Apify does.
    async fn refuse_others(&self) {
        Mock::given(path_regex("^/v2/.*"))
            .respond_with(apify_error(
                401,
                "user-or-token-not-found",
                "User was not found or authentication token is not valid",
            ))
            .with_priority(u8::MAX)
            .mount(&self.server)
            .await;
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// `actor` (as `user/name`) starts run `run_id`, which succeeds with `items` in its dataset.
    /// Returns a counter of run starts.
    pub async fn actor(&self, actor: &str, run_id: &str, items: Vec<Value>) -> Counter {
        let starts = Counter::default();
        let actor_path = actor.replace('/', "~");
        Mock::given(method("POST"))
            .and(path(format!("/v2/acts/{actor_path}/runs")))
            .and(header("authorization", format!("Bearer {APIFY_TOKEN}").as_str()))
            .respond_with(Counting(
                starts.clone(),
                ResponseTemplate::new(201).set_body_json(run_object(run_id, "RUNNING")),
            ))
            .mount(&self.server)
            .await;
        self.run_ends(run_id, "SUCCEEDED").await;
        self.dataset(&format!("DS-{run_id}"), items).await;
        starts
    }

    pub async fn run_ends(&self, run_id: &str, status: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/v2/actor-runs/{run_id}")))
            .and(header("authorization", format!("Bearer {APIFY_TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(run_object(run_id, status)))
            .mount(&self.server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/v2/actor-runs/{run_id}/abort")))
            .respond_with(ResponseTemplate::new(200).set_body_json(run_object(run_id, "ABORTED")))
            .mount(&self.server)
            .await;
    }

    pub async fn dataset(&self, dataset_id: &str, items: Vec<Value>) {
        Mock::given(method("GET"))
            .and(path(format!("/v2/datasets/{dataset_id}/items")))
            .and(header("authorization", format!("Bearer {APIFY_TOKEN}").as_str()))
            .respond_with(Pages(items))
            .mount(&self.server)
            .await;
    }

    /// The next `times` starts of `actor` get `response` instead (a fault before success).
    pub async fn fail_starts(&self, actor: &str, times: u64, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(format!("/v2/acts/{}/runs", actor.replace('/', "~"))))
            .respond_with(response)
            .up_to_n_times(times)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }
}

/// A small valid JPEG of a flat colour.
pub fn jpeg(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb(rgb));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg).expect("encode");
    out
}

/// A picture URL on `server` shaped like Instagram's, with an `oe` expiry in the future.
/// Configuration whose picture fetcher may reach the stub CDN on 127.0.0.1 over http, plus
/// `extra` overrides.
pub fn local_picture_config(extra: &[(&str, &str)]) -> audiencelens::config::Config {
    let mut vars = vec![
        ("AUDIENCELENS__PICTURES__ALLOWED_HOSTS".to_owned(), "127.0.0.1".to_owned()),
        ("AUDIENCELENS__PICTURES__ALLOW_LOCAL".to_owned(), "true".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    audiencelens::config::Config::load_from(None, &vars).expect("config")
}

pub fn picture_url(server: &MockServer, name: &str) -> String {
    let oe = format!("{:X}", chrono::Utc::now().timestamp() + 4 * 86_400);
    format!(
        "{}/v/t51.2885-19/{name}.jpg?stp=dst-jpg_s150x150_tt6&_nc_cat=1&oh=00_AQ&oe={oe}&_nc_sid=10d13b",
        server.uri()
    )
}

/// Serves `body` (with `content_type`) for the picture `name`.
pub async fn serve_picture(server: &MockServer, name: &str, status: u16, content_type: &str, body: Vec<u8>) {
    Mock::given(method("GET"))
        .and(path(format!("/v/t51.2885-19/{name}.jpg")))
        .respond_with(
            ResponseTemplate::new(status).insert_header("content-type", content_type).set_body_bytes(body),
        )
        .mount(server)
        .await;
}
