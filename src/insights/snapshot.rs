//! The audience snapshot: what an analysis concluded, stored once as JSON and served as is.
//! It holds counts and shares only, no personal data.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::vision::estimate::AudienceEstimate;
use crate::vision::{Gender, PictureResult};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Version of this layout: 2 since the coverage funnel (`sample.funnel`).
    pub schema: u32,
    pub analysis_id: i64,
    pub account_id: i64,
    pub handle: String,
    pub generated_at: DateTime<Utc>,
    /// `local`, `gemini` or `cascade`.
    pub classifier: String,
    /// The model behind most results.
    pub model: String,
    /// `audience` weighs each unique commenter once (the default view);
    /// `audience_by_comment` weighs each comment.
    pub weighting_default: String,
    pub sample: Sample,
    pub audience: AudienceEstimate,
    pub audience_by_comment: AudienceEstimate,
    pub account_types: AccountTypes,
    pub per_post: Vec<PostBreakdown>,
    /// What pictures without a person show, where the classifier told (Gemini does).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub no_person_kinds: BTreeMap<String, usize>,
    /// Age bracket by gender (raw counts of people given an age), for the pyramid; withheld
    /// below [`MIN_POST_BREAKDOWN`] people. Absent before schema 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_gender: Option<AgeGender>,
    pub cost: Cost,
}

/// People given an age, by bracket and gender (`unknown`: no gender given), each cell a raw
/// share of `n` with its 95 % Wilson interval. Not corrected: the calibration measures gender
/// and age errors apart, not jointly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgeGender {
    pub n: usize,
    pub rows: Vec<AgeGenderRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgeGenderRow {
    pub bracket: String,
    pub female: Cell,
    pub male: Cell,
    pub unknown: Cell,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub count: usize,
    pub share: f64,
    pub ci95: [f64; 2],
}

impl AgeGender {
    /// The table of the people among `results` (typed person) given an age; `None` below
    /// [`MIN_POST_BREAKDOWN`] of them.
    #[must_use]
    pub fn of(results: &[PictureResult]) -> Option<Self> {
        use crate::vision::ProfileType;
        use crate::vision::result::Bracket;
        use crate::vision::shares::{Z95, wilson};
        let people: Vec<(Bracket, Option<Gender>)> = results
            .iter()
            .filter(|r| r.profile_type == ProfileType::Person)
            .filter_map(|r| Some((r.bracket()?, r.gender_label())))
            .collect();
        let n = people.len();
        if n < MIN_POST_BREAKDOWN {
            return None;
        }
        let round4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
        let cell = |count: usize| Cell {
            count,
            share: round4(count as f64 / n as f64),
            ci95: wilson(count as f64, n as f64, Z95).map(round4),
        };
        let count =
            |b: Bracket, g: Option<Gender>| people.iter().filter(|(pb, pg)| *pb == b && *pg == g).count();
        let rows = Bracket::ALL
            .iter()
            .map(|&b| AgeGenderRow {
                bracket: b.label().to_owned(),
                female: cell(count(b, Some(Gender::Female))),
                male: cell(count(b, Some(Gender::Male))),
                unknown: cell(count(b, None)),
            })
            .collect();
        Some(Self { n, rows })
    }
}

/// What the estimate rests on: the posts covered, the time window and the coverage funnel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub posts_covered: usize,
    /// How the posts were chosen: `input` (every post of the imported files) or
    /// `latest_posts` (the account's newest `posts_limit`). Absent before schema 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posts_scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posts_limit: Option<usize>,
    /// Comments analysed (`funnel.comments.analysed`).
    pub comments: usize,
    /// Unique commenters of those comments (`funnel.commenters.unique`).
    pub unique_commenters: usize,
    /// From the input to the labels given: every count of the analysis in one place. Absent
    /// in snapshots made before schema 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funnel: Option<Funnel>,
    pub first_comment_at: Option<DateTime<Utc>>,
    pub last_comment_at: Option<DateTime<Utc>>,
    pub first_post_at: Option<DateTime<Utc>>,
    pub last_post_at: Option<DateTime<Utc>>,
}

