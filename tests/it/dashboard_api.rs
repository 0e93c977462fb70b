//! What the dashboard needs from the API, tested as any client would use it: the embedded
//! page and its headers, the server's capabilities, uploads of export files, accounts with
//! their latest analysis and headline, history and comparison with intervals, share links.

use serde_json::{Value, json};

use crate::api::Api;
use crate::helpers::{TestDb, drain_jobs};

/// A `multipart/form-data` body with one file part per `(name, bytes)`.
fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "audiencelens-test-boundary-7d3f";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(api: &Api, token: &str, account: i64, files: &[(&str, &[u8])]) -> (u16, Value) {
    let (content_type, body) = multipart(files);
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/accounts/{account}/imports", api.addr))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn comments(post: &str, from: u64, n: u64) -> Vec<u8> {
    (from..from + n)
        .map(|i| {
            json!({"id": i.to_string(), "text": "nice", "ownerUsername": format!("fan{}", i % 7),
                   "postUrl": format!("https://www.instagram.com/p/{post}/")})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

#[tokio::test]
async fn the_page_is_embedded_with_its_security_headers_and_cached_by_etag() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[]);
    let client = reqwest::Client::new();
    let page = client.get(format!("http://{}/", api.addr)).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(headers.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    let etag = headers.get("etag").and_then(|v| v.to_str().ok()).expect("etag").to_owned();
    assert!(page.text().await.expect("html").contains("<script type=\"module\" src=\"/js/app.js\">"));
    let again = client
        .get(format!("http://{}/", api.addr))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("again");
    assert_eq!(again.status(), 304, "unchanged: not sent again");
    let script = client.get(format!("http://{}/js/app.js", api.addr)).send().await.expect("script");
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    for path in ["/nothing.js", "/api/v1/nothing"] {
        let r = client.get(format!("http://{}{path}", api.addr)).send().await.expect("404");
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.expect("a JSON 404");
        assert_eq!(body["error"], "not_found");
    }
}

#[tokio::test]
async fn the_server_says_what_it_can_do_and_refuses_a_scrape_it_cannot() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[]);
    let info = api.call("GET", "/api/v1/server", None, None).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.body["scraping"]["available"], false);
    assert!(info.body["scraping"]["reason"].as_str().is_some_and(|r| r.contains("APIFY_TOKEN")));
    let gemini =
        info.body["classifiers"].as_array().expect("list").iter().find(|c| c["name"] == "gemini").cloned();
    assert_eq!(gemini.expect("gemini")["available"], false);
    let m = api.call("GET", "/api/v1/methodology", None, None).await;
    assert!(m.body["never_inferred"].as_array().is_some_and(|l| l.iter().any(|v| v == "ethnicity or race")));
    assert!(m.body["calibrations"][0]["gender"]["counts"].is_array(), "{}", m.body);
    let (token, account) = api.user_with_account("s@example.com", "no.apify").await;
    let r = api.call("POST", &format!("/api/v1/accounts/{account}/analyses"), Some(&token), None).await;
    assert_eq!(r.status, 400, "refused up front, not a job that must fail: {:?}", r.body);
    assert!(r.body["message"].as_str().is_some_and(|m| m.contains("upload export files")));
    assert_eq!(db.count("SELECT count(*) AS n FROM analyses").await, 0);
}

