//! Privacy by construction: erasure that sticks, retention from first collection, access
//! requests, and no special categories anywhere.

use std::path::Path;

use audiencelens::app::AppState;
use audiencelens::privacy::retention;

use crate::helpers::{TestDb, run_cli};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apify").join(name).display().to_string()
}

async fn import(db: &TestDb, files: &[&str]) -> serde_json::Value {
    let mut args = vec!["import", "--account", "lumen.atelier", "--json"];
    args.extend_from_slice(files);
    let (code, out, err) = run_cli(db, &args, &[]).await;
    assert_eq!(code, 0, "{err}");
    let reports: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    serde_json::json!(reports)
}

/// Every row of every table, as text: where a person could hide.
async fn everything(db: &TestDb) -> String {
    let tables = [
        "users",
        "api_keys",
        "tracked_accounts",
        "posts",
        "tracked_account_posts",
        "ig_profiles",
        "comments",
        "profile_pictures",
        "picture_blobs",
        "classifications",
        "analyses",
        "apify_runs",
        "jobs",
        "audit_log",
        "suppressions",
    ];
    let mut all = String::new();
    for t in tables {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            r: String,
        }
        use diesel_async::RunQueryDsl;
        let mut conn = db.conn().await;
        let rows: Vec<Row> =
            diesel::sql_query(format!("SELECT t::text AS r FROM {t} t")).load(&mut conn).await.expect("dump");
        for row in rows {
            all.push_str(&row.r);
            all.push('\n');
        }
    }
    all
}

#[tokio::test]
async fn an_erased_person_is_gone_everywhere_and_stays_gone() {
    let db = TestDb::new().await;
    import(&db, &[&fixture("posts.json"), &fixture("comments.jsonl")]).await;
    // A stored picture and a classification of it, shared with nobody else.
    db.execute("INSERT INTO picture_blobs (content_sha256, bytes) VALUES ('\\x01', '\\xffd8ff')").await;
    db.execute(
        "UPDATE profile_pictures SET fetch_status = 'fetched', content_sha256 = '\\x01'
         WHERE ig_profile_id = (SELECT id FROM ig_profiles WHERE username = 'juniper.reads')",
    )
    .await;
    db.execute(
        "INSERT INTO classifications (content_sha256, model_version, source_model, profile_type)
         VALUES ('\\x01', 'test', 'local', 'person')",
    )
    .await;
    // A profile run that asked Apify about them (and someone else).
    db.execute(
        "INSERT INTO analyses (tracked_account_id, status, stage, classifier)
         SELECT id, 'succeeded', 'done', 'local' FROM tracked_accounts LIMIT 1",
    )
    .await;
    db.execute(
        "INSERT INTO apify_runs (analysis_id, purpose, actor, input, status)
         SELECT id, 'profiles:0', 'apify/instagram-profile-scraper', '{\"usernames\": [\"Juniper.Reads\", \"other.fan\"]}', 'stored'
         FROM analyses LIMIT 1",
    )
    .await;
    // A mention at the end of a sentence, by someone else.
    db.execute(
        "INSERT INTO comments (ig_comment_id, post_id, ig_profile_id, body)
         SELECT 'mention-dot', post_id, ig_profile_id, 'thanks @juniper.reads.' FROM comments
         WHERE ig_profile_id <> (SELECT id FROM ig_profiles WHERE username = 'juniper.reads') LIMIT 1",
    )
    .await;
    let before = everything(&db).await;
    assert!(before.contains("Juniper.Reads") && before.contains("7001"));

    let (code, out, err) = run_cli(&db, &["privacy", "erase", "@Juniper.Reads"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("erased @juniper.reads"), "{out}");
    let after = everything(&db).await;
    assert!(!after.to_lowercase().contains("juniper.reads"), "the handle survives somewhere");
    assert!(!after.contains("\"7001\"") && !after.contains(",7001,"), "the Instagram id survives somewhere");
    // Other people's replies to them stay (unlinked), their mention redacted.
    assert_eq!(db.count("SELECT count(*) AS n FROM comments WHERE body = '@[erased] same!'").await, 3);
    assert_eq!(db.count("SELECT count(*) AS n FROM comments WHERE body = 'thanks @[erased].'").await, 1);
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0);
    assert_eq!(db.count("SELECT count(*) AS n FROM classifications").await, 0);
    assert_eq!(db.count("SELECT count(*) AS n FROM audit_log WHERE action = 'erase'").await, 1);
    assert_eq!(
        db.count("SELECT count(*) AS n FROM apify_runs WHERE input->'usernames' = '[\"other.fan\"]'").await,
        1,
        "only their name left the recorded request"
    );

    // Importing them again stores nothing about them and says so.
    let reports = import(&db, &[&fixture("posts.json"), &fixture("comments.jsonl")]).await;
    assert_eq!(reports[0]["suppressed"], 3, "{reports}");
    assert_eq!(reports[1]["suppressed"], 1, "{reports}");
    assert!(!everything(&db).await.to_lowercase().contains("juniper.reads"));
    assert_eq!(db.count("SELECT count(*) AS n FROM audit_log").await, 1, "one entry for one erasure");
}

