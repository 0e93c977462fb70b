//! Accuracy of the vision benchmark, computed the same way for the local classifier and for
//! the reference (from its per-image output): the metrics of `scripts/reference_bench.py`
//! (gender accuracy, exact-age MAE and bracket accuracy, or annotated-bin metrics when only
//! 10-year bins are known), per-class rows, and the same-images comparison.
//!
//! Owns: metric definitions. Uses: `vision::labels`, `vision::result`.

use std::collections::{BTreeMap, BTreeSet};

use crate::vision::labels::{AgeBin, Labelled};
use crate::vision::{Bracket, Gender};

/// What one pipeline said about one picture.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Prediction {
    /// Faces reported.
    pub faces: u32,
    /// Gender of the classified face (the label the threshold gives, abstention ignored).
    pub gender: Option<Gender>,
    /// Age of the classified face, years.
    pub age: Option<f64>,
    /// Bracket the pipeline reports for that age.
    pub bracket: Option<Bracket>,
}

impl Prediction {
    #[must_use]
    pub fn found(&self) -> bool {
        self.gender.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Share,
    Years,
    Count,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: Option<f64>,
    pub unit: Unit,
}

fn metric(name: impl Into<String>, value: Option<f64>, unit: Unit) -> Metric {
    Metric { name: name.into(), value, unit }
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Lower and upper age of bracket `b` (the first starts at 0, the last ends at 200).
fn bracket_range(b: Bracket) -> (f64, f64) {
    let i = b.index();
    let lo = if i == 0 { 0.0 } else { f64::from(Bracket::LOWER[i]) };
    let hi = Bracket::LOWER.get(i + 1).map_or(200.0, |&next| f64::from(next) - 1.0);
    (lo, hi)
}

/// Share of the whole-year ages in `bin` that fall in bracket `b` — the chance the bracket is
/// right if the true age is uniform within the bin. An open bin ("70+") counts its first
/// year only, which every bracket boundary below 70 leaves on one side.
fn bracket_share_of_bin(bin: &AgeBin, b: Bracket) -> f64 {
    let (lo, hi) = bracket_range(b);
    let ages = bin.lo..=bin.hi.unwrap_or(bin.lo);
    let inside = ages.clone().filter(|&a| lo <= f64::from(a) && f64::from(a) <= hi).count();
    inside as f64 / ages.count() as f64
}

/// Index of the annotated bin an age falls in (gaps between bins go to the lower one).
fn bin_index(bins: &[AgeBin], age: f64) -> Option<usize> {
    for (i, bin) in bins.iter().enumerate() {
        let lo = f64::from(bin.lo);
        let inside = lo <= age && bin.hi.is_none_or(|hi| age <= f64::from(hi));
        let gap = bins.get(i + 1).is_some_and(|next| lo <= age && age < f64::from(next.lo));
        if inside || gap {
            return Some(i);
        }
    }
    bins.last().filter(|b| age > f64::from(b.lo)).map(|_| bins.len() - 1)
}

/// Per-class tallies: labelled, found, exact, within one class.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    total: usize,
    found: usize,
    exact: usize,
    within1: usize,
}

impl Tally {
    /// One labelled picture: `found` when a face was classified, with the class its answer
    /// falls in (`None` when outside every class).
    fn add(&mut self, found: bool, predicted: Option<usize>, truth: usize) {
        self.total += 1;
        if found {
            self.found += 1;
            self.exact += usize::from(predicted == Some(truth));
            self.within1 += usize::from(predicted.is_some_and(|p| p.abs_diff(truth) <= 1));
        }
    }

