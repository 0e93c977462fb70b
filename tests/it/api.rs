//! The JSON API served by the same function production uses: auth, accounts, analyses,
//! isolation between users on every route, rate limits, and arbitrary JSON bodies.

use std::net::SocketAddr;

use audiencelens::app::AppState;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::TestDb;

pub struct Api {
    pub addr: SocketAddr,
    #[allow(dead_code)]
    pub state: AppState,
    handle: actix_web::dev::ServerHandle,
    client: reqwest::Client,
}

impl Drop for Api {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl Api {
    pub fn start(db: &TestDb, vars: &[(&str, &str)]) -> Self {
        let mut all = vec![("AUDIENCELENS__SERVER__PORT", "0")];
        all.extend_from_slice(vars);
        let state = AppState::build(db.config(&all)).expect("state");
        let (server, addrs) = audiencelens::http::serve(state.clone()).expect("bind");
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            addr: addrs[0],
            state,
            handle,
            client: audiencelens::clients::http_client().build().expect("client"),
        }
    }

    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
        let url = format!("http://{}{path}", self.addr);
        let mut req = self.client.request(method.parse().expect("method"), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = r.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply { status, body, retry_after }
    }

    /// Registers and logs in; returns the access token.
    pub async fn user(&self, email: &str) -> String {
        let creds = json!({"email": email, "password": "a long enough password"});
        let r = self.call("POST", "/api/v1/auth/register", None, Some(&creds)).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        let r = self.call("POST", "/api/v1/auth/login", None, Some(&creds)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["access_token"].as_str().expect("token").to_owned()
    }

    /// A new user `email` with account `handle`: the user's token and the account's id.
    pub async fn user_with_account(&self, email: &str, handle: &str) -> (String, i64) {
        let token = self.user(email).await;
        let id = self.account(Some(&token), handle).await;
        (token, id)
    }

    /// Adds the account `handle` for the user of `token`; returns its id.
    pub async fn account(&self, token: Option<&str>, handle: &str) -> i64 {
        let r = self.call("POST", "/api/v1/accounts", token, Some(&json!({"handle": handle}))).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_i64().expect("id")
    }
}

/// Control characters never reach the database: NUL (or any C0 control but tab and line
/// breaks) in a JSON string or key, at any depth, or `%00` in a query is a 400 naming the field.
#[tokio::test]
async fn control_characters_are_refused_with_the_field_named() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[]);
    let nul = json!({"email": "nul\u{0}@example.com", "password": "a long enough password"});
    for path in ["/api/v1/auth/register", "/api/v1/auth/login"] {
        let r = api.call("POST", path, None, Some(&nul)).await;
        assert_eq!((r.status, r.body["error"].as_str()), (400, Some("bad_request")), "{path}: {:?}", r.body);
        assert!(
            r.body["message"].as_str().is_some_and(|m| m.contains("email") && m.contains("U+0000")),
            "{:?}",
            r.body
        );
    }
    let token = api.user("clean@example.com").await;
    let t = Some(token.as_str());
    let key = api.call("POST", "/api/v1/api-keys", t, Some(&json!({"name": "ci\u{1b}[31m"}))).await;
    assert_eq!(key.status, 400, "{:?}", key.body);
    assert!(key.body["message"].as_str().is_some_and(|m| m.contains("name")), "{:?}", key.body);
    let deep = api
        .call("POST", "/api/v1/accounts", t, Some(&json!({"handle": "fine", "x": [{"y": "\u{0}"}]})))
        .await;
    assert!(deep.body["message"].as_str().is_some_and(|m| m.contains("x[0].y")), "{:?}", deep.body);
    let query = api.call("GET", "/api/v1/accounts?cursor=%00", t, None).await;
    assert_eq!(query.status, 400, "{:?}", query.body);
    // Line breaks and tabs are text; RTL and zero-width characters are not controls.
    let ok = api.call("POST", "/api/v1/accounts", t, Some(&json!({"handle": "fine.handle"}))).await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    let mut conn = db.conn().await;
    use diesel_async::RunQueryDsl as _;
    let users: i64 = diesel::sql_query("SELECT count(*) AS n FROM users")
        .get_result::<Count>(&mut conn)
        .await
        .expect("count")
        .n;
    assert_eq!(users, 1, "the refused registrations stored nothing");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A made-up method is refused with 405 and counted as `other`: metrics labels come from a
/// closed set, so /metrics cannot be grown by requests.
#[tokio::test]
async fn unknown_methods_get_405_and_do_not_grow_the_metrics() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[]);
    for i in 0..50 {
        let r = api.call(&format!("FOO{i}"), "/api/v1/accounts", None, None).await;
        assert_eq!((r.status, r.body["error"].as_str()), (405, Some("method_not_allowed")), "{:?}", r.body);
    }
    let trace = api.call("TRACE", "/api/v1/accounts", None, None).await;
    assert_eq!(trace.status, 405);
    let text = api.state.metrics.render(&[]);
    assert!(!text.contains("FOO") && !text.contains("TRACE"), "{text}");
    assert!(text.contains("method=\"other\""));
}

