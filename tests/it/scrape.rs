//! Scraping through the real Apify client and the real jobs, against a stub that answers as
//! Apify does, and a stub CDN for the pictures.

use std::time::Duration;

use audiencelens::accounts::{self, InstagramHandle};
use audiencelens::app::AppState;
use audiencelens::jobs::pipeline;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestDb, drain_jobs};
use crate::stubs::{self, APIFY_TOKEN, ApifyStub, Counter};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The shortcode Instagram shows for media id `id`.
pub fn shortcode(mut id: u64) -> String {
    let mut out = Vec::new();
    while id > 0 {
        out.push(ALPHABET[(id % 64) as usize]);
        id /= 64;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

pub fn post(handle: &str, id: u64, day: u32, comments_count: u32, latest: Vec<Value>) -> Value {
    let code = shortcode(id);
    json!({"inputUrl": format!("https://www.instagram.com/{handle}/"), "id": id.to_string(), "type": "Image",
           "shortCode": code, "url": format!("https://www.instagram.com/p/{code}/"),
           "commentsCount": comments_count, "likesCount": 10, "timestamp": format!("2026-11-{day:02}T10:00:00.000Z"),
           "ownerUsername": handle, "ownerId": "900", "latestComments": latest})
}

pub fn comment(post_id: u64, id: u64, username: &str, user_id: u64, pic: &str) -> Value {
    let code = shortcode(post_id);
    json!({"id": id.to_string(), "postUrl": format!("https://www.instagram.com/p/{code}/"),
           "commentUrl": format!("https://www.instagram.com/p/{code}/c/{id}"), "text": "nice",
           "ownerUsername": username, "ownerProfilePicUrl": pic, "timestamp": "2026-11-21T08:00:00.000Z",
           "repliesCount": null, "replies": null, "likesCount": 0,
           "owner": {"username": username, "profile_pic_url": pic, "is_verified": false, "id": user_id.to_string(),
                     "full_name": null, "is_private": null}})
}

struct World {
    db: TestDb,
    apify: ApifyStub,
    cdn: MockServer,
    state: AppState,
}

async fn world(extra: &[(&str, &str)]) -> World {
    let db = TestDb::new().await;
    let apify = ApifyStub::start().await;
    let cdn = MockServer::start().await;
    let base = apify.url();
    let mut vars = vec![
        ("AUDIENCELENS__APIFY__BASE_URL", base.as_str()),
        ("AUDIENCELENS__APIFY__RETRY_BASE_MS", "5"),
        ("AUDIENCELENS__APIFY__POLL_PAUSE_MS", "5"),
        ("AUDIENCELENS__PICTURES__TIMEOUT_SECS", "2"),
        ("APIFY_TOKEN", APIFY_TOKEN),
    ];
    vars.extend_from_slice(extra);
    let state = AppState::build(db.config(&vars)).expect("state");
    World { db, apify, cdn, state }
}

async fn analyse(w: &World, handle: &str) -> i64 {
    let mut conn = w.state.pool.get().await.expect("conn");
    let user = audiencelens::users::default_owner(&mut conn).await.expect("owner");
    let account =
        accounts::find_or_create_account(&mut conn, user, &InstagramHandle::parse(handle).expect("handle"))
            .await
            .expect("account");
    let analysis =
        pipeline::start_analysis(&mut conn, &w.state.config, &account, "local").await.expect("start");
    drop(conn);
    drain_jobs(&w.state, Duration::from_mins(1)).await;
    analysis.id
}

/// The scrape stages' worker, to run one directly.
fn scraper(w: &World) -> audiencelens::scraping::plan::Scraper<'_> {
    audiencelens::scraping::plan::Scraper {
        pool: &w.state.pool,
        apify: w.state.clients.apify.as_ref().expect("apify"),
        settings: &w.state.config.settings.apify,
        privacy: &w.state.privacy,
        cancel: tokio_util::sync::CancellationToken::new(),
    }
}

async fn table_counts(db: &TestDb) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for t in
        ["posts", "comments", "ig_profiles", "profile_pictures", "picture_blobs", "tracked_account_posts"]
    {
        out.push((t, db.count(&format!("SELECT count(*) AS n FROM {t}")).await));
    }
    out
}

