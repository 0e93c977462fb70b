//! Face detections in picture pixels and the arithmetic on them: area, intersection over union,
//! the share of a box inside the picture, and MediaPipe's weighted non-maximum suppression.
//!
//! Owns: [`Detection`] and box maths. Uses: nothing.

/// BlazeFace keypoints: eye on the image left, eye on the image right, nose tip, mouth centre,
/// ear on the image left, ear on the image right.
pub const KEYPOINTS: usize = 6;

/// One detected face, in pixels of the original picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub score: f64,
    /// x0, y0, x1, y1.
    pub bbox: [f64; 4],
    pub keypoints: [[f64; 2]; KEYPOINTS],
}

impl Detection {
    #[must_use]
    pub fn width(&self) -> f64 {
        self.bbox[2] - self.bbox[0]
    }

    #[must_use]
    pub fn area(&self) -> f64 {
        area(&self.bbox)
    }

    /// The same face seen in the mirrored picture, mapped back (`x -> width - x`).
    #[must_use]
    pub fn unmirrored(&self, picture_width: f64) -> Self {
        let [x0, y0, x1, y1] = self.bbox;
        let mut keypoints = self.keypoints;
        for k in &mut keypoints {
            k[0] = picture_width - k[0];
        }
        Self { score: self.score, bbox: [picture_width - x1, y0, picture_width - x0, y1], keypoints }
    }
}

#[must_use]
pub fn area(b: &[f64; 4]) -> f64 {
    (b[2] - b[0]) * (b[3] - b[1])
}

#[must_use]
pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let (x0, y0) = (a[0].max(b[0]), a[1].max(b[1]));
    let (x1, y1) = (a[2].min(b[2]), a[3].min(b[3]));
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Share of the box inside a `width` x `height` picture.
#[must_use]
pub fn inside_fraction(b: &[f64; 4], width: f64, height: f64) -> f64 {
    let (x0, y0, x1, y1) = (b[0].max(0.0), b[1].max(0.0), b[2].min(width), b[3].min(height));
    (x1 - x0).max(0.0) * (y1 - y0).max(0.0) / area(b).max(1e-9)
}

/// MediaPipe's WEIGHTED suppression: repeatedly take the best remaining detection; every
/// remaining one overlapping it by more than `threshold` IoU (itself included) forms its
/// cluster, whose score-weighted mean box and keypoints are output with the best score.
#[must_use]
pub fn weighted_nms(mut detections: Vec<Detection>, threshold: f64) -> Vec<Detection> {
    // Stable: equal scores keep their anchor order.
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while let Some(top) = detections.first().copied() {
        let (cluster, rest): (Vec<Detection>, Vec<Detection>) =
            detections.into_iter().partition(|d| iou(&top.bbox, &d.bbox) > threshold);
        let total: f64 = cluster.iter().map(|d| d.score).sum();
        let mut merged = Detection { score: top.score, bbox: [0.0; 4], keypoints: [[0.0; 2]; KEYPOINTS] };
        for d in &cluster {
            let w = d.score / total;
            for (m, v) in merged.bbox.iter_mut().zip(d.bbox) {
                *m += w * v;
            }
            for (m, v) in merged.keypoints.iter_mut().zip(d.keypoints) {
                m[0] += w * v[0];
                m[1] += w * v[1];
            }
        }
        // A zero-area top box overlaps nothing, itself included: keep it as it is.
        out.push(if cluster.is_empty() { top } else { merged });
        detections = if cluster.is_empty() { rest.into_iter().skip(1).collect() } else { rest };
    }
    out
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "exactly representable values")]
mod tests {
    use super::*;

    fn det(score: f64, bbox: [f64; 4]) -> Detection {
        Detection { score, bbox, keypoints: [[bbox[0], bbox[1]]; KEYPOINTS] }
    }

    #[test]
    fn iou_of_known_boxes() {
        assert!((iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 1.0, 3.0, 3.0]) - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn weighted_nms_merges_overlaps_and_keeps_the_best_score() {
        let out = weighted_nms(
            vec![
                det(0.6, [2.0, 0.0, 12.0, 10.0]),
                det(0.9, [0.0, 0.0, 10.0, 10.0]),
                det(0.7, [50.0, 50.0, 60.0, 60.0]),
            ],
            0.3,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        // (0.9 * 0 + 0.6 * 2) / 1.5 = 0.8
        assert!((out[0].bbox[0] - 0.8).abs() < 1e-12 && (out[0].bbox[2] - 10.8).abs() < 1e-12);
        assert!((out[0].keypoints[0][0] - 0.8).abs() < 1e-12);
        assert_eq!(out[1].bbox, [50.0, 50.0, 60.0, 60.0]);
    }

    #[test]
    fn weighted_nms_terminates_on_degenerate_boxes() {
        let out = weighted_nms(vec![det(0.9, [1.0, 1.0, 1.0, 1.0]), det(0.8, [1.0, 1.0, 1.0, 1.0])], 0.3);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn inside_fraction_and_mirroring() {
        assert!((inside_fraction(&[-5.0, 0.0, 5.0, 10.0], 100.0, 100.0) - 0.5).abs() < 1e-12);
        let d = det(0.9, [10.0, 5.0, 30.0, 25.0]).unmirrored(100.0);
        assert_eq!(d.bbox, [70.0, 5.0, 90.0, 25.0]);
        assert_eq!(d.keypoints[0], [90.0, 5.0]);
    }
}