    fn sum(tallies: &[Self]) -> Self {
        tallies.iter().fold(Self::default(), |a, t| Self {
            total: a.total + t.total,
            found: a.found + t.found,
            exact: a.exact + t.exact,
            within1: a.within1 + t.within1,
        })
    }
}

/// Everything counted over the labelled pictures.
#[derive(Debug, Default)]
struct Tallies {
    gender_total: usize,
    gender_found: usize,
    gender_right: usize,
    abs_err: f64,
    by_bracket: [Tally; 7],
    bins: Vec<AgeBin>,
    by_bin: Vec<Tally>,
    interval_err: f64,
    compatible: usize,
    /// Sum over found faces of `bracket_share_of_bin`.
    expected_exact: f64,
    teen_bin_found: usize,
    teen_bin_under18: usize,
}

impl Tallies {
    fn add(&mut self, label: &Labelled, p: &Prediction) {
        if let Some(truth) = label.gender {
            self.gender_total += 1;
            if let Some(g) = p.gender {
                self.gender_found += 1;
                self.gender_right += usize::from(g == truth);
            }
        }
        let found = p.age.zip(p.bracket);
        if let (Some(truth), Some(age)) = (label.bracket(), label.age) {
            self.by_bracket[truth.index()].add(found.is_some(), found.map(|(_, b)| b.index()), truth.index());
            if let Some((predicted, _)) = found {
                self.abs_err += (predicted - f64::from(age)).abs();
            }
        } else if let Some(bin) = &label.bin {
            let i = self.bins.iter().position(|b| b == bin).unwrap_or(0);
            self.by_bin[i].add(found.is_some(), found.and_then(|(age, _)| bin_index(&self.bins, age)), i);
            let Some((age, bracket)) = found else { return };
            self.interval_err += bin.distance(age);
            let (b_lo, b_hi) = bracket_range(bracket);
            self.compatible +=
                usize::from(b_lo <= bin.hi.map_or(f64::INFINITY, f64::from) && f64::from(bin.lo) <= b_hi);
            self.expected_exact += bracket_share_of_bin(bin, bracket);
            if bin.lo <= 15 && bin.hi.is_none_or(|hi| hi >= 15) {
                self.teen_bin_found += 1;
                self.teen_bin_under18 += usize::from(age < 18.0);
            }
        }
    }

    fn exact_metrics(&self) -> Vec<Metric> {
        let all = Tally::sum(&self.by_bracket);
        if all.total == 0 {
            return Vec::new();
        }
        let mut out = vec![
            metric("exact ages labelled", Some(all.total as f64), Unit::Count),
            metric("age MAE (found)", (all.found > 0).then(|| self.abs_err / all.found as f64), Unit::Years),
            metric("bracket exact (found)", ratio(all.exact, all.found), Unit::Share),
            metric("bracket within 1 (found)", ratio(all.within1, all.found), Unit::Share),
            metric(
                "teens 13-17 right (found)",
                ratio(self.by_bracket[0].exact, self.by_bracket[0].found),
                Unit::Share,
            ),
        ];
        for (b, t) in Bracket::ALL.iter().zip(&self.by_bracket).filter(|(_, t)| t.total > 0) {
            out.push(metric(
                format!("  {} (n={}) exact", b.label(), t.total),
                ratio(t.exact, t.found),
                Unit::Share,
            ));
            out.push(metric(
                format!("  {} (n={}) within 1", b.label(), t.total),
                ratio(t.within1, t.found),
                Unit::Share,
            ));
        }
        out
    }