async fn analysis_row(w: &World, id: i64) -> audiencelens::analyses::Analysis {
    let mut conn = w.state.pool.get().await.expect("conn");
    audiencelens::analyses::get_analysis(&mut conn, id).await.expect("analysis")
}

#[tokio::test]
async fn a_scrape_lands_posts_comments_and_pictures_and_a_rerun_adds_nothing() {
    let w = world(&[]).await;
    let (alice, bob, carol, dan) = (
        stubs::picture_url(&w.cdn, "alice"),
        stubs::picture_url(&w.cdn, "bob"),
        stubs::picture_url(&w.cdn, "carol"),
        stubs::picture_url(&w.cdn, "dan"),
    );
    let default_avatar = format!(
        "{}/v/t51.2885-19/44884218_345707102882519_2446069589734326272_n.jpg?ig_cache_key=YW5vbnltb3VzX3Byb2ZpbGVfcGlj.2-ccb7-5&oe=FFFFFFFF",
        w.cdn.uri()
    );
    stubs::serve_picture(&w.cdn, "alice", 200, "image/jpeg", stubs::jpeg(150, 150, [200, 120, 90])).await;
    stubs::serve_picture(&w.cdn, "bob", 200, "image/jpeg", stubs::jpeg(150, 150, [20, 120, 90])).await;
    stubs::serve_picture(&w.cdn, "carol", 403, "text/plain", b"URL signature expired".to_vec()).await;
    stubs::serve_picture(&w.cdn, "dan", 200, "image/jpeg", b"<html>not a picture</html>".to_vec()).await;

    let c = |post, id, name: &str, uid, pic: &str| comment(post, id, name, uid, pic);
    let posts = vec![
        post("brand", 3_000_000_001, 20, 2, vec![c(3_000_000_001, 1, "alice", 11, &alice)]),
        post("brand", 3_000_000_002, 21, 3, vec![]),
        post("brand", 3_000_000_003, 22, 1, vec![c(3_000_000_003, 6, "eve", 15, &default_avatar)]),
    ];
    let comments = vec![
        c(3_000_000_001, 1, "alice", 11, &alice),
        c(3_000_000_001, 2, "bob", 12, &bob),
        c(3_000_000_002, 3, "alice", 11, &alice),
        c(3_000_000_002, 4, "carol", 13, &carol),
        c(3_000_000_002, 5, "dan", 14, &dan),
        c(3_000_000_003, 6, "eve", 15, &default_avatar),
    ];
    let post_starts = w.apify.actor("apify/instagram-scraper", "RUN-POSTS", posts).await;
    let comment_starts = w.apify.actor("apify/instagram-comment-scraper", "RUN-COMMENTS", comments).await;

    let first = analyse(&w, "brand").await;
    let a = analysis_row(&w, first).await;
    assert_eq!(
        (a.status.as_str(), a.stage.as_str(), a.error.as_deref()),
        ("succeeded", "done", None),
        "{a:?}"
    );
    assert_eq!(w.db.count("SELECT count(*) AS n FROM posts").await, 3);
    assert_eq!(w.db.count("SELECT count(*) AS n FROM comments").await, 6);
    assert_eq!(w.db.count("SELECT count(*) AS n FROM ig_profiles").await, 5);
    let status = |s: &'static str| {
        let db = &w.db;
        async move {
            db.count(&format!("SELECT count(*) AS n FROM profile_pictures WHERE fetch_status = '{s}'")).await
        }
    };
    assert_eq!(status("fetched").await, 2);
    assert_eq!(status("expired").await, 1);
    assert_eq!(status("rejected").await, 1);
    assert_eq!(status("default_avatar").await, 1);
    // Both fetched pictures were classified, and their bytes deleted right after.
    assert_eq!(w.db.count("SELECT count(*) AS n FROM classifications").await, 2);
    assert_eq!(w.db.count("SELECT count(*) AS n FROM picture_blobs").await, 0);
    let snapshot = a.snapshot.as_ref().expect("snapshot");
    assert_eq!(snapshot["sample"]["unique_commenters"], 5);
    assert_eq!(snapshot["sample"]["comments"], 6);
    let not_classified = &snapshot["sample"]["funnel"]["commenters"]["not_classified"];
    assert_eq!(not_classified["expired"], 1);
    assert_eq!(not_classified["unreadable"], 1);
    assert_eq!(snapshot["audience"]["classified"], 3, "2 pictures and 1 default avatar");
    assert_eq!(a.progress["posts_found"], 3, "the comment run's posts are not found twice");
    assert_eq!(a.progress["pictures_fetched"], 2);
    assert_eq!(a.cost_micro_usd, 2 * 12_300, "both runs' usageTotalUsd");
    assert_eq!((post_starts.get(), comment_starts.get()), (1, 1));

    // The same scrape again: nothing new, and no comment run (no post gained comments).
    let before = table_counts(&w.db).await;
    let second = analyse(&w, "brand").await;
    assert_eq!(before, table_counts(&w.db).await);
    assert_eq!((post_starts.get(), comment_starts.get()), (2, 1));
    assert_eq!(analysis_row(&w, second).await.stage, "done");
    // The second posts run asked only for posts newer than the newest stored.
    let requests = w.apify.server.received_requests().await.expect("recorded");
    let post_runs: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path() == "/v2/acts/apify~instagram-scraper/runs")
        .map(|r| serde_json::from_slice(&r.body).expect("json body"))
        .collect();
    assert_eq!(post_runs[0].get("onlyPostsNewerThan"), None);
    assert_eq!(post_runs[1]["onlyPostsNewerThan"], "2026-11-22");
    assert_eq!(post_runs[1]["resultsType"], "posts");
    assert_eq!(post_runs[1]["directUrls"], json!(["https://www.instagram.com/brand/"]));
    let start =
        requests.iter().find(|r| r.url.path() == "/v2/acts/apify~instagram-scraper/runs").expect("start");
    assert_eq!(start.url.query(), Some("maxItems=12&maxTotalChargeUsd=5"));
}

