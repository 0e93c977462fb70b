//! BlazeFace, front (128x128) and back (256x256) models: letterbox the picture into the model's
//! square input, run it, decode the 896 anchors' scores, boxes and six keypoints into picture
//! pixels, and merge overlaps with weighted suppression.
//!
//! Owns: the detector's input and output formats. Uses: `boxes`, an `ort` session.

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use super::boxes::{Detection, KEYPOINTS, weighted_nms};
use super::error::PictureError;
use super::resample;

/// Anchors per model: a 16x16 grid with 2 per cell, then an 8x8 grid with 6 per cell.
pub const ANCHORS: usize = 896;
/// IoU above which detections are merged.
pub const NMS_IOU: f64 = 0.3;

/// Anchor centres in [0, 1], in the order of the model's outputs.
#[must_use]
pub fn anchors() -> Vec<[f32; 2]> {
    let mut out = Vec::with_capacity(ANCHORS);
    for (grid, per_cell) in [(16_u16, 2), (8, 6)] {
        let g = f32::from(grid);
        for y in 0..grid {
            for x in 0..grid {
                for _ in 0..per_cell {
                    out.push([(f32::from(x) + 0.5) / g, (f32::from(y) + 0.5) / g]);
                }
            }
        }
    }
    out
}

/// Where the picture sits in the model's square input.
#[derive(Debug, Clone, Copy)]
struct Letterbox {
    scale: f64,
    ox: u32,
    oy: u32,
}

/// One BlazeFace model and its input size.
pub struct BlazeFace {
    session: Session,
    size: u32,
    anchors: Vec<[f32; 2]>,
}

impl BlazeFace {
    #[must_use]
    pub fn new(session: Session, size: u32) -> Self {
        Self { session, size, anchors: anchors() }
    }

    /// The model's input for `rgb`: scaled into the square with a margin of `pad` (a fraction
    /// of the longer side) on each side, centred on black, optionally mirrored, in [-1, 1], NHWC.
    fn input(&self, rgb: &RgbImage, pad: f64, mirror: bool) -> (Vec<f32>, Letterbox) {
        let n = self.size;
        let (w, h) = (f64::from(rgb.width()), f64::from(rgb.height()));
        let side = w.max(h) * (1.0 + 2.0 * pad);
        let scale = f64::from(n) / side;
        let iw = ((w * scale).round() as u32).clamp(1, n);
        let ih = ((h * scale).round() as u32).clamp(1, n);
        let resized = if (iw, ih) == rgb.dimensions() { rgb.clone() } else { resample::resize(rgb, iw, ih) };
        let (ox, oy) = ((n - iw) / 2, (n - ih) / 2);
        let (n, iw) = (n as usize, iw as usize);
        let mut tensor = vec![-1.0_f32; n * n * 3];
        for (y, row) in resized.as_raw().chunks_exact(iw * 3).enumerate() {
            let start = ((y + oy as usize) * n + ox as usize) * 3;
            let line = &mut tensor[start..start + iw * 3];
            for (x, p) in row.chunks_exact(3).enumerate() {
                // The mirrored picture is the same resize read right to left.
                let at = if mirror { (iw - 1 - x) * 3 } else { x * 3 };
                for c in 0..3 {
                    line[at + c] = f32::from(p[c]) / 127.5 - 1.0;
                }
            }
        }
        (tensor, Letterbox { scale, ox, oy })
    }

    /// Raw scores (logits) of the 896 anchors and their 16 regressors each.
    fn run(&mut self, tensor: &[f32]) -> Result<(Vec<f32>, Vec<f32>), PictureError> {
        let n = self.size as usize;
        let input = TensorRef::from_array_view(([1_usize, n, n, 3], tensor))?;
        let outputs = self.session.run(ort::inputs!["input:0" => input])?;
        let mut scores = Vec::with_capacity(ANCHORS);
        let mut boxes = Vec::with_capacity(ANCHORS * 16);
        for name in ["Identity:0", "Identity_1:0"] {
            scores.extend_from_slice(outputs[name].try_extract_tensor::<f32>()?.1);
        }
        for name in ["Identity_2:0", "Identity_3:0"] {
            boxes.extend_from_slice(outputs[name].try_extract_tensor::<f32>()?.1);
        }
        if scores.len() != ANCHORS || boxes.len() != ANCHORS * 16 {
            return Err(PictureError::Inference(format!(
                "BlazeFace gave {} scores and {} regressors, expected {ANCHORS} and {}",
                scores.len(),
                boxes.len(),
                ANCHORS * 16
            )));
        }
        Ok((scores, boxes))
    }