#[tokio::test]
async fn register_login_accounts_and_api_keys() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[]);
    let token = api.user("owner@example.com").await;
    let t = Some(token.as_str());

    // An address with an account gets the answer a free one gets: registering tells nobody
    // who has an account.
    let dup = api
        .call(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(&json!({"email": "OWNER@example.com", "password": "another long one"})),
        )
        .await;
    let fresh = api
        .call(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(&json!({"email": "fresh@example.com", "password": "another long one"})),
        )
        .await;
    assert_eq!((dup.status, fresh.status), (202, 202));
    assert_eq!(dup.body["message"], fresh.body["message"]);
    let replaced = api
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": "owner@example.com", "password": "another long one"})),
        )
        .await;
    assert_eq!(replaced.status, 401, "the existing account keeps its password");
    let short = api
        .call(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(&json!({"email": "b@example.com", "password": "short"})),
        )
        .await;
    assert_eq!((short.status, short.body["error"].as_str()), (400, Some("bad_request")));
    let wrong = api
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": "owner@example.com", "password": "nope nope nope"})),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(api.call("GET", "/api/v1/accounts", None, None).await.status, 401);
    assert_eq!(api.call("GET", "/api/v1/accounts", Some("garbage"), None).await.status, 401);

    let created = api
        .call("POST", "/api/v1/accounts", t, Some(&json!({"handle": "https://www.instagram.com/Lumen.Atelier/", "schedule": "weekly", "budget_usd": 2.5})))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["handle"], "lumen.atelier");
    assert_eq!(created.body["budget_usd"], 2.5);
    let id = created.body["id"].as_i64().expect("id");
    assert_eq!(
        api.call("POST", "/api/v1/accounts", t, Some(&json!({"handle": "@lumen.atelier"}))).await.status,
        409
    );
    let bad = api.call("POST", "/api/v1/accounts", t, Some(&json!({"handle": "not valid!"}))).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body["message"].as_str().unwrap_or("").contains("not an Instagram handle"));
    let updated = api
        .call(
            "PATCH",
            &format!("/api/v1/accounts/{id}"),
            t,
            Some(&json!({"max_posts": 30, "budget_usd": null})),
        )
        .await;
    assert_eq!(
        (updated.status, updated.body["max_posts"].as_i64(), updated.body["budget_usd"].is_null()),
        (200, Some(30), true)
    );
    assert_eq!(
        api.call("PATCH", &format!("/api/v1/accounts/{id}"), t, Some(&json!({"max_posts": 0}))).await.status,
        400
    );

    for h in ["a.one", "a.two", "a.three"] {
        assert_eq!(api.call("POST", "/api/v1/accounts", t, Some(&json!({"handle": h}))).await.status, 201);
    }
    let page1 = api.call("GET", "/api/v1/accounts?limit=3", t, None).await;
    assert_eq!(page1.body["items"].as_array().map(Vec::len), Some(3));
    let cursor = page1.body["next_cursor"].as_str().expect("more");
    let page2 = api.call("GET", &format!("/api/v1/accounts?limit=3&cursor={cursor}"), t, None).await;
    assert_eq!(page2.body["items"].as_array().map(Vec::len), Some(1));
    assert!(page2.body["next_cursor"].is_null());
    assert_eq!(api.call("GET", "/api/v1/accounts?cursor=zzz", t, None).await.status, 400);

    // An API key works like a token until it is revoked; it is shown only once.
    let key = api.call("POST", "/api/v1/api-keys", t, Some(&json!({"name": "script"}))).await;
    assert_eq!(key.status, 201);
    let secret = key.body["key"].as_str().expect("key").to_owned();
    let listed = api.call("GET", "/api/v1/api-keys", t, None).await;
    assert!(!listed.body.to_string().contains(&secret), "keys are never listed");
    assert_eq!(api.call("GET", "/api/v1/accounts", Some(&secret), None).await.status, 200);
    let key_id = key.body["id"].as_i64().expect("id");
    assert_eq!(api.call("DELETE", &format!("/api/v1/api-keys/{key_id}"), t, None).await.status, 204);
    assert_eq!(api.call("GET", "/api/v1/accounts", Some(&secret), None).await.status, 401);

    let refreshed = api.call("POST", "/api/v1/auth/refresh", t, None).await;
    assert_eq!(refreshed.status, 200);
    assert_eq!(api.call("DELETE", &format!("/api/v1/accounts/{id}"), t, None).await.status, 204);
    assert_eq!(api.call("GET", &format!("/api/v1/accounts/{id}"), t, None).await.status, 404);

    let doc = api.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["paths"]["/api/v1/accounts/{id}"]["patch"].is_object());
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
}

