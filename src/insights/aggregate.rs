//! The aggregate stage: an account's audience (the unique commenters of its latest posts) from
//! stored results, into an immutable snapshot. Reads never recompute: the API serves the
//! snapshot as stored.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::snapshot::{Cost, FlagShare, GeminiUse, PostBreakdown, Sample, Snapshot, Unavailable};
use crate::accounts::TrackedAccount;
use crate::analyses::Analysis;
use crate::cascade::as_system;
use crate::vision::calibration::Calibration;
use crate::vision::estimate::{EstimateOptions, estimate};
use crate::vision::shares::{Z95, wilson};
use crate::vision::{PictureResult, default_avatar};

#[derive(QueryableByName)]
struct Commenter {
    #[diesel(sql_type = BigInt)]
    profile_id: i64,
    #[diesel(sql_type = BigInt)]
    comments: i64,
    #[diesel(sql_type = Nullable<diesel::sql_types::Bool>)]
    is_private: Option<bool>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Bool>)]
    is_verified: Option<bool>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Bool>)]
    is_business: Option<bool>,
    #[diesel(sql_type = Nullable<Text>)]
    fetch_status: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    result: Option<serde_json::Value>,
}

#[derive(QueryableByName)]
struct PostRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    ig_post_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    url: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    posted_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct PostComment {
    #[diesel(sql_type = BigInt)]
    post_id: i64,
    #[diesel(sql_type = BigInt)]
    profile_id: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    commented_at: Option<DateTime<Utc>>,
}

/// The covered posts: the account's latest `max_posts`, newest first.
const COVERED: &str = "SELECT p.id FROM posts p JOIN tracked_account_posts tap ON tap.post_id = p.id
    WHERE tap.tracked_account_id = $1 ORDER BY p.posted_at DESC NULLS LAST, p.id DESC LIMIT $2";

/// Builds the snapshot of `analysis` over `account`'s audience as stored now.
pub async fn build_snapshot(
    conn: &mut AsyncPgConnection,
    analysis: &Analysis,
    account: &TrackedAccount,
    calibrations: &[Calibration],
    cascade_system: Option<&str>,
) -> diesel::QueryResult<Snapshot> {
    // Gemini results, when the analysis used it, win over local ones for the same picture.
    let prefer_gemini = analysis.classifier != "local";
    let commenters: Vec<Commenter> = diesel::sql_query(format!(
        "WITH covered AS ({COVERED}),
         counted AS (
            SELECT c.ig_profile_id, count(*) AS comments FROM comments c
            WHERE c.post_id IN (SELECT id FROM covered) GROUP BY c.ig_profile_id)
         SELECT pr.id AS profile_id, counted.comments, pr.is_private, pr.is_verified, pr.is_business,
                pic.fetch_status, k.details AS result
         FROM counted JOIN ig_profiles pr ON pr.id = counted.ig_profile_id
         LEFT JOIN LATERAL (
            SELECT fetch_status, content_sha256 FROM profile_pictures WHERE ig_profile_id = pr.id
            ORDER BY created_at DESC, id DESC LIMIT 1) pic ON true
         LEFT JOIN LATERAL (
            SELECT details FROM classifications WHERE content_sha256 = pic.content_sha256 AND details IS NOT NULL
            ORDER BY (source_model = 'gemini') = $3 DESC, created_at DESC LIMIT 1) k ON true
         ORDER BY pr.id"
    ))
    .bind::<BigInt, _>(account.id)
    .bind::<BigInt, _>(i64::from(account.max_posts))
    .bind::<diesel::sql_types::Bool, _>(prefer_gemini)
    .load(conn)
    .await?;
    let posts: Vec<PostRow> = diesel::sql_query(format!(
        "SELECT id, ig_post_id, url, posted_at FROM posts WHERE id IN ({COVERED}) ORDER BY posted_at DESC NULLS LAST, id DESC"
    ))
    .bind::<BigInt, _>(account.id)
    .bind::<BigInt, _>(i64::from(account.max_posts))
    .load(conn)
    .await?;
    let post_comments: Vec<PostComment> = diesel::sql_query(format!(
        "SELECT post_id, ig_profile_id AS profile_id, commented_at FROM comments WHERE post_id IN ({COVERED})"
    ))
    .bind::<BigInt, _>(account.id)
    .bind::<BigInt, _>(i64::from(account.max_posts))
    .load(conn)
    .await?;
    let calibrations = Calibrations { list: calibrations, cascade_system };
    Ok(assemble(analysis, account, &commenters, &posts, &post_comments, &calibrations))
}

