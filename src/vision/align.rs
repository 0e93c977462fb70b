//! Face chips in the age and gender networks' format: the geometry of dlib's
//! `get_face_chip_details(shape, size, padding 0.2)` reproduced from BlazeFace keypoints (both
//! eyes and the mouth, placed on a template fitted to dlib's 5-point chips), then plain bilinear
//! sampling. The gender chip (32x32) is the 2x2 box average of the age chip (64x64).
//!
//! Owns: chip geometry and sampling. Uses: `boxes` keypoints, `image` pixels.

use image::{Rgb, RgbImage};

use super::boxes::KEYPOINTS;

/// Chip padding, as in dlib (the face spans 1 / 1.4 of the chip).
const PADDING: f64 = 0.2;
/// BlazeFace keypoints 0 (eye, image left), 1 (eye, image right) and 3 (mouth) in dlib's
/// unpadded template space, fitted as the median over faces both detectors found.
const TEMPLATE: [[f64; 2]; 3] = [[0.2269, 0.2188], [0.7711, 0.2280], [0.4862, 0.8175]];
const TEMPLATE_KEYPOINTS: [usize; 3] = [0, 1, 3];
/// Side of the texture chip (the verifier's flatness cue); Cydral's gender chip is half of it.
pub const AGE_CHIP: u32 = 64;
/// Side of face-api's chip (same geometry, more pixels).
pub const FACEAPI_CHIP: u32 = 112;

/// Where a chip comes from: its centre in the picture and the similarity's `a = s cos θ`,
/// `b = s sin θ` (picture pixels per chip pixel).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipGeometry {
    pub centre: [f64; 2],
    pub a: f64,
    pub b: f64,
}

/// Least-squares similarity (no reflection) from the padded template in chip pixels to the
/// picture's keypoints.
#[must_use]
pub fn chip_geometry(keypoints: &[[f64; 2]; KEYPOINTS], size: u32) -> ChipGeometry {
    let s = f64::from(size);
    let src = TEMPLATE
        .map(|[x, y]| [(PADDING + x) / (1.0 + 2.0 * PADDING) * s, (PADDING + y) / (1.0 + 2.0 * PADDING) * s]);
    let dst = TEMPLATE_KEYPOINTS.map(|k| keypoints[k]);
    let mean = |p: &[[f64; 2]; 3]| {
        [p.iter().map(|v| v[0]).sum::<f64>() / 3.0, p.iter().map(|v| v[1]).sum::<f64>() / 3.0]
    };
    let (ms, md) = (mean(&src), mean(&dst));
    let (mut var, mut num_a, mut num_b) = (0.0, 0.0, 0.0);
    for (p, q) in src.iter().zip(&dst) {
        let (px, py) = (p[0] - ms[0], p[1] - ms[1]);
        let (qx, qy) = (q[0] - md[0], q[1] - md[1]);
        var += px * px + py * py;
        num_a += px * qx + py * qy;
        num_b += px * qy - py * qx;
    }
    let (a, b) = (num_a / var, num_b / var);
    let tx = md[0] - (a * ms[0] - b * ms[1]);
    let ty = md[1] - (b * ms[0] + a * ms[1]);
    let half = s / 2.0;
    ChipGeometry { centre: [a * half - b * half + tx, b * half + a * half + ty], a, b }
}

