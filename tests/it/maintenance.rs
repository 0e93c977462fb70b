//! The cron-driven jobs: pruning finished jobs and starting scheduled analyses.

use std::time::Duration;

use audiencelens::app::AppState;
use audiencelens::queue::{self, NewJob};

use crate::helpers::{TestDb, drain_jobs};

async fn run_job<J: queue::Job>(db: &TestDb, state: &AppState, job: &J) {
    let mut conn = db.conn().await;
    queue::enqueue_one(&mut conn, NewJob::new(job, 3).expect("job")).await.expect("enqueue");
    drop(conn);
    drain_jobs(state, Duration::from_secs(30)).await;
}

/// A user owning account `handle`, whose analysis has been started (its first stage job queued):
/// the account's id and the analysis.
async fn started_analysis(db: &TestDb, handle: &str) -> (i64, audiencelens::analyses::Analysis) {
    let state = AppState::build(db.config(&[])).expect("state");
    db.execute(&format!("INSERT INTO users (email, password_hash) VALUES ('{handle}@example.com', '!')"))
        .await;
    db.execute(&format!("INSERT INTO tracked_accounts (user_id, handle) SELECT id, '{handle}' FROM users"))
        .await;
    let account_id = db.count("SELECT id AS n FROM tracked_accounts").await;
    let mut conn = db.conn().await;
    let account = audiencelens::accounts::get_account(&mut conn, account_id).await.expect("account");
    let analysis = audiencelens::jobs::pipeline::start_analysis(&mut conn, &state.config, &account, "local")
        .await
        .expect("start");
    (account_id, analysis)
}

#[tokio::test]
async fn finished_jobs_are_pruned_after_the_retention() {
    let db = TestDb::new().await;
    let state = AppState::build(db.config(&[("AUDIENCELENS__QUEUE__FINISHED_RETENTION_HOURS", "24")]))
        .expect("state");
    db.execute(
        "INSERT INTO jobs (queue, kind, status, finished_at)
         SELECT 'maintenance', 'old', s, now() - interval '2 days'
         FROM unnest(ARRAY['succeeded', 'failed', 'cancelled']) s",
    )
    .await;
    db.execute("INSERT INTO jobs (queue, kind, status, finished_at) VALUES ('maintenance', 'recent', 'succeeded', now())").await;
    db.execute("INSERT INTO jobs (queue, kind, run_at) VALUES ('nobody_works_this', 'waiting', now() - interval '3 days')").await;
    run_job(&db, &state, &audiencelens::jobs::prune::PruneJobs {}).await;
    assert_eq!(db.count("SELECT count(*) AS n FROM jobs WHERE kind = 'old'").await, 0);
    assert_eq!(db.count("SELECT count(*) AS n FROM jobs WHERE kind = 'recent'").await, 1);
    assert_eq!(
        db.count("SELECT count(*) AS n FROM jobs WHERE kind = 'waiting'").await,
        1,
        "unfinished jobs stay"
    );
}

