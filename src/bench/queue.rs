//! `audiencelens bench queue`: no-op jobs through the real queue (enqueue, claim, run,
//! complete), in a scratch database. Reports enqueue rate, drain rate per mode side by side,
//! throughput across the drain in tenths (does it decay as the table churns?) and pickup
//! latency (enqueue → start, woken by NOTIFY).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;
use crate::db::{self, admin};
use crate::metrics::Metrics;
use crate::queue::{self, Job, JobContext, JobError, NewJob, Registry, Worker, WorkerOptions};

#[derive(Debug, clap::Args)]
pub struct QueueBenchArgs {
    /// Jobs drained per mode.
    #[arg(long, default_value_t = 50_000)]
    jobs: usize,
    /// Concurrent jobs in the worker (the batched mode also claims up to this many at once).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Claim and completion batch size in batched mode.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Modes to run: unbatched (one job per claim and per completion), batched, or both.
    #[arg(long, value_enum, default_value_t = Modes::Both)]
    modes: Modes,
    /// Pickup-latency samples (sequential single jobs on an idle worker).
    #[arg(long, default_value_t = 500)]
    latency_samples: usize,
    /// Keep the scratch database afterwards (for inspection).
    #[arg(long)]
    keep_database: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Modes {
    Unbatched,
    Batched,
    Both,
}

/// Shared with the no-op jobs: how many ran, and where pickup latencies go.
#[derive(Debug, Default)]
struct Probe {
    ran: AtomicU64,
    latency: std::sync::Mutex<Option<mpsc::UnboundedSender<Duration>>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BenchNoop {
    /// Microseconds since the Unix epoch at enqueue, for latency samples; 0 for throughput jobs.
    #[serde(default)]
    t: i64,
}

impl Job for BenchNoop {
    const KIND: &'static str = "bench_noop";
    const QUEUE: &'static str = "bench";
    type Context = Arc<Probe>;

