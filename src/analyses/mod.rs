//! Analyses: one run of the pipeline over one tracked account, its stage, its progress counts
//! and, at the end, its result snapshot.
//!
//! Owns: `analyses`. Uses: `db`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::db::schema::analyses;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Serialize)]
#[diesel(table_name = analyses)]
pub struct Analysis {
    pub id: i64,
    pub tracked_account_id: i64,
    pub status: String,
    pub stage: String,
    pub classifier: String,
    pub progress: serde_json::Value,
    pub error: Option<String>,
    pub snapshot: Option<serde_json::Value>,
    pub cost_micro_usd: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// How the covered posts are chosen ([`Scope`]).
    pub scope: String,
}

/// How an analysis chooses the posts it covers (`analysis_posts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The account's newest `max_posts`, fixed when the pictures stage starts (a scrape, a
    /// scheduled re-analysis).
    LatestPosts,
    /// Every post of the analysis's input (an import): a user who imports a file means that file.
    Input,
}

impl Scope {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LatestPosts => "latest_posts",
            Self::Input => "input",
        }
    }
}

/// The order that makes "the newest posts" one answer: by date, then (no date, or the same
/// date) by media id, which grows with time, compared as a number.
pub const NEWEST_FIRST: &str = "p.posted_at DESC NULLS LAST, length(p.ig_post_id) DESC, p.ig_post_id DESC";

/// Fixes the posts a `latest_posts` analysis covers, once: the account's newest `max_posts`
/// as stored now ([`NEWEST_FIRST`]). A later call (a retried stage) keeps the first answer.
pub async fn cover_latest_posts(
    conn: &mut AsyncPgConnection,
    analysis_id: i64,
    account_id: i64,
    max_posts: i32,
) -> QueryResult<()> {
    diesel::sql_query(format!(
        "INSERT INTO analysis_posts (analysis_id, post_id)
         SELECT $1, id FROM (
            SELECT p.id FROM posts p JOIN tracked_account_posts tap ON tap.post_id = p.id
            WHERE tap.tracked_account_id = $2 ORDER BY {NEWEST_FIRST} LIMIT $3) newest
         WHERE NOT EXISTS (SELECT 1 FROM analysis_posts WHERE analysis_id = $1)
         ON CONFLICT DO NOTHING"
    ))
    .bind::<BigInt, _>(analysis_id)
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(i64::from(max_posts))
    .execute(conn)
    .await?;
    Ok(())
}

/// Pipeline stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Scrape,
    FetchPictures,
    Classify,
    Aggregate,
    Done,
}

impl Stage {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scrape => "scrape",
            Self::FetchPictures => "fetch_pictures",
            Self::Classify => "classify",
            Self::Aggregate => "aggregate",
            Self::Done => "done",
        }
    }
}

pub async fn create_analysis(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    classifier: &str,
) -> QueryResult<Analysis> {
    create_scoped_analysis(conn, account_id, classifier, Scope::LatestPosts).await
}

pub async fn create_scoped_analysis(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    classifier: &str,
    scope: Scope,
) -> QueryResult<Analysis> {
    diesel::insert_into(analyses::table)
        .values((
            analyses::tracked_account_id.eq(account_id),
            analyses::classifier.eq(classifier),
            analyses::scope.eq(scope.as_str()),
        ))
        .returning(Analysis::as_returning())
        .get_result(conn)
        .await
}

