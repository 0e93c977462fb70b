//! The audience estimate: from per-picture results, the share of each profile type, gender and
//! age bracket, with the sample size, coverage (share of pictures that gave the label) and
//! 95 % Wilson intervals; and, with a calibration, the shares corrected for the classifier's
//! measured errors with bootstrap intervals. Raw and corrected are both reported.
//!
//! Gender and age shares count pictures typed person (groups too when asked) whose face was
//! classified; everything else is in the profile-type shares only. Bracket shares are corrected
//! only with an exact-age calibration: a calibration's annotated-bin matrix (FairFace-style
//! 10-year bins) is kept for experiments: bins are not brackets, and corrected bin shares
//! measured barely better than raw counting on the development set, worse for the middle bins
//! (`bench audience`).
//!
//! Owns: the estimate and its JSON form. Uses: `shares`, `calibration`, `result`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::calibration::{Calibration, Confusion};
use super::result::{Bracket, Gender, PictureResult, ProfileType};
use super::shares::{Z95, correct_with_interval, wilson};

#[derive(Debug, Clone, Copy)]
pub struct EstimateOptions {
    /// Count the largest face of group pictures in gender and age shares.
    pub include_groups: bool,
    pub bootstrap_rounds: usize,
    pub seed: u64,
}

impl Default for EstimateOptions {
    fn default() -> Self {
        Self { include_groups: false, bootstrap_rounds: 1000, seed: 0x5EED }
    }
}

/// A raw share: `count` of `n`, with its Wilson interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub class: String,
    pub count: usize,
    pub share: f64,
    pub ci95: [f64; 2],
}

