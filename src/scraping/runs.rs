//! One actor run for one purpose of an analysis, resumable: the run id is recorded as soon as
//! Apify answers, so a retried job waits for the same run instead of paying for a second one.
//! The dataset is read whole and stored in one transaction, together with the run's
//! bookkeeping: a malformed page or a failed run leaves nothing half-written.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Integer, Jsonb, Nullable, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::intake::{self, Intake, Source};
use super::items::{self, Records};
use super::store::{ForAnalysis, StoreStats};
use crate::accounts::TrackedAccount;
use crate::clients::apify::{ApifyClient, ApifyError, RunRequest};
use crate::db::DbPool;
use crate::privacy::PrivacyKey;

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error(transparent)]
    Apify(#[from] ApifyError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    /// Another attempt of the same job is starting the run, or could not: try again later.
    #[error("{0}")]
    Busy(&'static str),
    /// The tracked account's owner was erased at their request: nothing of theirs is scraped.
    #[error("@{0} was erased at their request: their account is not scraped any more")]
    Erased(String),
}

impl ScrapeError {
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Apify(e) if e.is_permanent()) || matches!(self, Self::Erased(_))
    }
}

/// What to run, for which analysis.
#[derive(Debug, Clone)]
pub struct RunPlan<'a> {
    pub analysis_id: i64,
    /// Unique within the analysis, e.g. `posts` or `comments:2`.
    pub purpose: &'a str,
    pub actor: &'a str,
    pub input: Value,
    pub max_items: u64,
    pub max_charge_usd: f64,
    /// The account analysed.
    pub account: &'a TrackedAccount,
    /// What the run's items are: the account's posts and comments, or its commenters' profiles.
    pub source: Source,
}

/// What a finished run brought.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    pub stats: StoreStats,
    pub items: usize,
    pub rejected: usize,
    pub usage_usd: f64,
    /// The run had already been stored by an earlier attempt.
    pub already_stored: bool,
}

#[derive(QueryableByName)]
struct RunRow {
    #[diesel(sql_type = Nullable<Text>)]
    run_id: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
}

/// Runs `plan` (or resumes its run) and stores its items.
///
/// # Errors
/// Apify and database errors; see [`ScrapeError::is_permanent`].
pub async fn run_and_store(
    pool: &DbPool,
    apify: &ApifyClient,
    privacy: &PrivacyKey,
    plan: &RunPlan<'_>,
    cancel: &CancellationToken,
) -> Result<RunOutcome, ScrapeError> {
    let mut conn = pool.get().await?;
    let existing: RunRow = diesel::sql_query(
        "INSERT INTO apify_runs (analysis_id, purpose, actor, input) VALUES ($1, $2, $3, $4)
         ON CONFLICT (analysis_id, purpose) DO UPDATE SET actor = apify_runs.actor
         RETURNING run_id, status",
    )
    .bind::<BigInt, _>(plan.analysis_id)
    .bind::<Text, _>(plan.purpose)
    .bind::<Text, _>(plan.actor)
    .bind::<Jsonb, _>(&plan.input)
    .get_result(&mut conn)
    .await?;
    drop(conn);
    let RunRow { run_id, status } = existing;
    if status == "stored" {
        return Ok(RunOutcome { already_stored: true, ..RunOutcome::default() });
    }
    let run_id = match run_id.filter(|_| status == "running") {
        Some(id) => {
            tracing::info!(analysis_id = plan.analysis_id, purpose = plan.purpose, run_id = %id, "resuming Apify run");
            id
        }
        None if claim_start(pool, plan).await? => start(pool, apify, plan).await?,
        // Another attempt of the same job is starting it: wait for its run, never a second.
        None => match started_elsewhere(pool, plan, cancel).await? {
            Elsewhere::Running(id) => id,
            Elsewhere::Stored => return Ok(RunOutcome { already_stored: true, ..RunOutcome::default() }),
            Elsewhere::Abandoned => start(pool, apify, plan).await?,
        },
    };
    let run = match apify.wait_for_run(&run_id, cancel).await {
        Ok(run) => run,
        Err(error) => {
            // Only a run that ended badly is replaced by a new one on retry; after a network
            // or server error the retry waits for the same run.
            if matches!(
                error,
                ApifyError::RunFailed { .. } | ApifyError::TimedOut { .. } | ApifyError::Cancelled(_)
            ) {
                record_status(pool, plan, "failed", Some(&error.to_string())).await?;
            }
            return Err(error.into());
        }
    };
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let page = apify.dataset_page(&run.default_dataset_id, offset, apify.page_size()).await?;
        let n = page.count.max(page.items.len() as u64);
        all.extend(page.items);
        offset += n;
        if n == 0 || offset >= page.total {
            break;
        }
    }
    let (records, rejected) = parse_items(&all);
    let unreadable = rejected - records.rejected_comments;
    let usage = run.usage_total_usd.unwrap_or(0.0);
    let mut conn = pool.get().await?;
    let (analysis_id, purpose, account, source) =
        (plan.analysis_id, plan.purpose.to_owned(), plan.account, plan.source);
    let items = all.len();
    let stats = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            // Marked first: a duplicate attempt that waited for the same run finds it stored
            // (the row lock makes it wait for this transaction) and stores and pays nothing.
            let marked = diesel::sql_query(
                "UPDATE apify_runs SET status = 'stored', items_stored = $3, usage_usd = $4, error = NULL,
                        finished_at = now()
                 WHERE analysis_id = $1 AND purpose = $2 AND status <> 'stored'",
            )
            .bind::<BigInt, _>(analysis_id)
            .bind::<Text, _>(&purpose)
            .bind::<Integer, _>(i32::try_from(items).unwrap_or(i32::MAX))
            .bind::<Double, _>(usage)
            .execute(conn)
            .await?;
            if marked == 0 {
                return Ok(None);
            }
            let input = ForAnalysis { id: analysis_id, covers_input_posts: false };
            let (stats, mut intake) =
                intake::take_in(conn, privacy, account, Some(input), source, records).await?;
            crate::analyses::add_cost(conn, analysis_id, (usage * 1e6).round() as i64).await?;
            // Counted with the store: a process that dies after it neither loses nor repeats them.
            intake.items_rejected = unreadable;
            let counts = progress_counts(&stats, &intake, rejected, source, purpose == POSTS_PURPOSE);
            crate::analyses::add_progress(conn, analysis_id, &counts).await?;
            Ok(Some(stats))
        })
        .await?;
    let Some(stats) = stats else { return Ok(RunOutcome { already_stored: true, ..RunOutcome::default() }) };
    Ok(RunOutcome { stats, items, rejected, usage_usd: usage, already_stored: false })
}

