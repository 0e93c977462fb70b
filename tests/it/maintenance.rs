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
        "INSERT INTO analyses (tracked_account_id, status, stage, classifier)
         SELECT id, 'succeeded', 'done', 'cascade' FROM tracked_accounts WHERE handle = 'weekly.due'",
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
    // (Without an Apify token those analyses fail; a second sweep does not pile up more while
    // the due ones are still due but already have a fresh failed one? It does start again:
    // only running analyses block. Here: none is running any more.)
    assert_eq!(db.count("SELECT count(*) AS n FROM analyses WHERE status = 'failed'").await, 3);
}
