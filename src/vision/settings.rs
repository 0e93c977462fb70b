//! The settings that change labels (as opposed to limits or threads) and the model version
//! string that records them: defaults give the plain name, any tuned value is appended, so a
//! result and a calibration file always say what produced them.
//!
//! Owns: label rules (gender threshold and abstention band) and the version string.
//! Uses: `config::VisionSettings`, `result`.

use std::fmt::Write as _;

use super::result::{Abstain, Gender, GenderEstimate};
use crate::config::VisionSettings;

/// Detector, networks and age map: BlazeFace front/back, Cydral age/gender v1, age map cal1.
pub const MODEL_NAME: &str = "local-blazeface-cydral-v1+cal1";

/// Defaults of the label settings (the shipped config.toml has the same values).
const DEFAULTS: LabelSettings = LabelSettings {
    gender_threshold: 0.70,
    gender_uncertain_low: 0.55,
    gender_uncertain_high: 0.82,
    min_face_px: 20.0,
    age_flip: false,
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSettings {
    pub gender_threshold: f32,
    pub gender_uncertain_low: f32,
    pub gender_uncertain_high: f32,
    pub min_face_px: f32,
    pub age_flip: bool,
}

impl From<&VisionSettings> for LabelSettings {
    fn from(s: &VisionSettings) -> Self {
        Self {
            gender_threshold: s.gender_threshold,
            gender_uncertain_low: s.gender_uncertain_low,
            gender_uncertain_high: s.gender_uncertain_high,
            min_face_px: s.min_face_px,
            age_flip: s.age_flip,
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
        version
    }

    /// The gender call for `p_male`: male above the threshold, and no label inside the
    /// uncertain band.
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
        let tuned = LabelSettings { gender_threshold: 0.65, age_flip: true, ..LabelSettings::default() };
        assert_eq!(tuned.model_version(), format!("{MODEL_NAME};gender_threshold=0.65;age_flip=true"));
    }

    #[test]
    fn gender_abstains_inside_the_band_only() {
        let s = LabelSettings::default();
        assert_eq!(s.gender(0.2).label, Some(Gender::Female));
        assert_eq!(s.gender(0.55).label, Some(Gender::Female), "the band is open below");
        assert_eq!(s.gender(0.6).abstain, Some(Abstain::LowConfidence));
        assert_eq!(s.gender(0.6).label, None);
        assert_eq!(s.gender(0.82).label, None, "the band is closed above");
        assert_eq!(s.gender(0.9).label, Some(Gender::Male));
        assert_eq!(s.forced_gender(0.71), Gender::Male);
    }
}
