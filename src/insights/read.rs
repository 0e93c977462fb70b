//! Reading audiences: stored snapshots (never recomputed), their history, comparisons,
//! audience overlap between accounts, and the commenters list. Every function is scoped to
//! the calling user.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryResult};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use super::snapshot::Snapshot;
use super::trends::{Change, changes};

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Jsonb)]
    snapshot: serde_json::Value,
}

/// A snapshot as the JSON text stored: served as is, never parsed and re-serialised.
#[derive(QueryableByName)]
struct StoredText {
    #[diesel(sql_type = Text)]
    snapshot: String,
}

fn parse(v: serde_json::Value) -> Option<Snapshot> {
    serde_json::from_value(v).ok()
}

/// Which snapshot to read.
#[derive(Debug, Clone, Copy)]
pub enum Which {
    /// The latest completed one of an account.
    LatestOf(i64),
    /// The one of an analysis.
    Analysis(i64),
}

/// A snapshot of the user's, as the JSON text stored (served as is, never re-serialised).
pub async fn snapshot_text(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    which: Which,
) -> QueryResult<Option<String>> {
    let (filter, id) = match which {
        Which::LatestOf(account) => ("t.id = $1", account),
        Which::Analysis(analysis) => ("a.id = $1", analysis),
    };
    let row: Option<StoredText> = diesel::sql_query(format!(
        "SELECT a.snapshot::text AS snapshot FROM analyses a JOIN tracked_accounts t ON t.id = a.tracked_account_id
         WHERE {filter} AND t.user_id = $2 AND a.snapshot IS NOT NULL
         ORDER BY a.finished_at DESC, a.id DESC LIMIT 1"
    ))
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(user_id)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| r.snapshot))
}

/// A snapshot of the user's, parsed (`None` also when it does not parse as this version's).
pub async fn snapshot(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    which: Which,
) -> QueryResult<Option<Snapshot>> {
    Ok(snapshot_text(conn, user_id, which).await?.and_then(|t| serde_json::from_str(&t).ok()))
}

/// One point of a trend: the headline shares of one snapshot.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub analysis_id: i64,
    pub account_id: i64,
    pub handle: String,
    pub generated_at: DateTime<Utc>,
    pub unique_commenters: usize,
    /// Commenters whose gender was labelled.
    pub gender_n: usize,
    /// Corrected when a calibration applied, else raw.
    pub gender: BTreeMap<String, f64>,
    pub gender_corrected: bool,
    pub age_n: usize,
    pub age_brackets: BTreeMap<String, f64>,
    pub age_corrected: bool,
    pub profile_types: BTreeMap<String, f64>,
    pub private_share: f64,
    /// Raw shares with their counts and 95 % Wilson intervals (empty: no estimate).
    #[schema(value_type = Vec<Object>)]
    pub gender_raw: Vec<crate::vision::estimate::Share>,
    #[schema(value_type = Vec<Object>)]
    pub age_raw: Vec<crate::vision::estimate::Share>,
    #[schema(value_type = Vec<Object>)]
    pub profile_types_raw: Vec<crate::vision::estimate::Share>,
}

impl Summary {
    #[must_use]
    pub fn of(s: &Snapshot) -> Self {
        let pick = |b: &crate::vision::estimate::Breakdown| match &b.corrected {
            Some(c) => (c.iter().map(|x| (x.class.clone(), x.share)).collect(), true),
            None => (b.raw.iter().map(|x| (x.class.clone(), x.share)).collect(), false),
        };
        let (gender, gender_corrected) = pick(&s.audience.gender);
        let (age_brackets, age_corrected) = pick(&s.audience.age_brackets);
        Self {
            analysis_id: s.analysis_id,
            account_id: s.account_id,
            handle: s.handle.clone(),
            generated_at: s.generated_at,
            unique_commenters: s.sample.unique_commenters,
            gender_n: s.audience.gender.n,
            gender,
            gender_corrected,
            age_n: s.audience.age_brackets.n,
            age_brackets,
            age_corrected,
            profile_types: s.audience.profile_types.iter().map(|x| (x.class.clone(), x.share)).collect(),
            private_share: s.account_types.private.share,
            gender_raw: s.audience.gender.raw.clone(),
            age_raw: s.audience.age_brackets.raw.clone(),
            profile_types_raw: s.audience.profile_types.clone(),
        }
    }
}

