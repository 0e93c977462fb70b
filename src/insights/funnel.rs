//! The coverage funnel of an analysis: what came in, what was set aside and why, which
//! commenters were left and how far each got (picture link, picture, result, label). One
//! computation for every view: the stages' progress, the snapshot, the report and the API all
//! read what [`live`] and [`commenter_funnel`] count.
//!
//! Owns: the funnel's arithmetic and the audience query of an analysis. Uses: `db`,
//! `analyses`, `scraping::intake`, `vision`.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::snapshot::{CommentFunnel, CommenterFunnel, Funnel, NotClassified, SetAside};
use crate::analyses::{self, Analysis, Scope};
use crate::scraping::intake::Intake;
use crate::vision::{PictureResult, ProfileType, default_avatar};

/// One unique commenter of an analysis, with the state of their current picture.
#[derive(Debug, Clone, QueryableByName)]
pub struct Commenter {
    #[diesel(sql_type = BigInt)]
    pub profile_id: i64,
    /// Their comments among those analysed.
    #[diesel(sql_type = BigInt)]
    pub comments: i64,
    #[diesel(sql_type = Nullable<Bool>)]
    pub is_private: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    pub is_verified: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    pub is_business: Option<bool>,
    #[diesel(sql_type = Nullable<Text>)]
    pub fetch_status: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub result: Option<serde_json::Value>,
}

/// The analysis's covered posts (`analysis_posts`), fixed first for a `latest_posts` analysis
/// that has none yet.
pub async fn fix_covered_posts(
    conn: &mut AsyncPgConnection,
    analysis: &Analysis,
    max_posts: i32,
) -> diesel::QueryResult<()> {
    if analysis.scope == Scope::LatestPosts.as_str() {
        analyses::cover_latest_posts(conn, analysis.id, analysis.tracked_account_id, max_posts).await?;
    }
    Ok(())
}

/// The unique commenters of the analysis's covered posts (its audience comments: the
/// account's own are not), with their picture's state and result, in username order.
/// Gemini's results win over local ones when the analysis used Gemini.
pub async fn commenters(
    conn: &mut AsyncPgConnection,
    analysis: &Analysis,
) -> diesel::QueryResult<Vec<Commenter>> {
    diesel::sql_query(
        "WITH counted AS (
            SELECT a.ig_profile_id, count(*) AS comments FROM audience_comments a
            JOIN analysis_posts ap ON ap.post_id = a.post_id AND ap.analysis_id = $1
            WHERE a.tracked_account_id = $2 GROUP BY a.ig_profile_id)
         SELECT pr.id AS profile_id, counted.comments, pr.is_private, pr.is_verified, pr.is_business,
                pic.fetch_status, k.details AS result
         FROM counted JOIN ig_profiles pr ON pr.id = counted.ig_profile_id
         LEFT JOIN LATERAL (
            SELECT fetch_status, content_sha256 FROM profile_pictures WHERE ig_profile_id = pr.id
            ORDER BY created_at DESC, id DESC LIMIT 1) pic ON true
         LEFT JOIN LATERAL (
            SELECT details FROM classifications WHERE content_sha256 = pic.content_sha256 AND details IS NOT NULL
            ORDER BY (source_model = 'gemini') = $3 DESC, created_at DESC, id DESC LIMIT 1) k ON true
         ORDER BY lower(pr.username), pr.id",
    )
    .bind::<BigInt, _>(analysis.id)
    .bind::<BigInt, _>(analysis.tracked_account_id)
    .bind::<Bool, _>(analysis.classifier != "local")
    .load(conn)
    .await
}

/// A commenter's result: the stored classification, or Instagram's default avatar when the
/// link says so (never downloaded; the classifier's own rule would type it the same).
#[must_use]
pub fn result_of(c: &Commenter) -> Option<PictureResult> {
    if let Some(r) = c.result.as_ref().and_then(|v| serde_json::from_value::<PictureResult>(v.clone()).ok()) {
        return Some(r);
    }
    (c.fetch_status.as_deref() == Some("default_avatar")).then(|| default_avatar(crate::vision::MODEL_NAME))
}

/// Whether a commenter's result came from the picture's link alone.
#[must_use]
pub fn from_link(c: &Commenter) -> bool {
    c.result.is_none() && c.fetch_status.as_deref() == Some("default_avatar")
}

/// How far each commenter got, counted. `results[i]` is [`result_of`] `commenters[i]`.
#[must_use]
pub fn commenter_funnel(commenters: &[Commenter], results: &[Option<PictureResult>]) -> CommenterFunnel {
    let mut f = CommenterFunnel { unique: commenters.len(), ..CommenterFunnel::default() };
    let mut missing = NotClassified::default();
    for (c, r) in commenters.iter().zip(results) {
        match (r, c.fetch_status.as_deref()) {
            (Some(r), _) => {
                f.classified += 1;
                if from_link(c) {
                    f.recognised_from_link += 1;
                }
                if r.profile_type == ProfileType::Person {
                    f.person += 1;
                    f.gender_given += usize::from(r.gender_label().is_some());
                    f.age_given += usize::from(r.bracket().is_some());
                }
            }
            (None, None) => missing.no_picture += 1,
            (None, Some("expired")) => missing.expired += 1,
            (None, Some("rejected")) => missing.unreadable += 1,
            (None, Some("failed")) => missing.failed += 1,
            (None, Some("fetched")) => missing.unclassified += 1,
            (None, _) if c.is_private == Some(true) => missing.private += 1,
            (None, _) => missing.pending += 1,
        }
    }
    f.with_picture = f.unique - missing.no_picture;
    f.picture_available = f.with_picture
        - missing.private
        - missing.expired
        - missing.unreadable
        - missing.failed
        - missing.pending;
    f.not_classified = missing;
    f
}

