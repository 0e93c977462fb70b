//! Every statement the queue runs against the `jobs` table. Each is one round trip; the caller
//! owns any surrounding transaction. Batch statements take arrays so N jobs cost one commit.
//!
//! "Still ours" is checked as `lease_owner = $me` alone: a CHECK constraint ties a lease owner
//! to `status = 'running'`, and adding the status test would steer the planner to the partial
//! lease index, whose dead entries grow with every job (completions slowed 4x over a 1M-job
//! drain that way); by id through the primary key the cost stays flat.

use std::time::Duration;

use diesel::sql_types::{
    Array, BigInt, Bool, Double, Integer, Jsonb, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::NewJob;
use super::model::{ClaimedJob, JobId, JobRow, JobStatus, QueueDepth};

/// Channel on which enqueues announce work; the payload is the queue name.
pub const NOTIFY_CHANNEL: &str = "audiencelens_jobs";

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Inserts `jobs` and sends one NOTIFY per distinct queue (Postgres also folds identical
/// notifications within a transaction, so several calls in one transaction wake workers once).
/// Jobs whose dedupe key matches an unfinished job are skipped. Returns the new ids.
pub async fn insert_jobs(conn: &mut AsyncPgConnection, jobs: &[NewJob]) -> QueryResult<Vec<JobId>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let queues: Vec<&str> = jobs.iter().map(|j| j.queue.as_str()).collect();
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let payloads: Vec<&serde_json::Value> = jobs.iter().map(|j| &j.payload).collect();
    let priorities: Vec<i16> = jobs.iter().map(|j| j.priority).collect();
    let max_attempts: Vec<i32> = jobs.iter().map(|j| j.max_attempts).collect();
    let delays: Vec<f64> = jobs.iter().map(|j| j.delay.map_or(0.0, secs)).collect();
    let keys: Vec<Option<&str>> = jobs.iter().map(|j| j.dedupe_key.as_deref()).collect();
    let rows: Vec<IdRow> = diesel::sql_query(
        "WITH inserted AS (
            INSERT INTO jobs (queue, kind, payload, priority, max_attempts, run_at, dedupe_key)
            SELECT queue, kind, payload, priority, max_attempts, now() + make_interval(secs => delay),
                   dedupe_key
            FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::smallint[], $5::int[], $6::float8[],
                        $7::text[]) AS t(queue, kind, payload, priority, max_attempts, delay, dedupe_key)
            ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running')
            DO NOTHING
            RETURNING id, queue
         ), notified AS (
            SELECT pg_notify($8, queue) FROM (SELECT DISTINCT queue FROM inserted) d
         )
         SELECT id FROM inserted CROSS JOIN (SELECT count(*) FROM notified) n",
    )
    .bind::<Array<Text>, _>(&queues)
    .bind::<Array<Text>, _>(&kinds)
    .bind::<Array<Jsonb>, _>(&payloads)
    .bind::<Array<SmallInt>, _>(&priorities)
    .bind::<Array<Integer>, _>(&max_attempts)
    .bind::<Array<Double>, _>(&delays)
    .bind::<Array<Nullable<Text>>, _>(&keys)
    .bind::<Text, _>(NOTIFY_CHANNEL)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| JobId(r.id)).collect())
}

/// Where a claim scan starts: after this `(priority, run_at, id)` in claim order.
pub type ClaimKey = (i16, chrono::DateTime<chrono::Utc>, i64);

/// A claim: up to `limit` due jobs of `kinds` from `queue`, for `owner`, under a lease.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub queue: &'a str,
    pub kinds: &'a [String],
    pub limit: usize,
    pub owner: Uuid,
    pub lease: Duration,
    /// Start the index scan past this key instead of at the head of the queue.
    pub after: Option<ClaimKey>,
    /// A job of `owner` to record as succeeded in the same statement (unbatched mode: one
    /// round trip per job).
    pub succeeded: Option<i64>,
}