/// One point of an account's history: its headline shares, and how each raw share moved since
/// the point before (empty for the first).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryPoint {
    #[serde(flatten)]
    pub summary: Summary,
    pub changes: Vec<Change>,
}

/// One account of a comparison: its headline shares, and how each raw share differs from the
/// first account's (empty for the first).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Compared {
    #[serde(flatten)]
    pub summary: Summary,
    pub differences_from_first: Vec<Change>,
}

/// Side by side: each snapshot's headline, with its differences from the first.
#[must_use]
pub fn compared(snapshots: &[Snapshot]) -> Vec<Compared> {
    snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| Compared {
            summary: Summary::of(s),
            differences_from_first: if i == 0 { Vec::new() } else { changes(&snapshots[0], s) },
        })
        .collect()
}

/// The account's snapshots, oldest first, as trend points with their changes.
pub async fn history(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    account_id: i64,
) -> QueryResult<Vec<HistoryPoint>> {
    let rows: Vec<Stored> = diesel::sql_query(
        "SELECT a.snapshot FROM analyses a JOIN tracked_accounts t ON t.id = a.tracked_account_id
         WHERE t.id = $1 AND t.user_id = $2 AND a.snapshot IS NOT NULL ORDER BY a.finished_at, a.id",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(user_id)
    .load(conn)
    .await?;
    let snapshots: Vec<Snapshot> = rows.into_iter().filter_map(|r| parse(r.snapshot)).collect();
    Ok(snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| HistoryPoint {
            summary: Summary::of(s),
            changes: if i == 0 { Vec::new() } else { changes(&snapshots[i - 1], s) },
        })
        .collect())
}

/// Commenters shared between two of the user's accounts (over everything stored for them; the
/// accounts' own comments are not their audience).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Overlap {
    pub account_a: i64,
    pub account_b: i64,
    pub commenters_a: i64,
    pub commenters_b: i64,
    pub shared: i64,
    /// shared / the smaller of the two audiences.
    pub share_of_smaller: f64,
    /// shared / (a + b - shared).
    pub jaccard: f64,
}

pub async fn overlap(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    a: i64,
    b: i64,
) -> QueryResult<Option<Overlap>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        owned: i64,
        #[diesel(sql_type = BigInt)]
        ca: i64,
        #[diesel(sql_type = BigInt)]
        cb: i64,
        #[diesel(sql_type = BigInt)]
        shared: i64,
    }
    let r: Row = diesel::sql_query(
        "WITH owned AS (SELECT id FROM tracked_accounts WHERE user_id = $3 AND id IN ($1, $2)),
         pa AS (SELECT DISTINCT a.ig_profile_id FROM audience_comments a
                WHERE a.tracked_account_id = $1 AND $1 IN (SELECT id FROM owned)),
         pb AS (SELECT DISTINCT a.ig_profile_id FROM audience_comments a
                WHERE a.tracked_account_id = $2 AND $2 IN (SELECT id FROM owned))
         SELECT (SELECT count(*) FROM owned) AS owned, (SELECT count(*) FROM pa) AS ca, (SELECT count(*) FROM pb) AS cb,
                (SELECT count(*) FROM pa JOIN pb USING (ig_profile_id)) AS shared",
    )
    .bind::<BigInt, _>(a)
    .bind::<BigInt, _>(b)
    .bind::<BigInt, _>(user_id)
    .get_result(conn)
    .await?;
    let needed = if a == b { 1 } else { 2 };
    if r.owned < needed {
        return Ok(None);
    }
    let union = r.ca + r.cb - r.shared;
    Ok(Some(Overlap {
        account_a: a,
        account_b: b,
        commenters_a: r.ca,
        commenters_b: r.cb,
        shared: r.shared,
        share_of_smaller: if r.ca.min(r.cb) > 0 { r.shared as f64 / r.ca.min(r.cb) as f64 } else { 0.0 },
        jaccard: if union > 0 { r.shared as f64 / union as f64 } else { 0.0 },
    }))
}