#[tokio::test]
async fn an_access_request_lists_what_is_held() {
    let db = TestDb::new().await;
    import(&db, &[&fixture("comments.jsonl")]).await;
    let (code, out, err) = run_cli(&db, &["privacy", "export", "quiet.harbor"], &[]).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["profiles"][0]["username"], "quiet.harbor");
    assert_eq!(v["comments"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["suppressed"], false);
    assert_eq!(db.count("SELECT count(*) AS n FROM audit_log WHERE action = 'access_export'").await, 1);
}

#[tokio::test]
async fn retention_runs_from_first_collection_and_spares_snapshots() {
    let db = TestDb::new().await;
    import(&db, &[&fixture("posts.json")]).await;
    db.execute(
        "UPDATE ig_profiles SET collected_at = now() - interval '80 days' WHERE username = 'marble_and_moss'",
    )
    .await;
    db.execute("UPDATE comments SET collected_at = now() - interval '80 days'").await;
    // Scraping the person again does not renew their data.
    import(&db, &[&fixture("posts.json")]).await;
    assert_eq!(
        db.count("SELECT count(*) AS n FROM ig_profiles WHERE username = 'marble_and_moss' AND collected_at < now() - interval '79 days'").await,
        1
    );
    db.execute(
        "UPDATE ig_profiles SET collected_at = now() - interval '91 days' WHERE username = 'marble_and_moss'",
    )
    .await;
    db.execute("UPDATE comments SET collected_at = now() - interval '91 days' WHERE ig_profile_id = (SELECT id FROM ig_profiles WHERE username = 'juniper.reads')").await;
    db.execute(
        "INSERT INTO analyses (tracked_account_id, status, stage, snapshot, finished_at)
         SELECT id, 'succeeded', 'done', '{\"unique_commenters\": 3}', now() - interval '120 days' FROM tracked_accounts",
    )
    .await;
    // Profile runs' recorded requests: one past retention, one recent.
    db.execute(
        "INSERT INTO apify_runs (analysis_id, purpose, actor, input, status, created_at)
         SELECT id, p.purpose, 'apify/instagram-profile-scraper', '{\"usernames\": [\"juniper.reads\"]}', 'stored', p.at
         FROM analyses, (VALUES ('profiles:0', now() - interval '91 days'), ('profiles:1', now())) AS p(purpose, at)",
    )
    .await;
    let comments_before = db.count("SELECT count(*) AS n FROM comments").await;

    // The cron job kind, run through the queue.
    let state = AppState::build(db.config(&[])).expect("state");
    {
        use audiencelens::queue::{self, NewJob};
        let mut conn = db.conn().await;
        let job = NewJob::new(&audiencelens::jobs::purge::PurgeRetention {}, 3).expect("job");
        queue::enqueue_one(&mut conn, job).await.expect("enqueue");
    }
    crate::helpers::drain_jobs(&state, std::time::Duration::from_secs(30)).await;
    assert_eq!(
        db.count("SELECT count(*) AS n FROM jobs WHERE kind = 'purge_retention' AND status = 'succeeded'")
            .await,
        1
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM ig_profiles WHERE username = 'marble_and_moss'").await, 0);
    assert_eq!(
        db.count("SELECT count(*) AS n FROM ig_profiles WHERE username = 'juniper.reads'").await,
        1,
        "collected recently"
    );
    assert_eq!(
        db.count("SELECT count(*) AS n FROM comments").await,
        comments_before - 3 - 3,
        "3 by marble, 3 old by juniper"
    );
    assert_eq!(
        db.count("SELECT count(*) AS n FROM analyses WHERE snapshot IS NOT NULL").await,
        1,
        "snapshots stay"
    );
    assert_eq!(
        db.count("SELECT count(*) AS n FROM apify_runs WHERE input ? 'usernames'").await,
        1,
        "the old request's usernames went, the recent one's stay"
    );

    // Nothing left to purge: a second pass deletes nothing.
    let mut conn = db.conn().await;
    let again =
        retention::purge_expired(&mut conn, std::time::Duration::from_hours(2160), 2).await.expect("purge");
    assert_eq!(again, retention::PurgeReport::default());
}

/// Words that must never name a field, column, prompt or output: AudienceLens does not infer
/// special categories of personal data.
const FORBIDDEN: &[&str] = &[
    "race",
    "racial",
    "ethnicity",
    "ethnic",
    "skin",
    "religion",
    "religious",
    "health",
    "disability",
    "sexual",
    "orientation",
    "political",
    "politics",
    "nationality",
];

pub(crate) fn forbidden_in(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .filter(|w| FORBIDDEN.contains(&w.as_str()))
        .collect()
}

#[test]
fn no_special_category_appears_in_schema_or_api() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![root.join("src/db/schema.rs"), root.join("config.toml")];
    for dir in std::fs::read_dir(root.join("migrations")).expect("migrations").flatten() {
        sources.push(dir.path().join("up.sql"));
    }
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let found = forbidden_in(&text);
        assert!(found.is_empty(), "{}: {found:?}", path.display());
    }
    use utoipa::OpenApi;
    let doc = serde_json::to_string(&audiencelens::http::openapi::ApiDoc::openapi()).expect("doc");
    assert_eq!(forbidden_in(&doc), Vec::<String>::new());
    // The check itself works.
    assert_eq!(forbidden_in("{\"ethnicity\": 1, \"trace\": 2}"), vec!["ethnicity"]);
}

