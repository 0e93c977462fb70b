//! The aggregate stage: an analysis's audience (the unique commenters of its covered posts,
//! the account's own replies set aside) from stored results, into an immutable snapshot with
//! its coverage funnel. Reads never recompute: the API serves the snapshot as stored.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::funnel::{self, Commenter};
use super::snapshot::{
    AgeGender, CommentFunnel, Cost, FlagShare, Funnel, GeminiUse, PostBreakdown, Sample, Snapshot,
};
use crate::accounts::TrackedAccount;
use crate::analyses::{Analysis, NEWEST_FIRST, Scope};
use crate::cascade::as_system;
use crate::vision::PictureResult;
use crate::vision::calibration::Calibration;
use crate::vision::estimate::{EstimateOptions, estimate, stratify_profile_types};
use crate::vision::shares::{Z95, wilson};

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

/// Builds the snapshot of `analysis` over `account`'s audience as stored now: the covered
/// posts (fixed first, if the analysis has none yet), the comments on them less the
/// account's own, and their unique commenters. Every selection has a total order, so the
/// same data always gives the same snapshot.
pub async fn build_snapshot(
    conn: &mut AsyncPgConnection,
    analysis: &Analysis,
    account: &TrackedAccount,
    calibrations: &[Calibration],
    cascade_system: Option<&str>,
) -> diesel::QueryResult<Snapshot> {
    funnel::fix_covered_posts(conn, analysis, account.max_posts).await?;
    let commenters = funnel::commenters(conn, analysis).await?;
    let comments = funnel::comment_funnel(conn, analysis).await?;
    let posts: Vec<PostRow> = diesel::sql_query(format!(
        "SELECT p.id, p.ig_post_id,
                coalesce(p.url, 'https://www.instagram.com/p/' || p.short_code || '/') AS url, p.posted_at
         FROM posts p JOIN analysis_posts ap ON ap.post_id = p.id AND ap.analysis_id = $1
         ORDER BY {NEWEST_FIRST}"
    ))
    .bind::<BigInt, _>(analysis.id)
    .load(conn)
    .await?;
    let post_comments: Vec<PostComment> = diesel::sql_query(
        "SELECT a.post_id, a.ig_profile_id AS profile_id, a.commented_at FROM audience_comments a
         JOIN analysis_posts ap ON ap.post_id = a.post_id AND ap.analysis_id = $1
         WHERE a.tracked_account_id = $2",
    )
    .bind::<BigInt, _>(analysis.id)
    .bind::<BigInt, _>(account.id)
    .load(conn)
    .await?;
    let calibrations = Calibrations { list: calibrations, cascade_system };
    let input = Input { commenters: &commenters, comments, posts: &posts, post_comments: &post_comments };
    Ok(assemble(analysis, account, &input, &calibrations))
}

/// What a snapshot is made of.
struct Input<'a> {
    commenters: &'a [Commenter],
    comments: CommentFunnel,
    posts: &'a [PostRow],
    post_comments: &'a [PostComment],
}

/// The calibrations at hand, and the cascade's name as one classifier (its results are read as
/// that classifier's when one of the calibrations is for it).
struct Calibrations<'a> {
    list: &'a [Calibration],
    cascade_system: Option<&'a str>,
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
    input: &Input<'_>,
    calibrations: &Calibrations<'_>,
) -> Snapshot {
    let options = EstimateOptions::default();
    let commenters = input.commenters;
    let all: Vec<Option<PictureResult>> = commenters.iter().map(funnel::result_of).collect();
    let people = funnel::commenter_funnel(commenters, &all);
    let mut results = Vec::new();
    let mut by_comment = Vec::new();
    let mut by_profile: BTreeMap<i64, Option<PictureResult>> = BTreeMap::new();
    let mut missing_comments = 0;
    for (c, r) in commenters.iter().zip(&all) {
        if let Some(r) = r {
            results.push(r.clone());
            for _ in 0..c.comments {
                by_comment.push(r.clone());
            }
        } else {
            missing_comments += c.comments as usize;
        }
        by_profile.insert(c.profile_id, r.clone());
    }
    read_as_system(analysis, calibrations, &mut results, &mut by_comment);
    let age_gender = AgeGender::of(&results);
    let (calibration, no_person_kinds) = model_facts(&results, calibrations.list);
    let mut audience = estimate(&results, people.not_classified.total(), calibration, &options);
    stratify_profile_types(&mut audience, &results, people.recognised_from_link, people.with_picture);
    let audience_by_comment = estimate(&by_comment, missing_comments, calibration, &options);
    let mut on_post: BTreeMap<i64, Vec<&PostComment>> = BTreeMap::new();
    for c in input.post_comments {
        on_post.entry(c.post_id).or_default().push(c);
    }
    let per_post = input
        .posts
        .iter()
        .map(|p| {
            let mine = on_post.get(&p.id).map_or(&[][..], Vec::as_slice);
            let mut who: Vec<i64> = mine.iter().map(|c| c.profile_id).collect();
            who.sort_unstable();
            who.dedup();
            let labelled: Vec<&PictureResult> =
                who.iter().filter_map(|id| by_profile.get(id)?.as_ref()).collect();
            let (female, male, age_brackets) = PostBreakdown::counts(&labelled);
            PostBreakdown {
                ig_post_id: p.ig_post_id.clone(),
                url: p.url.clone(),
                posted_at: p.posted_at,
                comments: mine.len(),
                unique_commenters: who.len(),
                classified: labelled.len(),
                female,
                male,
                age_brackets,
            }
        })
        .collect();
    let times: Vec<DateTime<Utc>> = input.post_comments.iter().filter_map(|c| c.commented_at).collect();
    let post_times: Vec<DateTime<Utc>> = input.posts.iter().filter_map(|p| p.posted_at).collect();
    let total = commenters.len();
    let latest = analysis.scope == Scope::LatestPosts.as_str();
    Snapshot {
        schema: 2,
        analysis_id: analysis.id,
        account_id: account.id,
        handle: account.handle.clone(),
        generated_at: Utc::now(),
        classifier: analysis.classifier.clone(),
        model: audience.model.clone(),
        weighting_default: "commenter".into(),
        sample: Sample {
            posts_covered: input.posts.len(),
            posts_scope: Some(analysis.scope.clone()),
            posts_limit: latest.then(|| usize::try_from(account.max_posts).unwrap_or(0)),
            comments: input.comments.analysed,
            unique_commenters: total,
            funnel: Some(Funnel { comments: input.comments.clone(), commenters: people }),
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
        age_gender,
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
        // The record of the input's comments has served its purpose (the funnel is counted).
        diesel::sql_query("DELETE FROM analysis_comments WHERE analysis_id = $1")
            .bind::<BigInt, _>(analysis_id)
            .execute(conn)
            .await?;
        diesel::sql_query("UPDATE tracked_accounts SET last_analyzed_at = now() WHERE id = $1")
            .bind::<BigInt, _>(account_id)
            .execute(conn)
            .await?;
    }
    Ok(n == 1)
}