    async fn run(self, probe: Arc<Probe>, _job: JobContext) -> Result<(), JobError> {
        probe.ran.fetch_add(1, Ordering::Relaxed);
        if self.t > 0 {
            let waited = chrono::Utc::now().timestamp_micros() - self.t;
            if let Ok(guard) = probe.latency.lock()
                && let Some(tx) = guard.as_ref()
            {
                let _ = tx.send(Duration::from_micros(u64::try_from(waited).unwrap_or(0)));
            }
        }
        Ok(())
    }
}

struct ModeResult {
    name: &'static str,
    drain_secs: f64,
    tenths: Vec<f64>,
}

pub async fn run(args: QueueBenchArgs, config: Config) -> anyhow::Result<()> {
    let base_url = config.database_url();
    let name = format!("audiencelens_bench_{}", std::process::id());
    admin::drop_database(&base_url, &name).await?;
    admin::create_database(&base_url, &name, None).await?;
    let url = admin::url_for_database(&base_url, &name);
    let result = run_in(&args, &config, &url).await;
    if !args.keep_database {
        admin::drop_database(&base_url, &name).await?;
    }
    result
}

async fn run_in(args: &QueueBenchArgs, config: &Config, url: &secrecy::SecretString) -> anyhow::Result<()> {
    db::run_migrations(url).await?;
    let pool = db::connect_pool(url, args.concurrency.max(4) + 4, Duration::from_secs(10))?;
    let probe = Arc::new(Probe::default());
    let mut registry = Registry::new();
    registry.register::<BenchNoop>(probe.clone());
    let registry = Arc::new(registry);
    println!(
        "queue benchmark: {} no-op jobs per mode, concurrency {}, scratch database",
        args.jobs, args.concurrency
    );

    let mut results = Vec::new();
    let modes: &[(&str, bool)] = match args.modes {
        Modes::Unbatched => &[("unbatched", false)],
        Modes::Batched => &[("batched", true)],
        Modes::Both => &[("unbatched", false), ("batched", true)],
    };
    for &(mode, batched) in modes {
        let enqueue_secs = enqueue_jobs(&pool, args.jobs).await?;
        println!(
            "  {mode}: enqueued {} jobs in {enqueue_secs:.2} s = {:.0} jobs/s",
            args.jobs,
            args.jobs as f64 / enqueue_secs
        );
        let mut options = WorkerOptions::from_settings(&config.settings);
        options.queues = vec![(
            "bench".to_owned(),
            if batched { args.concurrency.max(args.batch) } else { args.concurrency },
        )];
        if batched {
            options.claim_batch_size = args.batch;
            options.complete_batch_size = args.batch;
        } else {
            options.claim_batch_size = 1;
            options.complete_batch_size = 1;
            options.complete_flush = Duration::ZERO;
        }
        let result = drain(&pool, url, &registry, &probe, options, args.jobs, mode).await?;
        println!(
            "  {mode}: drained in {:.2} s = {:.0} jobs/s",
            result.drain_secs,
            args.jobs as f64 / result.drain_secs
        );
        results.push(result);
        truncate(&pool).await?;
    }

    println!();
    println!("{:<10} {:>12}   throughput by tenth of the drain (jobs/s)", "mode", "jobs/s");
    for r in &results {
        let tenths: Vec<String> = r.tenths.iter().map(|t| format!("{t:.0}")).collect();
        let first = r.tenths.first().copied().unwrap_or(0.0);
        let last = r.tenths.last().copied().unwrap_or(0.0);
        println!(
            "{:<10} {:>12.0}   {}   (last/first {:.2})",
            r.name,
            args.jobs as f64 / r.drain_secs,
            tenths.join(" "),
            if first > 0.0 { last / first } else { 0.0 }
        );
    }
    if let [a, b] = results.as_slice() {
        println!("batched / unbatched throughput: {:.1}x", a.drain_secs / b.drain_secs);
    }
    if args.latency_samples > 0 {
        latency(&pool, url, &registry, &probe, config, args.latency_samples).await?;
    }
    Ok(())
}

async fn enqueue_jobs(pool: &db::DbPool, n: usize) -> anyhow::Result<f64> {
    let job = NewJob::new(&BenchNoop { t: 0 }, 3)?;
    let started = Instant::now();
    let mut conn = pool.get().await?;
    let mut left = n;
    while left > 0 {
        let chunk = left.min(5_000);
        queue::enqueue(&mut conn, &vec![job.clone(); chunk]).await?;
        left -= chunk;
    }
    Ok(started.elapsed().as_secs_f64())
}

async fn count_succeeded(pool: &db::DbPool) -> anyhow::Result<i64> {
    let mut conn = pool.get().await?;
    let depths = queue::storage::queue_depths(&mut conn).await?;
    Ok(depths.iter().filter(|d| d.status == "succeeded").map(|d| d.count).sum())
}

async fn drain(
    pool: &db::DbPool,
    url: &secrecy::SecretString,
    registry: &Arc<Registry>,
    probe: &Arc<Probe>,
    options: WorkerOptions,
    jobs: usize,
    name: &'static str,
) -> anyhow::Result<ModeResult> {
    let stop = CancellationToken::new();
    let worker = Worker {
        id: Uuid::new_v4(),
        database_url: url.clone(),
        registry: registry.clone(),
        options,
        metrics: Arc::new(Metrics::new()),
    };
    probe.ran.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let handle = tokio::spawn(worker.run(stop.clone()));
    // Tenths are timed on runs (a cheap atomic counter), so polling the table cannot skew them.
    let mut marks = Vec::with_capacity(10);
    let tenth = (jobs / 10).max(1) as u64;
    let mut last_progress = (0, Instant::now());
    while marks.len() < 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let ran = probe.ran.load(Ordering::Relaxed);
        if ran != last_progress.0 {
            last_progress = (ran, Instant::now());
        } else if last_progress.1.elapsed() > Duration::from_secs(30) {
            stop.cancel();
            anyhow::bail!("no job ran for 30 s: the worker is stuck (see the log above)");
        }
        while marks.len() < 10 && ran >= tenth * (marks.len() as u64 + 1) {
            marks.push(started.elapsed().as_secs_f64());
        }
    }
    loop {
        if count_succeeded(pool).await? >= jobs as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The drain ends when every outcome is recorded in the table, not when the last job ran.
    let drain_secs = started.elapsed().as_secs_f64();
    stop.cancel();
    handle.await??;
    let mut tenths = Vec::with_capacity(10);
    let mut previous = 0.0;
    for mark in marks {
        tenths.push(tenth as f64 / (mark - previous).max(1e-9));
        previous = mark;
    }
    Ok(ModeResult { name, drain_secs, tenths })
}

async fn truncate(pool: &db::DbPool) -> anyhow::Result<()> {
    use diesel_async::RunQueryDsl;
    let mut conn = pool.get().await?;
    diesel::sql_query("TRUNCATE jobs").execute(&mut conn).await?;
    diesel::sql_query("VACUUM ANALYZE jobs").execute(&mut conn).await?;
    Ok(())
}

async fn latency(
    pool: &db::DbPool,
    url: &secrecy::SecretString,
    registry: &Arc<Registry>,
    probe: &Arc<Probe>,
    config: &Config,
    samples: usize,
) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    if let Ok(mut guard) = probe.latency.lock() {
        *guard = Some(tx);
    }
    let mut options = WorkerOptions::from_settings(&config.settings);
    options.queues = vec![("bench".to_owned(), 4)];
    let stop = CancellationToken::new();
    let worker = Worker {
        id: Uuid::new_v4(),
        database_url: url.clone(),
        registry: registry.clone(),
        options,
        metrics: Arc::new(Metrics::new()),
    };
    let handle = tokio::spawn(worker.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await; // let LISTEN start
    let mut conn = pool.get().await?;
    let mut waits = Vec::with_capacity(samples);
    for _ in 0..samples {
        let job = NewJob::new(&BenchNoop { t: chrono::Utc::now().timestamp_micros() }, 3)?;
        queue::enqueue_one(&mut conn, job).await?;
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(wait)) => waits.push(wait),
            _ => anyhow::bail!("a latency sample did not run within 10 s"),
        }
    }
    stop.cancel();
    handle.await??;
    waits.sort();
    let pct = |p: f64| waits[((waits.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "pickup latency (enqueue call -> job starts, {} samples): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        waits.len(),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
