//! The estimate on synthetic results whose true composition is known.

use super::*;
use crate::vision::calibration::{Dataset, FORMAT, GENDER_OUTCOMES};
use crate::vision::result::{Abstain, AgeEstimate, BracketProbs, GenderEstimate};

const MODEL: &str = "test-model";

fn picture(profile_type: ProfileType, gender: Option<Gender>, bracket: Bracket) -> PictureResult {
    PictureResult {
        model: MODEL.to_owned(),
        profile_type,
        face_count: 1,
        face: None,
        gender: Some(GenderEstimate {
            label: gender,
            p_male: 0.5,
            abstain: gender.is_none().then_some(Abstain::LowConfidence),
        }),
        age: Some(AgeEstimate {
            years: 30.0,
            bracket,
            brackets: BracketProbs::default(),
            raw_expected: 30.0,
        }),
        abstain: None,
        no_person_kind: None,
    }
}

fn no_face() -> PictureResult {
    PictureResult {
        model: MODEL.to_owned(),
        profile_type: ProfileType::NoPerson,
        face_count: 0,
        face: None,
        gender: None,
        age: None,
        abstain: Some(Abstain::NoFace),
        no_person_kind: None,
    }
}

fn calibration(gender: Vec<Vec<u64>>, age_bracket: Option<Vec<Vec<u64>>>) -> Calibration {
    let brackets: Vec<String> = Bracket::ALL.iter().map(|b| b.label().to_owned()).collect();
    Calibration {
        format: FORMAT,
        model: MODEL.to_owned(),
        created: String::new(),
        dataset: Dataset {
            description: "synthetic".into(),
            pictures: 0,
            counted: 0,
            size_px: None,
            min_age: 13,
        },
        gender: Some(Confusion {
            true_classes: vec!["female".into(), "male".into()],
            predicted: GENDER_OUTCOMES.map(str::to_owned).to_vec(),
            counts: gender,
        }),
        age_bracket: age_bracket.map(|counts| Confusion {
            true_classes: brackets.clone(),
            predicted: brackets,
            counts,
        }),
        age_bin: None,
        notes: Vec::new(),
    }
}

/// 1000 faces, truly 300 women and 700 men, seen through a classifier that calls 80 % of women
/// female, 15 % male, abstains on 5 %, and calls 10 % of men female, 85 % male, abstains on 5 %.
fn biased_audience() -> Vec<PictureResult> {
    let mut out = Vec::new();
    for (label, n) in [(Some(Gender::Female), 310), (Some(Gender::Male), 640), (None, 50)] {
        out.extend((0..n).map(|_| picture(ProfileType::Person, label, Bracket::From25)));
    }
    out
}

#[test]
fn corrected_gender_share_recovers_the_true_composition() {
    let c = calibration(vec![vec![800, 150, 50], vec![100, 850, 50]], None);
    let e = estimate(&biased_audience(), 0, Some(&c), &EstimateOptions::default());
    assert_eq!((e.gender.n, e.gender.raw[0].count), (950, 310));
    let raw = e.gender.raw[0].share;
    assert!((raw - 310.0 / 950.0).abs() < 1e-4);
    let fixed = &e.gender.corrected.as_ref().unwrap()[0];
    assert_eq!(fixed.class, "female");
    assert!((fixed.share - 0.30).abs() < 0.002, "{fixed:?}");
    assert!(fixed.ci95[0] < 0.30 && 0.30 < fixed.ci95[1], "{fixed:?}");
    assert!((raw - 0.30).abs() > 0.02, "raw counting is off by more than the correction");
    assert!(e.notes.iter().any(|n| n.contains("not corrected")), "no exact-age matrix: {:?}", e.notes);
}