/// One tracked account per handle in `accounts`, each with post `P<i>` commented on by every
/// one of `fans` (ids 9000+); each fan's picture is `pending` at `url(fan)`. Returns the
/// accounts' ids.
async fn accounts_sharing_fans(
    db: &TestDb,
    accounts: &[&str],
    fans: &[&str],
    url: &dyn Fn(&str) -> String,
) -> Vec<i64> {
    db.execute("INSERT INTO users (email, password_hash) VALUES ('p@example.com', '!')").await;
    let mut ids = Vec::new();
    for (i, handle) in accounts.iter().enumerate() {
        db.execute(&format!(
            "WITH t AS (INSERT INTO tracked_accounts (user_id, handle) SELECT id, '{handle}' FROM users RETURNING id),
                  p AS (INSERT INTO posts (ig_post_id, owner_username) VALUES ('P{i}', '{handle}') RETURNING id)
             INSERT INTO tracked_account_posts (tracked_account_id, post_id) SELECT t.id, p.id FROM t, p"
        ))
        .await;
        ids.push(db.count(&format!("SELECT id AS n FROM tracked_accounts WHERE handle = '{handle}'")).await);
    }
    for (i, fan) in fans.iter().enumerate() {
        db.execute(&format!(
            "WITH p AS (INSERT INTO ig_profiles (ig_user_id, username) VALUES ('{id}', '{fan}') RETURNING id),
                  c AS (INSERT INTO comments (ig_comment_id, post_id, ig_profile_id)
                        SELECT 'C{i}-' || posts.id, posts.id, p.id FROM p, posts)
             INSERT INTO profile_pictures (ig_profile_id, source_url, source_path, fetch_status)
             SELECT id, '{url}', '{url}', 'pending' FROM p",
            id = 9_000 + i,
            url = url(fan)
        ))
        .await;
    }
    ids
}

fn picture_client() -> (audiencelens::clients::pictures::PictureClient, audiencelens::config::PictureSettings)
{
    let config = crate::stubs::local_picture_config(&[]);
    let client =
        audiencelens::clients::pictures::PictureClient::new(&config.settings.pictures).expect("client");
    (client, config.settings.pictures.clone())
}