/// The `size` x `size` chip: chip pixel (c, r) samples the picture at
/// `centre + u (a, b) + v (-b, a)` with `u = (c / (size - 1) - 0.5) size` (and `v` from r),
/// bilinearly; samples outside the picture are black; values are truncated as dlib does.
#[must_use]
#[expect(clippy::many_single_char_names, reason = "the symbols of the formula above")]
pub fn extract_chip(rgb: &RgbImage, geometry: &ChipGeometry, size: u32) -> RgbImage {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let (wmax, hmax) = ((w - 1) as f64, (h - 1) as f64);
    let data = rgb.as_raw();
    let s = f64::from(size);
    let offsets: Vec<f64> = (0..size).map(|i| (f64::from(i) / (s - 1.0) - 0.5) * s).collect();
    let ChipGeometry { centre: [cx, cy], a, b } = *geometry;
    let mut out = vec![0_u8; (size * size * 3) as usize];
    for (row, &v) in out.chunks_exact_mut(size as usize * 3).zip(&offsets) {
        for (px, &u) in row.chunks_exact_mut(3).zip(&offsets) {
            let x = cx + u * a - v * b;
            let y = cy + u * b + v * a;
            if !(x >= 0.0 && y >= 0.0 && x <= wmax && y <= hmax) {
                continue;
            }
            let (x0, y0) = (x as usize, y as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (fx, fy) = (x - x0 as f64, y - y0 as f64);
            let at = |xx: usize, yy: usize| (yy * w + xx) * 3;
            let (p00, p01, p10, p11) = (at(x0, y0), at(x1, y0), at(x0, y1), at(x1, y1));
            for k in 0..3 {
                let top = f64::from(data[p00 + k]) * (1.0 - fx) + f64::from(data[p01 + k]) * fx;
                let bottom = f64::from(data[p10 + k]) * (1.0 - fx) + f64::from(data[p11 + k]) * fx;
                px[k] = (top * (1.0 - fy) + bottom * fy) as u8;
            }
        }
    }
    RgbImage::from_raw(size, size, out).unwrap_or_else(|| unreachable!("buffer sized size x size x 3"))
}

/// The half-size chip: each pixel the rounded mean of a 2x2 block.
#[must_use]
pub fn box_half(chip: &RgbImage) -> RgbImage {
    RgbImage::from_fn(chip.width() / 2, chip.height() / 2, |i, j| {
        let block = [(2 * i, 2 * j), (2 * i + 1, 2 * j), (2 * i, 2 * j + 1), (2 * i + 1, 2 * j + 1)];
        Rgb(std::array::from_fn(|k| {
            let sum: u16 = block.iter().map(|&(x, y)| u16::from(chip.get_pixel(x, y).0[k])).sum();
            ((sum + 2) / 4) as u8
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_the_golden_values() {
        let mut keypoints = [[0.0; 2]; KEYPOINTS];
        keypoints[0] = [40.0, 50.0];
        keypoints[1] = [80.0, 48.0];
        keypoints[3] = [61.0, 90.0];
        let g = chip_geometry(&keypoints, 64);
        assert!((g.centre[0] - 61.007_517).abs() < 1e-5, "{g:?}");
        assert!((g.centre[1] - 68.198_899).abs() < 1e-5, "{g:?}");
        assert!((g.a - 1.545_953).abs() < 1e-5 && (g.b + 0.084_078).abs() < 1e-5, "{g:?}");
    }

    #[test]
    fn identity_geometry_copies_pixels_and_blacks_out_the_outside() {
        let rgb = RgbImage::from_fn(64, 64, |x, y| Rgb([x as u8, y as u8, 7]));
        // a = 63/64 makes chip pixel c sample picture column c exactly.
        let g = ChipGeometry { centre: [31.5, 31.5], a: 63.0 / 64.0, b: 0.0 };
        let chip = extract_chip(&rgb, &g, 64);
        assert_eq!(chip.get_pixel(0, 0).0, [0, 0, 7]);
        assert_eq!(chip.get_pixel(63, 10).0, [63, 10, 7]);
        let shifted = ChipGeometry { centre: [-10.0, 31.5], ..g };
        assert_eq!(extract_chip(&rgb, &shifted, 64).get_pixel(0, 0).0, [0, 0, 0]);
    }

    #[test]
    fn box_half_rounds_block_means() {
        let chip = RgbImage::from_fn(4, 2, |x, _| Rgb([x as u8, 10, 255]));
        let half = box_half(&chip);
        assert_eq!(half.dimensions(), (2, 1));
        // (0+1+0+1+2)/4 = 1, (2+3+2+3+2)/4 = 3
        assert_eq!(half.get_pixel(0, 0).0, [1, 10, 255]);
        assert_eq!(half.get_pixel(1, 0).0, [3, 10, 255]);
    }
}
