//! The real binary as separate worker processes: exactly-once effects across two workers,
//! SIGKILL recovery, SIGTERM drain, one cron job per tick across copies, database restarts.

use std::time::{Duration, Instant};

use audiencelens::jobs::probe::QueueProbe;
use audiencelens::queue::{self, NewJob};

use crate::helpers::{Process, TestDb, eventually};

const WORKER: &[&str] = &["serve", "--mode", "worker"];

/// Worker settings for tests: short leases and intervals so recovery happens in seconds.
fn fast(concurrency: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("AUDIENCELENS__QUEUE__CONCURRENCY__MAINTENANCE", concurrency),
        ("AUDIENCELENS__QUEUE__LEASE_SECS", "3"),
        ("AUDIENCELENS__QUEUE__RESCUE_INTERVAL_SECS", "1"),
        ("AUDIENCELENS__QUEUE__POLL_INTERVAL_MS", "200"),
        ("AUDIENCELENS__SCHEDULE__PRUNE_JOBS", ""),
    ]
}

async fn enqueue_probes(db: &TestDb, n: usize, work_ms: u64) {
    let job = NewJob::new(&QueueProbe { work_ms }, 5).expect("job");
    let mut conn = db.conn().await;
    for chunk in vec![job; n].chunks(1000) {
        queue::enqueue(&mut conn, chunk).await.expect("enqueue");
    }
}

async fn stop(mut p: Process, within: Duration) {
    p.signal("TERM");
    let status = p.wait(within).await;
    assert!(status.is_some_and(|s| s.success()), "worker did not exit cleanly: {status:?}\n{}", p.log_text());
}

#[tokio::test]
async fn two_worker_processes_run_5000_jobs_exactly_once() {
    let db = TestDb::new().await;
    enqueue_probes(&db, 5000, 1).await;
    let a = Process::start(&db, WORKER, &fast("8"));
    let b = Process::start(&db, WORKER, &fast("8"));
    eventually(Duration::from_mins(2), "5000 probes recorded", || async {
        db.count("SELECT count(*) AS n FROM queue_probes").await == 5000
    })
    .await;
    eventually(Duration::from_secs(20), "all jobs recorded as succeeded", || async {
        db.count("SELECT count(*) AS n FROM jobs WHERE status = 'succeeded'").await == 5000
    })
    .await;
    assert_eq!(
        db.count("SELECT coalesce(sum(runs), 0) AS n FROM queue_probes").await,
        5000,
        "a job ran twice"
    );
    assert_eq!(
        db.count("SELECT count(DISTINCT worker_id) AS n FROM queue_probes").await,
        2,
        "both workers worked"
    );
    stop(a, Duration::from_secs(10)).await;
    stop(b, Duration::from_secs(10)).await;
    assert_eq!(db.count("SELECT count(*) AS n FROM jobs WHERE status <> 'succeeded'").await, 0);
}