fn fetch_in_background(
    db: &TestDb,
    account: i64,
) -> tokio::task::JoinHandle<audiencelens::profiles::fetch::FetchReport> {
    let pool = db.pool.clone();
    let (client, settings) = picture_client();
    tokio::spawn(async move {
        // An analysis of the account covering its posts: its commenters' pictures are fetched.
        let mut conn = pool.get().await.expect("conn");
        let analysis =
            audiencelens::analyses::create_analysis(&mut conn, account, "local").await.expect("analysis");
        audiencelens::analyses::cover_latest_posts(&mut conn, analysis.id, account, 12).await.expect("cover");
        drop(conn);
        let audience =
            audiencelens::profiles::fetch::Audience { account_id: account, analysis_id: analysis.id };
        audiencelens::profiles::fetch::fetch_account_pictures(
            &pool,
            &client,
            &settings,
            audience,
            false,
            |_| async { Ok(()) },
        )
        .await
        .expect("fetch")
    })
}

async fn until_requested(server: &wiremock::MockServer) {
    crate::helpers::eventually(std::time::Duration::from_secs(10), "the picture is requested", || async {
        !server.received_requests().await.unwrap_or_default().is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_person_erased_while_their_picture_downloads_leaves_no_bytes() {
    let db = TestDb::new().await;
    let server = wiremock::MockServer::start().await;
    let url = |fan: &str| crate::stubs::picture_url(&server, fan);
    let account = accounts_sharing_fans(&db, &["brand.one"], &["late.fan"], &url).await[0];
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .insert_header("content-type", "image/jpeg")
                .set_body_bytes(crate::stubs::jpeg(64, 64, [200, 120, 90]))
                .set_delay(std::time::Duration::from_millis(800)),
        )
        .mount(&server)
        .await;
    let fetch = fetch_in_background(&db, account);
    until_requested(&server).await;
    let key = audiencelens::privacy::PrivacyKey::new(None);
    let report = audiencelens::privacy::erase::erase(&mut *db.conn().await, &key, "late.fan", "test")
        .await
        .expect("erase");
    assert_eq!(report.profiles, 1);
    let fetched = fetch.await.expect("fetch task");
    assert_eq!(fetched.fetched, 0, "{fetched:?}");
    assert_eq!(
        db.count("SELECT count(*) AS n FROM picture_blobs").await,
        0,
        "the erased person's bytes were stored"
    );
    assert!(!everything(&db).await.contains("late.fan"));
}

#[tokio::test]
async fn a_failed_duplicate_download_does_not_undo_a_fetched_picture() {
    let db = TestDb::new().await;
    let server = wiremock::MockServer::start().await;
    let url = |fan: &str| crate::stubs::picture_url(&server, fan);
    let account = accounts_sharing_fans(&db, &["brand.one"], &["shared.fan"], &url).await[0];
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(404).set_delay(std::time::Duration::from_millis(800)))
        .mount(&server)
        .await;
    let fetch = fetch_in_background(&db, account);
    until_requested(&server).await;
    // Another account's fetch job got the same picture first.
    db.execute("INSERT INTO picture_blobs (content_sha256, bytes) VALUES ('\\x02', '\\xffd8ff')").await;
    db.execute("UPDATE profile_pictures SET fetch_status = 'fetched', content_sha256 = '\\x02'").await;
    let fetched = fetch.await.expect("fetch task");
    assert_eq!((fetched.fetched, fetched.rejected, fetched.expired), (0, 0, 0), "{fetched:?}");
    assert_eq!(
        db.count("SELECT count(*) AS n FROM profile_pictures WHERE fetch_status = 'fetched'").await,
        1
    );
}

#[tokio::test]
async fn an_erasure_waits_for_a_store_that_read_the_suppression_list_before_it() {
    use diesel_async::AsyncConnection;
    let db = TestDb::new().await;
    accounts_sharing_fans(&db, &["brand.one"], &["early.fan"], &|f| format!("https://cdn.example/{f}")).await;
    let pool = db.pool.clone();
    let mut writer = db.conn().await;
    writer
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            // An importer past its suppression check, storing a new comment by the person.
            audiencelens::privacy::hold_off_erasure(conn).await?;
            let erase = tokio::spawn(async move {
                let key = audiencelens::privacy::PrivacyKey::new(None);
                let mut conn = pool.get().await.expect("connection");
                audiencelens::privacy::erase::erase(&mut conn, &key, "early.fan", "test").await.expect("erase")
            });
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            assert!(!erase.is_finished(), "the erasure ran beside a store it cannot see");
            use diesel_async::RunQueryDsl;
            diesel::sql_query(
                "INSERT INTO comments (ig_comment_id, post_id, ig_profile_id, body)
                 SELECT 'late', (SELECT min(id) FROM posts), id, 'hello' FROM ig_profiles WHERE username = 'early.fan'",
            )
            .execute(conn)
            .await?;
            Ok(erase)
        })
        .await
        .expect("store")
        .await
        .expect("erase task");
    assert_eq!(
        db.count("SELECT count(*) AS n FROM comments").await,
        0,
        "the late comment survived the erasure"
    );
    assert!(!everything(&db).await.contains("early.fan"));
}