/// Runs a [`Claim`] as one short statement: rows locked by another claimer are skipped, not
/// waited for.
pub async fn claim_jobs(conn: &mut AsyncPgConnection, claim: Claim<'_>) -> QueryResult<Vec<ClaimedJob>> {
    // Two statements rather than one with an optional predicate, so each keeps a plan that
    // uses the cursor as an index bound.
    //
    // The finished job is recorded before the scan locks anything. Unreferenced, `done` would
    // run last, and the scan can hold a row it then skips: a job another worker claimed after
    // this statement's snapshot is locked (following its update chain) before its status is
    // re-checked, and stays locked to the end. That job is the other worker's next `done` row,
    // or in its lease renewal: both wait on this statement while it waited on them (deadlocks
    // under load, about one a second of stall each). The always-true test on `done` makes it an
    // init plan that runs first; the cursor stays an index bound.
    let sql = |bound: &str| {
        format!(
            "WITH done AS (
                UPDATE jobs SET status = 'succeeded', finished_at = now(), lease_owner = NULL,
                       lease_expires_at = NULL
                WHERE id = $6 AND lease_owner = $4
                RETURNING id
             ), picked AS (
                SELECT id FROM jobs
                WHERE status = 'queued' AND queue = $1 AND run_at <= now() AND kind = ANY($2) {bound}
                  AND (SELECT count(*) FROM done) >= 0
                ORDER BY priority, run_at, id
                LIMIT $3
                FOR UPDATE SKIP LOCKED
             )
             UPDATE jobs j
             SET status = 'running', attempts = j.attempts + 1, lease_owner = $4,
                 lease_expires_at = now() + make_interval(secs => $5), started_at = now()
             FROM picked WHERE j.id = picked.id
             RETURNING j.id, j.kind, j.payload, j.attempts, j.max_attempts, j.priority, j.run_at"
        )
    };
    let query = |bound: &str| {
        diesel::sql_query(sql(bound))
            .bind::<Text, _>(claim.queue)
            .bind::<Array<Text>, _>(claim.kinds)
            .bind::<BigInt, _>(i64::try_from(claim.limit).unwrap_or(i64::MAX))
            .bind::<SqlUuid, _>(claim.owner)
            .bind::<Double, _>(secs(claim.lease))
            .bind::<Nullable<BigInt>, _>(claim.succeeded)
    };
    match claim.after {
        None => query("").load(conn).await,
        Some((priority, run_at, id)) => {
            query("AND (priority, run_at, id) > ($7, $8, $9)")
                .bind::<SmallInt, _>(priority)
                .bind::<Timestamptz, _>(run_at)
                .bind::<BigInt, _>(id)
                .load(conn)
                .await
        }
    }
}

/// Marks jobs that `owner` still holds as succeeded. Jobs whose lease was lost (rescued,
/// cancelled) are left alone. Returns how many were marked.
pub async fn complete_jobs(conn: &mut AsyncPgConnection, ids: &[i64], owner: Uuid) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE jobs SET status = 'succeeded', finished_at = now(), lease_owner = NULL,
                lease_expires_at = NULL
         WHERE id = ANY($1) AND lease_owner = $2",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<SqlUuid, _>(owner)
    .execute(conn)
    .await
}

/// One failed run, for [`fail_jobs`].
#[derive(Debug, Clone)]
pub struct Failure {
    pub id: i64,
    pub error: String,
    /// Not worth retrying (bad payload, a typed error the job declared final).
    pub permanent: bool,
}

/// Retry settings used by [`fail_jobs`] and the rescuer.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

