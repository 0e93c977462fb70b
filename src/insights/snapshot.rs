//! The audience snapshot: what an analysis concluded, stored once as JSON and served as is.
//! It holds counts and shares only, no personal data.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::vision::estimate::AudienceEstimate;
use crate::vision::{Gender, PictureResult};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Version of this layout.
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
    pub cost: Cost,
}

/// What the estimate rests on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub posts_covered: usize,
    pub comments: usize,
    pub unique_commenters: usize,
    pub pictures_classified: usize,
    pub unavailable: Unavailable,
    pub first_comment_at: Option<DateTime<Utc>>,
    pub last_comment_at: Option<DateTime<Utc>>,
    pub first_post_at: Option<DateTime<Utc>>,
    pub last_post_at: Option<DateTime<Utc>>,
}

/// Commenters without a classified picture, by reason.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Unavailable {
    /// The picture link had expired.
    pub expired: usize,
    /// Not a picture, or unreadable.
    pub rejected: usize,
    /// Download kept failing.
    pub failed: usize,
    /// Private accounts (not classified unless the operator opts in).
    pub private: usize,
    /// No picture link in the data.
    pub no_picture: usize,
    /// Fetched but not classified yet.
    pub not_classified: usize,
}

impl Unavailable {
    #[must_use]
    pub fn total(&self) -> usize {
        self.expired + self.rejected + self.failed + self.private + self.no_picture + self.not_classified
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