pub async fn get_analysis(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Analysis> {
    analyses::table.find(id).select(Analysis::as_select()).first(conn).await
}

/// Marks the unfinished analysis as being in `stage` (and running, with its start time set
/// once). Stages only move forward: false when the analysis is already past `stage` (a stage
/// job that ran again after handing over; it must do nothing) or no longer unfinished.
pub async fn enter_stage(conn: &mut AsyncPgConnection, id: i64, stage: Stage) -> QueryResult<bool> {
    let order = "ARRAY['scrape', 'fetch_pictures', 'classify', 'aggregate', 'done']";
    let n = diesel::sql_query(format!(
        "UPDATE analyses SET stage = $2, status = 'running', started_at = coalesce(started_at, now()), error = NULL
         WHERE id = $1 AND status IN ('queued', 'running')
           AND array_position({order}, stage) <= array_position({order}, $2::text)"
    ))
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(stage.as_str())
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Sets progress counters (merged into the existing ones).
pub async fn set_progress(
    conn: &mut AsyncPgConnection,
    id: i64,
    counts: &serde_json::Value,
) -> QueryResult<()> {
    diesel::sql_query("UPDATE analyses SET progress = progress || $2 WHERE id = $1")
        .bind::<BigInt, _>(id)
        .bind::<diesel::sql_types::Jsonb, _>(counts)
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds to numeric progress counters (one statement for all of them).
pub async fn add_progress(conn: &mut AsyncPgConnection, id: i64, deltas: &[(&str, i64)]) -> QueryResult<()> {
    let keys: Vec<&str> = deltas.iter().map(|d| d.0).collect();
    let values: Vec<i64> = deltas.iter().map(|d| d.1).collect();
    diesel::sql_query(
        "UPDATE analyses a SET progress = a.progress || (
             SELECT coalesce(jsonb_object_agg(d.k, coalesce((a.progress ->> d.k)::bigint, 0) + d.v), '{}')
             FROM unnest($2::text[], $3::bigint[]) AS d(k, v))
         WHERE a.id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<diesel::sql_types::Array<Text>, _>(&keys)
    .bind::<diesel::sql_types::Array<BigInt>, _>(&values)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the record of the input comments of analyses that ended more than `retention` ago
/// (a failed one keeps it for its retry until then: its stage jobs are pruned at the same age).
pub async fn prune_inputs(
    conn: &mut AsyncPgConnection,
    retention: std::time::Duration,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM analysis_comments WHERE analysis_id IN (
            SELECT id FROM analyses WHERE status IN ('succeeded', 'failed', 'cancelled')
              AND finished_at < now() - make_interval(secs => $1))",
    )
    .bind::<diesel::sql_types::Double, _>(retention.as_secs_f64())
    .execute(conn)
    .await
}

/// Adds to the analysis's cost.
pub async fn add_cost(conn: &mut AsyncPgConnection, id: i64, micro_usd: i64) -> QueryResult<()> {
    diesel::sql_query("UPDATE analyses SET cost_micro_usd = cost_micro_usd + $2 WHERE id = $1")
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(micro_usd)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks the analysis failed with the reason (a retry of its stage can resume it).
pub async fn fail_analysis(conn: &mut AsyncPgConnection, id: i64, error: &str) -> QueryResult<()> {
    diesel::sql_query("UPDATE analyses SET status = 'failed', error = $2, finished_at = now() WHERE id = $1 AND status <> 'cancelled'")
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(error)
        .execute(conn)
        .await?;
    Ok(())
}

/// The user's analysis `id`, with its account's handle (never another user's analysis).
pub async fn get_user_analysis(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    id: i64,
) -> QueryResult<Option<Analysis>> {
    diesel::sql_query(
        "SELECT a.* FROM analyses a JOIN tracked_accounts t ON t.id = a.tracked_account_id
         WHERE a.id = $1 AND t.user_id = $2",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(user_id)
    .get_result(conn)
    .await
    .optional()
}

/// The user's analyses (of one account, or all), newest first, before `before` (an id).
pub async fn list_user_analyses(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    account_id: Option<i64>,
    before: i64,
    limit: i64,
) -> QueryResult<Vec<Analysis>> {
    diesel::sql_query(
        "SELECT a.* FROM analyses a JOIN tracked_accounts t ON t.id = a.tracked_account_id
         WHERE t.user_id = $1 AND ($2::bigint IS NULL OR a.tracked_account_id = $2) AND a.id < $3
         ORDER BY a.id DESC LIMIT $4",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<diesel::sql_types::Nullable<BigInt>, _>(account_id)
    .bind::<BigInt, _>(before)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// The latest analysis of each of `accounts` (its snapshot left out: `Some({})` marks one).
pub async fn latest_of_accounts(
    conn: &mut AsyncPgConnection,
    accounts: &[i64],
) -> QueryResult<std::collections::BTreeMap<i64, Analysis>> {
    let rows: Vec<Analysis> = diesel::sql_query(
        "SELECT DISTINCT ON (tracked_account_id) id, tracked_account_id, status, stage, classifier, progress, error,
                CASE WHEN snapshot IS NULL THEN NULL ELSE '{}'::jsonb END AS snapshot, cost_micro_usd, created_at,
                started_at, finished_at, scope
         FROM analyses WHERE tracked_account_id = ANY($1) ORDER BY tracked_account_id, id DESC",
    )
    .bind::<diesel::sql_types::Array<BigInt>, _>(accounts)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|a| (a.tracked_account_id, a)).collect())
}

/// The account's unfinished analysis, if any.
pub async fn active_analysis(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Option<Analysis>> {
    analyses::table
        .filter(analyses::tracked_account_id.eq(account_id))
        .filter(analyses::status.eq_any(["queued", "running"]))
        .order(analyses::id.desc())
        .select(Analysis::as_select())
        .first(conn)
        .await
        .optional()
}

/// The classifier asked for by the account's latest analysis, if it had one (a scheduled run
/// that fell back to the local model records what was asked for in its progress).
pub async fn latest_classifier(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        classifier: String,
    }
    let row: Option<Row> = diesel::sql_query(
        "SELECT coalesce(progress->>'requested_classifier', classifier) AS classifier FROM analyses
         WHERE tracked_account_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind::<BigInt, _>(account_id)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| r.classifier))
}

/// Cancels the user's unfinished analysis `id`; its remaining stages are skipped.
/// `None`: no such analysis; `Some(false)`: it had already finished.
pub async fn cancel_user_analysis(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    id: i64,
) -> QueryResult<Option<bool>> {
    if get_user_analysis(conn, user_id, id).await?.is_none() {
        return Ok(None);
    }
    let n = diesel::sql_query(
        "UPDATE analyses SET status = 'cancelled', finished_at = now() WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind::<BigInt, _>(id)
    .execute(conn)
    .await?;
    Ok(Some(n == 1))
}

/// What became of a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    NotFound,
    /// It has not failed.
    NotFailed,
    /// It failed, but its failed stage job is gone (finished jobs are deleted after
    /// `queue.finished_retention_hours`): there is nothing to resume from.
    NoStageJob,
    /// Another analysis of the account is unfinished (its id).
    Busy(i64),
    Reopened,
}

/// Reopens the user's failed analysis and puts its failed stage job back in the queue, unless
/// another analysis of the account is unfinished.
pub async fn retry_user_analysis(conn: &mut AsyncPgConnection, user_id: i64, id: i64) -> QueryResult<Retry> {
    let Some(analysis) = get_user_analysis(conn, user_id, id).await? else { return Ok(Retry::NotFound) };
    retry_analysis(conn, &analysis).await
}

/// Reopens a failed `analysis` from its last failed or cancelled stage job (an operator's
/// retry of that job goes through here too: the job alone would find the analysis failed).
pub async fn retry_analysis(conn: &mut AsyncPgConnection, analysis: &Analysis) -> QueryResult<Retry> {
    use diesel_async::AsyncConnection;
    #[derive(QueryableByName)]
    struct Job {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let id = analysis.id;
    if analysis.status != "failed" {
        return Ok(Retry::NotFailed);
    }
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        if let Some(busy) = crate::jobs::pipeline::lock_for_start(conn, analysis.tracked_account_id).await? {
            return Ok(Retry::Busy(busy.id));
        }
        let failed: Option<Job> = diesel::sql_query(
            "SELECT id FROM jobs WHERE dedupe_key LIKE $1 AND status IN ('failed', 'cancelled') ORDER BY id DESC LIMIT 1",
        )
        .bind::<Text, _>(format!("analysis:{id}:%"))
        .get_result(conn)
        .await
        .optional()?;
        let Some(job) = failed else { return Ok(Retry::NoStageJob) };
        // The job first: the analysis is reopened only with a job to carry it on.
        if !crate::queue::storage::retry_job(conn, crate::queue::JobId(job.id)).await? {
            return Ok(Retry::NoStageJob);
        }
        diesel::sql_query(
            "UPDATE analyses SET status = 'running', error = NULL, finished_at = NULL WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .execute(conn)
        .await?;
        Ok(Retry::Reopened)
    })
    .await
}