#[tokio::test]
async fn an_incremental_run_adds_only_the_new_post_and_its_comments() {
    let w = world(&[]).await;
    let pic = stubs::picture_url(&w.cdn, "p");
    stubs::serve_picture(&w.cdn, "p", 200, "image/jpeg", stubs::jpeg(64, 64, [1, 2, 3])).await;
    w.apify.actor("apify/instagram-scraper", "R1", vec![post("shop", 5_000_001, 1, 1, vec![])]).await;
    w.apify
        .actor("apify/instagram-comment-scraper", "R2", vec![comment(5_000_001, 101, "ann", 1, &pic)])
        .await;
    analyse(&w, "shop").await;
    assert_eq!(w.db.count("SELECT count(*) AS n FROM comments").await, 1);

    w.apify.reset().await;
    w.apify.actor("apify/instagram-scraper", "R3", vec![post("shop", 5_000_002, 2, 2, vec![])]).await;
    w.apify
        .actor(
            "apify/instagram-comment-scraper",
            "R4",
            vec![comment(5_000_002, 102, "ann", 1, &pic), comment(5_000_002, 103, "ben", 2, &pic)],
        )
        .await;
    analyse(&w, "shop").await;
    assert_eq!(w.db.count("SELECT count(*) AS n FROM posts").await, 2);
    assert_eq!(w.db.count("SELECT count(*) AS n FROM comments").await, 3);
    assert_eq!(w.db.count("SELECT count(*) AS n FROM ig_profiles").await, 2);
    // Only the new post's comments were asked for.
    let requests = w.apify.server.received_requests().await.expect("recorded");
    let run: Value = requests
        .iter()
        .find(|r| r.url.path() == "/v2/acts/apify~instagram-comment-scraper/runs")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .expect("comment run");
    assert_eq!(run["directUrls"], json!([format!("https://www.instagram.com/p/{}/", shortcode(5_000_002))]));
    assert_eq!(run["resultsLimit"], 50);
}

