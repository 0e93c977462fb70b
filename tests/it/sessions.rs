//! Sessions end: a logout ends one at once, a new password ends every other one, an operator's
//! change ends them all; the dashboard's cookie is `HttpOnly`, `SameSite=Strict`, carries no token
//! a script could read, and cannot be used to change anything without the dashboard's header.

use serde_json::json;

use crate::api::Api;
use crate::helpers::{TestDb, run_cli};

const PASSWORD: &str = "a long enough password";

async fn login(api: &Api, email: &str, password: &str) -> Option<String> {
    let r = api
        .call("POST", "/api/v1/auth/login", None, Some(&json!({"email": email, "password": password})))
        .await;
    (r.status == 200).then(|| r.body["access_token"].as_str().expect("token").to_owned())
}

#[tokio::test]
async fn logout_and_a_new_password_end_sessions_at_once() {
    let db = TestDb::new().await;
    // Several logins of one address within the minute.
    let api = Api::start(&db, &[("AUDIENCELENS__SERVER__LOGIN_ATTEMPTS_PER_MINUTE", "100")]);
    let first = api.user("a@example.com").await;
    let second = login(&api, "a@example.com", PASSWORD).await.expect("second login");
    let me = api.call("GET", "/api/v1/auth/me", Some(&first), None).await;
    assert_eq!(
        (me.status, me.body["email"].as_str(), me.body["signed_in_with"].as_str()),
        (200, Some("a@example.com"), Some("token"))
    );

    // A logout ends this session only, at once (no cache to expire).
    assert_eq!(api.call("POST", "/api/v1/auth/logout", Some(&first), None).await.status, 204);
    assert_eq!(api.call("GET", "/api/v1/auth/me", Some(&first), None).await.status, 401);
    assert_eq!(
        api.call("POST", "/api/v1/auth/refresh", Some(&first), None).await.status,
        401,
        "nor can it be refreshed"
    );
    assert_eq!(api.call("GET", "/api/v1/auth/me", Some(&second), None).await.status, 200);

    // A new password needs the current one, and ends every other session.
    let third = login(&api, "a@example.com", PASSWORD).await.expect("third login");
    let wrong = api
        .call(
            "POST",
            "/api/v1/auth/password",
            Some(&second),
            Some(&json!({"current_password": "not it at all", "new_password": "a brand new password"})),
        )
        .await;
    assert_eq!(wrong.status, 400, "{:?}", wrong.body);
    let changed = api
        .call(
            "POST",
            "/api/v1/auth/password",
            Some(&second),
            Some(&json!({"current_password": PASSWORD, "new_password": "a brand new password"})),
        )
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);
    assert_eq!(
        api.call("GET", "/api/v1/auth/me", Some(&third), None).await.status,
        401,
        "other sessions end"
    );
    assert_eq!(api.call("GET", "/api/v1/auth/me", Some(&second), None).await.status, 200, "this one stays");
    assert!(login(&api, "a@example.com", PASSWORD).await.is_none(), "the old password is gone");
    let fourth = login(&api, "a@example.com", "a brand new password").await.expect("new password works");

    // An operator's new password (or role) ends them all.
    let (code, _, err) = run_cli(&db, &["user", "create", "a@example.com", "--update"], &[]).await;
    assert_eq!(code, 0, "{err}");
    for token in [&second, &fourth] {
        assert_eq!(api.call("GET", "/api/v1/auth/me", Some(token), None).await.status, 401);
    }

    // An API key has no session to end.
    let fifth_user = api.user("b@example.com").await;
    let key = api.call("POST", "/api/v1/api-keys", Some(&fifth_user), Some(&json!({"name": "script"}))).await;
    let key = key.body["key"].as_str().expect("key").to_owned();
    let r = api.call("POST", "/api/v1/auth/logout", Some(&key), None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[tokio::test]
async fn the_dashboard_cookie_is_out_of_reach_of_scripts_and_other_sites() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[]);
    let _ = api.user("c@example.com").await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", api.addr);
    let r = client
        .post(url("/api/v1/auth/session"))
        .json(&json!({"email": "c@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("session");
    assert_eq!(r.status(), 200);
    let set = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("a cookie").to_owned();
    for part in ["al_session=", "HttpOnly", "SameSite=Strict", "Path=/api/"] {
        assert!(set.contains(part), "{part} in {set}");
    }
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body.get("access_token").is_none(), "no token a script could read: {body}");
    assert_eq!(body["signed_in_with"], "cookie");
    let cookie = set.split(';').next().expect("pair").to_owned();

    let me = client.get(url("/api/v1/auth/me")).header("cookie", &cookie).send().await.expect("me");
    assert_eq!(me.status(), 200);
    // Changing anything with the cookie needs the dashboard's header (a form elsewhere cannot
    // set it).
    let bare = client
        .post(url("/api/v1/accounts"))
        .header("cookie", &cookie)
        .json(&json!({"handle": "cookie.shop"}))
        .send()
        .await
        .expect("post");
    assert_eq!(bare.status(), 403);
    let ok = client
        .post(url("/api/v1/accounts"))
        .header("cookie", &cookie)
        .header("x-requested-with", "audiencelens")
        .json(&json!({"handle": "cookie.shop"}))
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), 201);
    let out = client
        .post(url("/api/v1/auth/logout"))
        .header("cookie", &cookie)
        .header("x-requested-with", "audiencelens")
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 204);
    let cleared =
        out.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cleared.contains("al_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    let after = client.get(url("/api/v1/auth/me")).header("cookie", &cookie).send().await.expect("me");
    assert_eq!(after.status(), 401, "the secret is dead even if a copy survives");
}