#[derive(QueryableByName)]
struct CommentCounts {
    /// Stored comments on the covered posts.
    #[diesel(sql_type = BigInt)]
    on_posts: i64,
    /// Those of the audience (not the account's own).
    #[diesel(sql_type = BigInt)]
    analysed: i64,
    /// Comments the analysis's input delivered, still stored.
    #[diesel(sql_type = BigInt)]
    input_now: i64,
    /// Those on the covered posts.
    #[diesel(sql_type = BigInt)]
    input_on_posts: i64,
}

/// The comments' part of the funnel, from the analysis's intake counts (what its input held
/// and set aside) and what is stored on its covered posts now.
pub async fn comment_funnel(
    conn: &mut AsyncPgConnection,
    analysis: &Analysis,
) -> diesel::QueryResult<CommentFunnel> {
    let counts: CommentCounts = diesel::sql_query(
        "WITH covered AS (SELECT post_id FROM analysis_posts WHERE analysis_id = $1)
         SELECT (SELECT count(*) FROM comments c WHERE c.post_id IN (SELECT post_id FROM covered)) AS on_posts,
                (SELECT count(*) FROM audience_comments a
                 WHERE a.tracked_account_id = $2 AND a.post_id IN (SELECT post_id FROM covered)) AS analysed,
                (SELECT count(*) FROM analysis_comments WHERE analysis_id = $1) AS input_now,
                (SELECT count(*) FROM analysis_comments ac JOIN comments c ON c.id = ac.comment_id
                 WHERE ac.analysis_id = $1 AND c.post_id IN (SELECT post_id FROM covered)) AS input_on_posts",
    )
    .bind::<BigInt, _>(analysis.id)
    .bind::<BigInt, _>(analysis.tracked_account_id)
    .get_result(conn)
    .await?;
    let intake: Intake = serde_json::from_value(analysis.progress.clone()).unwrap_or_default();
    Ok(comments_from(&intake, &counts))
}

fn comments_from(intake: &Intake, counts: &CommentCounts) -> CommentFunnel {
    let n = |v: i64| usize::try_from(v).unwrap_or(0);
    let (on_posts, analysed, input_now, input_on_posts) =
        (n(counts.on_posts), n(counts.analysed), n(counts.input_now), n(counts.input_on_posts));
    // Kept at intake but gone since: erased at their request in the meantime.
    let erased_since = intake.comments_kept.saturating_sub(input_now);
    CommentFunnel {
        // `comments_read` when the intake's counts are whole (they are set with the store);
        // written this way the funnel adds up whatever they are.
        in_input: intake.comments_set_aside() + input_now + erased_since,
        stored_earlier: on_posts.saturating_sub(input_on_posts),
        set_aside: SetAside {
            owner: on_posts.saturating_sub(analysed),
            foreign: intake.comments_foreign,
            duplicate: intake.comments_duplicate,
            rejected: intake.comments_rejected,
            suppressed: intake.comments_suppressed + erased_since,
            outside_posts: input_now.saturating_sub(input_on_posts),
        },
        analysed,
        posts_foreign: intake.posts_foreign,
        posts_without_owner: intake.posts_without_owner,
        profiles_foreign: intake.profiles_foreign,
        items_unreadable: intake.items_rejected,
    }
}

/// The funnel as it stands (for a stage's progress): the same counts the snapshot will give
/// if nothing changes before it is built.
pub async fn live(conn: &mut AsyncPgConnection, analysis: &Analysis) -> diesel::QueryResult<Funnel> {
    let comments = comment_funnel(conn, analysis).await?;
    let people = commenters(conn, analysis).await?;
    let results: Vec<Option<PictureResult>> = people.iter().map(result_of).collect();
    Ok(Funnel { comments, commenters: commenter_funnel(&people, &results) })
}

/// Stores the live funnel in the analysis's progress (`funnel`).
pub async fn record_progress(conn: &mut AsyncPgConnection, analysis_id: i64) -> diesel::QueryResult<()> {
    let analysis = analyses::get_analysis(conn, analysis_id).await?;
    let funnel = live(conn, &analysis).await?;
    analyses::set_progress(conn, analysis_id, &serde_json::json!({"funnel": funnel})).await
}

/// `1 thing` or `n things`.
#[must_use]
pub fn plural(n: usize, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comment_funnel_adds_up_whatever_happened_since_the_intake() {
        // read 20: 3 foreign, 2 duplicate, 1 rejected, 1 suppressed, 13 kept; 2 of them erased
        // since; 1 on a post outside the covered ones; 4 stored earlier; 5 by the owner.
        let intake = Intake {
            comments_read: 20,
            comments_foreign: 3,
            comments_duplicate: 2,
            comments_rejected: 1,
            comments_suppressed: 1,
            comments_kept: 13,
            ..Intake::default()
        };
        let counts = CommentCounts { on_posts: 14, analysed: 9, input_now: 11, input_on_posts: 10 };
        let f = comments_from(&intake, &counts);
        assert_eq!(f.in_input + f.stored_earlier, f.set_aside.total() + f.analysed, "{f:?}");
        assert_eq!(
            (f.stored_earlier, f.set_aside.owner, f.set_aside.suppressed, f.set_aside.outside_posts),
            (4, 5, 3, 1)
        );
    }
}
