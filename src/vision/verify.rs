//! Is a detected face a person's face? BlazeFace also fires on pets, drawn and anime faces and
//! statues. Each face it keeps is checked by a second, independent detector (MTCNN's O-Net on
//! the face's square crop, its mirror and a wider crop, and R-Net) and by the texture of the
//! aligned chip (drawings are flat), and a picture whose faces all fail is typed `no_person`.
//! A picture the cascade found no face in gets one more chance: its best weak front detection,
//! if it passes the same checks, is a person.
//!
//! The two thresholds were set on real faces only (the 0.5 % quantile over the development
//! set's face pictures), never on pictures without a face, so they say "unlike a real face",
//! not "like this set's pets".
//!
//! Owns: the verification rule and its constants. Uses: `nets`, `align`, `resample`, `boxes`.

use image::RgbImage;

use super::align;
use super::boxes::Detection;
use super::error::PictureError;
use super::nets::FaceNets;
use super::resample::{Filter, resize_with};

/// Faces narrower than this are not checked (they get no labels either).
pub const MIN_CHECKED_PX: f64 = 20.0;
/// At most this many of the largest faces are checked; one passing is enough.
const MAX_CHECKED: usize = 5;
/// A crowd (this many faces or more) is not checked: its faces are many, small and weak by
/// design, and the cascade's crowd rule already asks for many of them.
const CROWD: usize = 10;
/// The sum of the detectors' logits a real face reaches (see [`Check::sum`]).
const SUM_THRESHOLD: f64 = 7.667;
/// The share of flat pixels a real face's chip stays under (see [`Check::flat`]).
const FLAT_THRESHOLD: f64 = 0.1852;
/// Weakest front detection a face-less picture's rescue considers.
pub const RESCUE_SCORE: f64 = 0.3;

/// The evidence on one face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    /// logit(detector score) + mean logit of O-Net on the square crop, its mirror and the crop
    /// 1.1 times wider + logit of R-Net on the square crop.
    pub sum: f64,
    /// Share of pixels of the central 38x38 of the 64x64 aligned chip whose luma gradient
    /// (|dx| + |dy|) is under 2 grey levels: drawings and renders are flat.
    pub flat: f64,
}

impl Check {
    #[must_use]
    pub fn passes(&self) -> bool {
        self.sum >= SUM_THRESHOLD && self.flat <= FLAT_THRESHOLD
    }
}

/// log(p / (1 - p)), with p kept inside (1e-7, 1 - 1e-7).
pub(super) fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-7, 1.0 - 1e-7);
    (p / (1.0 - p)).ln()
}

/// The square around a face's box (side `max(w, h) * scale`, rounded to whole pixels, black
/// outside the picture), resized to `size` by area averaging.
#[must_use]
pub fn square_crop(rgb: &RgbImage, bbox: &[f64; 4], scale: f64, size: u32) -> RgbImage {
    let [x0, y0, x1, y1] = *bbox;
    let (cx, cy) = (f64::midpoint(x0, x1), f64::midpoint(y0, y1));
    let extent = (x1 - x0).max(y1 - y0) * scale;
    let (bx, by) = ((cx - extent / 2.0).round() as i64, (cy - extent / 2.0).round() as i64);
    let n = (extent.round() as i64).max(1);
    let (w, h) = (i64::from(rgb.width()), i64::from(rgb.height()));
    let side_px = u32::try_from(n).unwrap_or(1);
    let canvas = RgbImage::from_fn(side_px, side_px, |x, y| {
        let (px, py) = (bx + i64::from(x), by + i64::from(y));
        if (0..w).contains(&px) && (0..h).contains(&py) {
            *rgb.get_pixel(px as u32, py as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    });
    resize_with(&canvas, size, size, Filter::Box)
}

/// [`Check::flat`] of a 64x64 aligned chip.
#[must_use]
pub fn flatness(chip64: &RgbImage) -> f64 {
    const LO: u32 = 13;
    const SIDE: u32 = 38;
    let luma = |x: u32, y: u32| {
        let p = chip64.get_pixel(LO + x, LO + y).0;
        0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
    };
    let mut flat = 0_u32;
    for y in 0..SIDE - 1 {
        for x in 0..SIDE - 1 {
            let here = luma(x, y);
            let gradient = (luma(x + 1, y) - here).abs() + (luma(x, y + 1) - here).abs();
            flat += u32::from(gradient < 2.0);
        }
    }
    f64::from(flat) / f64::from((SIDE - 1) * (SIDE - 1))
}

/// The evidence on `face` of `rgb`.
pub fn check(nets: &mut FaceNets, rgb: &RgbImage, face: &Detection) -> Result<Check, PictureError> {
    let c48 = square_crop(rgb, &face.bbox, 1.0, 48);
    let wider = square_crop(rgb, &face.bbox, 1.1, 48);
    let onet = nets.onet(&[(&c48, false), (&c48, true), (&wider, false)])?;
    let rnet = nets.rnet(&square_crop(rgb, &face.bbox, 1.0, 24))?;
    let onet = onet.iter().map(|p| logit(f64::from(*p))).sum::<f64>() / onet.len() as f64;
    let chip =
        align::extract_chip(rgb, &align::chip_geometry(&face.keypoints, align::AGE_CHIP), align::AGE_CHIP);
    Ok(Check { sum: logit(face.score) + onet + logit(f64::from(rnet)), flat: flatness(&chip) })
}

/// Whether the faces the cascade kept include a person's: `None` when they are not checked (a
/// crowd, or none wide enough), else whether one of the largest passes.
pub fn any_real(
    nets: &mut FaceNets,
    rgb: &RgbImage,
    faces: &[Detection],
) -> Result<Option<bool>, PictureError> {
    if faces.len() >= CROWD {
        return Ok(None);
    }
    let checked: Vec<&Detection> =
        faces.iter().take(MAX_CHECKED).filter(|f| f.width() >= MIN_CHECKED_PX).collect();
    if checked.is_empty() {
        return Ok(None);
    }
    for face in checked {
        if check(nets, rgb, face)?.passes() {
            return Ok(Some(true));
        }
    }
    Ok(Some(false))
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    #[test]
    fn a_flat_chip_is_flat_and_a_textured_one_is_not() {
        let flat = RgbImage::from_pixel(64, 64, Rgb([200, 170, 150]));
        assert!((flatness(&flat) - 1.0).abs() < 1e-12);
        let noisy = RgbImage::from_fn(64, 64, |x, y| Rgb([((x * 37 + y * 91) % 256) as u8, 100, 90]));
        assert!(flatness(&noisy) < 0.05, "{}", flatness(&noisy));
    }

    #[test]
    fn square_crops_are_centred_and_black_outside() {
        let rgb = RgbImage::from_fn(100, 60, |x, _| if x < 50 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        // A 20x40 box at the left edge: the square is 40 wide, half of it outside the picture.
        let crop = square_crop(&rgb, &[0.0, 10.0, 20.0, 50.0], 1.0, 4);
        assert_eq!(crop.dimensions(), (4, 4));
        assert_eq!(crop.get_pixel(0, 1).0, [0, 0, 0], "outside the picture");
        assert_eq!(crop.get_pixel(3, 1).0, [255, 0, 0]);
        assert!((logit(0.5)).abs() < 1e-12 && logit(1.0) > 15.0);
    }
}