#[test]
fn corrected_bracket_shares_recover_the_true_composition() {
    // A classifier that sends a fifth of each bracket to the next one up (the last stays).
    let mut m = vec![vec![0_u64; 7]; 7];
    for (t, row) in m.iter_mut().enumerate() {
        row[t] += 80;
        row[(t + 1).min(6)] += 20;
    }
    let truth = [100.0, 300.0, 250.0, 150.0, 100.0, 60.0, 40.0];
    let mut results = Vec::new();
    for (p, bracket) in Bracket::ALL.into_iter().enumerate() {
        let n: f64 = truth.iter().zip(&m).map(|(count, row)| count * row[p] as f64 / 100.0).sum();
        results.extend(
            (0..n.round() as usize).map(|_| picture(ProfileType::Person, Some(Gender::Male), bracket)),
        );
    }
    let c = calibration(vec![vec![9, 1, 0], vec![1, 9, 0]], Some(m));
    let e = estimate(&results, 0, Some(&c), &EstimateOptions { bootstrap_rounds: 200, ..Default::default() });
    let fixed = e.age_brackets.corrected.unwrap();
    for (got, want) in fixed.iter().zip(truth) {
        assert!((got.share - want / 1000.0).abs() < 0.002, "{got:?} vs {want}");
    }
}

#[test]
fn types_coverage_and_counted_population() {
    let mut results = biased_audience();
    results.extend((0..100).map(|_| no_face()));
    results.extend((0..50).map(|_| picture(ProfileType::Group, Some(Gender::Female), Bracket::Teen)));
    let e = estimate(&results, 7, None, &EstimateOptions::default());
    assert_eq!((e.pictures, e.classified, e.not_classified), (1157, 1150, 7));
    assert_eq!(e.profile_types.iter().map(|s| s.count).collect::<Vec<_>>(), [1000, 50, 100, 0]);
    assert_eq!(e.gender.n, 950, "groups are left out by default, abstentions have no label");
    assert!((e.gender.coverage - 950.0 / 1150.0).abs() < 1e-4);
    assert_eq!(e.age_brackets.n, 1000);
    assert!(e.gender.corrected.is_none() && e.notes.iter().any(|n| n.contains("no calibration")));
    let with_groups =
        estimate(&results, 7, None, &EstimateOptions { include_groups: true, ..Default::default() });
    assert_eq!(with_groups.gender.n, 1000);
}

#[test]
fn a_calibration_for_another_model_is_not_applied() {
    let mut c = calibration(vec![vec![8, 1, 1], vec![1, 8, 1]], None);
    c.model = "another".into();
    let e = estimate(&biased_audience(), 0, Some(&c), &EstimateOptions::default());
    assert!(e.gender.corrected.is_none() && e.calibration.is_none());
    assert!(e.notes.iter().any(|n| n.contains("another")), "{:?}", e.notes);
}

#[test]
fn default_avatars_known_from_links_do_not_stand_for_pictures_that_could_not_be_judged() {
    let avatar = || crate::vision::default_avatar(MODEL);
    // 10 commenters with a link: 2 default avatars known from the link, 4 of the other 8
    // pictures judged (2 people, 2 without a person), 4 expired.
    let results = vec![
        avatar(),
        avatar(),
        picture(ProfileType::Person, Some(Gender::Female), Bracket::From25),
        picture(ProfileType::Person, None, Bracket::From25),
        no_face(),
        no_face(),
    ];
    let mut e = estimate(&results, 4, None, &EstimateOptions::default());
    let plain: Vec<f64> = e.profile_types.iter().map(|s| s.share).collect();
    stratify_profile_types(&mut e, &results, 2, 10);
    let share = |class: &str| e.profile_types.iter().find(|s| s.class == class).expect(class).clone();
    assert!(
        (share("default_avatar").share - 0.2).abs() < 1e-9,
        "2 of 10, not 2 of 6: {:?} (plain {plain:?})",
        e.profile_types
    );
    assert!((share("person").share - 0.4).abs() < 1e-9);
    assert!((share("no_person").share - 0.4).abs() < 1e-9);
    let total: f64 = e.profile_types.iter().map(|s| s.share).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    for s in &e.profile_types {
        assert!(s.ci95[0] <= s.share && s.share <= s.ci95[1], "{s:?}");
    }
    // Nothing but the avatars judged: no estimate, said in words.
    let only = vec![avatar(), avatar()];
    let mut e = estimate(&only, 8, None, &EstimateOptions::default());
    stratify_profile_types(&mut e, &only, 2, 10);
    assert!(e.profile_types.is_empty());
    assert!(e.profile_types_no_estimate.as_deref().is_some_and(|w| w.contains("none of the other 8")));
    // Every picture judged: plain counting stands.
    let mut e = estimate(&results, 0, None, &EstimateOptions::default());
    let before = e.profile_types.clone();
    stratify_profile_types(&mut e, &results, 2, 6);
    assert_eq!(e.profile_types, before);
}
