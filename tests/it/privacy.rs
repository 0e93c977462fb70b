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
    let before = everything(&db).await;
    assert!(before.contains("juniper.reads") && before.contains("7001"));

    let (code, out, err) = run_cli(&db, &["privacy", "erase", "@Juniper.Reads"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("erased @juniper.reads"), "{out}");
    let after = everything(&db).await;
    assert!(!after.to_lowercase().contains("juniper.reads"), "the handle survives somewhere");
    assert!(!after.contains("\"7001\"") && !after.contains(",7001,"), "the Instagram id survives somewhere");
    // Other people's replies to them stay (unlinked), their mention redacted.
    assert_eq!(db.count("SELECT count(*) AS n FROM comments WHERE body = '@[erased] same!'").await, 3);
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0);
    assert_eq!(db.count("SELECT count(*) AS n FROM classifications").await, 0);
    assert_eq!(db.count("SELECT count(*) AS n FROM audit_log WHERE action = 'erase'").await, 1);

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