/// The calibrations at hand, and the cascade's name as one classifier (its results are read as
/// that classifier's when one of the calibrations is for it).
struct Calibrations<'a> {
    list: &'a [Calibration],
    cascade_system: Option<&'a str>,
}

/// A commenter's result: the stored classification, or what the picture's status implies.
fn result_of(c: &Commenter) -> Option<PictureResult> {
    if let Some(r) = c.result.as_ref().and_then(|v| serde_json::from_value::<PictureResult>(v.clone()).ok()) {
        return Some(r);
    }
    // Instagram's default avatar is known from its link, never downloaded; the classifier's
    // own default-avatar rule would type it the same.
    (c.fetch_status.as_deref() == Some("default_avatar")).then(|| default_avatar(crate::vision::MODEL_NAME))
}

fn flag_share(values: impl Iterator<Item = Option<bool>>, total: usize) -> FlagShare {
    let known: Vec<bool> = values.flatten().collect();
    let n = known.len();
    let yes = known.iter().filter(|v| **v).count();
    FlagShare {
        n,
        coverage: if total > 0 { n as f64 / total as f64 } else { 0.0 },
        share: if n > 0 { yes as f64 / n as f64 } else { 0.0 },
        ci95: wilson(yes as f64, n as f64, Z95),
    }
}

fn assemble(
    analysis: &Analysis,
    account: &TrackedAccount,
    commenters: &[Commenter],
    posts: &[PostRow],
    post_comments: &[PostComment],
    calibrations: &Calibrations<'_>,
) -> Snapshot {
    let options = EstimateOptions::default();
    let mut results = Vec::new();
    let mut by_comment = Vec::new();
    let mut unavailable = Unavailable::default();
    let mut by_profile: BTreeMap<i64, Option<PictureResult>> = BTreeMap::new();
    for c in commenters {
        let r = result_of(c);
        match (&r, c.fetch_status.as_deref()) {
            (Some(r), _) => {
                results.push(r.clone());
                for _ in 0..c.comments {
                    by_comment.push(r.clone());
                }
            }
            (None, Some("expired")) => unavailable.expired += 1,
            (None, Some("rejected")) => unavailable.rejected += 1,
            (None, Some("failed")) => unavailable.failed += 1,
            (None, Some("pending")) if c.is_private == Some(true) => unavailable.private += 1,
            (None, None) => unavailable.no_picture += 1,
            (None, _) => unavailable.not_classified += 1,
        }
        by_profile.insert(c.profile_id, r);
    }
    let missing = unavailable.total();
    read_as_system(analysis, calibrations, &mut results, &mut by_comment);
    let (calibration, no_person_kinds) = model_facts(&results, calibrations.list);
    let audience = estimate(&results, missing, calibration, &options);
    let missing_comments: usize = commenters
        .iter()
        .filter(|c| by_profile.get(&c.profile_id).is_none_or(Option::is_none))
        .map(|c| c.comments as usize)
        .sum();
    let audience_by_comment = estimate(&by_comment, missing_comments, calibration, &options);
    let per_post = posts
        .iter()
        .map(|p| {
            let mine: Vec<&PostComment> = post_comments.iter().filter(|c| c.post_id == p.id).collect();
            let mut people: Vec<i64> = mine.iter().map(|c| c.profile_id).collect();
            people.sort_unstable();
            people.dedup();
            let labelled: Vec<&PictureResult> =
                people.iter().filter_map(|id| by_profile.get(id)?.as_ref()).collect();
            let (female, male, age_brackets) = PostBreakdown::counts(&labelled);
            PostBreakdown {
                ig_post_id: p.ig_post_id.clone(),
                url: p.url.clone(),
                posted_at: p.posted_at,
                comments: mine.len(),
                unique_commenters: people.len(),
                classified: labelled.len(),
                female,
                male,
                age_brackets,
            }
        })
        .collect();
    let times: Vec<DateTime<Utc>> = post_comments.iter().filter_map(|c| c.commented_at).collect();
    let post_times: Vec<DateTime<Utc>> = posts.iter().filter_map(|p| p.posted_at).collect();
    let total = commenters.len();
    Snapshot {
        schema: 1,
        analysis_id: analysis.id,
        account_id: account.id,
        handle: account.handle.clone(),
        generated_at: Utc::now(),
        classifier: analysis.classifier.clone(),
        model: audience.model.clone(),
        weighting_default: "commenter".into(),
        sample: Sample {
            posts_covered: posts.len(),
            comments: post_comments.len(),
            unique_commenters: total,
            pictures_classified: results.len(),
            unavailable,
            first_comment_at: times.iter().min().copied(),
            last_comment_at: times.iter().max().copied(),
            first_post_at: post_times.iter().min().copied(),
            last_post_at: post_times.iter().max().copied(),
        },
        account_types: super::snapshot::AccountTypes {
            private: flag_share(commenters.iter().map(|c| c.is_private), total),
            verified: flag_share(commenters.iter().map(|c| c.is_verified), total),
            business: flag_share(commenters.iter().map(|c| c.is_business), total),
        },
        audience,
        audience_by_comment,
        per_post,
        no_person_kinds,
        cost: Cost { gemini: gemini_use(analysis), ..Cost::from_micro_usd(analysis.cost_micro_usd) },
    }
}