/// A corrected share with its bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Corrected {
    pub class: String,
    pub share: f64,
    pub ci95: [f64; 2],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Pictures with this label.
    pub n: usize,
    /// `n` over classified pictures.
    pub coverage: f64,
    /// Empty when `n` is 0: there is no estimate (`no_estimate` says why).
    pub raw: Vec<Share>,
    pub corrected: Option<Vec<Corrected>>,
    /// Why there are no shares, in words, when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_estimate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationInfo {
    pub model: String,
    pub created: String,
    pub dataset: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudienceEstimate {
    pub model: String,
    /// Pictures given, classified and not classified (unreadable, unsupported, expired, ...).
    pub pictures: usize,
    pub classified: usize,
    #[serde(alias = "failed")]
    pub not_classified: usize,
    /// Empty when nothing could be classified on equal terms (`profile_types_no_estimate`
    /// says why).
    pub profile_types: Vec<Share>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_types_no_estimate: Option<String>,
    /// Profile types counted in gender and age shares.
    pub counted_types: Vec<ProfileType>,
    pub gender: Breakdown,
    pub age_brackets: Breakdown,
    pub calibration: Option<CalibrationInfo>,
    pub notes: Vec<String>,
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn raw_shares(counts: &[(String, usize)]) -> Vec<Share> {
    let n: usize = counts.iter().map(|c| c.1).sum();
    counts
        .iter()
        .map(|(class, count)| Share {
            class: class.clone(),
            count: *count,
            share: if n > 0 { round4(*count as f64 / n as f64) } else { 0.0 },
            ci95: wilson(*count as f64, n as f64, Z95).map(round4),
        })
        .collect()
}

/// Shares over `m`'s true classes given `observed` counts per predicted outcome.
#[must_use]
pub fn corrected(observed: &[f64], m: &Confusion, options: &EstimateOptions) -> Option<Vec<Corrected>> {
    // Nothing observed, nothing to correct (the system would return its prior).
    if observed.iter().sum::<f64>() <= 0.0 {
        return None;
    }
    let shares = correct_with_interval(observed, &m.counts_f64(), options.bootstrap_rounds, options.seed)?;
    Some(
        m.true_classes
            .iter()
            .zip(shares)
            .map(|(class, (share, ci))| Corrected {
                class: class.clone(),
                share: round4(share),
                ci95: ci.map(round4),
            })
            .collect(),
    )
}

/// Estimates the audience from `results` (pictures not classified count in `not_classified`).
#[must_use]
pub fn estimate(
    results: &[PictureResult],
    not_classified: usize,
    calibration: Option<&Calibration>,
    options: &EstimateOptions,
) -> AudienceEstimate {
    let mut notes = Vec::new();
    let mut models: BTreeMap<&str, usize> = BTreeMap::new();
    for r in results {
        *models.entry(r.model.as_str()).or_default() += 1;
    }
    let model = models.iter().max_by_key(|(_, n)| **n).map_or(String::new(), |(m, _)| (*m).to_owned());
    if models.len() > 1 {
        notes.push(format!(
            "results come from {} model versions; the most common is reported, and its calibration, if \
             given, corrects all of them",
            models.len()
        ));
    }
    let classified = results.len();
    let type_counts: Vec<(String, usize)> = ProfileType::ALL
        .iter()
        .map(|t| (t.label().to_owned(), results.iter().filter(|r| r.profile_type == *t).count()))
        .collect();
    let counted_types: Vec<ProfileType> = if options.include_groups {
        vec![ProfileType::Person, ProfileType::Group]
    } else {
        vec![ProfileType::Person]
    };
    let counted: Vec<&PictureResult> =
        results.iter().filter(|r| counted_types.contains(&r.profile_type)).collect();
    let coverage = |n: usize| if classified > 0 { round4(n as f64 / classified as f64) } else { 0.0 };

    let calibration = calibration.filter(|c| {
        let same = c.model == model;
        if !same && !model.is_empty() {
            notes.push(format!(
                "the calibration was measured for model {}, the results are from {model}: shares are not corrected",
                c.model
            ));
        }
        same
    });
    if calibration.is_none() && notes.is_empty() && !counted.is_empty() {
        notes.push("no calibration given: shares are not corrected".to_owned());
    }

    // Gender: raw over labelled faces; corrected over classified faces, abstentions included.
    let mut gender_outcomes = [0.0_f64; 3];
    for g in counted.iter().filter_map(|r| r.gender) {
        gender_outcomes[g.label.map_or(2, |l| l as usize)] += 1.0;
    }
    let gender_counts: Vec<(String, usize)> =
        Gender::ALL.iter().map(|g| (g.label().to_owned(), gender_outcomes[*g as usize] as usize)).collect();
    let labelled = (gender_outcomes[0] + gender_outcomes[1]) as usize;
    let people = counted.len();
    let gender = Breakdown {
        n: labelled,
        coverage: coverage(labelled),
        raw: if labelled > 0 { raw_shares(&gender_counts) } else { Vec::new() },
        corrected: calibration
            .and_then(|c| c.gender.as_ref())
            .and_then(|m| corrected(&gender_outcomes, m, options)),
        no_estimate: (labelled == 0).then(|| no_label_reason(classified, people, "a gender")),
    };

    let mut bracket_outcomes = [0.0_f64; 7];
    for b in counted.iter().filter_map(|r| r.bracket()) {
        bracket_outcomes[b.index()] += 1.0;
    }
    let bracket_counts: Vec<(String, usize)> =
        Bracket::ALL.iter().map(|b| (b.label().to_owned(), bracket_outcomes[b.index()] as usize)).collect();
    let aged = bracket_outcomes.iter().sum::<f64>() as usize;
    let age_brackets = Breakdown {
        n: aged,
        coverage: coverage(aged),
        raw: if aged > 0 { raw_shares(&bracket_counts) } else { Vec::new() },
        corrected: calibration
            .and_then(|c| c.age_bracket.as_ref())
            .and_then(|m| corrected(&bracket_outcomes, m, options)),
        no_estimate: (aged == 0).then(|| no_label_reason(classified, people, "an age")),
    };
    if aged > 0 && calibration.is_some_and(|c| c.age_bracket.is_none()) {
        notes.push("the calibration has no exact-age matrix: bracket shares are not corrected".to_owned());
    }

    AudienceEstimate {
        model,
        pictures: classified + not_classified,
        classified,
        not_classified,
        profile_types: if classified > 0 { raw_shares(&type_counts) } else { Vec::new() },
        profile_types_no_estimate: (classified == 0)
            .then(|| "no estimate: no picture could be classified".to_owned()),
        counted_types,
        gender,
        age_brackets,
        calibration: calibration.map(|c| CalibrationInfo {
            model: c.model.clone(),
            created: c.created.clone(),
            dataset: c.dataset.description.clone(),
        }),
        notes,
    }
}

/// Why no share of a label could be given, in words.
fn no_label_reason(classified: usize, people: usize, label: &str) -> String {
    if classified == 0 {
        "no estimate: no picture could be classified".to_owned()
    } else if people == 0 {
        format!("no estimate: none of the {classified} classified pictures shows a person")
    } else {
        format!(
            "no estimate: the classifier could give {label} for none of the {people} people (faces too small or unsure)"
        )
    }
}

/// Profile-type shares when some pictures were recognised without being downloaded (Instagram's
/// default avatar, from its link) while others could not be downloaded at all: counting the
/// judged pictures alone would over-count default avatars, which are recognised whether or not
/// their link still works. The population is the `with_link` commenters with a picture link:
/// the `from_link` default avatars are one stratum, known without the picture; the rest are
/// estimated from their judged pictures (`results` less those `from_link`), taken as a sample
/// of the pictures without the marker. Intervals combine the Wilson interval of each part.
/// Without a single judged picture in the second stratum there is no estimate.
pub fn stratify_profile_types(
    estimate: &mut AudienceEstimate,
    results: &[PictureResult],
    from_link: usize,
    with_link: usize,
) {
    let judged = results.len().saturating_sub(from_link);
    let others = with_link.saturating_sub(from_link);
    if from_link == 0 || judged >= others || with_link == 0 {
        return;
    }
    if judged == 0 {
        estimate.profile_types = Vec::new();
        estimate.profile_types_no_estimate = Some(format!(
            "no estimate: {from_link} of the {with_link} commenters with a picture link have Instagram's default \
             avatar (recognised from the link); none of the other {others} pictures could be downloaded, so what \
             they show is unknown"
        ));
        return;
    }
    let n = with_link as f64;
    let w = others as f64 / n;
    let [w_lo, w_hi] = wilson(others as f64, n, Z95);
    // The default-avatar rule also finds avatars without the marker among the judged pictures;
    // the results from links are the default avatars first in no particular order, so count
    // per type and take the link ones off the default-avatar count.
    estimate.profile_types = ProfileType::ALL
        .iter()
        .map(|t| {
            let mut count = results.iter().filter(|r| r.profile_type == *t).count();
            let link = if *t == ProfileType::DefaultAvatar { from_link.min(count) } else { 0 };
            count -= link;
            let p = count as f64 / judged as f64;
            let [p_lo, p_hi] = wilson(count as f64, judged as f64, Z95);
            let (share, ci) = if *t == ProfileType::DefaultAvatar {
                (1.0 - w * (1.0 - p), [1.0 - w_hi * (1.0 - p_lo), 1.0 - w_lo * (1.0 - p_hi)])
            } else {
                (w * p, [w_lo * p_lo, w_hi * p_hi])
            };
            Share {
                class: t.label().to_owned(),
                count: count + link,
                share: round4(share),
                ci95: ci.map(round4),
            }
        })
        .collect();
    estimate.notes.push(format!(
        "profile types are shares of the {with_link} commenters with a picture link: default avatars \
         recognised from their link ({from_link}) count as they are, the other types are estimated from the \
         {judged} of {others} other pictures that could be judged"
    ));
}

#[cfg(test)]
#[path = "estimate_tests.rs"]
mod tests;