#[tokio::test]
async fn the_input_records_of_analyses_ended_long_ago_are_pruned_with_their_jobs() {
    let db = TestDb::new().await;
    let state = AppState::build(db.config(&[("AUDIENCELENS__QUEUE__FINISHED_RETENTION_HOURS", "24")]))
        .expect("state");
    db.execute(
        "WITH u AS (INSERT INTO users (email, password_hash) VALUES ('p@example.com', '!') RETURNING id),
              t AS (INSERT INTO tracked_accounts (user_id, handle) SELECT id, 'pruned' FROM u RETURNING id),
              p AS (INSERT INTO posts (ig_post_id) VALUES ('1') RETURNING id),
              f AS (INSERT INTO ig_profiles (username) VALUES ('a.fan') RETURNING id),
              c AS (INSERT INTO comments (ig_comment_id, post_id, ig_profile_id) SELECT '9', p.id, f.id FROM p, f RETURNING id),
              a AS (INSERT INTO analyses (tracked_account_id, status, finished_at)
                    SELECT t.id, 'failed', now() - e::interval FROM t, (VALUES ('2 days'), ('1 hour')) v(e) RETURNING id)
         INSERT INTO analysis_comments SELECT a.id, c.id FROM a, c",
    )
    .await;
    run_job(&db, &state, &audiencelens::jobs::prune::PruneJobs {}).await;
    assert_eq!(
        db.count("SELECT count(*) AS n FROM analysis_comments").await,
        1,
        "the recent one keeps it for a retry"
    );
    assert_eq!(
        db.count(
            "SELECT count(*) AS n FROM analysis_comments ac JOIN analyses a ON a.id = ac.analysis_id
             WHERE a.finished_at > now() - interval '1 day'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn scheduled_accounts_are_analysed_when_due_and_only_then() {
    let db = TestDb::new().await;
    let state = AppState::build(db.config(&[])).expect("state");
    db.execute("INSERT INTO users (email, password_hash) VALUES ('s@example.com', '!')").await;
    db.execute(
        "INSERT INTO tracked_accounts (user_id, handle, schedule, last_analyzed_at)
         SELECT id, h, s, now() - l::interval FROM users,
           (VALUES ('daily.due', 'daily', '2 days'), ('daily.recent', 'daily', '2 hours'),
                   ('weekly.due', 'weekly', '8 days'), ('weekly.recent', 'weekly', '3 days'),
                   ('never', 'off', '90 days')) AS v(h, s, l)",
    )
    .await;
    db.execute(
        "INSERT INTO tracked_accounts (user_id, handle, schedule) SELECT id, 'daily.new', 'daily' FROM users",
    )
    .await;
    // Last analysed with the cascade; without a Gemini key the scheduled run is local.
    db.execute(
        "INSERT INTO analyses (tracked_account_id, status, stage, classifier, created_at)
         SELECT id, 'succeeded', 'done', 'cascade', now() - interval '8 days' FROM tracked_accounts
         WHERE handle = 'weekly.due'",
    )
    .await;
    run_job(&db, &state, &audiencelens::jobs::reanalyze::ReanalyzeDue {}).await;
    let started = |h: &'static str| {
        let db = &db;
        async move {
            db.count(&format!(
                "SELECT count(*) AS n FROM analyses a JOIN tracked_accounts t ON t.id = a.tracked_account_id WHERE t.handle = '{h}'"
            ))
            .await
        }
    };
    assert_eq!(started("daily.due").await, 1);
    assert_eq!(started("daily.new").await, 1);
    assert_eq!(started("weekly.due").await, 2, "the earlier one and the scheduled one");
    assert_eq!(
        db.count(
            "SELECT count(*) AS n FROM analyses a JOIN tracked_accounts t ON t.id = a.tracked_account_id
             WHERE t.handle = 'weekly.due' AND a.classifier = 'local'"
        )
        .await,
        1
    );
    // The cascade is still what was asked for: the next scheduled run asks again.
    let mut conn = db.conn().await;
    let account = db.count("SELECT id AS n FROM tracked_accounts WHERE handle = 'weekly.due'").await;
    let asked = audiencelens::analyses::latest_classifier(&mut conn, account).await.expect("query");
    assert_eq!(asked.as_deref(), Some("cascade"));
    drop(conn);
    assert_eq!(started("daily.recent").await, 0);
    assert_eq!(started("weekly.recent").await, 0);
    assert_eq!(started("never").await, 0);
    // Without an Apify token those analyses fail; the next sweep does not start (and pay for)
    // them again before their next period.
    assert_eq!(db.count("SELECT count(*) AS n FROM analyses WHERE status = 'failed'").await, 3);
    run_job(&db, &state, &audiencelens::jobs::reanalyze::ReanalyzeDue {}).await;
    assert_eq!(db.count("SELECT count(*) AS n FROM analyses").await, 4, "nothing new");
}

/// An analysis whose stage job ended without saying so (timed out, lost, cancelled by an
/// operator) is marked failed with that job's reason, and does not block its account.
#[tokio::test]
async fn an_analysis_left_without_a_stage_job_is_failed_and_the_account_freed() {
    use audiencelens::jobs::pipeline;
    let db = TestDb::new().await;
    let (account_id, first) = started_analysis(&db, "stuck").await;
    let mut conn = db.conn().await;
    // While its first stage job waits, it is what blocks the account.
    assert_eq!(pipeline::fail_orphaned(&mut conn, None).await.expect("sweep"), 0);
    let busy = pipeline::lock_for_start(&mut conn, account_id).await.expect("lock");
    assert_eq!(busy.map(|a| a.id), Some(first.id));
    // An operator cancels the job: the analysis is failed with the reason, the account free.
    db.held_picture(account_id, "stuck", "09").await;
    db.execute(
        "UPDATE jobs SET status = 'cancelled', finished_at = now(), last_error = 'cancelled by operator'",
    )
    .await;
    assert_eq!(pipeline::lock_for_start(&mut conn, account_id).await.expect("lock").map(|a| a.id), None);
    let failed = audiencelens::analyses::get_analysis(&mut conn, first.id).await.expect("analysis");
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.error.as_deref(), Some("scrape_posts job cancelled: cancelled by operator"));
    // Failed before classifying: the bytes held for it go, and the picture is to be fetched again.
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0);
    assert_eq!(
        db.count("SELECT count(*) AS n FROM profile_pictures WHERE fetch_status = 'pending'").await,
        1
    );
    // And it can be retried from that job.
    let user = db.count("SELECT id AS n FROM users").await;
    let retried =
        audiencelens::analyses::retry_user_analysis(&mut conn, user, first.id).await.expect("retry");
    assert_eq!(retried, audiencelens::analyses::Retry::Reopened);
    assert_eq!(db.count("SELECT count(*) AS n FROM jobs WHERE status = 'queued'").await, 1);
}

