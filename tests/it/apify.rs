//! Apify's error paths, through the real client against the stub: each gives the documented
//! behaviour and leaves no partial rows.

use std::time::Duration;

use audiencelens::accounts::{self, InstagramHandle, TrackedAccount};
use audiencelens::analyses;
use audiencelens::app::AppState;
use audiencelens::clients::apify::ApifyError;
use audiencelens::jobs::pipeline;
use audiencelens::scraping::plan::Scraper;
use audiencelens::scraping::runs::ScrapeError;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{TestDb, drain_jobs};
use crate::scrape::post;
use crate::stubs::{APIFY_TOKEN, ApifyStub, apify_error, run_object};

async fn setup(token: bool) -> (TestDb, ApifyStub, AppState, TrackedAccount) {
    let db = TestDb::new().await;
    let apify = ApifyStub::start().await;
    let base = apify.url();
    let mut vars = vec![
        ("AUDIENCELENS__APIFY__BASE_URL", base.as_str()),
        ("AUDIENCELENS__APIFY__RETRY_BASE_MS", "5"),
        ("AUDIENCELENS__APIFY__POLL_PAUSE_MS", "5"),
    ];
    if token {
        vars.push(("APIFY_TOKEN", APIFY_TOKEN));
    }
    let state = AppState::build(db.config(&vars)).expect("state");
    let mut conn = state.pool.get().await.expect("conn");
    let user = audiencelens::users::default_owner(&mut conn).await.expect("owner");
    let account =
        accounts::find_or_create_account(&mut conn, user, &InstagramHandle::parse("brand").expect("h"))
            .await
            .expect("account");
    drop(conn);
    (db, apify, state, account)
}

/// Runs a whole analysis through the jobs; returns its final row.
async fn analyse(state: &AppState, account: &TrackedAccount) -> analyses::Analysis {
    let mut conn = state.pool.get().await.expect("conn");
    let a = pipeline::start_analysis(&mut conn, &state.config, account, "local").await.expect("start");
    drop(conn);
    drain_jobs(state, Duration::from_secs(30)).await;
    analyses::get_analysis(&mut state.pool.get().await.expect("conn"), a.id).await.expect("row")
}

#[tokio::test]
async fn a_bad_token_or_no_credit_fails_the_analysis_with_an_actionable_message() {
    let (db, apify, state, account) = setup(true).await;
    apify
        .fail_starts(
            "apify/instagram-scraper",
            1,
            apify_error(401, "user-or-token-not-found", "User was not found"),
        )
        .await;
    let a = analyse(&state, &account).await;
    assert_eq!(a.status, "failed");
    let error = a.error.expect("reason");
    assert!(error.contains("APIFY_TOKEN") && error.contains("user-or-token-not-found"), "{error}");
    assert_eq!(
        db.count("SELECT count(*) AS n FROM jobs WHERE status = 'failed' AND attempts = 1").await,
        1,
        "not retried"
    );

    apify
        .fail_starts(
            "apify/instagram-scraper",
            1,
            apify_error(
                402,
                "not-enough-usage-to-run-paid-actor",
                "By launching this job you will exceed the remaining usage",
            ),
        )
        .await;
    let a = analyse(&state, &account).await;
    assert!(a.error.expect("reason").contains("Apify credit exhausted — top up or lower max_items"));
    assert_eq!(db.count("SELECT count(*) AS n FROM posts").await, 0);
}

