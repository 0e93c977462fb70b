//! The networks that look at one face, each on its chip and the chip's mirror image in one
//! batch, the answers averaged:
//!
//! - Cydral's gender network (32x32 chip, [female, male]; input RGB minus the training means,
//!   divided by 256);
//! - face-api's age and gender network (112x112 chip; input RGB 0-255, the graph normalises;
//!   outputs the age in years and [male, female]);
//! - MTCNN's O-Net (48x48) and R-Net (24x24), which say whether a crop is a face (input
//!   `(RGB - 127.5) / 128`; `prob` is [not a face, face]).
//!
//! Owns: the networks' input formats and mirror averaging. Uses: an `ort` session per network.

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use super::error::PictureError;

/// Per-channel means Cydral's networks were trained with (R, G, B).
const MEANS: [f32; 3] = [122.782, 117.001, 104.298];

/// How a network wants its pixels.
#[derive(Debug, Clone, Copy)]
enum Input {
    /// (v - mean) / 256: Cydral.
    Centred,
    /// v as it is: face-api (its graph normalises).
    Raw,
    /// (v - 127.5) / 128: MTCNN.
    Symmetric,
}

impl Input {
    fn value(self, v: u8, channel: usize) -> f32 {
        let v = f32::from(v);
        match self {
            Self::Centred => (v - MEANS[channel]) / 256.0,
            Self::Raw => v,
            Self::Symmetric => (v - 127.5) / 128.0,
        }
    }
}

/// NCHW tensor of square `chips`, each as it is (`false`) or mirrored (`true`).
fn to_tensor(chips: &[(&RgbImage, bool)], input: Input) -> Vec<f32> {
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
                out[start + c * plane + at] = input.value(p[c], c);
            }
        }
    }
    out
}

/// Runs `session` once on `chips`; returns each of `outputs` (name, values per chip).
fn run_outputs(
    session: &mut Session,
    chips: &[(&RgbImage, bool)],
    input: Input,
    outputs: &[(&str, usize)],
) -> Result<Vec<Vec<f32>>, PictureError> {
    let side = chips.first().map_or(0, |c| c.0.width() as usize);
    let tensor = to_tensor(chips, input);
    let value = TensorRef::from_array_view(([chips.len(), 3, side, side], tensor.as_slice()))?;
    let results = session.run(ort::inputs!["images" => value])?;
    outputs
        .iter()
        .map(|&(name, width)| {
            let (_, values) = results[name].try_extract_tensor::<f32>()?;
            if values.len() != width * chips.len() {
                return Err(PictureError::Inference(format!(
                    "network gave {} values of {name} for {} chips, expected {width} each",
                    values.len(),
                    chips.len()
                )));
            }
            Ok(values.to_vec())
        })
        .collect()
}

/// Runs `session` on `chips`; returns output `name`, `width` values per chip.
fn run(
    session: &mut Session,
    chips: &[(&RgbImage, bool)],
    input: Input,
    name: &str,
    width: usize,
) -> Result<Vec<f32>, PictureError> {
    Ok(run_outputs(session, chips, input, &[(name, width)])?.swap_remove(0))
}

/// Column `k` of `rows` (each `width` wide), averaged.
fn mean_column(rows: &[f32], width: usize, k: usize) -> f32 {
    let n = rows.len() / width;
    rows.iter().skip(k).step_by(width).sum::<f32>() / n as f32
}

/// What face-api says of one face: age in years and p(male), averaged over the chip and its
/// mirror (or of the chip alone).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceApiAnswer {
    pub age: f32,
    pub p_male: f32,
}

/// The networks of one worker.
pub struct FaceNets {
    pub gender: Session,
    pub faceapi: Session,
    pub onet: Session,
    pub rnet: Session,
}

impl FaceNets {
    /// Cydral's p(male), averaged over the 32x32 chip and its mirror image.
    pub fn p_male(&mut self, chip32: &RgbImage) -> Result<f32, PictureError> {
        let probs =
            run(&mut self.gender, &[(chip32, false), (chip32, true)], Input::Centred, "probabilities", 2)?;
        Ok(mean_column(&probs, 2, 1))
    }

    /// Cydral's gender probabilities [female, male] of one chip (golden-value tests).
    pub fn gender_probabilities(&mut self, chip32: &RgbImage) -> Result<Vec<f32>, PictureError> {
        run(&mut self.gender, &[(chip32, false)], Input::Centred, "probabilities", 2)
    }

    /// face-api's age and p(male) of the 112x112 chip, averaged with its mirror image when
    /// `mirror` is set.
    pub fn faceapi(&mut self, chip112: &RgbImage, mirror: bool) -> Result<FaceApiAnswer, PictureError> {
        let views: &[(&RgbImage, bool)] =
            if mirror { &[(chip112, false), (chip112, true)] } else { &[(chip112, false)] };
        let out = run_outputs(&mut self.faceapi, views, Input::Raw, &[("age", 1), ("gender", 2)])?;
        Ok(FaceApiAnswer { age: mean_column(&out[0], 1, 0), p_male: mean_column(&out[1], 2, 0) })
    }

    /// O-Net's p(face) of each 48x48 crop, as given or mirrored.
    pub fn onet(&mut self, crops: &[(&RgbImage, bool)]) -> Result<Vec<f32>, PictureError> {
        let probs = run(&mut self.onet, crops, Input::Symmetric, "prob", 2)?;
        Ok(probs.chunks_exact(2).map(|p| p[1]).collect())
    }

    /// R-Net's p(face) of a 24x24 crop.
    pub fn rnet(&mut self, crop: &RgbImage) -> Result<f32, PictureError> {
        Ok(run(&mut self.rnet, &[(crop, false)], Input::Symmetric, "prob", 2)?[1])
    }
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    #[test]
    fn tensors_are_nchw_and_in_each_networks_range() {
        let chip = RgbImage::from_fn(2, 2, |x, _| if x == 0 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        let t = to_tensor(&[(&chip, false)], Input::Centred);
        assert_eq!(t.len(), 12);
        assert!((t[0] - (255.0 - 122.782) / 256.0).abs() < 1e-6);
        assert!((t[1] - (-122.782 / 256.0)).abs() < 1e-6);
        assert!((t[9] - (255.0 - 104.298) / 256.0).abs() < 1e-6);
        let mirrored = to_tensor(&[(&chip, true)], Input::Centred);
        assert!((mirrored[1] - t[0]).abs() < 1e-9 && (mirrored[8] - t[9]).abs() < 1e-9);
        assert!((to_tensor(&[(&chip, false)], Input::Raw)[0] - 255.0).abs() < 1e-9);
        let s = to_tensor(&[(&chip, false)], Input::Symmetric);
        assert!((s[0] - 127.5 / 128.0).abs() < 1e-6 && (s[1] + 127.5 / 128.0).abs() < 1e-6);
        assert!((mean_column(&[1.0, 2.0, 3.0, 4.0], 2, 1) - 3.0).abs() < 1e-9);
    }
}
