//! One picture through the networks, once decoded and not a default avatar: detect and type,
//! verify the faces (or give a face-less picture a second look), pick the largest face,
//! abstain when it is too small, align, run gender and age. Stage times are accumulated for
//! benchmarks.
//!
//! Owns: the order of the stages and which abstentions apply. Uses: the stage modules.

use std::ops::AddAssign;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::boxes::Detection;
use super::cascade::Faces;
use super::result::{Abstain, AgeEstimate, FaceBox, PictureResult, ProfileType};
use super::settings::LabelSettings;
use super::{PictureError, Worker, age, align, verify};

/// Time spent per stage, summed over pictures.
#[derive(Debug, Default, Clone, Copy)]
pub struct StageTimes {
    pub pictures: u32,
    /// Pictures whose face went through the networks.
    pub faces: u32,
    pub decode: Duration,
    pub avatar: Duration,
    pub detect: Duration,
    pub verify: Duration,
    pub chips: Duration,
    pub gender: Duration,
    pub age: Duration,
}

impl AddAssign for StageTimes {
    fn add_assign(&mut self, o: Self) {
        self.pictures += o.pictures;
        self.faces += o.faces;
        self.decode += o.decode;
        self.avatar += o.avatar;
        self.detect += o.detect;
        self.verify += o.verify;
        self.chips += o.chips;
        self.gender += o.gender;
        self.age += o.age;
    }
}

fn round(v: f64, decimals: i32) -> f32 {
    let scale = 10_f64.powi(decimals);
    ((v * scale).round() / scale) as f32
}

/// The result for a default avatar.
#[must_use]
pub fn default_avatar(model: &str) -> PictureResult {
    PictureResult {
        model: model.to_owned(),
        profile_type: ProfileType::DefaultAvatar,
        face_count: 0,
        face: None,
        gender: None,
        age: None,
        abstain: Some(Abstain::DefaultAvatar),
        no_person_kind: None,
    }
}

/// A face-less picture's second look: its best front detection from [`verify::RESCUE_SCORE`]
/// (at the cascade's two margins), if wide enough and it passes verification.
fn rescue(worker: &mut Worker, rgb: &RgbImage) -> Result<Option<Detection>, PictureError> {
    let mut best: Option<Detection> = None;
    for pad in [0.0, 0.25] {
        for d in worker.detectors.front.detect(rgb, pad, verify::RESCUE_SCORE, false)? {
            if d.width() >= verify::MIN_CHECKED_PX && best.is_none_or(|b| d.score > b.score) {
                best = Some(d);
            }
        }
    }
    match best {
        Some(face) if verify::check(&mut worker.nets, rgb, &face)?.passes() => Ok(Some(face)),
        _ => Ok(None),
    }
}

/// Detection, typing, verification and, for the largest face, gender and age.
pub fn classify_faces(
    worker: &mut Worker,
    rgb: &RgbImage,
    labels: &LabelSettings,
    model: &str,
    times: &mut StageTimes,
) -> Result<PictureResult, PictureError> {
    let mut clock = Instant::now();
    let mut lap = |slot: &mut Duration| {
        let now = Instant::now();
        *slot += now - clock;
        clock = now;
    };
    let mut found = worker.detectors.faces(rgb)?;
    lap(&mut times.detect);
    let mut rejected = false;
    if labels.verify_faces {
        if found.profile_type == ProfileType::NoPerson {
            if let Some(face) = rescue(worker, rgb)? {
                found = Faces { profile_type: ProfileType::Person, faces: vec![face] };
            }
        } else if verify::any_real(&mut worker.nets, rgb, &found.faces)? == Some(false) {
            found = Faces { profile_type: ProfileType::NoPerson, faces: Vec::new() };
            rejected = true;
        }
        lap(&mut times.verify);
    }
    let mut result = PictureResult {
        model: model.to_owned(),
        profile_type: found.profile_type,
        face_count: u32::try_from(found.faces.len()).unwrap_or(u32::MAX),
        face: None,
        gender: None,
        age: None,
        abstain: None,
        no_person_kind: None,
    };
    let Some(main) = found.faces.first() else {
        result.abstain = Some(if rejected { Abstain::NotAFace } else { Abstain::NoFace });
        return Ok(result);
    };
    result.face = Some(FaceBox { score: round(main.score, 4), bbox: main.bbox.map(|v| round(v, 1)) });
    if main.width() < f64::from(labels.min_face_px) {
        result.abstain = Some(Abstain::FaceTooSmall);
        return Ok(result);
    }
    times.faces += 1;
    let chip64 =
        align::extract_chip(rgb, &align::chip_geometry(&main.keypoints, align::AGE_CHIP), align::AGE_CHIP);
    let chip32 = align::box_half(&chip64);
    let chip112 = align::extract_chip(
        rgb,
        &align::chip_geometry(&main.keypoints, align::FACEAPI_CHIP),
        align::FACEAPI_CHIP,
    );
    lap(&mut times.chips);
    let cydral = worker.nets.p_male(&chip32)?;
    lap(&mut times.gender);
    let answer = worker.nets.faceapi(&chip112, labels.age_flip)?;
    result.gender = Some(labels.gender(LabelSettings::combined_p_male(cydral, answer.p_male)));
    let years = f64::from(answer.age);
    result.age = Some(AgeEstimate {
        years: round(years, 2),
        bracket: age::bracket_of(years),
        brackets: age::bracket_probabilities(years),
        raw_expected: round(years, 3),
    });
    lap(&mut times.age);
    debug_assert_eq!(result.profile_type == ProfileType::NoPerson, found.faces.is_empty());
    Ok(result)
}
