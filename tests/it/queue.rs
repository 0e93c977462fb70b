//! The queue in-process, with job kinds defined here: retries and backoff, panics, timeouts,
//! undecodable payloads, dedupe under concurrency, cancel, operator commands.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audiencelens::metrics::Metrics;
use audiencelens::queue::storage::Backoff;
use audiencelens::queue::{self, Job, JobContext, JobError, NewJob, Registry, Worker, WorkerOptions};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestDb, eventually, run_cli};

/// Records when each run started, then behaves as its payload says.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Instant>>>);

#[derive(Serialize, Deserialize)]
struct Flaky {
    behaviour: String,
}

impl Job for Flaky {
    const KIND: &'static str = "test_flaky";
    const QUEUE: &'static str = "test";
    const MAX_ATTEMPTS: Option<i32> = Some(4);
    type Context = Log;

    async fn run(self, log: Log, job: JobContext) -> Result<(), JobError> {
        log.0.lock().expect("log").push(Instant::now());
        match self.behaviour.as_str() {
            "fail" => Err(anyhow::anyhow!("upstream said no (attempt {})", job.attempt).into()),
            "fail_permanently" => Err(JobError::permanent(anyhow::anyhow!("this will never work"))),
            "panic" => panic!("job exploded"),
            "hang" => {
                tokio::time::sleep(Duration::from_mins(1)).await;
                Ok(())
            }
            "slow" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn options() -> WorkerOptions {
    WorkerOptions {
        queues: vec![("test".to_owned(), 4)],
        lease: Duration::from_secs(3),
        poll_interval: Duration::from_millis(20),
        rescue_interval: Duration::from_secs(1),
        claim_batch_size: 8,
        complete_batch_size: 16,
        complete_flush: Duration::from_millis(2),
        backoff: Backoff { base: Duration::from_millis(150), max: Duration::from_secs(5) },
        default_timeout: Duration::from_millis(300),
        shutdown_grace: Duration::from_secs(2),
        listen: true,
        durable_bookkeeping: false,
        connect_timeout: Duration::from_secs(5),
    }
}

struct Running {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<queue::runner::WorkerReport>>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        self.handle.await.expect("join").expect("worker");
    }
}

fn start(db: &TestDb, log: &Log, options: WorkerOptions) -> Running {
    let mut registry = Registry::new();
    registry.register::<Flaky>(log.clone());
    let worker = Worker {
        id: uuid::Uuid::new_v4(),
        database_url: db.url.clone(),
        registry: Arc::new(registry),
        options,
        metrics: Arc::new(Metrics::new()),
    };
    let stop = CancellationToken::new();
    let handle = tokio::spawn(worker.run(stop.clone()));
    Running { stop, handle }
}

async fn enqueue(db: &TestDb, behaviour: &str) -> i64 {
    let job = NewJob::new(&Flaky { behaviour: behaviour.to_owned() }, 20).expect("job");
    let mut conn = db.conn().await;
    queue::enqueue_one(&mut conn, job).await.expect("enqueue").expect("new job").0
}

async fn status_of(db: &TestDb, id: i64, status: &str) -> bool {
    db.count(&format!("SELECT count(*) AS n FROM jobs WHERE id = {id} AND status = '{status}'")).await == 1
}

#[tokio::test]
async fn a_job_that_always_fails_backs_off_then_fails_with_its_error() {
    let db = TestDb::new().await;
    let log = Log::default();
    let worker = start(&db, &log, options());
    let id = enqueue(&db, "fail").await;
    eventually(Duration::from_secs(20), "job failed for good", || status_of(&db, id, "failed")).await;
    worker.stop().await;

    let runs = log.0.lock().expect("log").clone();
    assert_eq!(runs.len(), 4, "max_attempts runs, no more");
    let gaps: Vec<Duration> = runs.windows(2).map(|w| w[1] - w[0]).collect();
    // 150 ms, 300 ms, 600 ms, each +/- 25 %: every delay longer than the one before.
    assert!(gaps[0] >= Duration::from_millis(110), "first retry waited {:?}", gaps[0]);
    assert!(gaps.windows(2).all(|w| w[1] > w[0]), "delays must grow: {gaps:?}");
    assert_eq!(db.count(&format!("SELECT attempts::bigint AS n FROM jobs WHERE id = {id}")).await, 4);

    let (code, out, _) = run_cli(&db, &["jobs", "list", "--status", "failed"], &[]).await;
    assert_eq!(code, 0);
    assert!(out.contains(&id.to_string()) && out.contains("upstream said no (attempt 4)"), "{out}");
}

#[tokio::test]
async fn panics_timeouts_and_bad_payloads_are_failures_not_crashes() {
    let db = TestDb::new().await;
    let log = Log::default();
    let worker = start(&db, &log, options());
    let permanent = enqueue(&db, "fail_permanently").await;
    let panicking = enqueue(&db, "panic").await;
    let hanging = enqueue(&db, "hang").await;
    let undecodable = {
        let mut conn = db.conn().await;
        let mut job = NewJob::new(&Flaky { behaviour: String::new() }, 20).expect("job");
        job.payload = serde_json::json!({"behaviour": 42});
        queue::enqueue_one(&mut conn, job).await.expect("enqueue").expect("id").0
    };
    for id in [permanent, panicking, hanging, undecodable] {
        eventually(Duration::from_secs(30), "job failed", || status_of(&db, id, "failed")).await;
    }
    worker.stop().await;
    let error = |id| {
        let db = &db;
        async move {
            let mut conn = db.conn().await;
            let rows = queue::storage::list_jobs(&mut conn, None, None, None, 100).await.expect("list");
            rows.into_iter().find(|r| r.id == id).and_then(|r| r.last_error).unwrap_or_default()
        }
    };
    assert_eq!(db.count(&format!("SELECT attempts::bigint AS n FROM jobs WHERE id = {permanent}")).await, 1);
    assert!(error(permanent).await.contains("never work"));
    assert!(error(panicking).await.contains("panicked: job exploded"));
    assert!(error(hanging).await.contains("timed out"));
    assert!(error(undecodable).await.contains("payload is not a valid test_flaky"));
    assert_eq!(
        db.count(&format!("SELECT attempts::bigint AS n FROM jobs WHERE id = {undecodable}")).await,
        1
    );
}

#[tokio::test]
async fn concurrent_enqueues_with_one_dedupe_key_make_one_job() {
    let db = TestDb::new().await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            use secrecy::ExposeSecret;
            let mut conn =
                diesel_async::AsyncPgConnection::establish(url.expose_secret()).await.expect("conn");
            let job =
                NewJob::new(&Flaky { behaviour: String::new() }, 20).expect("job").dedupe_key("same-key");
            conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
                let id = queue::enqueue_one(conn, job).await?;
                // Hold the transaction open so the others really overlap with it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(id)
            })
            .await
            .expect("enqueue")
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += usize::from(t.await.expect("task").is_some());
    }
    assert_eq!(created, 1, "exactly one enqueue reports a new job");
    assert_eq!(db.count("SELECT count(*) AS n FROM jobs WHERE dedupe_key = 'same-key'").await, 1);

    // Once that job has finished, the key is free again.
    db.execute("UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE dedupe_key = 'same-key'")
        .await;
    let mut conn = db.conn().await;
    let job = NewJob::new(&Flaky { behaviour: String::new() }, 20).expect("job").dedupe_key("same-key");
    assert!(queue::enqueue_one(&mut conn, job).await.expect("enqueue").is_some());
}

