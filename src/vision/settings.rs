//! The settings that change labels (as opposed to limits or threads) and the model version
//! string that records them: defaults give the plain name, any tuned value is appended, so a
//! result and a calibration file always say what produced them.
//!
//! Owns: label rules (the gender combination, threshold and abstention band) and the version
//! string. Uses: `config::VisionSettings`, `result`.

use std::fmt::Write as _;

use super::result::{Abstain, Gender, GenderEstimate};
use crate::config::VisionSettings;

/// Detector, verifier, networks and rules: BlazeFace front/back, MTCNN O-Net/R-Net face
/// verification (v1), face-api age with the bracket cuts `brk2`, gender from Cydral's and
/// face-api's networks combined (`g2`).
pub const MODEL_NAME: &str = "local-blazeface-mtcnn-faceapi-v2+brk2+g2";

/// The gender combination: p(male) = σ(A·logit(Cydral) + B·logit(face-api) + C), fitted by
/// logistic regression on the development set's faces (5-fold cross-validated).
const GENDER_LOGIT: [f64; 3] = [0.2804, 0.7784, -0.8440];

/// Defaults of the label settings (the shipped config.toml has the same values).
const DEFAULTS: LabelSettings = LabelSettings {
    gender_threshold: 0.5,
    gender_uncertain_low: 0.5,
    gender_uncertain_high: 0.5,
    min_face_px: 20.0,
    age_flip: true,
    verify_faces: true,
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSettings {
    pub gender_threshold: f32,
    pub gender_uncertain_low: f32,
    pub gender_uncertain_high: f32,
    pub min_face_px: f32,
    pub age_flip: bool,
    pub verify_faces: bool,
}

impl From<&VisionSettings> for LabelSettings {
    fn from(s: &VisionSettings) -> Self {
        Self {
            gender_threshold: s.gender_threshold,
            gender_uncertain_low: s.gender_uncertain_low,
            gender_uncertain_high: s.gender_uncertain_high,
            min_face_px: s.min_face_px,
            age_flip: s.age_flip,
            verify_faces: s.verify_faces,
        }
    }
}

impl Default for LabelSettings {
    fn default() -> Self {
        DEFAULTS
    }
}

impl LabelSettings {
    /// [`MODEL_NAME`] plus every setting that differs from its default.
    #[must_use]
    pub fn model_version(&self) -> String {
        let mut version = MODEL_NAME.to_owned();
        if self.gender_threshold != DEFAULTS.gender_threshold {
            let _ = write!(version, ";gender_threshold={}", self.gender_threshold);
        }
        if (self.gender_uncertain_low, self.gender_uncertain_high)
            != (DEFAULTS.gender_uncertain_low, DEFAULTS.gender_uncertain_high)
        {
            let _ = write!(
                version,
                ";gender_uncertain={}-{}",
                self.gender_uncertain_low, self.gender_uncertain_high
            );
        }
        if self.min_face_px != DEFAULTS.min_face_px {
            let _ = write!(version, ";min_face_px={}", self.min_face_px);
        }
        if self.age_flip != DEFAULTS.age_flip {
            let _ = write!(version, ";age_flip={}", self.age_flip);
        }
        if self.verify_faces != DEFAULTS.verify_faces {
            let _ = write!(version, ";verify_faces={}", self.verify_faces);
        }
        version
    }

    /// p(male) from Cydral's and face-api's p(male) (`GENDER_LOGIT`).
    #[must_use]
    pub fn combined_p_male(cydral: f32, faceapi: f32) -> f32 {
        let logit = |p: f32| super::verify::logit(f64::from(p));
        let [a, b, c] = GENDER_LOGIT;
        let z = a * logit(cydral) + b * logit(faceapi) + c;
        (1.0 / (1.0 + (-z).exp())) as f32
    }

    /// The gender call for `p_male` (the combined one): male above the threshold, and no label
    /// inside the uncertain band (empty by default).
    #[must_use]
    pub fn gender(&self, p_male: f32) -> GenderEstimate {
        let uncertain = p_male > self.gender_uncertain_low && p_male <= self.gender_uncertain_high;
        let label = if p_male > self.gender_threshold { Gender::Male } else { Gender::Female };
        GenderEstimate {
            label: (!uncertain).then_some(label),
            p_male: (p_male * 10_000.0).round() / 10_000.0,
            abstain: uncertain.then_some(Abstain::LowConfidence),
        }
    }

    /// The label the threshold alone gives, abstention ignored (benchmarks report both).
    #[must_use]
    pub fn forced_gender(&self, p_male: f32) -> Gender {
        if p_male > self.gender_threshold { Gender::Male } else { Gender::Female }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn shipped_config_gives_the_plain_model_name() {
        let config = Config::load_from(None, &[]).unwrap();
        assert_eq!(LabelSettings::from(&config.settings.vision).model_version(), MODEL_NAME);
    }

    #[test]
    fn tuned_settings_are_recorded_in_the_version() {
        let tuned = LabelSettings { gender_threshold: 0.65, age_flip: false, ..LabelSettings::default() };
        assert_eq!(tuned.model_version(), format!("{MODEL_NAME};gender_threshold=0.65;age_flip=false"));
    }

    #[test]
    fn gender_abstains_inside_the_band_only() {
        let s = LabelSettings {
            gender_threshold: 0.7,
            gender_uncertain_low: 0.55,
            gender_uncertain_high: 0.82,
            ..LabelSettings::default()
        };
        assert_eq!(s.gender(0.2).label, Some(Gender::Female));
        assert_eq!(s.gender(0.55).label, Some(Gender::Female), "the band is open below");
        assert_eq!(s.gender(0.6).abstain, Some(Abstain::LowConfidence));
        assert_eq!(s.gender(0.6).label, None);
        assert_eq!(s.gender(0.82).label, None, "the band is closed above");
        assert_eq!(s.gender(0.9).label, Some(Gender::Male));
        assert_eq!(s.forced_gender(0.71), Gender::Male);
        let default = LabelSettings::default();
        assert_eq!(default.gender(0.5001).label, Some(Gender::Male), "no band by default");
        assert_eq!(default.gender(0.5).label, Some(Gender::Female));
    }

    #[test]
    fn the_networks_are_combined_on_the_logit_scale() {
        // Both sure of male: male; both unsure: the intercept leans female.
        assert!(LabelSettings::combined_p_male(0.95, 0.95) > 0.9);
        assert!(LabelSettings::combined_p_male(0.5, 0.5) < 0.5);
        assert!((LabelSettings::combined_p_male(0.5, 0.5) - 0.3007).abs() < 1e-3);
    }
}
