//! Cydral's age (64x64 chip, 81 classes) and gender (32x32 chip, [female, male]) networks:
//! chips to NCHW tensors (RGB minus the training means, divided by 256), inference on the chip
//! and its mirror image in one batch of two, probabilities averaged.
//!
//! Owns: the networks' input format and flip averaging. Uses: an `ort` session per network.

use image::RgbImage;
use image::imageops;
use ort::session::Session;
use ort::value::TensorRef;

use super::age::AGE_CLASSES;
use super::error::PictureError;

/// Per-channel means the networks were trained with (R, G, B).
const MEANS: [f32; 3] = [122.782, 117.001, 104.298];

/// NCHW tensor of `chips` (all the same size).
fn to_tensor(chips: &[&RgbImage]) -> Vec<f32> {
    let mut out = Vec::new();
    for chip in chips {
        let plane = (chip.width() * chip.height()) as usize;
        let start = out.len();
        out.resize(start + 3 * plane, 0.0);
        for (i, p) in chip.pixels().enumerate() {
            for c in 0..3 {
                out[start + c * plane + i] = (f32::from(p.0[c]) - MEANS[c]) / 256.0;
            }
        }
    }
    out
}

/// Runs `session` on `chips` and averages the rows of its `probabilities` output.
fn mean_probabilities(
    session: &mut Session,
    chips: &[&RgbImage],
    classes: usize,
) -> Result<Vec<f32>, PictureError> {
    let side = chips.first().map_or(0, |c| c.width() as usize);
    let tensor = to_tensor(chips);
    let input = TensorRef::from_array_view(([chips.len(), 3, side, side], tensor.as_slice()))?;
    let outputs = session.run(ort::inputs!["images" => input])?;
    let (_, probs) = outputs["probabilities"].try_extract_tensor::<f32>()?;
    if probs.len() != classes * chips.len() {
        return Err(PictureError::Inference(format!(
            "network gave {} probabilities for {} chips, expected {classes} each",
            probs.len(),
            chips.len()
        )));
    }
    let n = chips.len() as f32;
    Ok((0..classes).map(|k| probs.iter().skip(k).step_by(classes).sum::<f32>() / n).collect())
}

/// The two networks of one worker.
pub struct AgeGenderNets {
    pub age: Session,
    pub gender: Session,
}

impl AgeGenderNets {
    /// p(male), averaged over the 32x32 chip and its mirror image.
    pub fn p_male(&mut self, chip32: &RgbImage) -> Result<f32, PictureError> {
        let mirrored = imageops::flip_horizontal(chip32);
        Ok(mean_probabilities(&mut self.gender, &[chip32, &mirrored], 2)?[1])
    }

    /// Gender probabilities [female, male] of one chip (golden-value tests).
    pub fn gender_probabilities(&mut self, chip32: &RgbImage) -> Result<Vec<f32>, PictureError> {
        mean_probabilities(&mut self.gender, &[chip32], 2)
    }

    /// The 81 age-class probabilities of the 64x64 chip, averaged with its mirror image when
    /// `flip` is set.
    pub fn age_probabilities(&mut self, chip64: &RgbImage, flip: bool) -> Result<Vec<f32>, PictureError> {
        if flip {
            let mirrored = imageops::flip_horizontal(chip64);
            mean_probabilities(&mut self.age, &[chip64, &mirrored], AGE_CLASSES)
        } else {
            mean_probabilities(&mut self.age, &[chip64], AGE_CLASSES)
        }
    }
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    #[test]
    fn tensors_are_nchw_and_normalised() {
        let chip = RgbImage::from_fn(2, 1, |x, _| if x == 0 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        let t = to_tensor(&[&chip]);
        assert_eq!(t.len(), 6);
        assert!((t[0] - (255.0 - 122.782) / 256.0).abs() < 1e-6);
        assert!((t[1] - (-122.782 / 256.0)).abs() < 1e-6);
        assert!((t[5] - (255.0 - 104.298) / 256.0).abs() < 1e-6);
    }
}
