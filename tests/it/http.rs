//! The HTTP skeleton served by the same function production uses.

use std::net::SocketAddr;

use audiencelens::app::AppState;
use audiencelens::db::admin;
use audiencelens::jobs::probe::QueueProbe;
use audiencelens::queue::{self, NewJob};

use crate::helpers::{TestDb, run_cli};

struct TestApp {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    client: reqwest::Client,
}

impl TestApp {
    fn start(db: &TestDb) -> Self {
        Self::start_with(db, &[])
    }

    fn start_with(db: &TestDb, vars: &[(&str, &str)]) -> Self {
        let mut vars = vars.to_vec();
        vars.push(("AUDIENCELENS__SERVER__PORT", "0"));
        let state = AppState::build(db.config(&vars)).expect("state");
        let (server, addrs) = audiencelens::http::serve(state).expect("bind");
        let handle = server.handle();
        tokio::spawn(server);
        Self { addr: addrs[0], handle, client: audiencelens::clients::http_client().build().expect("client") }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self.client.get(format!("http://{}{path}", self.addr)).send().await.expect("request");
        (r.status().as_u16(), r.text().await.expect("body"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let db = TestDb::new().await;
    let app = TestApp::start(&db);
    assert_eq!(app.get("/healthz").await, (200, r#"{"status":"ok"}"#.to_owned()));
    assert_eq!(app.get("/readyz").await, (200, r#"{"status":"ready"}"#.to_owned()));

    let mut conn = db.conn().await;
    let job = NewJob::new(&QueueProbe { work_ms: 0 }, 5).expect("job");
    queue::enqueue(&mut conn, &[job.clone(), job]).await.expect("enqueue");
    let (status, body) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"audiencelens_queue_jobs{queue="maintenance",status="queued"} 2"#), "{body}");
    assert!(
        body.contains(r#"audiencelens_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{body}"
    );
}

#[tokio::test]
async fn readiness_and_metrics_have_an_ip_quota_of_their_own() {
    let db = TestDb::new().await;
    let app = TestApp::start_with(&db, &[("AUDIENCELENS__SERVER__RATE_LIMIT_PER_IP_PER_MINUTE", "3")]);
    // API traffic from the same address (a proxy's, say) uses up the API's bucket only.
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/openapi.json").await.0, 200);
    }
    assert_eq!(app.get("/api/v1/openapi.json").await.0, 429);
    assert_eq!(app.get("/readyz").await.0, 200);
    assert_eq!(app.get("/metrics").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
    let (status, body) = app.get("/metrics").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(app.get("/readyz").await.0, 429);
    assert_eq!(app.get("/healthz").await.0, 200, "liveness touches nothing and is never limited");
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let db = TestDb::new().await;
    let app = TestApp::start(&db);
    let (status, body) = app.get("/nope?x=1").await;
    assert_eq!(status, 404);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["error"], "not_found");
}

#[tokio::test]
async fn readiness_fails_until_migrations_are_applied() {
    let db = TestDb::new().await;
    // A database nobody migrated, on the same server.
    let bare = format!("{}_bare", db.name);
    admin::create_database(&crate::helpers::server_url(), &bare, None).await.expect("create");
    let url = admin::url_for_database(&crate::helpers::server_url(), &bare);
    let config = {
        use secrecy::ExposeSecret;
        audiencelens::config::Config::load_from(
            None,
            &[
                ("AUDIENCELENS__DATABASE__URL".to_owned(), url.expose_secret().to_owned()),
                ("AUDIENCELENS__SERVER__PORT".to_owned(), "0".to_owned()),
            ],
        )
        .expect("config")
    };
    let (server, addrs) = audiencelens::http::serve(AppState::build(config).expect("state")).expect("bind");
    let handle = server.handle();
    tokio::spawn(server);
    let client = audiencelens::clients::http_client().build().expect("client");
    let r = client.get(format!("http://{}/readyz", addrs[0])).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 503);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["error"], "unavailable");
    handle.stop(false).await;
    admin::drop_database(&crate::helpers::server_url(), &bare).await.expect("drop");
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_naming_it() {
    let db = TestDb::new().await;
    let (code, _, err) = run_cli(&db, &["migrate"], &[("AUDIENCELENS__QUEUE__LEASE_SECS", "soon")]).await;
    assert_eq!(code, 2);
    assert!(err.contains("queue.lease_secs"), "{err}");
    let (code, _, err) = run_cli(&db, &["migrate"], &[("AUDIENCELENS__QUEUE__NO_SUCH_KEY", "1")]).await;
    assert_eq!(code, 2);
    assert!(err.contains("no_such_key"), "{err}");
    let (code, out, _) = run_cli(&db, &["migrate"], &[]).await;
    assert_eq!(code, 0);
    assert!(out.contains("up to date"), "{out}");
}
