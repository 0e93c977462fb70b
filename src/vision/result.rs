//! What the classifier says about one picture, as it is serialised (one JSON object per
//! picture): profile type, face count, the main face, gender with p(male), age with a
//! probability per bracket, and the reason for any abstention. Every result names the model
//! version that produced it.
//!
//! Owns: the result vocabulary (types, brackets, abstention reasons). Uses: serde.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::PictureError;

/// The kind of profile picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileType {
    /// One dominant face.
    Person,
    /// Two or more faces of similar size, or a crowd (the largest face is classified).
    Group,
    /// No face: logos, pets, landscapes, text, cartoons.
    NoPerson,
    /// Instagram's grey silhouette.
    DefaultAvatar,
}

impl ProfileType {
    pub const ALL: [Self; 4] = [Self::Person, Self::Group, Self::NoPerson, Self::DefaultAvatar];

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Group => "group",
            Self::NoPerson => "no_person",
            Self::DefaultAvatar => "default_avatar",
        }
    }
}

/// What a picture without a person shows (only Gemini tells these apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoPersonKind {
    Logo,
    Pet,
    Landscape,
    Text,
    Cartoon,
}

impl NoPersonKind {
    pub const ALL: [Self; 5] = [Self::Logo, Self::Pet, Self::Landscape, Self::Text, Self::Cartoon];

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Logo => "logo",
            Self::Pet => "pet",
            Self::Landscape => "landscape",
            Self::Text => "text",
            Self::Cartoon => "cartoon",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
}

impl Gender {
    pub const ALL: [Self; 2] = [Self::Female, Self::Male];

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Female => "female",
            Self::Male => "male",
        }
    }

    /// Parses "female"/"male" (also "f"/"m", any case).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "female" | "f" | "woman" => Some(Self::Female),
            "male" | "m" | "man" => Some(Self::Male),
            _ => None,
        }
    }
}

/// Age brackets; ages under 13 fold into 13-17 (Instagram's minimum age is 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Bracket {
    #[serde(rename = "13-17")]
    Teen,
    #[serde(rename = "18-24")]
    From18,
    #[serde(rename = "25-34")]
    From25,
    #[serde(rename = "35-44")]
    From35,
    #[serde(rename = "45-54")]
    From45,
    #[serde(rename = "55-64")]
    From55,
    #[serde(rename = "65+")]
    From65,
}

impl Bracket {
    pub const ALL: [Self; 7] =
        [Self::Teen, Self::From18, Self::From25, Self::From35, Self::From45, Self::From55, Self::From65];
    /// Lower bound of each bracket in years (the first also takes everything younger).
    pub const LOWER: [u32; 7] = [13, 18, 25, 35, 45, 55, 65];

    #[must_use]
    pub fn label(self) -> &'static str {
        ["13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"][self.index()]
    }

    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The bracket of an age in whole years.
    #[must_use]
    pub fn of_age(years: i64) -> Self {
        let i = Self::LOWER.iter().rposition(|&lo| years >= i64::from(lo)).unwrap_or(0);
        Self::ALL[i]
    }
}

/// Why a label is not given: an abstention is better than a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Abstain {
    DefaultAvatar,
    NoFace,
    /// The detector saw a face the verifier rejected: a pet, a drawn or rendered face, a statue.
    NotAFace,
    FaceTooSmall,
    LowConfidence,
}

impl Abstain {
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::DefaultAvatar => "default_avatar",
            Self::NoFace => "no_face",
            Self::NotAFace => "not_a_face",
            Self::FaceTooSmall => "face_too_small",
            Self::LowConfidence => "low_confidence",
        }
    }
}

/// The classified face, in pixels of the (EXIF-oriented) picture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    /// Detector score after the acceptance rule, 0..1.
    pub score: f32,
    /// x0, y0, x1, y1.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GenderEstimate {
    /// `None` when abstaining.
    pub label: Option<Gender>,
    /// The network's p(male), averaged over the chip and its mirror image.
    pub p_male: f32,
    pub abstain: Option<Abstain>,
}

/// One probability per bracket, serialised as `{"13-17": p, ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BracketProbs(pub [f32; 7]);

impl Serialize for BracketProbs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(Bracket::ALL.iter().map(|b| (b.label(), self.0[b.index()])))
    }
}

impl<'de> Deserialize<'de> for BracketProbs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<Bracket, f32>::deserialize(deserializer)?;
        let mut out = [0.0; 7];
        for (bracket, p) in map {
            out[bracket.index()] = p;
        }
        Ok(Self(out))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AgeEstimate {
    /// Calibrated point estimate in years.
    pub years: f32,
    /// The bracket of `years` rounded to whole years.
    pub bracket: Bracket,
    /// The network's age distribution carried through the calibration map, per bracket.
    pub brackets: BracketProbs,
    /// The network's expected age before calibration (for re-fitting the map).
    pub raw_expected: f32,
}

/// Everything the classifier says about one picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PictureResult {
    /// Model name and version, with any non-default label settings.
    pub model: String,
    pub profile_type: ProfileType,
    pub face_count: u32,
    /// The classified (largest) face, for person and group.
    pub face: Option<FaceBox>,
    /// Present when a face was classified.
    pub gender: Option<GenderEstimate>,
    /// Present when a face was classified.
    pub age: Option<AgeEstimate>,
    /// Why no face was classified (default avatar, no face, face too small).
    pub abstain: Option<Abstain>,
    /// For no person: what the picture shows, when the model tells (Gemini does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_person_kind: Option<NoPersonKind>,
}

impl PictureResult {
    /// The gender label when one was given.
    #[must_use]
    pub fn gender_label(&self) -> Option<Gender> {
        self.gender.and_then(|g| g.label)
    }

    /// The age bracket when an age was given.
    #[must_use]
    pub fn bracket(&self) -> Option<Bracket> {
        self.age.map(|a| a.bracket)
    }
}

/// One line of per-picture output: the file and its result or error.
#[derive(Debug, Serialize)]
pub struct FileOutcome<'a> {
    pub file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a PictureResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

#[derive(Debug, Serialize)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub message: String,
}

impl<'a> FileOutcome<'a> {
    #[must_use]
    pub fn new(file: &'a str, outcome: &'a Result<PictureResult, PictureError>) -> Self {
        match outcome {
            Ok(result) => Self { file, result: Some(result), error: None },
            Err(e) => {
                Self { file, result: None, error: Some(ErrorInfo { code: e.code(), message: e.to_string() }) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_fold_children_into_the_first() {
        assert_eq!(Bracket::of_age(5), Bracket::Teen);
        assert_eq!(Bracket::of_age(17), Bracket::Teen);
        assert_eq!(Bracket::of_age(18), Bracket::From18);
        assert_eq!(Bracket::of_age(44), Bracket::From35);
        assert_eq!(Bracket::of_age(90), Bracket::From65);
    }

    #[test]
    fn bracket_probabilities_round_trip_as_a_labelled_map() {
        let probs = BracketProbs([0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1]);
        let json = serde_json::to_string(&probs).unwrap();
        assert!(json.starts_with(r#"{"13-17":0.1,"18-24":0.2"#), "{json}");
        assert_eq!(serde_json::from_str::<BracketProbs>(&json).unwrap(), probs);
    }
}
