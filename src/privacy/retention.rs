//! Retention: raw rows about commenters expire a fixed time after they were first collected
//! (a re-scrape does not renew them). Aggregate snapshots hold no personal data and stay.
//! Deletes in small batches, each its own transaction, so it runs safely beside the workers.

use std::time::Duration;

use diesel::sql_types::{BigInt, Double};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PurgeReport {
    pub comments: usize,
    pub profiles: usize,
    pub classifications: usize,
    pub picture_blobs: usize,
    /// Recorded Apify profile-run inputs whose list of usernames was removed.
    pub run_inputs: usize,
}

/// Each statement deletes at most `batch` rows older than `retention`; repeated until none are
/// left.
const STATEMENTS: [(&str, &str); 5] = [
    ("comments", "DELETE FROM comments WHERE id IN (
        SELECT id FROM comments WHERE collected_at < now() - make_interval(secs => $1) LIMIT $2)"),
    ("profiles", "DELETE FROM ig_profiles WHERE id IN (
        SELECT id FROM ig_profiles WHERE collected_at < now() - make_interval(secs => $1) LIMIT $2)"),
    // Results are shared by picture: one a newer profile still shows is kept until that
    // profile expires.
    ("classifications", "DELETE FROM classifications WHERE id IN (
        SELECT id FROM classifications k WHERE created_at < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM profile_pictures p WHERE p.content_sha256 = k.content_sha256)
        LIMIT $2)"),
    ("picture_blobs", "DELETE FROM picture_blobs WHERE content_sha256 IN (
        SELECT content_sha256 FROM picture_blobs WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)"),
    // The usernames a profile run asked about (kept so a retry works through the same chunks).
    ("run_inputs", "UPDATE apify_runs SET input = input - 'usernames' WHERE id IN (
        SELECT id FROM apify_runs WHERE input ? 'usernames' AND created_at < now() - make_interval(secs => $1)
        LIMIT $2)"),
];

/// Deletes everything past `retention`.
pub async fn purge_expired(
    conn: &mut AsyncPgConnection,
    retention: Duration,
    batch: i64,
) -> diesel::QueryResult<PurgeReport> {
    let mut report = PurgeReport::default();
    for (what, sql) in STATEMENTS {
        let mut total = 0;
        loop {
            let n = diesel::sql_query(sql)
                .bind::<Double, _>(retention.as_secs_f64())
                .bind::<BigInt, _>(batch)
                .execute(conn)
                .await?;
            total += n;
            if (n as i64) < batch {
                break;
            }
        }
        match what {
            "comments" => report.comments = total,
            "profiles" => report.profiles = total,
            "classifications" => report.classifications = total,
            "picture_blobs" => report.picture_blobs = total,
            _ => report.run_inputs = total,
        }
    }
    Ok(report)
}