#[tokio::test]
async fn jobs_of_a_killed_worker_are_finished_by_another() {
    let db = TestDb::new().await;
    enqueue_probes(&db, 40, 1500).await;
    let mut victim = Process::start(&db, WORKER, &fast("8"));
    eventually(Duration::from_secs(20), "8 jobs running", || async {
        db.count("SELECT count(*) AS n FROM jobs WHERE status = 'running'").await == 8
    })
    .await;
    victim.signal("KILL");
    victim.wait(Duration::from_secs(5)).await.expect("killed");
    let killed_mid_run = db.count("SELECT count(*) AS n FROM jobs WHERE status = 'running'").await;
    assert!(killed_mid_run > 0, "the kill should leave jobs leased to a dead worker");

    let rescuer = Process::start(&db, WORKER, &fast("8"));
    eventually(Duration::from_mins(1), "every job succeeded", || async {
        db.count("SELECT count(*) AS n FROM jobs WHERE status = 'succeeded'").await == 40
    })
    .await;
    assert_eq!(db.count("SELECT count(*) AS n FROM queue_probes").await, 40, "no job lost, none doubled");
    assert_eq!(db.count("SELECT count(*) AS n FROM jobs WHERE status = 'running'").await, 0);
    assert!(
        db.count("SELECT count(*) AS n FROM jobs WHERE attempts >= 2").await >= killed_mid_run,
        "the killed jobs were run again"
    );
    stop(rescuer, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn sigterm_drains_within_the_grace_period_and_leaves_nothing_leased() {
    let db = TestDb::new().await;
    let mut vars = fast("4");
    vars.push(("AUDIENCELENS__QUEUE__SHUTDOWN_GRACE_SECS", "2"));
    // Short jobs: finished within the grace period and recorded.
    enqueue_probes(&db, 4, 500).await;
    let mut worker = Process::start(&db, WORKER, &vars);
    eventually(Duration::from_secs(20), "4 jobs running", || async {
        db.count("SELECT count(*) AS n FROM jobs WHERE status = 'running'").await == 4
    })
    .await;
    // And long ones queued behind them, which must not be started once the signal arrives.
    enqueue_probes(&db, 4, 20_000).await;
    let sent = Instant::now();
    worker.signal("TERM");
    let status = worker.wait(Duration::from_secs(4)).await;
    assert!(status.is_some_and(|s| s.success()), "exit within grace: {status:?}\n{}", worker.log_text());
    assert!(sent.elapsed() < Duration::from_secs(4));
    assert_eq!(
        db.count("SELECT count(*) AS n FROM jobs WHERE status = 'running' OR lease_owner IS NOT NULL").await,
        0
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM queue_probes").await, 4);

    // Jobs longer than the grace period are handed back to the queue, attempt not counted.
    let mut worker = Process::start(&db, WORKER, &vars);
    eventually(Duration::from_secs(20), "long jobs running", || async {
        db.count("SELECT count(*) AS n FROM jobs WHERE status = 'running'").await == 4
    })
    .await;
    let sent = Instant::now();
    worker.signal("TERM");
    let status = worker.wait(Duration::from_secs(6)).await;
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}\n{}", worker.log_text());
    assert!(sent.elapsed() < Duration::from_secs(4), "took {:?}", sent.elapsed());
    assert_eq!(
        db.count("SELECT count(*) AS n FROM jobs WHERE status = 'running' OR lease_owner IS NOT NULL").await,
        0
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM jobs WHERE status = 'queued' AND attempts = 0").await, 4);
}

#[tokio::test]
async fn two_copies_running_cron_enqueue_one_job_per_tick() {
    let db = TestDb::new().await;
    let mut vars = fast("0");
    vars.retain(|(k, _)| *k != "AUDIENCELENS__SCHEDULE__PRUNE_JOBS");
    vars.push(("AUDIENCELENS__SCHEDULE__PRUNE_JOBS", "* * * * * *"));
    let a = Process::start(&db, WORKER, &vars);
    let b = Process::start(&db, WORKER, &vars);
    eventually(Duration::from_secs(30), "5 ticks", || async {
        db.count("SELECT count(*) AS n FROM jobs WHERE kind = 'prune_jobs'").await >= 5
    })
    .await;
    stop(a, Duration::from_secs(10)).await;
    stop(b, Duration::from_secs(10)).await;
    let jobs = db.count("SELECT count(*) AS n FROM jobs WHERE kind = 'prune_jobs'").await;
    let ticks = db.count("SELECT count(DISTINCT dedupe_key) AS n FROM jobs WHERE kind = 'prune_jobs'").await;
    assert_eq!(jobs, ticks, "a tick produced more than one job");
    // Both copies fired every second; each tick was taken by exactly one of them.
    let a_log = db.count("SELECT count(*) AS n FROM cron_ticks WHERE schedule = 'prune_jobs'").await;
    assert_eq!(a_log, 1);
}

#[tokio::test]
async fn a_worker_survives_a_database_restart() {
    let db = TestDb::new().await;
    let worker = Process::start(&db, WORKER, &fast("4"));
    enqueue_probes(&db, 20, 0).await;
    eventually(Duration::from_secs(20), "first batch done", || async {
        db.count("SELECT count(*) AS n FROM queue_probes").await == 20
    })
    .await;

    // What a restart looks like from the worker: every connection dropped, and for a while no
    // new connection accepted.
    let admin = crate::helpers::server_url();
    let mut conn = {
        use diesel_async::AsyncConnection;
        use secrecy::ExposeSecret;
        let url = audiencelens::db::admin::url_for_database(&admin, "postgres");
        diesel_async::AsyncPgConnection::establish(url.expose_secret()).await.expect("admin")
    };
    {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false", db.name))
            .execute(&mut conn)
            .await
            .expect("block");
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            db.name
        ))
        .execute(&mut conn)
        .await
        .expect("terminate");
        tokio::time::sleep(Duration::from_secs(3)).await;
        diesel::sql_query(format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true", db.name))
            .execute(&mut conn)
            .await
            .expect("unblock");
    }
    enqueue_probes(&db, 20, 0).await;
    eventually(Duration::from_secs(30), "second batch done after the outage", || async {
        db.count("SELECT count(*) AS n FROM queue_probes").await == 40
    })
    .await;
    assert!(worker.log_text().contains("WARN"), "the outage should have been logged");
    stop(worker, Duration::from_secs(10)).await;
}