#[tokio::test]
async fn uploads_import_and_analyse_all_or_nothing() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[]);
    let (token, account) = api.user_with_account("u@example.com", "upload.shop").await;
    // Not an export: refused, naming the file as the browser named it, nothing stored.
    let (status, body) = upload(
        &api,
        &token,
        account,
        &[("good.jsonl", &comments("DLLLLLLLLLL", 1, 5)), ("notes.txt", b"hello")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("notes.txt") && !m.contains("/tmp")),
        "{body}"
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM comments").await, 0, "all or nothing");
    // A damaged file (cut off): refused by name and line, nothing of the upload kept.
    let mut cut = comments("DMMMMMMMMMM", 100, 3);
    cut.extend_from_slice(b"\n{\"id\": \"9\", \"text\": \"cut");
    let (status, body) =
        upload(&api, &token, account, &[("a.jsonl", &comments("DLLLLLLLLLL", 1, 5)), ("b.jsonl", &cut)])
            .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("b.jsonl") && m.contains("damaged at line 4")),
        "{body}"
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM comments").await, 0, "all or nothing");
    // Two good files: one analysis of both.
    let mut second = comments("DMMMMMMMMMM", 100, 3);
    second.extend_from_slice(b"\n{\"note\": \"not an Instagram item\"}\n");
    let (status, body) =
        upload(&api, &token, account, &[("a.jsonl", &comments("DLLLLLLLLLL", 1, 5)), ("b.jsonl", &second)])
            .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["files"][0]["name"], "a.jsonl");
    assert_eq!(body["files"][0]["comments_new"], 5);
    assert_eq!(body["files"][1]["rejected"][0]["file"], "b.jsonl", "rejections name the browser's file");
    assert!(body["files"][1].get("file").is_none(), "no temporary path leaks");
    let analysis = body["analysis"]["id"].as_i64().expect("analysis");
    // One analysis per account at a time.
    let (status, _) = upload(&api, &token, account, &[("c.jsonl", &comments("DLLLLLLLLLL", 50, 2))]).await;
    assert_eq!(status, 409);
    drain_jobs(&api.state, std::time::Duration::from_mins(1)).await;
    let a = api.call("GET", &format!("/api/v1/analyses/{analysis}"), Some(&token), None).await;
    assert_eq!(a.body["status"], "succeeded", "{:?}", a.body);
    // The account now shows its latest analysis and headline.
    let view = api.call("GET", &format!("/api/v1/accounts/{account}"), Some(&token), None).await;
    assert_eq!(view.body["latest_analysis"]["id"], analysis);
    assert_eq!(view.body["headline"]["unique_commenters"], 5, "fan1 to fan5");
    let list = api.call("GET", "/api/v1/accounts", Some(&token), None).await;
    assert_eq!(list.body["items"][0]["headline"]["analysis_id"], analysis);
    // Someone else cannot upload into it.
    let other = api.user("v@example.com").await;
    let (status, _) = upload(&api, &other, account, &[("a.jsonl", &comments("DLLLLLLLLLL", 1, 5))]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn history_and_comparisons_carry_intervals_and_share_links_open_one_report() {
    let db = TestDb::new().await;
    let api = Api::start(&db, &[]);
    let (token, first) = api.user_with_account("h@example.com", "first.shop").await;
    let second = api.account(Some(&token), "second.shop").await;
    let uploads = [(first, "DNNNNNNNNNN"), (second, "DOOOOOOOOOO"), (first, "DPPPPPPPPPP")];
    for (i, (account, post)) in uploads.into_iter().enumerate() {
        let (status, body) =
            upload(&api, &token, account, &[("x.jsonl", &comments(post, 1_000 + i as u64 * 100, 6))]).await;
        assert_eq!(status, 201, "{body}");
        drain_jobs(&api.state, std::time::Duration::from_mins(1)).await;
    }
    let history =
        api.call("GET", &format!("/api/v1/accounts/{first}/audience/history"), Some(&token), None).await;
    let points = history.body.as_array().expect("points");
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["changes"], json!([]));
    assert!(points[1]["changes"].is_array());
    let compared = api
        .call("GET", &format!("/api/v1/audience/compare?accounts={first},{second}"), Some(&token), None)
        .await;
    assert_eq!(compared.body[0]["differences_from_first"], json!([]));
    let matrix = api
        .call(
            "GET",
            &format!("/api/v1/audience/overlap-matrix?accounts={first},{second}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(matrix.status, 200, "{:?}", matrix.body);
    assert_eq!(matrix.body[0]["account_a"], first);
    assert!(matrix.body[0]["share_of_smaller"].is_number());

    // A share link opens the latest report without signing in, and stops when revoked.
    let made = api
        .call(
            "POST",
            &format!("/api/v1/accounts/{first}/share-links"),
            Some(&token),
            Some(&json!({"days": 7})),
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let link = made.body["token"].as_str().expect("token").to_owned();
    assert!(made.body["path"].as_str().is_some_and(|p| p.ends_with(&link)));
    let open = api.call("GET", &format!("/api/v1/shared/{link}"), None, None).await;
    assert_eq!(open.status, 200);
    assert_eq!(open.body["handle"], "first.shop");
    assert_eq!(open.body["snapshot"]["account_id"], first);
    let listed = api.call("GET", &format!("/api/v1/accounts/{first}/share-links"), Some(&token), None).await;
    assert!(listed.body[0].get("token").is_none(), "a link's token is shown once");
    let stranger = api.user("x@example.com").await;
    let id = made.body["id"].as_i64().expect("id");
    assert_eq!(
        api.call("DELETE", &format!("/api/v1/share-links/{id}"), Some(&stranger), None).await.status,
        404
    );
    assert_eq!(
        api.call("GET", &format!("/api/v1/accounts/{first}/share-links"), Some(&stranger), None).await.status,
        404
    );
    assert_eq!(
        api.call("DELETE", &format!("/api/v1/share-links/{id}"), Some(&token), None).await.status,
        204
    );
    assert_eq!(api.call("GET", &format!("/api/v1/shared/{link}"), None, None).await.status, 404);
    assert_eq!(api.call("GET", "/api/v1/shared/not-a-real-token-at-all", None, None).await.status, 404);
}