/// A cascade's results read as one classifier's, with a calibration of the cascade as a whole,
/// when every picture the rules sent was answered by Gemini: pictures that kept their local
/// result for want of budget, service or format are outside what that calibration measured.
fn read_as_system(
    analysis: &Analysis,
    calibrations: &Calibrations<'_>,
    results: &mut [PictureResult],
    by_comment: &mut [PictureResult],
) {
    let complete = gemini_use(analysis).is_none_or(|g| g.over_budget + g.unavailable + g.unsupported == 0);
    if analysis.classifier == "cascade" && complete {
        as_system(results, calibrations.cascade_system, calibrations.list);
        as_system(by_comment, calibrations.cascade_system, calibrations.list);
    }
}

/// The calibration of the model behind most results (cascade: the local model's, unless
/// Gemini labelled most pictures), and the kinds of no-person pictures where known.
fn model_facts<'a>(
    results: &[PictureResult],
    calibrations: &'a [Calibration],
) -> (Option<&'a Calibration>, BTreeMap<String, usize>) {
    let calibration = crate::cascade::pick_calibration(results, calibrations);
    let mut kinds = BTreeMap::new();
    for r in results {
        if let Some(kind) = r.no_person_kind {
            *kinds.entry(kind.label().to_owned()).or_insert(0usize) += 1;
        }
    }
    (calibration, kinds)
}

/// Gemini's part in the analysis, from the classify stage's progress counts.
fn gemini_use(analysis: &Analysis) -> Option<GeminiUse> {
    let counts = analysis.progress.get("gemini")?;
    let n = |key: &str| counts.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0) as usize;
    let mut report = GeminiUse {
        sent: n("sent"),
        labelled: n("labelled"),
        abstained: n("abstained"),
        over_budget: n("over_budget"),
        unavailable: n("unavailable"),
        unsupported: n("unsupported"),
        requests: n("requests"),
        cost_usd: counts.get("cost_usd").and_then(serde_json::Value::as_f64).unwrap_or(0.0),
        budget_usd: counts.get("budget_usd").and_then(serde_json::Value::as_f64),
        notes: Vec::new(),
    };
    if report.over_budget > 0 {
        report.notes.push(format!(
            "the Gemini budget{} was reached: {} pictures kept their local result",
            report.budget_usd.map_or(String::new(), |b| format!(" of ${b:.2}")),
            report.over_budget
        ));
    }
    if report.unavailable > 0 {
        report.notes.push(format!(
            "Gemini was unavailable for {} pictures; they kept their local result",
            report.unavailable
        ));
    }
    Some(report)
}

/// Stores the snapshot and closes the analysis as succeeded (once: a repeated call is a no-op).
pub async fn store_snapshot(
    conn: &mut AsyncPgConnection,
    analysis_id: i64,
    account_id: i64,
    snapshot: &Snapshot,
) -> diesel::QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE analyses SET snapshot = $2, status = 'succeeded', stage = 'done', finished_at = now()
         WHERE id = $1 AND status IN ('queued', 'running') AND snapshot IS NULL",
    )
    .bind::<BigInt, _>(analysis_id)
    .bind::<Jsonb, _>(serde_json::to_value(snapshot).unwrap_or_default())
    .execute(conn)
    .await?;
    if n == 1 {
        diesel::sql_query("UPDATE tracked_accounts SET last_analyzed_at = now() WHERE id = $1")
            .bind::<BigInt, _>(account_id)
            .execute(conn)
            .await?;
    }
    Ok(n == 1)
}