/// A stage job that runs again after handing over does nothing (stages only move forward), and
/// only one attempt at a time holds an analysis's stage lock.
#[tokio::test]
async fn stages_only_move_forward_and_one_attempt_holds_the_stage() {
    use audiencelens::analyses::{self, Stage};
    use audiencelens::jobs::pipeline;
    let db = TestDb::new().await;
    db.execute("INSERT INTO users (email, password_hash) VALUES ('f@example.com', '!')").await;
    db.execute("INSERT INTO tracked_accounts (user_id, handle) SELECT id, 'forward' FROM users").await;
    let account = db.count("SELECT id AS n FROM tracked_accounts").await;
    let mut conn = db.conn().await;
    let a = analyses::create_analysis(&mut conn, account, "local").await.expect("analysis");
    assert!(analyses::enter_stage(&mut conn, a.id, Stage::Scrape).await.expect("enter"));
    assert!(analyses::enter_stage(&mut conn, a.id, Stage::Classify).await.expect("enter"));
    assert!(!analyses::enter_stage(&mut conn, a.id, Stage::FetchPictures).await.expect("enter"), "backwards");
    assert!(!analyses::enter_stage(&mut conn, a.id, Stage::Scrape).await.expect("enter"), "backwards");
    assert!(
        analyses::enter_stage(&mut conn, a.id, Stage::Classify).await.expect("enter"),
        "a retry of the stage"
    );
    assert_eq!(analyses::get_analysis(&mut conn, a.id).await.expect("analysis").stage, "classify");

    let first = pipeline::lock_stage(&db.pool, a.id).await.expect("lock");
    assert!(first.is_some());
    assert!(pipeline::lock_stage(&db.pool, a.id).await.expect("lock").is_none(), "held by the first");
    assert!(pipeline::lock_stage(&db.pool, a.id + 1).await.expect("lock").is_some(), "per analysis");
    drop(first);
    crate::helpers::eventually(Duration::from_secs(5), "the lock goes with its connection", || async {
        pipeline::lock_stage(&db.pool, a.id).await.expect("lock").is_some()
    })
    .await;
}