/// Records failed runs: back to `queued` with an exponential, jittered delay, or `failed` for
/// good once attempts are used up or the failure is permanent. The error is kept either way.
pub async fn fail_jobs(
    conn: &mut AsyncPgConnection,
    failures: &[Failure],
    owner: Uuid,
    backoff: Backoff,
) -> QueryResult<usize> {
    let ids: Vec<i64> = failures.iter().map(|f| f.id).collect();
    let errors: Vec<&str> = failures.iter().map(|f| f.error.as_str()).collect();
    let permanent: Vec<bool> = failures.iter().map(|f| f.permanent).collect();
    diesel::sql_query(
        "UPDATE jobs j SET
            status = CASE WHEN f.permanent OR j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
            finished_at = CASE WHEN f.permanent OR j.attempts >= j.max_attempts THEN now() END,
            run_at = CASE WHEN f.permanent OR j.attempts >= j.max_attempts THEN j.run_at
                     ELSE now() + make_interval(secs =>
                          least($4 * power(2, j.attempts - 1), $5) * (0.75 + random() * 0.5)) END,
            last_error = f.error, lease_owner = NULL, lease_expires_at = NULL
         FROM unnest($1::bigint[], $2::text[], $3::bool[]) AS f(id, error, permanent)
         WHERE j.id = f.id AND j.lease_owner = $6",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<Text>, _>(&errors)
    .bind::<Array<Bool>, _>(&permanent)
    .bind::<Double, _>(secs(backoff.base))
    .bind::<Double, _>(secs(backoff.max))
    .bind::<SqlUuid, _>(owner)
    .execute(conn)
    .await
}

/// Extends the leases `owner` holds on `ids`; returns the ids it still holds. A job missing
/// from the answer was cancelled or rescued and must stop.
pub async fn renew_leases(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
    owner: Uuid,
    lease: Duration,
) -> QueryResult<Vec<i64>> {
    let rows: Vec<IdRow> = diesel::sql_query(
        "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3)
         WHERE id = ANY($1) AND lease_owner = $2
         RETURNING id",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<SqlUuid, _>(owner)
    .bind::<Double, _>(secs(lease))
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Hands jobs back to the queue without counting the attempt (graceful shutdown).
pub async fn release_jobs(conn: &mut AsyncPgConnection, ids: &[i64], owner: Uuid) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE jobs SET status = 'queued', attempts = greatest(attempts - 1, 0), run_at = now(),
                lease_owner = NULL, lease_expires_at = NULL, started_at = NULL
         WHERE id = ANY($1) AND lease_owner = $2",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<SqlUuid, _>(owner)
    .execute(conn)
    .await
}

/// Returns jobs whose lease expired (their worker died) to the queue, or fails them when their
/// attempts are used up. The UPDATE re-checks the state itself, so a job that finished between
/// the scan and the update is never overwritten.
pub async fn rescue_expired(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<i64>> {
    let rows: Vec<IdRow> = diesel::sql_query(
        "WITH expired AS (
            SELECT id FROM jobs WHERE status = 'running' AND lease_expires_at < now()
            ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
         )
         UPDATE jobs j SET
            status = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
            finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
            run_at = now(), lease_owner = NULL, lease_expires_at = NULL,
            last_error = 'lease expired: the worker running attempt ' || j.attempts || ' stopped responding'
         FROM expired
         WHERE j.id = expired.id AND j.status = 'running' AND j.lease_expires_at < now()
         RETURNING j.id",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Deletes up to `limit` finished jobs older than `retention`; returns how many.
pub async fn prune_finished(
    conn: &mut AsyncPgConnection,
    retention: Duration,
    limit: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM jobs WHERE id IN (
            SELECT id FROM jobs WHERE finished_at < now() - make_interval(secs => $1) LIMIT $2)",
    )
    .bind::<Double, _>(secs(retention))
    .bind::<BigInt, _>(limit)
    .execute(conn)
    .await
}

/// Cancels a queued or running job. A running job's worker notices at its next lease renewal.
/// Returns whether the job was unfinished (and is now cancelled).
pub async fn cancel_job(conn: &mut AsyncPgConnection, id: JobId) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE jobs SET status = 'cancelled', finished_at = now(), lease_owner = NULL,
                lease_expires_at = NULL, last_error = coalesce(last_error, 'cancelled by operator')
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind::<BigInt, _>(id.0)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Puts a failed or cancelled job back in the queue with a fresh set of attempts.
/// Returns whether it was requeued.
pub async fn retry_job(conn: &mut AsyncPgConnection, id: JobId) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE jobs SET status = 'queued', attempts = 0, run_at = now(), finished_at = NULL
         WHERE id = $1 AND status IN ('failed', 'cancelled')",
    )
    .bind::<BigInt, _>(id.0)
    .execute(conn)
    .await?;
    if n == 1 {
        let queue = job_queue(conn, id).await?;
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(NOTIFY_CHANNEL)
            .bind::<Text, _>(queue)
            .execute(conn)
            .await?;
    }
    Ok(n == 1)
}

async fn job_queue(conn: &mut AsyncPgConnection, id: JobId) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct Q {
        #[diesel(sql_type = Text)]
        queue: String,
    }
    let q: Q = diesel::sql_query("SELECT queue FROM jobs WHERE id = $1")
        .bind::<BigInt, _>(id.0)
        .get_result(conn)
        .await?;
    Ok(q.queue)
}

/// Jobs for operators, newest first, optionally filtered.
pub async fn list_jobs(
    conn: &mut AsyncPgConnection,
    status: Option<JobStatus>,
    queue: Option<&str>,
    kind: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<JobRow>> {
    diesel::sql_query(
        "SELECT id, queue, kind, status, priority, attempts, max_attempts, run_at, last_error,
                dedupe_key, payload, created_at, started_at, finished_at
         FROM jobs
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR queue = $2)
           AND ($3::text IS NULL OR kind = $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind::<Nullable<Text>, _>(status.map(JobStatus::as_str))
    .bind::<Nullable<Text>, _>(queue)
    .bind::<Nullable<Text>, _>(kind)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// Job counts per queue and status (for `/metrics` and `jobs list --summary`).
pub async fn queue_depths(conn: &mut AsyncPgConnection) -> QueryResult<Vec<QueueDepth>> {
    diesel::sql_query(
        "SELECT queue, status, count(*) AS count FROM jobs GROUP BY queue, status ORDER BY 1, 2",
    )
    .load(conn)
    .await
}

/// When the most recently started job ran (for `/readyz`-style diagnostics and tests).
pub async fn oldest_queued_at(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Option<chrono::DateTime<chrono::Utc>>> {
    #[derive(QueryableByName)]
    struct T {
        #[diesel(sql_type = Nullable<Timestamptz>)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    }
    let t: T =
        diesel::sql_query("SELECT min(run_at) AS at FROM jobs WHERE status = 'queued' AND run_at <= now()")
            .get_result(conn)
            .await?;
    Ok(t.at)
}