/// A world with profile refresh on: `handle` has one post, `post_id`, commented on once by
/// each of `commenters` (comment id, username, user id), and the profile scraper answers
/// `profiles`. Returns the world and a counter of profile-scraper runs.
async fn profile_refresh_world(
    handle: &str,
    post_id: u64,
    commenters: &[(u64, &str, u64)],
    profiles: Vec<Value>,
) -> (World, Counter) {
    let w = world(&[("AUDIENCELENS__APIFY__REFRESH_PROFILES", "true")]).await;
    let pic = stubs::picture_url(&w.cdn, handle);
    stubs::serve_picture(&w.cdn, handle, 200, "image/jpeg", stubs::jpeg(64, 64, [9, 9, 9])).await;
    w.apify
        .actor("apify/instagram-scraper", &format!("P-{handle}"), vec![post(handle, post_id, 3, 2, vec![])])
        .await;
    let comments = commenters.iter().map(|(id, name, uid)| comment(post_id, *id, name, *uid, &pic)).collect();
    w.apify.actor("apify/instagram-comment-scraper", &format!("C-{handle}"), comments).await;
    let runs = w.apify.actor("apify/instagram-profile-scraper", &format!("PR-{handle}"), profiles).await;
    (w, runs)
}

#[tokio::test]
async fn with_profile_refresh_on_commenters_get_their_flags_from_the_profile_scraper() {
    let (w, profiles) = profile_refresh_world(
        "flags",
        6_000_001,
        &[(201, "ada", 31), (202, "bo", 32)],
        vec![
            json!({"id": "31", "username": "ada", "fullName": "Ada", "private": true, "verified": false,
                   "isBusinessAccount": false, "followersCount": 10, "biography": "never stored"}),
            // A profile item carries the commenter's own latest posts.
            json!({"id": "32", "username": "bo", "private": false, "verified": true, "isBusinessAccount": true,
                   "latestPosts": [post("bo", 6_100_001, 2, 0, vec![])]}),
        ],
    )
    .await;
    let id = analyse(&w, "flags").await;
    let row = analysis_row(&w, id).await;
    assert_eq!(row.status, "succeeded");
    // The analysis counts the account's posts and comments, not those of its commenters' profiles.
    assert_eq!(row.progress["posts_found"], 1, "{}", row.progress);
    assert_eq!(row.progress["comments_stored"], 2, "{}", row.progress);
    assert_eq!(profiles.get(), 1);
    assert_eq!(w.db.count("SELECT count(*) AS n FROM ig_profiles WHERE username = 'ada' AND is_private AND full_name = 'Ada'").await, 1);
    assert_eq!(
        w.db.count(
            "SELECT count(*) AS n FROM ig_profiles WHERE username = 'bo' AND is_verified AND is_business"
        )
        .await,
        1
    );
    // The private account's picture was not downloaded (classify_private_accounts is off).
    assert_eq!(
        w.db.count("SELECT count(*) AS n FROM profile_pictures pp JOIN ig_profiles p ON p.id = pp.ig_profile_id WHERE p.username = 'ada' AND pp.fetch_status = 'pending'").await,
        1
    );
    let requests = w.apify.server.received_requests().await.expect("recorded");
    let run: Value = requests
        .iter()
        .find(|r| r.url.path() == "/v2/acts/apify~instagram-profile-scraper/runs")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .expect("profile run");
    assert_eq!(run["usernames"], json!(["ada", "bo"]));
    // A second analysis right away does not pay for the same profiles again.
    analyse(&w, "flags").await;
    assert_eq!(profiles.get(), 1);
}