/// One commenter of an account, with their classification (owner only).
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct CommenterRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = BigInt)]
    pub comments: i64,
    #[diesel(sql_type = Nullable<Bool>)]
    pub is_private: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    pub is_verified: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    pub is_business: Option<bool>,
    #[diesel(sql_type = Nullable<Text>)]
    pub picture_status: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub profile_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub gender: Option<String>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    pub age_estimate: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub abstain_reason: Option<String>,
    /// `local` or `gemini`.
    #[diesel(sql_type = Nullable<Text>)]
    pub source: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub model: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_comment_at: Option<DateTime<Utc>>,
}

/// How many commenters the account has (on its tracked posts).
pub async fn commenter_count(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query(
        "SELECT count(DISTINCT a.ig_profile_id) AS n FROM audience_comments a WHERE a.tracked_account_id = $1",
    )
    .bind::<BigInt, _>(account_id)
    .get_result(conn)
    .await?;
    Ok(n.n)
}

/// The commenters of the user's account after profile id `after`, by id.
pub async fn commenters(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    account_id: i64,
    after: i64,
    limit: i64,
) -> QueryResult<Option<Vec<CommenterRow>>> {
    let owned: Option<i64> =
        diesel::sql_query("SELECT id FROM tracked_accounts WHERE id = $1 AND user_id = $2")
            .bind::<BigInt, _>(account_id)
            .bind::<BigInt, _>(user_id)
            .get_result::<IdRow>(conn)
            .await
            .optional()?
            .map(|r| r.id);
    if owned.is_none() {
        return Ok(None);
    }
    let rows = diesel::sql_query(
        "WITH mine AS (
            SELECT a.ig_profile_id, count(*) AS comments, max(a.commented_at) AS last_comment_at
            FROM audience_comments a
            WHERE a.tracked_account_id = $1 AND a.ig_profile_id > $2
            GROUP BY a.ig_profile_id ORDER BY a.ig_profile_id LIMIT $3)
         SELECT pr.id, pr.username, mine.comments, pr.is_private, pr.is_verified, pr.is_business,
                pic.fetch_status AS picture_status,
                coalesce(k.profile_type, CASE WHEN pic.fetch_status = 'default_avatar' THEN 'default_avatar' END) AS profile_type,
                k.gender, k.age_estimate, k.abstain_reason, k.source_model AS source, k.model_version AS model,
                mine.last_comment_at
         FROM mine JOIN ig_profiles pr ON pr.id = mine.ig_profile_id
         LEFT JOIN LATERAL (SELECT fetch_status, content_sha256 FROM profile_pictures WHERE ig_profile_id = pr.id
                            ORDER BY created_at DESC, id DESC LIMIT 1) pic ON true
         LEFT JOIN LATERAL (SELECT * FROM classifications WHERE content_sha256 = pic.content_sha256
                            ORDER BY (source_model = 'gemini') DESC, created_at DESC LIMIT 1) k ON true
         ORDER BY pr.id",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(Some(rows))
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// A share with its interval, for headlines.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeadlineShare {
    pub class: String,
    pub share: f64,
    pub ci95: [f64; 2],
    /// Corrected for the classifier's errors (else raw).
    pub corrected: bool,
}

/// An account's latest audience in a line: female share, largest age bracket, sample size.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Headline {
    pub analysis_id: i64,
    pub generated_at: DateTime<Utc>,
    pub unique_commenters: usize,
    pub gender_n: usize,
    pub female: Option<HeadlineShare>,
    pub age_n: usize,
    pub largest_bracket: Option<HeadlineShare>,
}