#[tokio::test]
async fn without_a_token_the_analysis_says_how_to_set_one() {
    let (_db, _apify, state, account) = setup(false).await;
    let a = analyse(&state, &account).await;
    assert_eq!(a.status, "failed");
    assert!(a.error.expect("reason").contains("set the APIFY_TOKEN environment variable"));
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_then_succeed() {
    let (db, apify, state, account) = setup(true).await;
    let starts =
        apify.actor("apify/instagram-scraper", "RUN-1", vec![post("brand", 7_000_001, 3, 0, vec![])]).await;
    apify.actor("apify/instagram-comment-scraper", "RUN-2", vec![]).await;
    apify
        .fail_starts(
            "apify/instagram-scraper",
            1,
            apify_error(429, "rate-limit-exceeded", "Too many requests"),
        )
        .await;
    apify
        .fail_starts(
            "apify/instagram-scraper",
            1,
            ResponseTemplate::new(500).set_body_string("Internal Server Error"),
        )
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/datasets/DS-RUN-1/items"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&apify.server)
        .await;
    let a = analyse(&state, &account).await;
    assert_eq!((a.status.as_str(), a.error), ("succeeded", None));
    assert_eq!(starts.get(), 1, "one run started: the 500 and the 429 were retried by the client");
    assert_eq!(db.count("SELECT count(*) AS n FROM posts").await, 1);
}

async fn scrape_posts(state: &AppState, account: &TrackedAccount) -> (i64, Result<(), ScrapeError>) {
    let mut conn = state.pool.get().await.expect("conn");
    let analysis = analyses::create_analysis(&mut conn, account.id, "local").await.expect("analysis");
    drop(conn);
    let scraper = Scraper {
        pool: &state.pool,
        apify: state.clients.apify().expect("token"),
        settings: &state.config.settings.apify,
        privacy: &state.privacy,
        cancel: CancellationToken::new(),
    };
    (analysis.id, scraper.scrape_posts(analysis.id, account).await.map(|_| ()))
}

#[tokio::test]
async fn failed_and_timed_out_runs_store_nothing_and_are_replaced_on_retry() {
    let (db, apify, state, account) = setup(true).await;
    for status in ["FAILED", "TIMED-OUT"] {
        apify.reset().await;
        let run_id = format!("RUN-{status}");
        apify.actor("apify/instagram-scraper", &run_id, vec![post("brand", 8_000_001, 4, 0, vec![])]).await;
        // The run polls as ended badly (registered after, so it wins over SUCCEEDED).
        Mock::given(method("GET"))
            .and(path(format!("/v2/actor-runs/{run_id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(run_object(&run_id, status)))
            .with_priority(1)
            .mount(&apify.server)
            .await;
        let (analysis_id, result) = scrape_posts(&state, &account).await;
        match result {
            Err(ScrapeError::Apify(ApifyError::RunFailed { status: s, .. })) => assert_eq!(s, status),
            other => panic!("expected a failed run, got {other:?}"),
        }
        assert_eq!(db.count("SELECT count(*) AS n FROM posts").await, 0);
        assert_eq!(
            db.count(&format!(
                "SELECT count(*) AS n FROM apify_runs WHERE analysis_id = {analysis_id} AND status = 'failed'"
            ))
            .await,
            1
        );
    }
}

#[tokio::test]
async fn a_malformed_dataset_page_stores_nothing_and_the_retry_reads_the_same_run() {
    let (db, apify, state, account) = setup(true).await;
    let starts =
        apify.actor("apify/instagram-scraper", "RUN-M", vec![post("brand", 9_000_001, 5, 0, vec![])]).await;
    Mock::given(method("GET"))
        .and(path("/v2/datasets/DS-RUN-M/items"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"[{"id": "9000001", "shortCode": "#))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&apify.server)
        .await;
    let (analysis_id, result) = scrape_posts(&state, &account).await;
    assert!(matches!(result, Err(ScrapeError::Apify(ApifyError::Malformed(_)))), "{result:?}");
    assert_eq!(db.count("SELECT count(*) AS n FROM posts").await, 0);
    assert_eq!(db.count("SELECT count(*) AS n FROM apify_runs WHERE status = 'running'").await, 1);

    // The job's retry resumes the recorded run: no second start, the data lands once.
    let scraper = Scraper {
        pool: &state.pool,
        apify: state.clients.apify().expect("token"),
        settings: &state.config.settings.apify,
        privacy: &state.privacy,
        cancel: CancellationToken::new(),
    };
    scraper.scrape_posts(analysis_id, &account).await.expect("retry");
    assert_eq!(starts.get(), 1);
    assert_eq!(db.count("SELECT count(*) AS n FROM posts").await, 1);
    scraper.scrape_posts(analysis_id, &account).await.expect("again");
    assert_eq!(db.count("SELECT count(*) AS n FROM apify_runs WHERE status = 'stored'").await, 1);
}
