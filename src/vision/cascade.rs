//! Which faces a picture holds and what kind of profile picture it is: the front model at three
//! margins with a mirrored re-check for borderline scores, then, when no close-up face settles
//! it, the back model for small and distant faces (and for crowds, many weak faces). Outcome:
//! person, group or no person, with the faces largest first (the first is the one to classify).
//!
//! Owns: the acceptance and typing rules and their constants. Uses: `detect`, `boxes`.

use image::RgbImage;

use super::boxes::{Detection, area, inside_fraction, iou, weighted_nms};
use super::detect::{BlazeFace, NMS_IOU};
use super::error::PictureError;
use super::result::ProfileType;

/// Front model margins: primary pass, mirrored re-check, rescue pass.
const FRONT_PAD: f64 = 0.0;
const MIRROR_PAD: f64 = 0.15;
const RESCUE_PAD: f64 = 0.25;
/// Front scores in [`BAND_LOW`, `BAND_HIGH`) are re-checked on the mirrored picture.
const BAND_LOW: f64 = 0.60;
const BAND_HIGH: f64 = 0.80;
/// Accept a re-checked face when the mean of both scores reaches this (rescue pass: higher).
const ACCEPT: f64 = 0.68;
const RESCUE_ACCEPT: f64 = 0.72;
/// A detection of the mirrored pass is the same face when they overlap this much.
const MATCH_IOU: f64 = 0.3;
/// A front face at least this wide (share of the longer side) is a close-up: decided without
/// the back model.
const CLOSE_UP: f64 = 0.25;
/// Back model: candidates, the score one face must reach, and the score a lone face needs.
const BACK_CANDIDATE: f64 = 0.50;
const BACK_NEEDED: f64 = 0.70;
const BACK_LONE_PERSON: f64 = 0.92;
/// A crowd: at least this many back-model faces from a lower score, when nothing else holds.
/// Crowds of 16 or more with faces 4-6 px wide give 11-15 such faces at 150 px; no picture
/// without people in the development set gave more than 8.
const CROWD_CANDIDATE: f64 = 0.40;
const CROWD_MIN: usize = 10;
/// A second face makes a group when at least this big relative to the largest and this much
/// inside the picture.
const GROUP_AREA: f64 = 0.5;
const GROUP_INSIDE: f64 = 0.9;

/// The two detectors of one worker.
pub struct Detectors {
    pub front: BlazeFace,
    pub back: BlazeFace,
}

/// What the cascade found.
#[derive(Debug, Clone, PartialEq)]
pub struct Faces {
    pub profile_type: ProfileType,
    /// Largest first; empty for no person.
    pub faces: Vec<Detection>,
}

impl Detectors {
    /// Keeps the detections of a pass that pass the band rule: scores from `BAND_HIGH` up are
    /// accepted; lower ones are averaged with their best match in a mirrored pass at `pad`
    /// (run at most once, 0 without a match) and accepted from `threshold` up.
    fn accept(
        &mut self,
        rgb: &RgbImage,
        detections: &[Detection],
        pad: f64,
        threshold: f64,
    ) -> Result<Vec<Detection>, PictureError> {
        let mut mirrored: Option<Vec<Detection>> = None;
        let mut out = Vec::new();
        for d in detections {
            let mut score = d.score;
            if score < BAND_HIGH {
                if mirrored.is_none() {
                    mirrored = Some(self.front.detect(rgb, pad, BAND_LOW, true)?);
                }
                let best = mirrored
                    .iter()
                    .flatten()
                    .filter(|m| iou(&d.bbox, &m.bbox) >= MATCH_IOU)
                    .map(|m| m.score)
                    .fold(0.0, f64::max);
                score = f64::midpoint(score, best);
            }
            if score >= threshold {
                out.push(Detection { score, ..*d });
            }
        }
        Ok(out)
    }

    /// Accepted front-model faces.
    fn front_faces(&mut self, rgb: &RgbImage) -> Result<Vec<Detection>, PictureError> {
        let primary = self.front.detect(rgb, FRONT_PAD, BAND_LOW, false)?;
        if !primary.is_empty() {
            return self.accept(rgb, &primary, MIRROR_PAD, ACCEPT);
        }
        // Nothing at all: faces filling the frame are found with a margin around them.
        let rescue = self.front.detect(rgb, RESCUE_PAD, BAND_LOW, false)?;
        self.accept(rgb, &rescue, RESCUE_PAD, RESCUE_ACCEPT)
    }

    /// Finds the faces of `rgb` and types the picture.
    pub fn faces(&mut self, rgb: &RgbImage) -> Result<Faces, PictureError> {
        let (w, h) = (f64::from(rgb.width()), f64::from(rgb.height()));
        let mut front = self.front_faces(rgb)?;
        sort_by_area(&mut front);
        if front.first().is_some_and(|f| f.width() / w.max(h) >= CLOSE_UP) {
            let profile_type = if has_peer(&front, w, h) { ProfileType::Group } else { ProfileType::Person };
            return Ok(Faces { profile_type, faces: front });
        }
        let candidates = self.back.candidates(rgb, 0.0, CROWD_CANDIDATE, false)?;
        let strong: Vec<Detection> =
            candidates.iter().filter(|d| d.score >= BACK_CANDIDATE).copied().collect();
        let mut all = weighted_nms(strong, NMS_IOU);
        let extra: Vec<Detection> =
            front.into_iter().filter(|f| all.iter().all(|b| iou(&f.bbox, &b.bbox) < MATCH_IOU)).collect();
        all.extend(extra);
        let best = all.iter().map(|d| d.score).fold(0.0, f64::max);
        sort_by_area(&mut all);
        if best >= BACK_NEEDED && has_peer(&all, w, h) {
            return Ok(Faces { profile_type: ProfileType::Group, faces: all });
        }
        if best >= BACK_LONE_PERSON {
            return Ok(Faces { profile_type: ProfileType::Person, faces: all });
        }
        let mut crowd = weighted_nms(candidates, NMS_IOU);
        if crowd.len() >= CROWD_MIN {
            sort_by_area(&mut crowd);
            return Ok(Faces { profile_type: ProfileType::Group, faces: crowd });
        }
        Ok(Faces { profile_type: ProfileType::NoPerson, faces: Vec::new() })
    }
}

fn sort_by_area(faces: &mut [Detection]) {
    faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
}

/// Whether another face is comparable in size to the largest (`faces[0]`) and inside the picture.
fn has_peer(faces: &[Detection], w: f64, h: f64) -> bool {
    let Some((main, others)) = faces.split_first() else { return false };
    others
        .iter()
        .any(|f| area(&f.bbox) >= GROUP_AREA * main.area() && inside_fraction(&f.bbox, w, h) >= GROUP_INSIDE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(bbox: [f64; 4]) -> Detection {
        Detection { score: 0.9, bbox, keypoints: [[0.0; 2]; 6] }
    }

    #[test]
    fn a_comparable_second_face_inside_the_picture_makes_a_group() {
        let main = face([0.0, 0.0, 40.0, 40.0]);
        assert!(has_peer(&[main, face([50.0, 0.0, 80.0, 30.0])], 100.0, 100.0));
        assert!(!has_peer(&[main, face([50.0, 0.0, 70.0, 20.0])], 100.0, 100.0), "a quarter of the area");
        assert!(!has_peer(&[main, face([80.0, 0.0, 115.0, 35.0])], 100.0, 100.0), "cut by the edge");
        assert!(!has_peer(&[main], 100.0, 100.0));
    }
}