impl Headline {
    fn pick(b: &crate::vision::estimate::Breakdown, class: Option<&str>) -> Option<HeadlineShare> {
        if let Some(corrected) = &b.corrected {
            let c = match class {
                Some(class) => corrected.iter().find(|c| c.class == class)?,
                None => corrected.iter().max_by(|a, b| a.share.total_cmp(&b.share))?,
            };
            return Some(HeadlineShare {
                class: c.class.clone(),
                share: c.share,
                ci95: c.ci95,
                corrected: true,
            });
        }
        let r = match class {
            Some(class) => b.raw.iter().find(|r| r.class == class)?,
            None => b.raw.iter().max_by(|a, b| a.share.total_cmp(&b.share))?,
        };
        Some(HeadlineShare { class: r.class.clone(), share: r.share, ci95: r.ci95, corrected: false })
    }
}

/// The headline of each of `accounts`' latest snapshot (the user's accounts only).
pub async fn headlines(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    accounts: &[i64],
) -> QueryResult<BTreeMap<i64, Headline>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        account_id: i64,
        #[diesel(sql_type = BigInt)]
        analysis_id: i64,
        #[diesel(sql_type = Timestamptz)]
        finished_at: DateTime<Utc>,
        #[diesel(sql_type = Nullable<Jsonb>)]
        gender: Option<serde_json::Value>,
        #[diesel(sql_type = Nullable<Jsonb>)]
        ages: Option<serde_json::Value>,
        #[diesel(sql_type = Nullable<Jsonb>)]
        commenters: Option<serde_json::Value>,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT DISTINCT ON (a.tracked_account_id) a.tracked_account_id AS account_id, a.id AS analysis_id,
                a.finished_at, a.snapshot->'audience'->'gender' AS gender,
                a.snapshot->'audience'->'age_brackets' AS ages, a.snapshot->'sample'->'unique_commenters' AS commenters
         FROM analyses a JOIN tracked_accounts t ON t.id = a.tracked_account_id
         WHERE t.user_id = $1 AND a.tracked_account_id = ANY($2) AND a.snapshot IS NOT NULL
         ORDER BY a.tracked_account_id, a.finished_at DESC, a.id DESC",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<diesel::sql_types::Array<BigInt>, _>(accounts)
    .load(conn)
    .await?;
    let breakdown = |v: Option<serde_json::Value>| {
        v.and_then(|v| serde_json::from_value::<crate::vision::estimate::Breakdown>(v).ok())
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let gender = breakdown(r.gender);
            let ages = breakdown(r.ages);
            let headline = Headline {
                analysis_id: r.analysis_id,
                generated_at: r.finished_at,
                unique_commenters: r.commenters.and_then(|v| v.as_u64()).unwrap_or(0) as usize,
                gender_n: gender.as_ref().map_or(0, |g| g.n),
                female: gender.as_ref().and_then(|g| Headline::pick(g, Some("female"))),
                age_n: ages.as_ref().map_or(0, |a| a.n),
                largest_bracket: ages.as_ref().and_then(|a| Headline::pick(a, None)),
            };
            (r.account_id, headline)
        })
        .collect())
}

/// The latest snapshot of an account as stored, for a share link (whoever holds a live link
/// may read it; the snapshot holds counts and shares only, no personal data).
pub async fn shared_snapshot(
    conn: &mut AsyncPgConnection,
    account_id: i64,
) -> QueryResult<Option<(String, String)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        handle: String,
        #[diesel(sql_type = Text)]
        snapshot: String,
    }
    let row: Option<Row> = diesel::sql_query(
        "SELECT t.handle, a.snapshot::text AS snapshot FROM analyses a JOIN tracked_accounts t ON t.id = a.tracked_account_id
         WHERE t.id = $1 AND a.snapshot IS NOT NULL ORDER BY a.finished_at DESC, a.id DESC LIMIT 1",
    )
    .bind::<BigInt, _>(account_id)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| (r.handle, r.snapshot)))
}
