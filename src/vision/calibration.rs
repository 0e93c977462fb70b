//! Calibration files: how often the classifier gives each answer for each true class, measured
//! on a labelled set — counts, never pictures. The audience estimate uses them to correct
//! shares. Format (JSON, `format: 1`): the model version the counts belong to, a description
//! of the data set, and up to three confusion matrices (rows = true class, columns =
//! predicted outcome):
//!
//! - `gender`: true female/male × predicted female, male, `low_confidence` (abstained);
//! - `age_bracket`: true bracket × predicted bracket (needs exact ages);
//! - `age_bin`: true annotated age bin × predicted bracket (10-year bins such as FairFace's
//!   cannot be mapped to brackets, but shares over the bins themselves can be corrected).
//!
//! Only pictures typed person with a classified face count, as in the estimate.
//!
//! Owns: the calibration format and measuring it. Uses: `labels`, `result`.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::labels::{AgeBin, Labelled};
use super::result::{Bracket, Gender, PictureResult, ProfileType};

pub const FORMAT: u32 = 1;
/// The calibration shipped with the binary (measured on the development set).
pub const SHIPPED: &str = include_str!("calibration/local-v2.json");

/// Predicted gender outcomes, in column order.
pub const GENDER_OUTCOMES: [&str; 3] = ["female", "male", "low_confidence"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confusion {
    pub true_classes: Vec<String>,
    pub predicted: Vec<String>,
    /// `counts[t][p]`: pictures of true class t given outcome p.
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    fn new(true_classes: Vec<String>, predicted: Vec<String>) -> Self {
        let counts = vec![vec![0; predicted.len()]; true_classes.len()];
        Self { true_classes, predicted, counts }
    }

    /// Counts as floats, for the statistics.
    #[must_use]
    pub fn counts_f64(&self) -> Vec<Vec<f64>> {
        self.counts.iter().map(|r| r.iter().map(|&v| v as f64).collect()).collect()
    }

    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    fn check(&self, name: &str, predicted: &[&str]) -> Result<(), CalibrationError> {
        let bad = |problem: String| CalibrationError::Invalid { matrix: name.to_owned(), problem };
        if self.predicted != predicted {
            return Err(bad(format!("predicted outcomes must be {predicted:?}")));
        }
        if self.counts.len() != self.true_classes.len()
            || self.counts.iter().any(|r| r.len() != predicted.len())
        {
            return Err(bad("counts must have one row per true class and one column per outcome".into()));
        }
        if let Some(t) = self.counts.iter().position(|r| r.iter().sum::<u64>() == 0) {
            return Err(bad(format!("true class {} has no pictures", self.true_classes[t])));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    pub description: String,
    /// Labelled pictures used (after the age filter), found or not.
    pub pictures: usize,
    /// Of those, typed person with a classified face (the ones counted).
    pub counted: usize,
    /// Longer side the pictures were resized to before classifying, if any.
    pub size_px: Option<u32>,
    pub min_age: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub format: u32,
    pub model: String,
    pub created: String,
    pub dataset: Dataset,
    pub gender: Option<Confusion>,
    pub age_bracket: Option<Confusion>,
    pub age_bin: Option<Confusion>,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("cannot read calibration file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("calibration file {path} is not valid: {source}")]
    Parse { path: String, source: serde_json::Error },
    #[error("calibration file has format {0}; this binary reads format {FORMAT}")]
    Format(u32),
    #[error("calibration matrix `{matrix}`: {problem}")]
    Invalid { matrix: String, problem: String },
}

fn bracket_labels() -> Vec<String> {
    Bracket::ALL.iter().map(|b| b.label().to_owned()).collect()
}

impl Calibration {
    /// Parses and checks calibration JSON.
    pub fn parse(text: &str, path: &str) -> Result<Self, CalibrationError> {
        let c: Self = serde_json::from_str(text)
            .map_err(|source| CalibrationError::Parse { path: path.to_owned(), source })?;
        if c.format != FORMAT {
            return Err(CalibrationError::Format(c.format));
        }
        let brackets = bracket_labels();
        let brackets: Vec<&str> = brackets.iter().map(String::as_str).collect();
        if let Some(m) = &c.gender {
            m.check("gender", &GENDER_OUTCOMES)?;
            if m.true_classes != ["female", "male"] {
                return Err(CalibrationError::Invalid {
                    matrix: "gender".into(),
                    problem: "true classes must be [\"female\", \"male\"]".into(),
                });
            }
        }
        for (name, m) in [("age_bracket", &c.age_bracket), ("age_bin", &c.age_bin)] {
            if let Some(m) = m {
                m.check(name, &brackets)?;
            }
        }
        Ok(c)
    }

    pub fn load(path: &Path) -> Result<Self, CalibrationError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| CalibrationError::Read { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    /// The calibration compiled into the binary.
    pub fn shipped() -> Result<Self, CalibrationError> {
        Self::parse(SHIPPED, "the built-in calibration (src/vision/calibration/local-v2.json)")
    }

    /// Counts the classifier's answers against the labels. `results` pairs each labelled
    /// picture with its result (`None` when it could not be classified).
    #[must_use]
    pub fn measure(model: &str, results: &[(Labelled, Option<PictureResult>)], mut dataset: Dataset) -> Self {
        let mut gender = Confusion::new(
            Gender::ALL.iter().map(|g| g.label().to_owned()).collect(),
            GENDER_OUTCOMES.map(str::to_owned).to_vec(),
        );
        let mut age_bracket = Confusion::new(bracket_labels(), bracket_labels());
        let bins: BTreeSet<AgeBin> = results.iter().filter_map(|(l, _)| l.bin.clone()).collect();
        let bins: Vec<AgeBin> = bins.into_iter().collect();
        let mut age_bin = Confusion::new(bins.iter().map(AgeBin::label).collect(), bracket_labels());
        let mut counted = 0;
        for (label, result) in results {
            let Some(r) = result.as_ref().filter(|r| r.profile_type == ProfileType::Person) else { continue };
            let (Some(g), Some(a)) = (r.gender, r.age) else { continue };
            counted += 1;
            if let Some(truth) = label.gender {
                // The third column counts abstentions (low confidence).
                let column = match g.label {
                    Some(Gender::Female) => 0,
                    Some(Gender::Male) => 1,
                    None => 2,
                };
                gender.counts[truth as usize][column] += 1;
            }
            if let Some(truth) = label.bracket() {
                age_bracket.counts[truth.index()][a.bracket.index()] += 1;
            }
            if let Some(i) = label.bin.as_ref().and_then(|b| bins.iter().position(|x| x == b)) {
                age_bin.counts[i][a.bracket.index()] += 1;
            }
        }
        dataset.counted = counted;
        let mut notes = Vec::new();
        // Shares over one gender only would be meaningless: both rows or no matrix.
        let gender = gender.counts.iter().all(|r| r.iter().sum::<u64>() > 0).then_some(gender);
        if gender.is_none() {
            notes.push("gender: both genders need calibration pictures; no gender matrix".to_owned());
        }
        let age_bracket = prune("age_bracket", age_bracket, &mut notes);
        if age_bracket.is_none() {
            notes.push("no exact ages: bracket shares cannot be corrected with this calibration".to_owned());
        }
        let age_bin = prune("age_bin", age_bin, &mut notes);
        Self {
            format: FORMAT,
            model: model.to_owned(),
            created: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            dataset,
            gender,
            age_bracket,
            age_bin,
            notes,
        }
    }
}

/// Drops true classes without pictures (noting them); `None` when none is left.
fn prune(name: &str, mut m: Confusion, notes: &mut Vec<String>) -> Option<Confusion> {
    let empty: Vec<usize> = (0..m.counts.len()).filter(|&t| m.counts[t].iter().sum::<u64>() == 0).collect();
    if empty.len() == m.counts.len() {
        return None;
    }
    if !empty.is_empty() {
        let names: Vec<&str> = empty.iter().map(|&t| m.true_classes[t].as_str()).collect();
        notes.push(format!(
            "{name}: no calibration pictures for {}; those classes are not corrected",
            names.join(", ")
        ));
    }
    for &t in empty.iter().rev() {
        m.counts.remove(t);
        m.true_classes.remove(t);
    }
    Some(m)
}

#[cfg(test)]
#[path = "calibration_tests.rs"]
mod tests;