/// Every route that names a resource, with A's ids, called by B: always 404, and nothing of A's
/// changes.
#[tokio::test]
async fn one_user_never_sees_or_changes_another_users_data() {
    let db = TestDb::new().await;
    // A server that can scrape (no worker runs here: the analyses stay queued).
    let api = Api::start(&db, &[("APIFY_TOKEN", "apify_api_test")]);
    let a = api.user("a@example.com").await;
    let b = api.user("b@example.com").await;
    let account = api.account(Some(&a), "alpha").await;
    let analysis =
        api.call("POST", &format!("/api/v1/accounts/{account}/analyses"), Some(&a), Some(&json!({}))).await;
    assert_eq!(analysis.status, 202, "{:?}", analysis.body);
    let analysis = analysis.body["id"].as_i64().expect("id");
    let key = api.call("POST", "/api/v1/api-keys", Some(&a), Some(&json!({"name": "k"}))).await.body["id"]
        .as_i64()
        .expect("id");

    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/v1/accounts/{account}"), None),
        ("PATCH", format!("/api/v1/accounts/{account}"), Some(json!({"max_posts": 5}))),
        ("DELETE", format!("/api/v1/accounts/{account}"), None),
        ("POST", format!("/api/v1/accounts/{account}/analyses"), Some(json!({}))),
        ("GET", format!("/api/v1/analyses/{analysis}"), None),
        ("POST", format!("/api/v1/analyses/{analysis}/cancel"), None),
        ("DELETE", format!("/api/v1/api-keys/{key}"), None),
    ];
    for (method, path, body) in &routes {
        let r = api.call(method, path, Some(&b), body.as_ref()).await;
        assert_eq!(r.status, 404, "{method} {path}: {:?}", r.body);
    }
    for path in [
        "/api/v1/accounts",
        "/api/v1/analyses",
        &format!("/api/v1/analyses?account_id={account}"),
        "/api/v1/api-keys",
    ] {
        let r = api.call("GET", path, Some(&b), None).await;
        assert_eq!(r.status, 200);
        let items = r.body.get("items").unwrap_or(&r.body);
        assert_eq!(items.as_array().map(Vec::len), Some(0), "{path}: {:?}", r.body);
    }
    // A's data is intact.
    let mine = api.call("GET", &format!("/api/v1/accounts/{account}"), Some(&a), None).await;
    assert_eq!((mine.status, mine.body["max_posts"].as_i64()), (200, Some(12)));
    let run = api.call("GET", &format!("/api/v1/analyses/{analysis}"), Some(&a), None).await;
    assert_eq!(run.body["status"], "queued");
    assert_eq!(
        api.call("GET", "/api/v1/accounts", Some(&a), None).await.body["items"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn bursts_over_the_quota_get_429_with_retry_after() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[("AUDIENCELENS__SERVER__RATE_LIMIT_PER_IP_PER_MINUTE", "40")]);
    let token = api.user("c@example.com").await;
    // Under the quota: never limited (registration and login used 2 of 40).
    for _ in 0..30 {
        assert_eq!(api.call("GET", "/api/v1/accounts", Some(&token), None).await.status, 200);
    }
    let mut limited = None;
    for _ in 0..20 {
        let r = api.call("GET", "/api/v1/accounts", Some(&token), None).await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the burst is limited");
    assert_eq!(r.body["error"], "too_many_requests");
    assert!(r.retry_after.and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| (1..=60).contains(&s)));

    // Logins are limited much harder (5 a minute by default), per address and per email.
    let db2 = TestDb::new().await;
    let api2 = Api::start(&db2, &[]);
    let creds = json!({"email": "d@example.com", "password": "wrong password here"});
    let statuses: Vec<u16> = futures_util::future::join_all(
        (0..7).map(|_| api2.call("POST", "/api/v1/auth/login", None, Some(&creds))),
    )
    .await
    .iter()
    .map(|r| r.status)
    .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2, "{statuses:?}");
}