#[tokio::test]
async fn shared_picture_bytes_are_kept_while_another_analysis_may_send_them_to_gemini() {
    use audiencelens::insights::classify::release_bytes;
    let db = TestDb::new().await;
    let ids = accounts_sharing_fans(&db, &["local.brand", "gemini.brand"], &["both.fan"], &|f| {
        format!("https://cdn.example/{f}")
    })
    .await;
    db.execute("INSERT INTO picture_blobs (content_sha256, bytes) VALUES ('\\x03', '\\xffd8ff')").await;
    db.execute("UPDATE profile_pictures SET fetch_status = 'fetched', content_sha256 = '\\x03'").await;
    db.execute(&format!(
        "INSERT INTO analyses (tracked_account_id, status, stage, classifier) VALUES ({}, 'running', 'classify', 'gemini')",
        ids[1]
    ))
    .await;
    let hash = vec![vec![3_u8]];
    let blobs = "SELECT count(*) AS n FROM picture_blobs";
    // The local analysis is done with it; the Gemini one is not.
    assert_eq!(release_bytes(&mut *db.conn().await, &hash, ids[0]).await.expect("release"), 0);
    assert_eq!(db.count(blobs).await, 1);
    // The Gemini analysis itself may let go of them.
    assert_eq!(release_bytes(&mut *db.conn().await, &hash, ids[1]).await.expect("release"), 1);
    db.execute("INSERT INTO picture_blobs (content_sha256, bytes) VALUES ('\\x03', '\\xffd8ff')").await;
    // Once Gemini has answered, or the analysis has finished, nobody needs them.
    db.execute(
        "INSERT INTO classifications (content_sha256, model_version, source_model, profile_type)
         VALUES ('\\x03', 'gemini-test', 'gemini', 'person')",
    )
    .await;
    assert_eq!(release_bytes(&mut *db.conn().await, &hash, ids[0]).await.expect("release"), 1);
    db.execute("INSERT INTO picture_blobs (content_sha256, bytes) VALUES ('\\x03', '\\xffd8ff')").await;
    db.execute("DELETE FROM classifications").await;
    db.execute("UPDATE analyses SET stage = 'aggregate'").await;
    assert_eq!(
        release_bytes(&mut *db.conn().await, &hash, ids[0]).await.expect("release"),
        1,
        "past classifying, it needs no picture"
    );
    db.execute("INSERT INTO picture_blobs (content_sha256, bytes) VALUES ('\\x03', '\\xffd8ff')").await;
    db.execute("UPDATE analyses SET stage = 'classify', status = 'succeeded'").await;
    assert_eq!(release_bytes(&mut *db.conn().await, &hash, ids[0]).await.expect("release"), 1);
    assert_eq!(db.count(blobs).await, 0);
    // A local analysis still fetching needs a picture nobody has classified, not one classified.
    db.execute("INSERT INTO picture_blobs (content_sha256, bytes) VALUES ('\\x03', '\\xffd8ff')").await;
    db.execute("UPDATE analyses SET stage = 'fetch_pictures', status = 'running', classifier = 'local'")
        .await;
    assert_eq!(release_bytes(&mut *db.conn().await, &hash, ids[0]).await.expect("release"), 0);
    db.execute(
        "INSERT INTO classifications (content_sha256, model_version, source_model, profile_type)
         VALUES ('\\x03', 'local-test', 'local', 'person')",
    )
    .await;
    assert_eq!(release_bytes(&mut *db.conn().await, &hash, ids[0]).await.expect("release"), 1);
}

