//! The fetch stage: download the current picture of every commenter of an account while its
//! link is still valid. Bounded concurrency, results recorded in batches with progress;
//! identical pictures are stored once (keyed by content hash). Transient failures are tried
//! again a few times; expired links and non-pictures are recorded and never retried.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bytea, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::StreamExt;
use serde::Serialize;

use crate::clients::pictures::{FetchError, PictureClient};
use crate::config::PictureSettings;
use crate::db::DbPool;

const BATCH: i64 = 200;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct FetchReport {
    pub fetched: usize,
    pub expired: usize,
    pub rejected: usize,
    pub failed: usize,
}

#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    source_url: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    url_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    #[diesel(sql_type = Integer)]
    fetch_attempts: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchStageError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
}

/// Whose pictures to fetch: the commenters of an analysis's covered posts (the account's own
/// replies aside: the `audience_comments` view).
#[derive(Debug, Clone, Copy)]
pub struct Audience {
    pub account_id: i64,
    pub analysis_id: i64,
}

/// Fetches the pending current pictures of an analysis's commenters; `on_batch` is called
/// after each batch with the running totals (progress).
///
/// # Errors
/// Database errors (download failures are recorded per picture, not returned).
pub async fn fetch_account_pictures<F, Fut>(
    pool: &DbPool,
    client: &PictureClient,
    settings: &PictureSettings,
    audience: Audience,
    include_private: bool,
    mut on_batch: F,
) -> Result<FetchReport, FetchStageError>
where
    F: FnMut(FetchReport) -> Fut,
    Fut: Future<Output = Result<(), FetchStageError>>,
{
    let mut report = FetchReport::default();
    loop {
        let pending = due_pictures(pool, audience, settings.max_attempts, include_private).await?;
        if pending.is_empty() {
            return Ok(report);
        }
        // Only retries of transient failures are left: give the CDN a moment.
        let retry = pending.iter().map(|p| p.fetch_attempts).min().unwrap_or(0);
        if retry > 0 {
            tokio::time::sleep(Duration::from_millis(500 << retry.min(4))).await;
        }
        let now = chrono::Utc::now();
        let results: Vec<(Pending, Result<crate::clients::pictures::Picture, FetchError>)> =
            futures_util::stream::iter(pending)
                .map(|p| async move {
                    // A link already past its expiry is not worth a request.
                    let result = if p.url_expires_at.is_some_and(|t| t < now) {
                        Err(FetchError::Expired(0))
                    } else {
                        client.fetch(&p.source_url).await
                    };
                    (p, result)
                })
                .buffer_unordered(settings.concurrency.max(1))
                .collect()
                .await;
        record(pool, &results, settings.max_attempts, &mut report).await?;
        on_batch(report).await?;
    }
}

/// The current picture of each commenter of the analysis, if it is still to be fetched.
/// Private accounts' pictures are left alone unless `include_private`.
async fn due_pictures(
    pool: &DbPool,
    audience: Audience,
    max_attempts: i32,
    include_private: bool,
) -> Result<Vec<Pending>, FetchStageError> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(
        "SELECT id, source_url, url_expires_at, fetch_attempts FROM (
            SELECT DISTINCT ON (pp.ig_profile_id) pp.id, pp.source_url, pp.url_expires_at, pp.fetch_status,
                   pp.fetch_attempts
            FROM profile_pictures pp
            JOIN ig_profiles pr ON pr.id = pp.ig_profile_id AND ($4 OR pr.is_private IS NOT TRUE)
            WHERE pp.ig_profile_id IN (
                SELECT a.ig_profile_id FROM audience_comments a
                JOIN analysis_posts ap ON ap.post_id = a.post_id AND ap.analysis_id = $5
                WHERE a.tracked_account_id = $1)
            ORDER BY pp.ig_profile_id, pp.created_at DESC, pp.id DESC
         ) latest
         WHERE fetch_status = 'pending' AND fetch_attempts < $2
         ORDER BY id LIMIT $3",
    )
    .bind::<BigInt, _>(audience.account_id)
    .bind::<Integer, _>(max_attempts)
    .bind::<BigInt, _>(BATCH)
    .bind::<diesel::sql_types::Bool, _>(include_private)
    .bind::<BigInt, _>(audience.analysis_id)
    .load(&mut conn)
    .await?)
}

#[derive(QueryableByName)]
struct Status {
    #[diesel(sql_type = Text)]
    fetch_status: String,
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Bytea)]
    content_sha256: Vec<u8>,
}