/// The coverage funnel: comments in → set aside → analysed; their unique commenters → with a
/// picture link → picture available → classified → typed person → gender or age given. Each
/// step is the one before less what is counted beside it, so the numbers add up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funnel {
    pub comments: CommentFunnel,
    pub commenters: CommenterFunnel,
}

/// Comments, from the input to those analysed:
/// `in_input + stored_earlier = set_aside.total() + analysed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentFunnel {
    /// Comment records in this analysis's input (its import files or scrape runs), replies
    /// included.
    pub in_input: usize,
    /// Comments on the covered posts that were stored before, by earlier imports or scrapes.
    pub stored_earlier: usize,
    pub set_aside: SetAside,
    pub analysed: usize,
    /// Posts of other accounts in the input, set aside with their comments.
    pub posts_foreign: usize,
    /// Posts whose owner the input does not name (a comment export), taken as the account's.
    pub posts_without_owner: usize,
    /// Profiles of other accounts in the input that do not comment here.
    pub profiles_foreign: usize,
    /// Items of the input that could not be read at all.
    pub items_unreadable: usize,
}

/// Comments not analysed, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    /// Written by the account itself or by an author of the post (its own replies).
    pub owner: usize,
    /// On posts of other accounts.
    pub foreign: usize,
    /// The same comment again in the input.
    pub duplicate: usize,
    /// Unreadable comment records (no id, no author, no post).
    pub rejected: usize,
    /// By people erased at their request (or on their posts).
    pub suppressed: usize,
    /// On posts outside the covered ones (a scrape covers the newest `posts_limit`).
    pub outside_posts: usize,
}

impl SetAside {
    #[must_use]
    pub fn total(&self) -> usize {
        self.owner + self.foreign + self.duplicate + self.rejected + self.suppressed + self.outside_posts
    }
}

/// Unique commenters, from all of them to those given a label:
/// `unique = classified + not_classified.total()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommenterFunnel {
    pub unique: usize,
    /// With a picture link in the data (`unique - not_classified.no_picture`).
    pub with_picture: usize,
    /// Whose picture could be judged: downloaded, or recognised as Instagram's default avatar
    /// from its link (`with_picture` less private, expired, unreadable, failed and pending).
    pub picture_available: usize,
    /// With a result (`picture_available - not_classified.unclassified`).
    pub classified: usize,
    /// Of those, default avatars recognised from the link alone (never downloaded).
    pub recognised_from_link: usize,
    /// Classified pictures typed as counted in gender and age shares (a person).
    pub person: usize,
    pub gender_given: usize,
    pub age_given: usize,
    pub not_classified: NotClassified,
}

/// Commenters without a result, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotClassified {
    /// No picture link in the data.
    pub no_picture: usize,
    /// Private accounts (not downloaded unless the operator opts in).
    pub private: usize,
    /// The picture link had expired.
    pub expired: usize,
    /// Downloaded, but not a picture, or unreadable.
    pub unreadable: usize,
    /// The download kept failing.
    pub failed: usize,
    /// Not downloaded yet.
    pub pending: usize,
    /// Downloaded, not classified.
    pub unclassified: usize,
}

impl NotClassified {
    #[must_use]
    pub fn total(&self) -> usize {
        self.no_picture
            + self.private
            + self.expired
            + self.unreadable
            + self.failed
            + self.pending
            + self.unclassified
    }
}

/// The share of commenters with a flag, among those whose flag is known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlagShare {
    /// Commenters whose flag is known.
    pub n: usize,
    /// `n` over all commenters.
    pub coverage: f64,
    pub share: f64,
    pub ci95: [f64; 2],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountTypes {
    pub private: FlagShare,
    pub verified: FlagShare,
    pub business: FlagShare,
}