/// A dataset's items as records, and how many could not be used (comments among them are
/// counted in `rejected_comments`).
fn parse_items(all: &[Value]) -> (Records, usize) {
    let mut records = Records::default();
    let mut rejected = 0;
    for item in all {
        match items::parse_item(item) {
            Ok(r) => records.extend(r),
            Err(e) => {
                rejected += 1;
                if e.is_comment() {
                    records.rejected_comments += 1;
                }
            }
        }
    }
    (records, rejected)
}

/// The purpose of an analysis's run of the account's posts.
pub const POSTS_PURPOSE: &str = "posts";

/// What a stored run adds to its analysis's progress. Runs of the account's posts and comments
/// count new comments and commenters and the intake ([`Intake`]: comments read, set aside,
/// kept); only the posts run counts posts found (comment runs find the same posts again). A
/// profile run counts only its rejected and suppressed items: the posts a profile item carries
/// are the commenter's, not the account's.
fn progress_counts(
    s: &StoreStats,
    intake: &Intake,
    rejected: usize,
    source: Source,
    posts_run: bool,
) -> Vec<(&'static str, i64)> {
    let mut counts = vec![("items_rejected", rejected as i64), ("items_suppressed", s.suppressed as i64)];
    if source == Source::Account {
        let n = |v: usize| v as i64;
        counts.extend([
            ("comments_stored", n(s.comments_new)),
            ("commenters_new", n(s.commenters_new)),
            ("comments_read", n(intake.comments_read)),
            ("comments_foreign", n(intake.comments_foreign)),
            ("comments_duplicate", n(intake.comments_duplicate)),
            ("comments_rejected", n(intake.comments_rejected)),
            ("comments_suppressed", n(intake.comments_suppressed)),
            ("comments_kept", n(intake.comments_kept)),
            ("posts_foreign", n(intake.posts_foreign)),
            ("profiles_foreign", n(intake.profiles_foreign)),
            ("posts_without_owner", n(intake.posts_without_owner)),
        ]);
        if posts_run {
            counts.push(("posts_found", n(s.posts_new + s.posts_seen_before)));
        }
    }
    counts
}

/// How long a claim to start a run holds (longer than a start request with all its retries):
/// an attempt that died between claiming and recording the run id leaves it, and a waiting or
/// later attempt then starts the run after all.
const LAUNCH_CLAIM_SECS: u64 = 600;

