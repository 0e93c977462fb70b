//! Cydral's age (64x64 chip, 81 classes) and gender (32x32 chip, [female, male]) networks:
//! chips to NCHW tensors (RGB minus the training means, divided by 256), inference on the chip
//! and its mirror image in one batch of two, probabilities averaged.
//!
//! Owns: the networks' input format and flip averaging. Uses: an `ort` session per network.

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use super::age::AGE_CLASSES;
use super::error::PictureError;

/// Per-channel means the networks were trained with (R, G, B).
const MEANS: [f32; 3] = [122.782, 117.001, 104.298];

/// NCHW tensor of square `chips`, each as it is (`false`) or mirrored (`true`).
fn to_tensor(chips: &[(&RgbImage, bool)]) -> Vec<f32> {
    let mut out = Vec::new();
    for &(chip, mirror) in chips {
        let side = chip.width() as usize;
        let plane = side * side;
        let start = out.len();
        out.resize(start + 3 * plane, 0.0);
        for (i, p) in chip.as_raw().chunks_exact(3).enumerate() {
            let (row, col) = (i / side, i % side);
            let at = row * side + if mirror { side - 1 - col } else { col };
            for c in 0..3 {
                out[start + c * plane + at] = (f32::from(p[c]) - MEANS[c]) / 256.0;
            }
        }
    }
    out
}

/// Runs `session` on `chips` and averages the rows of its `probabilities` output.
fn mean_probabilities(
    session: &mut Session,
    chips: &[(&RgbImage, bool)],
    classes: usize,
) -> Result<Vec<f32>, PictureError> {
    let side = chips.first().map_or(0, |c| c.0.width() as usize);
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
        Ok(mean_probabilities(&mut self.gender, &[(chip32, false), (chip32, true)], 2)?[1])
    }

    /// Gender probabilities [female, male] of one chip (golden-value tests).
    pub fn gender_probabilities(&mut self, chip32: &RgbImage) -> Result<Vec<f32>, PictureError> {
        mean_probabilities(&mut self.gender, &[(chip32, false)], 2)
    }

    /// The 81 age-class probabilities of the 64x64 chip, averaged with its mirror image when
    /// `flip` is set.
    pub fn age_probabilities(&mut self, chip64: &RgbImage, flip: bool) -> Result<Vec<f32>, PictureError> {
        let views: &[(&RgbImage, bool)] =
            if flip { &[(chip64, false), (chip64, true)] } else { &[(chip64, false)] };
        mean_probabilities(&mut self.age, views, AGE_CLASSES)
    }
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    #[test]
    fn tensors_are_nchw_and_normalised() {
        let chip = RgbImage::from_fn(2, 2, |x, _| if x == 0 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        let t = to_tensor(&[(&chip, false)]);
        assert_eq!(t.len(), 12);
        assert!((t[0] - (255.0 - 122.782) / 256.0).abs() < 1e-6);
        assert!((t[1] - (-122.782 / 256.0)).abs() < 1e-6);
        assert!((t[9] - (255.0 - 104.298) / 256.0).abs() < 1e-6);
        let mirrored = to_tensor(&[(&chip, true)]);
        assert!((mirrored[1] - t[0]).abs() < 1e-9 && (mirrored[8] - t[9]).abs() < 1e-9);
    }
}