    /// The raw anchor scores for `rgb` (golden-value tests).
    pub fn raw_scores(&mut self, rgb: &RgbImage, pad: f64) -> Result<Vec<f32>, PictureError> {
        let (tensor, _) = self.input(rgb, pad, false);
        Ok(self.run(&tensor)?.0)
    }

    /// Faces scoring at least `threshold`, merged, in pixels of `rgb`. With `mirror` the model
    /// sees the mirrored picture and the detections are mapped back.
    pub fn detect(
        &mut self,
        rgb: &RgbImage,
        pad: f64,
        threshold: f64,
        mirror: bool,
    ) -> Result<Vec<Detection>, PictureError> {
        Ok(weighted_nms(self.candidates(rgb, pad, threshold, mirror)?, NMS_IOU))
    }

    /// [`BlazeFace::detect`] before merging: every anchor scoring at least `threshold`.
    pub fn candidates(
        &mut self,
        rgb: &RgbImage,
        pad: f64,
        threshold: f64,
        mirror: bool,
    ) -> Result<Vec<Detection>, PictureError> {
        let (tensor, letterbox) = self.input(rgb, pad, mirror);
        let (scores, boxes) = self.run(&tensor)?;
        // sigmoid(raw) >= t  <=>  raw >= logit(t)
        let min_raw = (threshold / (1.0 - threshold)).ln();
        let n = f64::from(self.size);
        let to_picture = |v: f64, offset: u32| (v - f64::from(offset)) / letterbox.scale;
        let mut candidates = Vec::new();
        for (i, &raw) in scores.iter().enumerate() {
            if f64::from(raw) < min_raw {
                continue;
            }
            let r: Vec<f64> = boxes[i * 16..(i + 1) * 16].iter().map(|&v| f64::from(v)).collect();
            let (ax, ay) = (f64::from(self.anchors[i][0]), f64::from(self.anchors[i][1]));
            let (cx, cy) = (ax * n + r[0], ay * n + r[1]);
            let (hw, hh) = (r[2] / 2.0, r[3] / 2.0);
            let mut keypoints = [[0.0; 2]; KEYPOINTS];
            for (k, kp) in keypoints.iter_mut().enumerate() {
                *kp = [
                    to_picture(ax * n + r[4 + 2 * k], letterbox.ox),
                    to_picture(ay * n + r[5 + 2 * k], letterbox.oy),
                ];
            }
            candidates.push(Detection {
                score: 1.0 / (1.0 + (-f64::from(raw).clamp(-100.0, 100.0)).exp()),
                bbox: [
                    to_picture(cx - hw, letterbox.ox),
                    to_picture(cy - hh, letterbox.oy),
                    to_picture(cx + hw, letterbox.ox),
                    to_picture(cy + hh, letterbox.oy),
                ],
                keypoints,
            });
        }
        let width = f64::from(rgb.width());
        Ok(if mirror { candidates.into_iter().map(|d| d.unmirrored(width)).collect() } else { candidates })
    }
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "exactly representable values")]
mod tests {
    use super::*;

    #[test]
    fn there_are_896_anchors_in_output_order() {
        let a = anchors();
        assert_eq!(a.len(), ANCHORS);
        assert_eq!(a[0], [0.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2], [1.5 / 16.0, 0.5 / 16.0]);
        // Rows 512.. pair with the second output pair (the 8x8 grid).
        assert_eq!(a[512], [0.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(a[ANCHORS - 1], [7.5 / 8.0, 7.5 / 8.0]);
    }
}