/// Records a batch in one transaction, for the rows still pending: a row another worker
/// recorded meanwhile keeps that result, and a row erased meanwhile (with the erasure held off
/// while this runs) gets nothing, so its bytes are never stored.
async fn record(
    pool: &DbPool,
    results: &[(Pending, Result<crate::clients::pictures::Picture, FetchError>)],
    max_attempts: i32,
    report: &mut FetchReport,
) -> Result<(), FetchStageError> {
    let mut conn = pool.get().await?;
    let mut batch = FetchReport::default();
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        crate::privacy::hold_off_erasure(conn).await?;
        store_fetched(conn, results, &mut batch).await?;
        store_failures(conn, results, max_attempts, &mut batch).await
    })
    .await?;
    report.fetched += batch.fetched;
    report.expired += batch.expired;
    report.rejected += batch.rejected;
    report.failed += batch.failed;
    Ok(())
}

async fn store_fetched(
    conn: &mut diesel_async::AsyncPgConnection,
    results: &[(Pending, Result<crate::clients::pictures::Picture, FetchError>)],
    batch: &mut FetchReport,
) -> diesel::QueryResult<()> {
    let fetched: Vec<_> =
        results.iter().filter_map(|(p, r)| r.as_ref().ok().map(|pic| (p.id, pic))).collect();
    if fetched.is_empty() {
        return Ok(());
    }
    let hashes: Vec<Vec<u8>> = fetched.iter().map(|(_, pic)| pic.sha256.to_vec()).collect();
    let stored: Vec<Stored> = diesel::sql_query(
        "UPDATE profile_pictures pp SET fetch_status = 'fetched', fetch_error = NULL, content_sha256 = f.hash,
                mime_type = f.mime, width = f.w, height = f.h, fetched_at = now(),
                fetch_attempts = pp.fetch_attempts + 1
         FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::int[], $5::int[]) AS f(id, hash, mime, w, h)
         WHERE pp.id = f.id AND pp.fetch_status = 'pending'
         RETURNING pp.content_sha256",
    )
    .bind::<Array<BigInt>, _>(fetched.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind::<Array<Bytea>, _>(&hashes)
    .bind::<Array<Text>, _>(fetched.iter().map(|(_, p)| p.mime).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(fetched.iter().map(|(_, p)| p.width as i32).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(fetched.iter().map(|(_, p)| p.height as i32).collect::<Vec<_>>())
    .load(conn)
    .await?;
    batch.fetched = stored.len();
    let wanted: std::collections::HashSet<Vec<u8>> = stored.into_iter().map(|s| s.content_sha256).collect();
    let (hashes, bytes): (Vec<&[u8]>, Vec<&[u8]>) = fetched
        .iter()
        .filter(|(_, pic)| wanted.contains(pic.sha256.as_slice()))
        .map(|(_, pic)| (pic.sha256.as_slice(), pic.bytes.as_slice()))
        .unzip();
    diesel::sql_query(
        "INSERT INTO picture_blobs (content_sha256, bytes)
         SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (content_sha256) DO NOTHING",
    )
    .bind::<Array<Bytea>, _>(&hashes)
    .bind::<Array<Bytea>, _>(&bytes)
    .execute(conn)
    .await?;
    Ok(())
}

async fn store_failures(
    conn: &mut diesel_async::AsyncPgConnection,
    results: &[(Pending, Result<crate::clients::pictures::Picture, FetchError>)],
    max_attempts: i32,
    batch: &mut FetchReport,
) -> diesel::QueryResult<()> {
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    let mut errors = Vec::new();
    for (p, r) in results {
        let Err(e) = r else { continue };
        let status = match e {
            FetchError::Expired(_) => "expired",
            FetchError::Rejected(_) => "rejected",
            FetchError::Transient(_) if p.fetch_attempts + 1 >= max_attempts => "failed",
            FetchError::Transient(_) => "pending",
        };
        ids.push(p.id);
        statuses.push(status);
        errors.push(match e {
            FetchError::Expired(0) => "link expired before it could be fetched".to_owned(),
            other => other.to_string(),
        });
    }
    if ids.is_empty() {
        return Ok(());
    }
    // Only rows still pending: a picture another worker fetched meanwhile stays fetched.
    let recorded: Vec<Status> = diesel::sql_query(
        "UPDATE profile_pictures pp SET fetch_status = f.status, fetch_error = f.error,
                fetch_attempts = pp.fetch_attempts + 1
         FROM unnest($1::bigint[], $2::text[], $3::text[]) AS f(id, status, error)
         WHERE pp.id = f.id AND pp.fetch_status = 'pending'
         RETURNING pp.fetch_status",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<Text>, _>(&statuses)
    .bind::<Array<Text>, _>(&errors)
    .load(conn)
    .await?;
    for r in recorded {
        match r.fetch_status.as_str() {
            "expired" => batch.expired += 1,
            "rejected" => batch.rejected += 1,
            "failed" => batch.failed += 1,
            _ => {}
        }
    }
    Ok(())
}