/// Fewest commenters with a gender or age result a post's gender and age counts are given for:
/// the counts of fewer would say what the classifier made of people one can pick out (a
/// post's commenters are public), and snapshots are kept after those people are erased.
pub const MIN_POST_BREAKDOWN: usize = 5;

/// One post's commenters (raw counts: per-post samples are small).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostBreakdown {
    pub ig_post_id: String,
    pub url: Option<String>,
    pub posted_at: Option<DateTime<Utc>>,
    /// Comments analysed (the account's own replies are not).
    pub comments: usize,
    pub unique_commenters: usize,
    pub classified: usize,
    /// `None` (withheld) when fewer than [`MIN_POST_BREAKDOWN`] commenters got a gender or an
    /// age; so are `male` and `age_brackets`.
    pub female: Option<usize>,
    pub male: Option<usize>,
    pub age_brackets: Option<BTreeMap<String, usize>>,
}

impl PostBreakdown {
    /// Gender and bracket counts of a post's classified commenters, withheld while fewer than
    /// [`MIN_POST_BREAKDOWN`] of them got a gender or an age (logos and avatars do not count).
    #[must_use]
    pub fn counts(
        labelled: &[&PictureResult],
    ) -> (Option<usize>, Option<usize>, Option<BTreeMap<String, usize>>) {
        let people = labelled.iter().filter(|r| r.gender_label().is_some() || r.bracket().is_some()).count();
        if people < MIN_POST_BREAKDOWN {
            return (None, None, None);
        }
        let female = labelled.iter().filter(|r| r.gender_label() == Some(Gender::Female)).count();
        let male = labelled.iter().filter(|r| r.gender_label() == Some(Gender::Male)).count();
        let mut brackets = BTreeMap::new();
        for b in labelled.iter().filter_map(|r| r.bracket()) {
            *brackets.entry(b.label().to_owned()).or_insert(0usize) += 1;
        }
        (Some(female), Some(male), Some(brackets))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cost {
    pub total_usd: f64,
    /// What Gemini did for this analysis (gemini and cascade classifiers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemini: Option<GeminiUse>,
}

/// Pictures sent to Gemini and what came of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GeminiUse {
    pub sent: usize,
    pub labelled: usize,
    pub abstained: usize,
    /// Pictures that kept their local result because the budget was reached.
    pub over_budget: usize,
    /// Pictures that kept their local result because Gemini was unavailable.
    pub unavailable: usize,
    /// Pictures that kept their local result because Gemini does not take their format.
    #[serde(default)]
    pub unsupported: usize,
    pub requests: usize,
    pub cost_usd: f64,
    pub budget_usd: Option<f64>,
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Cost {
    #[must_use]
    pub fn from_micro_usd(micro: i64) -> Self {
        Self { total_usd: micro as f64 / 1e6, gemini: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::{GenderEstimate, default_avatar};

    #[test]
    fn a_post_with_few_classified_commenters_gets_no_breakdown() {
        let woman = {
            let mut r = default_avatar("test");
            r.gender = Some(GenderEstimate { label: Some(Gender::Female), p_male: 0.1, abstain: None });
            r
        };
        let few = vec![&woman; MIN_POST_BREAKDOWN - 1];
        assert_eq!(PostBreakdown::counts(&few), (None, None, None));
        // Pictures without a person do not make the few a crowd.
        let logo = default_avatar("test");
        let padded: Vec<&PictureResult> = few.iter().copied().chain([&logo; 5]).collect();
        assert_eq!(PostBreakdown::counts(&padded), (None, None, None));
        let enough = vec![&woman; MIN_POST_BREAKDOWN];
        let (female, male, brackets) = PostBreakdown::counts(&enough);
        assert_eq!((female, male), (Some(MIN_POST_BREAKDOWN), Some(0)));
        assert_eq!(brackets, Some(BTreeMap::new()), "no ages given");
    }
}