/// Two attempts of the same scrape at once (a stalled worker's job handed to another): one
/// Apify run is started and waited for by both, its items stored and its cost counted once.
#[tokio::test]
async fn duplicate_attempts_share_one_paid_run_and_count_it_once() {
    let w = world(&[]).await;
    let starts = Counter::default();
    let actor = "apify/instagram-scraper";
    // Apify takes a moment to answer the start, so both attempts are in flight together.
    Mock::given(method("POST"))
        .and(path(format!("/v2/acts/{}/runs", actor.replace('/', "~"))))
        .respond_with(CountingDelayed(
            starts.clone(),
            ResponseTemplate::new(201)
                .set_body_json(stubs::run_object("RUN-ONCE", "RUNNING"))
                .set_delay(Duration::from_millis(400)),
        ))
        .with_priority(1)
        .mount(&w.apify.server)
        .await;
    w.apify.run_ends("RUN-ONCE", "SUCCEEDED").await;
    w.apify.dataset("DS-RUN-ONCE", vec![post("twice", 7_000_001, 3, 0, vec![])]).await;
    let mut conn = w.state.pool.get().await.expect("conn");
    let user = audiencelens::users::default_owner(&mut conn).await.expect("owner");
    let account =
        accounts::find_or_create_account(&mut conn, user, &InstagramHandle::parse("twice").expect("handle"))
            .await
            .expect("account");
    let analysis =
        audiencelens::analyses::create_analysis(&mut conn, account.id, "local").await.expect("analysis");
    drop(conn);
    let plan = audiencelens::scraping::runs::RunPlan {
        analysis_id: analysis.id,
        purpose: "posts",
        actor,
        input: json!({"directUrls": ["https://www.instagram.com/twice/"]}),
        max_items: 10,
        max_charge_usd: 1.0,
        account: &account,
        source: audiencelens::scraping::intake::Source::Account,
    };
    let apify = w.state.clients.apify.as_ref().expect("apify client");
    let cancel = tokio_util::sync::CancellationToken::new();
    let attempt = || {
        audiencelens::scraping::runs::run_and_store(&w.state.pool, apify, &w.state.privacy, &plan, &cancel)
    };
    let (a, b) = tokio::join!(attempt(), attempt());
    let (a, b) = (a.expect("first attempt"), b.expect("second attempt"));
    assert_eq!(starts.get(), 1, "one run started");
    assert_eq!([a.already_stored, b.already_stored].iter().filter(|s| **s).count(), 1, "stored once");
    let row = analysis_row(&w, analysis.id).await;
    assert_eq!(row.cost_micro_usd, 12_300, "0.0123 USD counted once");
    // Counted by the store itself, once: nothing is left for a caller to count (or to lose).
    assert_eq!(row.progress["posts_found"], 1, "{}", row.progress);
    assert_eq!(w.db.count("SELECT count(*) AS n FROM posts").await, 1);

    // A run that failed earlier: both attempts see it, one starts the replacement, and nobody
    // waits on the dead run (the stub does not know it).
    w.db.execute(&format!(
        "INSERT INTO apify_runs (analysis_id, purpose, actor, input, run_id, status)
         VALUES ({}, 'again', '{actor}', '{{}}', 'RUN-DEAD', 'failed')",
        analysis.id
    ))
    .await;
    let again = audiencelens::scraping::runs::RunPlan { purpose: "again", ..plan.clone() };
    let attempt = || {
        audiencelens::scraping::runs::run_and_store(&w.state.pool, apify, &w.state.privacy, &again, &cancel)
    };
    // The second comes while the first is starting the replacement.
    let (a, b) = tokio::join!(attempt(), async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        attempt().await
    });
    a.expect("first attempt");
    b.expect("second attempt");
    assert_eq!(starts.get(), 2, "one replacement run");
    // A claim left by an attempt that died before recording its run expires: the next one
    // starts the run.
    w.db.execute(&format!(
        "INSERT INTO apify_runs (analysis_id, purpose, actor, input, status, launch_started_at)
         VALUES ({}, 'abandoned', '{actor}', '{{}}', 'launching', now() - interval '11 minutes')",
        analysis.id
    ))
    .await;
    let abandoned = audiencelens::scraping::runs::RunPlan { purpose: "abandoned", ..plan.clone() };
    let outcome = audiencelens::scraping::runs::run_and_store(
        &w.state.pool,
        apify,
        &w.state.privacy,
        &abandoned,
        &cancel,
    )
    .await
    .expect("abandoned claim taken over");
    assert!(!outcome.already_stored);
    assert_eq!(starts.get(), 3);
    assert_eq!(w.db.count("SELECT count(*) AS n FROM apify_runs WHERE status = 'stored'").await, 3);
}