    fn bin_metrics(&self) -> Vec<Metric> {
        let all = Tally::sum(&self.by_bin);
        if all.total == 0 {
            return Vec::new();
        }
        let mut out = vec![
            metric("age-bin labelled (no exact age)", Some(all.total as f64), Unit::Count),
            metric("age bin exact (found)", ratio(all.exact, all.found), Unit::Share),
            metric("age bin within 1 (found)", ratio(all.within1, all.found), Unit::Share),
            metric(
                "age distance to true bin (found)",
                (all.found > 0).then(|| self.interval_err / all.found as f64),
                Unit::Years,
            ),
            metric("bracket overlaps true bin (found)", ratio(self.compatible, all.found), Unit::Share),
            metric(
                "bracket exact if ages uniform in bin (found)",
                (all.found > 0).then(|| self.expected_exact / all.found as f64),
                Unit::Share,
            ),
            metric(
                "bin with 15-year-olds: under 18 (found)",
                ratio(self.teen_bin_under18, self.teen_bin_found),
                Unit::Share,
            ),
        ];
        for (bin, t) in self.bins.iter().zip(&self.by_bin) {
            out.push(metric(
                format!("  bin {} (n={}) exact", bin.label(), t.total),
                ratio(t.exact, t.found),
                Unit::Share,
            ));
            out.push(metric(
                format!("  bin {} (n={}) within 1", bin.label(), t.total),
                ratio(t.within1, t.found),
                Unit::Share,
            ));
        }
        out
    }
}

/// Accuracy of `predictions` (by file name) against `labels`.
#[must_use]
pub fn evaluate(predictions: &BTreeMap<String, Prediction>, labels: &[Labelled]) -> Vec<Metric> {
    let bins: Vec<AgeBin> =
        labels.iter().filter_map(|l| l.bin.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut t = Tallies { by_bin: vec![Tally::default(); bins.len()], bins, ..Tallies::default() };
    for label in labels {
        if let Some(p) = predictions.get(&label.file) {
            t.add(label, p);
        }
    }
    let mut out = vec![
        metric("gender labelled", Some(t.gender_total as f64), Unit::Count),
        metric("gender accuracy (face found)", ratio(t.gender_right, t.gender_found), Unit::Share),
        metric("gender accuracy (all, miss = wrong)", ratio(t.gender_right, t.gender_total), Unit::Share),
    ];
    out.extend(t.exact_metrics());
    out.extend(t.bin_metrics());
    out
}

/// Counts of (true bracket, predicted bracket) over the faces with an exact age and a bracket.
#[must_use]
pub fn confusion(predictions: &BTreeMap<String, Prediction>, labels: &[Labelled]) -> [[usize; 7]; 7] {
    let mut out = [[0; 7]; 7];
    for label in labels {
        let predicted = predictions.get(&label.file).and_then(|p| p.bracket);
        if let (Some(truth), Some(predicted)) = (label.bracket(), predicted) {
            out[truth.index()][predicted.index()] += 1;
        }
    }
    out
}

/// Per labelled category: pictures, and how many got a face (typed person or group).
#[must_use]
pub fn faces_by_category(
    predictions: &BTreeMap<String, Prediction>,
    labels: &[Labelled],
) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for label in labels {
        let (Some(category), Some(p)) = (&label.category, predictions.get(&label.file)) else { continue };
        let entry = out.entry(category.clone()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(p.faces > 0);
    }
    out
}

/// Gender accuracy and age error of each pipeline on the labelled images both found a face in.
#[must_use]
pub fn same_images(
    ours: &BTreeMap<String, Prediction>,
    reference: &BTreeMap<String, Prediction>,
    labels: &[Labelled],
) -> (Vec<Metric>, Vec<Metric>) {
    let both: Vec<(&Labelled, &Prediction, &Prediction)> = labels
        .iter()
        .filter_map(|l| Some((l, ours.get(&l.file)?, reference.get(&l.file)?)))
        .filter(|(_, a, b)| a.found() && b.found())
        .collect();
    let side = |pick: fn(&(&Labelled, &Prediction, &Prediction)) -> Prediction| {
        let gendered: Vec<_> = both.iter().filter(|x| x.0.gender.is_some()).collect();
        let right = gendered.iter().filter(|x| pick(x).gender == x.0.gender).count();
        let errors: Vec<f64> = both
            .iter()
            .filter_map(|x| {
                let age = pick(x).age?;
                match (x.0.age, &x.0.bin) {
                    (Some(truth), _) => Some((age - f64::from(truth)).abs()),
                    (None, Some(bin)) => Some(bin.distance(age)),
                    (None, None) => None,
                }
            })
            .collect();
        vec![
            metric("same images: both found a face", Some(both.len() as f64), Unit::Count),
            metric("same images: gender accuracy", ratio(right, gendered.len()), Unit::Share),
            metric(
                "same images: age error (MAE, or distance to bin)",
                (!errors.is_empty()).then(|| errors.iter().sum::<f64>() / errors.len() as f64),
                Unit::Years,
            ),
        ]
    };
    (side(|x| *x.1), side(|x| *x.2))
}

#[cfg(test)]
#[path = "vision_eval_tests.rs"]
mod tests;