#[tokio::test]
async fn cancel_stops_a_running_job_and_retry_requeues_it() {
    let db = TestDb::new().await;
    let log = Log::default();
    let mut opts = options();
    opts.default_timeout = Duration::from_mins(1);
    let worker = start(&db, &log, opts);
    let mut conn = db.conn().await;
    let slow = NewJob::new(&Flaky { behaviour: "slow".into() }, 20).expect("job");
    let id = queue::enqueue_one(&mut conn, slow).await.expect("enqueue").expect("id").0;
    eventually(Duration::from_secs(10), "job running", || status_of(&db, id, "running")).await;

    let (code, out, err) = run_cli(&db, &["jobs", "cancel", &id.to_string()], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(status_of(&db, id, "cancelled").await);
    let (code, _, err) = run_cli(&db, &["jobs", "cancel", &id.to_string()], &[]).await;
    assert_ne!(code, 0, "cancelling a finished job is an error");
    assert!(err.contains("already finished"), "{err}");
    // The heartbeat (every lease/3 = 1 s) notices and frees the slot; the row stays cancelled.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(status_of(&db, id, "cancelled").await);

    let (code, out, err) = run_cli(&db, &["jobs", "retry", &id.to_string()], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    eventually(Duration::from_secs(10), "retried job running", || status_of(&db, id, "running")).await;
    worker.stop().await;
    // Shutdown grace (2 s) is shorter than the job: it is handed back, not left leased.
    assert!(status_of(&db, id, "queued").await);
    assert_eq!(db.count(&format!("SELECT attempts::bigint AS n FROM jobs WHERE id = {id}")).await, 0);
}