/// A planned profile chunk leaves out people erased after it was planned: their handle is not
/// sent to the scraper.
#[tokio::test]
async fn a_planned_profile_chunk_does_not_ask_about_people_erased_since() {
    let w = world(&[("AUDIENCELENS__APIFY__REFRESH_PROFILES", "true")]).await;
    let profiles = w.apify.actor("apify/instagram-profile-scraper", "PR3", vec![]).await;
    let mut conn = w.state.pool.get().await.expect("conn");
    let user = audiencelens::users::default_owner(&mut conn).await.expect("owner");
    let account = accounts::find_or_create_account(
        &mut conn,
        user,
        &InstagramHandle::parse("planned").expect("handle"),
    )
    .await
    .expect("account");
    let analysis =
        audiencelens::analyses::create_analysis(&mut conn, account.id, "local").await.expect("analysis");
    w.db.execute(&format!(
        "INSERT INTO apify_runs (analysis_id, purpose, actor, input)
         VALUES ({}, 'profiles:planned', 'apify/instagram-profile-scraper',
                 '{{\"usernames\": [\"kept.one\", \"erased.one\"], \"includeAboutSection\": false}}')",
        analysis.id
    ))
    .await;
    audiencelens::privacy::erase::erase(&mut conn, &w.state.privacy, "erased.one", "test")
        .await
        .expect("erase");
    drop(conn);
    let scraper = scraper(&w);
    scraper.scrape_profiles(analysis.id, &account).await.expect("profiles");
    assert_eq!(profiles.get(), 1);
    let requests = w.apify.server.received_requests().await.expect("recorded");
    let run: Value = requests
        .iter()
        .find(|r| r.url.path() == "/v2/acts/apify~instagram-profile-scraper/runs")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .expect("profile run");
    assert_eq!(run["usernames"], json!(["kept.one"]));
}

struct CountingDelayed(Counter, ResponseTemplate);

impl wiremock::Respond for CountingDelayed {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        self.0.bump();
        self.1.clone()
    }
}

/// A retry of the profile stage works through the chunks its first attempt planned: a username
/// the actor did not return does not make a new chunk, and nothing is bought twice.
#[tokio::test]
async fn a_retried_profile_stage_buys_no_profile_twice() {
    // The second commenter's account is gone: the profile scraper returns only the first.
    let (w, profiles) = profile_refresh_world(
        "gone",
        6_100_001,
        &[(301, "cy", 41), (302, "deleted.user", 42)],
        vec![json!({"id": "41", "username": "cy", "private": false, "verified": false, "isBusinessAccount": false})],
    )
    .await;
    let id = analyse(&w, "gone").await;
    assert_eq!(analysis_row(&w, id).await.status, "succeeded");
    assert_eq!(profiles.get(), 1);
    // The stage runs again for the same analysis (a retry after a crash past its last run).
    let mut conn = w.state.pool.get().await.expect("conn");
    let account_id = w.db.count("SELECT id AS n FROM tracked_accounts WHERE handle = 'gone'").await;
    let account = accounts::get_account(&mut conn, account_id).await.expect("account");
    drop(conn);
    let scraper = scraper(&w);
    let outcomes = scraper.scrape_profiles(id, &account).await.expect("profiles");
    assert!(outcomes.iter().all(|o| o.already_stored), "the planned chunk was stored already");
    assert_eq!(profiles.get(), 1, "no second run for the username that never came back");
}

/// A tracked account whose owner was erased is not scraped: the run would only be paid for and
/// dropped. The analysis fails with the reason.
#[tokio::test]
async fn an_erased_owners_account_is_not_scraped() {
    let w = world(&[]).await;
    let runs = w
        .apify
        .actor("apify/instagram-scraper", "P-gone", vec![post("gone.owner", 7_000_001, 3, 0, vec![])])
        .await;
    let mut conn = w.state.pool.get().await.expect("conn");
    audiencelens::privacy::erase::erase(&mut conn, &w.state.privacy, "@Gone.Owner", "test")
        .await
        .expect("erase");
    drop(conn);
    let id = analyse(&w, "gone.owner").await;
    let row = analysis_row(&w, id).await;
    assert_eq!(row.status, "failed");
    assert!(row.error.as_deref().is_some_and(|e| e.contains("erased at their request")), "{:?}", row.error);
    assert_eq!(runs.get(), 0, "no run bought");
    assert_eq!(w.db.count("SELECT count(*) AS n FROM posts").await, 0);
}