/// Claims the start of the plan's run for this attempt: true when no other attempt is starting
/// it (it was never started, its last run failed, or an earlier claim expired). A failed run's
/// id is cleared, so nobody resumes it.
async fn claim_start(pool: &DbPool, plan: &RunPlan<'_>) -> Result<bool, ScrapeError> {
    let mut conn = pool.get().await?;
    let claimed = diesel::sql_query(
        "UPDATE apify_runs SET status = 'launching', launch_started_at = now(), error = NULL, run_id = NULL,
                dataset_id = NULL
         WHERE analysis_id = $1 AND purpose = $2
           AND (status IN ('starting', 'failed')
                OR (status = 'launching' AND launch_started_at < now() - make_interval(secs => $3)))",
    )
    .bind::<BigInt, _>(plan.analysis_id)
    .bind::<Text, _>(plan.purpose)
    .bind::<Double, _>(LAUNCH_CLAIM_SECS as f64)
    .execute(&mut conn)
    .await?;
    Ok(claimed == 1)
}

/// What became of a run another attempt was starting.
enum Elsewhere {
    Running(String),
    Stored,
    /// Its claim expired and this attempt took it over: start the run.
    Abandoned,
}

/// Waits for the attempt that claimed the start to record its run, taking the claim over once
/// it expires (that attempt died).
async fn started_elsewhere(
    pool: &DbPool,
    plan: &RunPlan<'_>,
    cancel: &CancellationToken,
) -> Result<Elsewhere, ScrapeError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(LAUNCH_CLAIM_SECS + 30);
    loop {
        let row: RunRow = diesel::sql_query(
            "SELECT run_id, status FROM apify_runs WHERE analysis_id = $1 AND purpose = $2",
        )
        .bind::<BigInt, _>(plan.analysis_id)
        .bind::<Text, _>(plan.purpose)
        .get_result(&mut *pool.get().await?)
        .await?;
        match (row.status.as_str(), row.run_id) {
            ("stored", _) => return Ok(Elsewhere::Stored),
            ("running", Some(id)) => return Ok(Elsewhere::Running(id)),
            ("launching", _) if claim_start(pool, plan).await? => return Ok(Elsewhere::Abandoned),
            ("failed", _) => {
                return Err(ScrapeError::Busy(
                    "another attempt could not start the Apify run; this job will try again",
                ));
            }
            _ if tokio::time::Instant::now() >= deadline || cancel.is_cancelled() => {
                return Err(ScrapeError::Busy(
                    "another attempt is still starting the Apify run; this job will try again",
                ));
            }
            _ => tokio::time::sleep(std::time::Duration::from_secs(2)).await,
        }
    }
}

async fn start(pool: &DbPool, apify: &ApifyClient, plan: &RunPlan<'_>) -> Result<String, ScrapeError> {
    let request = RunRequest {
        actor: plan.actor,
        input: &plan.input,
        max_items: Some(plan.max_items),
        max_total_charge_usd: Some(plan.max_charge_usd),
    };
    let run = match apify.start_run(&request).await {
        Ok(run) => run,
        Err(error) => {
            record_status(pool, plan, "failed", Some(&error.to_string())).await?;
            return Err(error.into());
        }
    };
    let mut conn = pool.get().await?;
    diesel::sql_query(
        "UPDATE apify_runs SET run_id = $3, dataset_id = $4, status = 'running', error = NULL
         WHERE analysis_id = $1 AND purpose = $2",
    )
    .bind::<BigInt, _>(plan.analysis_id)
    .bind::<Text, _>(plan.purpose)
    .bind::<Text, _>(&run.id)
    .bind::<Text, _>(&run.default_dataset_id)
    .execute(&mut conn)
    .await?;
    tracing::info!(analysis_id = plan.analysis_id, purpose = plan.purpose, run_id = %run.id, actor = plan.actor, "started Apify run");
    Ok(run.id)
}

async fn record_status(
    pool: &DbPool,
    plan: &RunPlan<'_>,
    status: &str,
    error: Option<&str>,
) -> Result<(), ScrapeError> {
    let mut conn = pool.get().await?;
    // A run another attempt stored stays stored.
    diesel::sql_query(
        "UPDATE apify_runs SET status = $3, error = $4 WHERE analysis_id = $1 AND purpose = $2 AND status <> 'stored'",
    )
    .bind::<BigInt, _>(plan.analysis_id)
    .bind::<Text, _>(plan.purpose)
    .bind::<Text, _>(status)
    .bind::<Nullable<Text>, _>(error)
    .execute(&mut conn)
    .await?;
    Ok(())
}
