//! Measuring, writing and reading calibration files.

use super::*;
use crate::vision::result::{AgeEstimate, BracketProbs, GenderEstimate};

fn result(label: Option<Gender>, bracket: Bracket, profile_type: ProfileType) -> PictureResult {
    PictureResult {
        model: "m".into(),
        profile_type,
        face_count: 1,
        face: None,
        gender: Some(GenderEstimate { label, p_male: 0.5, abstain: None }),
        age: Some(AgeEstimate {
            years: 20.0,
            bracket,
            brackets: BracketProbs::default(),
            raw_expected: 20.0,
        }),
        abstain: None,
        no_person_kind: None,
    }
}

fn labelled(gender: Gender, age: Option<u32>, bin: Option<&str>) -> Labelled {
    Labelled {
        file: "x.jpg".into(),
        gender: Some(gender),
        age,
        bin: bin.and_then(AgeBin::parse),
        category: None,
    }
}

fn dataset() -> Dataset {
    Dataset { description: "synthetic".into(), pictures: 0, counted: 0, size_px: Some(150), min_age: 13 }
}

#[test]
fn measured_counts_land_in_the_right_cells() {
    let rows = vec![
        (
            labelled(Gender::Female, Some(16), Some("10-19")),
            Some(result(Some(Gender::Female), Bracket::Teen, ProfileType::Person)),
        ),
        (
            labelled(Gender::Female, Some(30), Some("30-39")),
            Some(result(None, Bracket::From35, ProfileType::Person)),
        ),
        (
            labelled(Gender::Male, Some(30), Some("30-39")),
            Some(result(Some(Gender::Female), Bracket::From25, ProfileType::Person)),
        ),
        (
            labelled(Gender::Male, Some(70), Some("70+")),
            Some(result(Some(Gender::Male), Bracket::From65, ProfileType::Group)),
        ),
        (labelled(Gender::Male, Some(70), Some("70+")), None),
    ];
    let c = Calibration::measure("m", &rows, dataset());
    assert_eq!(c.dataset.counted, 3, "groups and failures are not counted");
    assert_eq!(c.gender.as_ref().unwrap().counts, vec![vec![1, 0, 1], vec![1, 0, 0]]);
    let brackets = c.age_bracket.as_ref().unwrap();
    assert_eq!(brackets.true_classes, ["13-17", "25-34"], "brackets without pictures are dropped");
    assert_eq!(brackets.counts[1][Bracket::From35.index()], 1);
    let bins = c.age_bin.as_ref().unwrap();
    assert_eq!(bins.true_classes, ["10-19", "30-39"]);
    assert!(c.notes.iter().any(|n| n.contains("70+")), "{:?}", c.notes);
    let json = serde_json::to_string_pretty(&c).unwrap();
    assert_eq!(Calibration::parse(&json, "t").unwrap(), c);
}

#[test]
fn one_gender_gives_no_gender_matrix() {
    let c = Calibration::measure(
        "m",
        &[(
            labelled(Gender::Female, None, None),
            Some(result(Some(Gender::Female), Bracket::Teen, ProfileType::Person)),
        )],
        dataset(),
    );
    assert!(c.gender.is_none() && c.age_bracket.is_none() && c.age_bin.is_none(), "{c:?}");
    assert!(c.notes.iter().any(|n| n.contains("both genders")));
}

#[test]
fn malformed_calibrations_are_refused() {
    let rows = [
        (
            labelled(Gender::Female, Some(20), None),
            Some(result(Some(Gender::Female), Bracket::From18, ProfileType::Person)),
        ),
        (
            labelled(Gender::Male, Some(20), None),
            Some(result(Some(Gender::Male), Bracket::From18, ProfileType::Person)),
        ),
    ];
    let c = Calibration::measure("m", &rows, dataset());
    let mut bad = c.clone();
    bad.gender.as_mut().unwrap().counts[0].push(1);
    let json = serde_json::to_string(&bad).unwrap();
    assert!(matches!(Calibration::parse(&json, "t"), Err(CalibrationError::Invalid { .. })));
    let mut bad = c.clone();
    bad.gender.as_mut().unwrap().true_classes.reverse();
    let json = serde_json::to_string(&bad).unwrap();
    assert!(matches!(Calibration::parse(&json, "t"), Err(CalibrationError::Invalid { .. })));
    let json = serde_json::to_string(&Calibration { format: 9, ..c }).unwrap();
    assert!(matches!(Calibration::parse(&json, "t"), Err(CalibrationError::Format(9))));
    assert!(Calibration::parse("{", "t").is_err());
}

#[test]
fn the_shipped_calibration_parses() {
    let c = Calibration::shipped().unwrap();
    assert_eq!(c.model, crate::vision::MODEL_NAME);
}