/// `jobs retry` on a failed analysis's stage job reopens the analysis too: the job alone would
/// find it failed and do nothing, and the analysis could then not be retried at all.
#[tokio::test]
async fn retrying_a_failed_stage_job_reopens_its_analysis() {
    use audiencelens::jobs::pipeline;
    let db = TestDb::new().await;
    let (_, a) = started_analysis(&db, "again").await;
    let mut conn = db.conn().await;
    db.execute(
        "UPDATE jobs SET status = 'failed', finished_at = now(), last_error = 'APIFY_TOKEN is not set'",
    )
    .await;
    assert_eq!(pipeline::fail_orphaned(&mut conn, None).await.expect("sweep"), 1);
    let job = db.count("SELECT id AS n FROM jobs").await;
    assert_eq!(pipeline::analysis_of_job(&mut conn, job).await.expect("query"), Some(a.id));

    let (code, out, err) = crate::helpers::run_cli(&db, &["jobs", "retry", &job.to_string()], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("analysis {} reopened", a.id)), "{out}");
    let reopened = audiencelens::analyses::get_analysis(&mut conn, a.id).await.expect("analysis");
    assert_eq!((reopened.status.as_str(), reopened.error), ("running", None));
    assert_eq!(db.count("SELECT count(*) AS n FROM jobs WHERE status = 'queued'").await, 1);

    // Once its failed stage job has been pruned there is nothing to resume from: the retry is
    // refused as such, and the analysis stays failed (not reopened with no job to run it).
    db.execute("DELETE FROM jobs").await;
    db.execute(&format!("UPDATE analyses SET status = 'failed' WHERE id = {}", a.id)).await;
    let user = db.count("SELECT id AS n FROM users").await;
    let retried = audiencelens::analyses::retry_user_analysis(&mut conn, user, a.id).await.expect("retry");
    assert_eq!(retried, audiencelens::analyses::Retry::NoStageJob);
    let still = audiencelens::analyses::get_analysis(&mut conn, a.id).await.expect("analysis");
    assert_eq!(still.status, "failed");

    // A stage job whose analysis went with its account is simply queued again.
    db.execute(
        "INSERT INTO jobs (queue, kind, payload, status, max_attempts, dedupe_key, finished_at)
         VALUES ('classify', 'classify_pictures', '{\"analysis_id\": 999999}', 'failed', 5, 'analysis:999999:classify_pictures', now())",
    )
    .await;
    let orphan = db.count("SELECT id AS n FROM jobs WHERE dedupe_key LIKE 'analysis:999999:%'").await;
    let (code, out, err) = crate::helpers::run_cli(&db, &["jobs", "retry", &orphan.to_string()], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("job {orphan} queued again")), "{out}");
}

/// An analysis whose classify job failed before it began (its stage still reads fetching)
/// keeps the picture bytes for its retry, which classifies them: the job's kind decides.
#[tokio::test]
async fn a_classify_job_that_failed_before_starting_keeps_the_pictures_for_its_retry() {
    use audiencelens::jobs::pipeline;
    let db = TestDb::new().await;
    let (account_id, a) = started_analysis(&db, "kept").await;
    let mut conn = db.conn().await;
    db.held_picture(account_id, "kept", "0a").await;
    db.execute(&format!(
        "UPDATE analyses SET stage = 'fetch_pictures', status = 'running' WHERE id = {}",
        a.id
    ))
    .await;
    db.execute(&format!(
        "UPDATE jobs SET kind = 'classify_pictures', queue = 'classify', dedupe_key = 'analysis:{}:classify_pictures',
                status = 'cancelled', finished_at = now(), last_error = 'cancelled by operator'",
        a.id
    ))
    .await;
    assert_eq!(pipeline::fail_orphaned(&mut conn, None).await.expect("sweep"), 1);
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 1, "kept for the retry");
    assert_eq!(
        db.count("SELECT count(*) AS n FROM profile_pictures WHERE fetch_status = 'fetched'").await,
        1
    );
}