/// Logins from behind a trusted proxy: the address is the one the proxy appended (the client
/// writes whatever it likes before it), and the per-email budget is per address as stored.
#[tokio::test]
async fn login_limits_hold_against_forged_hops_and_respelled_emails() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[("AUDIENCELENS__SERVER__TRUST_FORWARDED_FOR", "true")]);
    let login = |email: String, forwarded: String| {
        let request = api
            .client
            .post(format!("http://{}/api/v1/auth/login", api.addr))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"email": email, "password": "wrong password here"}));
        async move { request.send().await.expect("request").status().as_u16() }
    };
    let count = |statuses: &[u16], status: u16| statuses.iter().filter(|s| **s == status).count();
    // One proxy-seen address, a new forged first hop and a new email each time.
    let mut statuses = Vec::new();
    for i in 0..7 {
        statuses.push(login(format!("u{i}@example.com"), format!("203.0.113.{i}, 198.51.100.1")).await);
    }
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (5, 2), "{statuses:?}");
    // One email spelt with different spacing and case, from a new address each time.
    let mut statuses = Vec::new();
    for (i, email) in [
        "v@example.com",
        " v@example.com",
        "V@example.com ",
        "\tv@example.com",
        "v@EXAMPLE.com",
        " v@example.com ",
        "v@example.com\t",
    ]
    .iter()
    .enumerate()
    {
        statuses.push(login((*email).to_owned(), format!("192.0.2.{i}")).await);
    }
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (5, 2), "{statuses:?}");
}

/// Two requests to start an analysis of one account at the same moment start one; a body that
/// does not parse is refused rather than read as the defaults; an API key gets no token chain.
#[tokio::test]
async fn one_analysis_at_a_time_and_no_silent_defaults() {
    let db = TestDb::new().await;
    // A server that can scrape (no worker runs here: the analyses stay queued).
    let api = Api::start(&db, &[("APIFY_TOKEN", "apify_api_test")]);
    let (t, id) = api.user_with_account("e@example.com", "twice").await;
    let t = Some(t.as_str());
    let path = format!("/api/v1/accounts/{id}/analyses");
    let typo = api.call("POST", &path, t, Some(&json!({"clasifier": "gemini"}))).await;
    assert_eq!(typo.status, 400, "{:?}", typo.body);
    assert!(typo.body.to_string().contains("clasifier"), "{:?}", typo.body);
    let empty = json!({});
    let (a, b) = tokio::join!(api.call("POST", &path, t, None), api.call("POST", &path, t, Some(&empty)));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409], "{:?} {:?}", a.body, b.body);
    assert_eq!(
        db.count(&format!("SELECT count(*) AS n FROM analyses WHERE tracked_account_id = {id}")).await,
        1
    );

    // A picture fetched for it, not classified yet: cancelling drops its bytes.
    db.held_picture(id, "twice", "07").await;
    let started = if a.status == 202 { &a } else { &b };
    let analysis = started.body["id"].as_i64().expect("id");
    let cancelled = api.call("POST", &format!("/api/v1/analyses/{analysis}/cancel"), t, None).await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0, "bytes of a cancelled analysis");
    // Nobody classified it: it is to be fetched again, not left fetched with nothing to read.
    assert_eq!(
        db.count("SELECT count(*) AS n FROM profile_pictures WHERE fetch_status = 'pending' AND content_sha256 IS NULL")
            .await,
        1
    );

    let key = api.call("POST", "/api/v1/api-keys", t, Some(&json!({"name": "k"}))).await;
    let key = key.body["key"].as_str().expect("key").to_owned();
    assert_eq!(api.call("POST", "/api/v1/auth/refresh", Some(&key), None).await.status, 400);
}

/// Deleting an account deletes the picture bytes held for its analyses: nothing would
/// classify or release them once the analyses are gone.
#[tokio::test]
async fn deleting_an_account_deletes_the_picture_bytes_held_for_it() {
    let db = TestDb::new().await;
    // A server that can scrape (no worker runs here: the analyses stay queued).
    let api = Api::start(&db, &[("APIFY_TOKEN", "apify_api_test")]);
    let (t, id) = api.user_with_account("d@example.com", "leaving").await;
    let t = Some(t.as_str());
    let started = api.call("POST", &format!("/api/v1/accounts/{id}/analyses"), t, None).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    db.held_picture(id, "leaving", "08").await;
    let deleted = api.call("DELETE", &format!("/api/v1/accounts/{id}"), t, None).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0);
    assert_eq!(api.call("DELETE", &format!("/api/v1/accounts/{id}"), t, None).await.status, 404);
}

