//! Metric definitions on hand-made predictions.

use super::*;

fn label(file: &str, gender: Gender, age: Option<u32>, bin: Option<&str>) -> Labelled {
    Labelled {
        file: file.into(),
        gender: Some(gender),
        age,
        bin: bin.and_then(AgeBin::parse),
        category: None,
    }
}

fn found(gender: Gender, age: f64) -> Prediction {
    Prediction {
        faces: 1,
        gender: Some(gender),
        age: Some(age),
        bracket: Some(Bracket::of_age(age.round() as i64)),
    }
}

fn value(metrics: &[Metric], name: &str) -> Option<f64> {
    metrics.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no metric {name}: {metrics:?}")).value
}

#[test]
fn exact_age_metrics() {
    let labels = [
        label("a", Gender::Female, Some(16), None),
        label("b", Gender::Male, Some(30), None),
        label("c", Gender::Male, Some(50), None),
        label("d", Gender::Female, Some(70), None),
    ];
    let predictions: BTreeMap<String, Prediction> = [
        ("a".to_owned(), found(Gender::Female, 19.0)),
        ("b".to_owned(), found(Gender::Female, 31.0)),
        ("c".to_owned(), found(Gender::Male, 44.0)),
        ("d".to_owned(), Prediction::default()),
    ]
    .into();
    let m = evaluate(&predictions, &labels);
    assert_eq!(value(&m, "gender accuracy (face found)"), Some(2.0 / 3.0));
    assert_eq!(value(&m, "gender accuracy (all, miss = wrong)"), Some(0.5));
    assert_eq!(value(&m, "age MAE (found)"), Some((3.0 + 1.0 + 6.0) / 3.0));
    assert_eq!(value(&m, "bracket exact (found)"), Some(1.0 / 3.0));
    assert_eq!(value(&m, "bracket within 1 (found)"), Some(1.0));
    assert_eq!(value(&m, "teens 13-17 right (found)"), Some(0.0));
    assert_eq!(value(&m, "  65+ (n=1) exact"), None, "nothing found in that bracket");
}

#[test]
fn bin_metrics_follow_the_reference_script() {
    let labels = [
        label("a", Gender::Female, None, Some("10-19")),
        label("b", Gender::Male, None, Some("20-29")),
        label("c", Gender::Male, None, Some("more than 70")),
    ];
    let predictions: BTreeMap<String, Prediction> = [
        ("a".to_owned(), found(Gender::Female, 17.0)),
        ("b".to_owned(), found(Gender::Male, 19.5)),
        ("c".to_owned(), found(Gender::Male, 64.0)),
    ]
    .into();
    let m = evaluate(&predictions, &labels);
    // 19.5 falls in the gap after 10-19: that bin.
    assert_eq!(value(&m, "age bin exact (found)"), Some(1.0 / 3.0));
    // 64 falls in the gap between 20-29 and 70+: the 20-29 bin, one from the truth.
    assert_eq!(value(&m, "age bin within 1 (found)"), Some(1.0));
    assert_eq!(value(&m, "age distance to true bin (found)"), Some((0.0 + 0.5 + 6.0) / 3.0));
    assert_eq!(value(&m, "bin with 15-year-olds: under 18 (found)"), Some(1.0));
    // 13-17 overlaps 10-19; 18-24 overlaps 20-29; 55-64 does not overlap 70+.
    assert_eq!(value(&m, "bracket overlaps true bin (found)"), Some(2.0 / 3.0));
    // Ages 10-17 of 10-19 are 13-17 (8 of 10); 20-24 of 20-29 are 18-24 (5 of 10); 70+ is 65+.
    let expected = value(&m, "bracket exact if ages uniform in bin (found)").unwrap();
    assert!((expected - (0.8 + 0.5 + 0.0) / 3.0).abs() < 1e-12, "{expected}");
}

#[test]
fn same_images_only_counts_faces_both_found() {
    let labels = [label("a", Gender::Female, Some(20), None), label("b", Gender::Male, Some(40), None)];
    let ours: BTreeMap<String, Prediction> =
        [("a".to_owned(), found(Gender::Female, 22.0)), ("b".to_owned(), found(Gender::Male, 40.0))].into();
    let reference: BTreeMap<String, Prediction> =
        [("a".to_owned(), found(Gender::Male, 30.0)), ("b".to_owned(), Prediction::default())].into();
    let (o, r) = same_images(&ours, &reference, &labels);
    assert_eq!(value(&o, "same images: both found a face"), Some(1.0));
    assert_eq!(value(&o, "same images: gender accuracy"), Some(1.0));
    assert_eq!(value(&r, "same images: gender accuracy"), Some(0.0));
    assert_eq!(value(&r, "same images: age error (MAE, or distance to bin)"), Some(10.0));
}