#[tokio::test]
async fn retention_keeps_a_result_a_newer_profile_still_shows() {
    let db = TestDb::new().await;
    accounts_sharing_fans(&db, &["brand.one"], &["new.fan"], &|f| format!("https://cdn.example/{f}")).await;
    db.execute("UPDATE profile_pictures SET fetch_status = 'fetched', content_sha256 = '\\x04'").await;
    db.execute(
        "INSERT INTO classifications (content_sha256, model_version, source_model, profile_type, created_at)
         VALUES ('\\x04', 'test', 'local', 'person', now() - interval '200 days'),
                ('\\x05', 'test', 'local', 'person', now() - interval '200 days')",
    )
    .await;
    let report =
        retention::purge_expired(&mut *db.conn().await, std::time::Duration::from_hours(90 * 24), 100)
            .await
            .expect("purge");
    assert_eq!(report.classifications, 1, "{report:?}");
    assert_eq!(db.count("SELECT count(*) AS n FROM classifications WHERE content_sha256 = '\\x04'").await, 1);
}

#[tokio::test]
async fn an_erased_persons_own_posts_and_the_comments_on_them_are_not_stored_again() {
    use crate::scrape::{comment, post, shortcode};
    let db = TestDb::new().await;
    let (code, _, err) = run_cli(&db, &["privacy", "erase", "@late.poster"], &[]).await;
    assert_eq!(code, 0, "{err}");
    let (theirs, others) = (3_600_000_000_000_000_001, 3_600_000_000_000_000_002);
    let pic = "https://cdn.example/kind.reader.jpg";
    // A profile export of theirs: the profile carries their latest post, commented by someone else.
    let their_post = post(
        "late.poster",
        theirs,
        20,
        1,
        vec![comment(theirs, 18_100_000_000_000_001, "kind.reader", 77, pic)],
    );
    // Someone else's post, where a comment mentions them.
    let mut mention = comment(others, 18_100_000_000_000_002, "kind.reader", 77, pic);
    mention["text"] = serde_json::json!("@Late.Poster would love this");
    let other_post = post("lumen.atelier", others, 20, 1, vec![mention]);
    let file = std::env::temp_dir().join(format!("{}-erased-profile.json", db.name));
    let export = serde_json::json!([{"id": "8100", "username": "late.poster", "fullName": "Late Poster",
                                      "followersCount": 10, "latestPosts": [their_post]}, other_post]);
    std::fs::write(&file, export.to_string()).expect("write");
    let reports = import(&db, &[&file.display().to_string()]).await;
    let _ = std::fs::remove_file(&file);
    // The profile, the post and the comment on it: set aside as another account's data (their
    // profile is not a commenter here), so erasure has nothing left to drop.
    let r = &reports[0];
    let aside = |k: &str| r["intake"][k].as_u64().unwrap_or(0);
    assert_eq!(
        r["suppressed"].as_u64().unwrap_or(0)
            + aside("profiles_foreign")
            + aside("posts_foreign")
            + aside("comments_foreign"),
        3,
        "{reports}"
    );
    let all = everything(&db).await;
    assert!(!all.to_lowercase().contains("late.poster") && !all.contains(&shortcode(theirs)), "{all}");
    // The comment that only mentioned them is kept, their handle redacted.
    assert_eq!(
        db.count("SELECT count(*) AS n FROM comments WHERE body = '@[erased] would love this'").await,
        1
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM comments").await, 1);

    // The account of an erased owner takes no import at all (a comment export names no owner).
    let (code, _, err) = run_cli(&db, &["privacy", "erase", "@lumen.atelier"], &[]).await;
    assert_eq!(code, 0, "{err}");
    let before = db.count("SELECT count(*) AS n FROM comments").await;
    let comments = fixture("comments.jsonl");
    let (code, _, err) = run_cli(&db, &["import", "--account", "lumen.atelier", &comments], &[]).await;
    assert_ne!(code, 0);
    assert!(err.contains("@lumen.atelier was erased at their request"), "{err}");
    assert_eq!(db.count("SELECT count(*) AS n FROM comments").await, before);
}