/// Arbitrary JSON (and non-JSON) bodies to every endpoint that takes one: a 2xx or 4xx, never
/// a 5xx.
#[tokio::test]
async fn any_body_to_any_endpoint_is_a_client_error_at_worst() {
    let db = TestDb::new().await;
    let api = Api::start(
        &db,
        &[
            ("AUDIENCELENS__SERVER__RATE_LIMIT_PER_IP_PER_MINUTE", "100000"),
            ("AUDIENCELENS__SERVER__LOGIN_ATTEMPTS_PER_MINUTE", "100000"),
        ],
    );
    let token = api.user("fuzz@example.com").await;
    let account = api.account(Some(&token), "fuzzed").await;
    let endpoints = [
        ("POST", "/api/v1/auth/register".to_owned()),
        ("POST", "/api/v1/auth/login".to_owned()),
        ("POST", "/api/v1/api-keys".to_owned()),
        ("POST", "/api/v1/accounts".to_owned()),
        ("PATCH", format!("/api/v1/accounts/{account}")),
        ("POST", format!("/api/v1/accounts/{account}/analyses")),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let keys = [
        "handle",
        "email",
        "password",
        "name",
        "schedule",
        "max_posts",
        "max_comments_per_post",
        "budget_usd",
        "classifier",
        "x",
    ];
    let scalar = |rng: &mut rand::rngs::StdRng| -> Value {
        match rng.random_range(0..9) {
            0 => Value::Null,
            1 => json!(rng.random::<bool>()),
            2 => json!(rng.random::<i64>()),
            3 => json!(rng.random::<f64>() * 1e12 - 5e11),
            4 => json!("daily"),
            5 => json!("a@b.c"),
            6 => json!(f64::MAX),
            7 => json!("x".repeat(rng.random_range(0..300))),
            _ => json!([1, "two", {"three": 3}]),
        }
    };
    for i in 0..300 {
        let (method, path) = &endpoints[i % endpoints.len()];
        let body = if rng.random_range(0..10) == 0 {
            scalar(&mut rng)
        } else {
            let n = rng.random_range(0..5);
            Value::Object(
                (0..n)
                    .map(|_| (keys[rng.random_range(0..keys.len())].to_owned(), scalar(&mut rng)))
                    .collect(),
            )
        };
        let r = api.call(method, path, Some(&token), Some(&body)).await;
        assert!(r.status < 500, "{method} {path} {body}: {} {:?}", r.status, r.body);
    }
    // Not JSON at all, and an oversized body.
    let client = audiencelens::clients::http_client().build().expect("client");
    let post_raw = |path: String, body: Vec<u8>| {
        client
            .post(format!("http://{}{path}", api.addr))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post_raw("/api/v1/accounts".into(), b"{not json".to_vec()).await.expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let r = post_raw("/api/v1/accounts".into(), vec![b' '; 600_000]).await.expect("send");
    assert_eq!(r.status().as_u16(), 413);
    // The same limit, and the same JSON error, for the start of an analysis (it reads its body
    // itself: an empty one means the defaults).
    let r =
        post_raw(format!("/api/v1/accounts/{account}/analyses"), vec![b' '; 600_000]).await.expect("send");
    assert_eq!(r.status().as_u16(), 413);
    let error: Value = r.json().await.expect("a JSON error");
    assert!(error.to_string().contains("larger than 262144 bytes"), "{error}");
}

/// The whole flow through the API with a stub Apify and a stub CDN: register, add an account,
/// analyse it, read a consistent audience, page the commenters, export.
/// Two posts of `handle` commented by fan0..fan11, whose pictures (four distinct flat colours)
/// `cdn` serves: the Apify runs and the CDN of the whole-flow tests.
pub async fn twelve_fans(apify: &crate::stubs::ApifyStub, cdn: &wiremock::MockServer, handle: &str) {
    use crate::scrape::{comment, post};
    use crate::stubs;
    let mut comments = Vec::new();
    let colours = [[200u8, 50, 50], [50, 200, 50], [50, 50, 200], [120, 120, 120]];
    for i in 0..12u64 {
        let name = format!("fan{i}");
        let pic = stubs::picture_url(cdn, &name);
        stubs::serve_picture(cdn, &name, 200, "image/jpeg", stubs::jpeg(96, 96, colours[(i % 4) as usize]))
            .await;
        comments.push(comment(4_000_000_001 + i % 2, 500 + i, &name, 9_000 + i, &pic));
    }
    let posts = vec![post(handle, 4_000_000_001, 5, 6, vec![]), post(handle, 4_000_000_002, 6, 6, vec![])];
    apify.actor("apify/instagram-scraper", "RUN-P", posts).await;
    apify.actor("apify/instagram-comment-scraper", "RUN-C", comments).await;
}

#[tokio::test]
async fn the_whole_flow_through_the_api() {
    use crate::stubs::{APIFY_TOKEN, ApifyStub};

    let db = TestDb::new().await;
    let apify = ApifyStub::start().await;
    let cdn = wiremock::MockServer::start().await;
    let base = apify.url();
    let api = Api::start(
        &db,
        &[
            ("AUDIENCELENS__APIFY__BASE_URL", base.as_str()),
            ("AUDIENCELENS__APIFY__POLL_PAUSE_MS", "5"),
            ("APIFY_TOKEN", APIFY_TOKEN),
        ],
    );
    twelve_fans(&apify, &cdn, "flow.brand").await;

    let token = api.user("flow@example.com").await;
    let t = Some(token.as_str());
    let account = api.account(t, "flow.brand").await;
    assert_eq!(
        api.call("GET", &format!("/api/v1/accounts/{account}/audience"), t, None).await.status,
        404,
        "nothing yet"
    );
    // Gemini without a key on the server: refused up front, saying what to set.
    let refused = api
        .call(
            "POST",
            &format!("/api/v1/accounts/{account}/analyses"),
            t,
            Some(&json!({"classifier": "cascade"})),
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert!(
        refused.body["message"].as_str().is_some_and(|m| m.contains("GEMINI_API_KEY")),
        "{:?}",
        refused.body
    );
    let started = api.call("POST", &format!("/api/v1/accounts/{account}/analyses"), t, None).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let analysis = started.body["id"].as_i64().expect("id");
    let again = api.call("POST", &format!("/api/v1/accounts/{account}/analyses"), t, None).await;
    assert_eq!(again.status, 409, "one analysis at a time");
    crate::helpers::drain_jobs(&api.state, std::time::Duration::from_mins(1)).await;
    // A local analysis costs nothing: the ledger is empty.
    let usage = api.call("GET", "/api/v1/usage", t, None).await;
    assert_eq!(usage.status, 200, "{:?}", usage.body);
    assert_eq!(usage.body["total"]["requests"], 0);
    assert_eq!(usage.body["total"]["cost_nano_usd"], 0);

    let status = api.call("GET", &format!("/api/v1/analyses/{analysis}"), t, None).await;
    assert_eq!(
        (status.body["status"].as_str(), status.body["stage"].as_str()),
        (Some("succeeded"), Some("done")),
        "{:?}",
        status.body
    );
    assert_eq!(status.body["progress"]["pictures_fetched"], 12);
    let audience = api.call("GET", &format!("/api/v1/accounts/{account}/audience"), t, None).await;
    assert_eq!(audience.status, 200);
    let s = &audience.body;
    assert_eq!(s["sample"]["unique_commenters"], 12);
    assert_eq!(s["sample"]["comments"], 12);
    assert_eq!(s["sample"]["posts_covered"], 2);
    // Shares sum to 1 (within rounding); n and coverage match the stored rows.
    // Results count per commenter (identical pictures are classified once, by hash).
    let per_commenter =
        "FROM profile_pictures pp JOIN classifications k ON k.content_sha256 = pp.content_sha256";
    let classified = db.count(&format!("SELECT count(*) AS n {per_commenter}")).await;
    assert_eq!(db.count("SELECT count(*) AS n FROM classifications").await, 4, "four distinct pictures");
    assert_eq!(s["audience"]["classified"].as_i64(), Some(classified));
    let types = s["audience"]["profile_types"].as_array().expect("types");
    let sum: f64 = types.iter().map(|t| t["share"].as_f64().unwrap_or(0.0)).sum();
    assert!((sum - 1.0).abs() < 0.001, "profile types sum to {sum}");
    let counted: i64 = types.iter().map(|t| t["count"].as_i64().unwrap_or(0)).sum();
    assert_eq!(counted, classified);
    let persons =
        db.count(&format!("SELECT count(*) AS n {per_commenter} WHERE k.profile_type = 'person'")).await;
    let gender_n = s["audience"]["gender"]["n"].as_i64().expect("n");
    assert!(gender_n <= persons);
    let expected_coverage = if classified > 0 { gender_n as f64 / classified as f64 } else { 0.0 };
    assert!((s["audience"]["gender"]["coverage"].as_f64().unwrap_or(-1.0) - expected_coverage).abs() < 1e-9);
    for (dimension, breakdown) in
        [("gender", &s["audience"]["gender"]), ("age", &s["audience"]["age_brackets"])]
    {
        let raw = breakdown["raw"].as_array().expect("raw");
        let n: i64 = raw.iter().map(|r| r["count"].as_i64().unwrap_or(0)).sum();
        assert_eq!(Some(n), breakdown["n"].as_i64(), "{dimension}");
        if n > 0 {
            let total: f64 = raw.iter().map(|r| r["share"].as_f64().unwrap_or(0.0)).sum();
            assert!((total - 1.0).abs() < 0.001, "{dimension} shares sum to {total}");
        }
    }
    assert_eq!(forbidden_fields(s), Vec::<String>::new());

    let same = api.call("GET", &format!("/api/v1/analyses/{analysis}/audience"), t, None).await;
    assert_eq!(same.body, audience.body, "the stored snapshot, not a recomputation");
    let history = api.call("GET", &format!("/api/v1/accounts/{account}/audience/history"), t, None).await;
    assert_eq!(history.body.as_array().map(Vec::len), Some(1));

    let page = api.call("GET", &format!("/api/v1/accounts/{account}/commenters?limit=5"), t, None).await;
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(5));
    assert!(page.body["items"][0]["source"].as_str().is_some(), "{:?}", page.body["items"][0]);
    let cursor = page.body["next_cursor"].as_str().expect("more");
    let rest = api
        .call("GET", &format!("/api/v1/accounts/{account}/commenters?limit=50&cursor={cursor}"), t, None)
        .await;
    assert_eq!(rest.body["items"].as_array().map(Vec::len), Some(7));

    let url = format!("http://{}/api/v1/analyses/{analysis}/export?format=csv", api.addr);
    let client = audiencelens::clients::http_client().build().expect("client");
    let csv = client.get(&url).bearer_auth(&token).send().await.expect("csv");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.expect("body");
    assert!(csv.starts_with("weighting,dimension,class,n,coverage,count,share,ci95_low,ci95_high"));
    assert!(csv.lines().any(|l| l.starts_with("commenter,profile_type,no_person,12,")), "{csv}");
    assert!(!csv.contains("commenter,gender,"), "no gender rows without a gender estimate: {csv}");
    let url = format!("http://{}/api/v1/accounts/{account}/commenters/export", api.addr);
    let pseudonymised =
        client.get(&url).bearer_auth(&token).send().await.expect("csv").text().await.expect("body");
    assert_eq!(pseudonymised.lines().count(), 13);
    assert!(
        !pseudonymised.contains("fan1") && pseudonymised.contains("p_"),
        "handles are pseudonymised by default"
    );
    let raw = client
        .get(format!("{url}?raw_handles=true"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("body");
    assert!(raw.contains("fan1"));
    assert_eq!(db.count("SELECT count(*) AS n FROM audit_log WHERE action = 'audience_export'").await, 2);

    // Another user sees none of it.
    let other = api.user("other@example.com").await;
    for path in [
        format!("/api/v1/accounts/{account}/audience"),
        format!("/api/v1/analyses/{analysis}/audience"),
        format!("/api/v1/accounts/{account}/audience/history"),
        format!("/api/v1/accounts/{account}/commenters"),
        format!("/api/v1/accounts/{account}/commenters/export"),
        format!("/api/v1/analyses/{analysis}/export"),
        format!("/api/v1/audience/overlap?a={account}&b={account}"),
        format!("/api/v1/audience/compare?accounts={account},{account}"),
        "/api/v1/admin/people/fan1".to_owned(),
    ] {
        let r = api.call("GET", &path, Some(&other), None).await;
        assert!(matches!(r.status, 403 | 404), "{path}: {} {:?}", r.status, r.body);
    }
    let r = api.call("POST", "/api/v1/admin/erasures", Some(&other), Some(&json!({"handle": "fan1"}))).await;
    assert_eq!(r.status, 403);
}

/// Field names that would reveal a special category of personal data.
fn forbidden_fields(v: &Value) -> Vec<String> {
    const WORDS: &[&str] = &[
        "race",
        "racial",
        "ethnicity",
        "ethnic",
        "religion",
        "health",
        "sexual",
        "orientation",
        "political",
    ];
    let mut found = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k.split(|c: char| !c.is_ascii_alphanumeric())
                        .any(|w| WORDS.contains(&w.to_ascii_lowercase().as_str()))
                    {
                        found.push(k.clone());
                    }
                    stack.push(x);
                }
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    found
}

/// A failed analysis resumes from its failed stage once the cause is fixed.
#[tokio::test]
async fn a_failed_analysis_can_be_retried() {
    use crate::scrape::post;
    use crate::stubs::{APIFY_TOKEN, ApifyStub, apify_error};

    let db = TestDb::new().await;
    let apify = ApifyStub::start().await;
    let base = apify.url();
    let api =
        Api::start(&db, &[("AUDIENCELENS__APIFY__BASE_URL", base.as_str()), ("APIFY_TOKEN", APIFY_TOKEN)]);
    apify.actor("apify/instagram-scraper", "R-OK", vec![post("retry.me", 4_100_000_001, 2, 0, vec![])]).await;
    apify.actor("apify/instagram-comment-scraper", "R-C", vec![]).await;
    apify
        .fail_starts(
            "apify/instagram-scraper",
            1,
            apify_error(402, "not-enough-usage-to-run-paid-actor", "top up"),
        )
        .await;
    let token = api.user("retry@example.com").await;
    let t = Some(token.as_str());
    let account = api.account(t, "retry.me").await;
    let id = api.call("POST", &format!("/api/v1/accounts/{account}/analyses"), t, None).await.body["id"]
        .as_i64()
        .expect("id");
    crate::helpers::drain_jobs(&api.state, std::time::Duration::from_secs(30)).await;
    let failed = api.call("GET", &format!("/api/v1/analyses/{id}"), t, None).await;
    assert_eq!(failed.body["status"], "failed");
    assert!(failed.body["error"].as_str().unwrap_or("").contains("credit exhausted"));
    assert_eq!(
        api.call(
            "POST",
            &format!("/api/v1/analyses/{id}/retry"),
            Some(&api.user("x@example.com").await),
            None
        )
        .await
        .status,
        404
    );

    let retried = api.call("POST", &format!("/api/v1/analyses/{id}/retry"), t, None).await;
    assert_eq!(
        (retried.status, retried.body["status"].as_str()),
        (202, Some("running")),
        "{:?}",
        retried.body
    );
    crate::helpers::drain_jobs(&api.state, std::time::Duration::from_secs(30)).await;
    let done = api.call("GET", &format!("/api/v1/analyses/{id}"), t, None).await;
    assert_eq!(done.body["status"], "succeeded", "{:?}", done.body);
    assert_eq!(api.call("POST", &format!("/api/v1/analyses/{id}/retry"), t, None).await.status, 409);
}

/// A stored snapshot the CSV table cannot read (written by an older version, say) is a 409 that
/// points at the JSON export, never a 500.
#[tokio::test]
async fn an_unreadable_snapshot_exports_as_json_and_explains_the_csv() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[]);
    let (t, id) = api.user_with_account("g@example.com", "old.shape").await;
    let t = Some(t.as_str());
    db.execute(&format!(
        "INSERT INTO analyses (tracked_account_id, status, stage, snapshot, finished_at)
         VALUES ({id}, 'succeeded', 'done', '{{\"unique_commenters\": 3}}', now())"
    ))
    .await;
    let analysis = db.count("SELECT id AS n FROM analyses").await;
    let csv = api.call("GET", &format!("/api/v1/analyses/{analysis}/export?format=csv"), t, None).await;
    assert_eq!(csv.status, 409, "{:?}", csv.body);
    assert!(csv.body["message"].as_str().is_some_and(|m| m.contains("format=json")), "{:?}", csv.body);
    let json = api.call("GET", &format!("/api/v1/analyses/{analysis}/export?format=json"), t, None).await;
    assert_eq!(json.status, 200);
    assert_eq!(json.body["unique_commenters"], 3);
}

/// The commenters export streams page by page: every commenter once, across page boundaries,
/// and the audit entry counts them all.
#[tokio::test]
async fn the_commenters_export_streams_every_commenter_once() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[]);
    let token = api.user("h@example.com").await;
    let account = api.account(Some(&token), "many").await;
    let n = 12_001;
    db.execute(&format!(
        "WITH p AS (INSERT INTO posts (ig_post_id, owner_username) VALUES ('M1', 'many') RETURNING id),
              l AS (INSERT INTO tracked_account_posts (tracked_account_id, post_id) SELECT {account}, id FROM p),
              f AS (INSERT INTO ig_profiles (ig_user_id, username)
                    SELECT 'u' || g, 'fan' || g FROM generate_series(1, {n}) g RETURNING id)
         INSERT INTO comments (ig_comment_id, post_id, ig_profile_id) SELECT 'MC' || f.id, p.id, f.id FROM p, f"
    ))
    .await;
    let url = format!("http://{}/api/v1/accounts/{account}/commenters/export?raw_handles=true", api.addr);
    let client = audiencelens::clients::http_client().build().expect("client");
    let csv = client.get(&url).bearer_auth(&token).send().await.expect("csv").text().await.expect("body");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("commenter,comments,"), "{}", lines[0]);
    let names: std::collections::BTreeSet<&str> =
        lines[1..].iter().map(|l| l.split(',').next().unwrap_or_default()).collect();
    assert_eq!(lines.len() - 1, n);
    assert_eq!(names.len(), n, "each commenter once");
    assert_eq!(
        db.count("SELECT (details->>'rows')::bigint AS n FROM audit_log WHERE action = 'audience_export'")
            .await,
        n as i64
    );
}

#[tokio::test]
async fn registration_has_the_login_quota_and_refusals_are_json() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[("AUDIENCELENS__SERVER__LOGIN_ATTEMPTS_PER_MINUTE", "3")]);
    let mut statuses = Vec::new();
    for i in 0..5 {
        let creds = json!({"email": format!("u{i}@example.com"), "password": "a long enough password"});
        statuses.push(api.call("POST", "/api/v1/auth/register", None, Some(&creds)).await.status);
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429], "argon2 is not free: registrations are counted");
    let login = json!({"email": "u0@example.com", "password": "a long enough password"});
    assert_eq!(
        api.call("POST", "/api/v1/auth/login", None, Some(&login)).await.status,
        200,
        "a bucket of its own"
    );

    // A CORS refusal (an origin not configured) is the one JSON error shape.
    let client = audiencelens::clients::http_client().build().expect("client");
    let r = client
        .request(reqwest::Method::OPTIONS, format!("http://{}/api/v1/accounts", api.addr))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .expect("preflight");
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("a JSON body");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "bad_request", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.to_lowercase().contains("origin")), "{body}");
}
