//! Antialiased resizing of RGB pictures as Pillow does it: `BILINEAR` (a triangle filter) for the
//! detectors' input, `BOX` (area averaging) for the face verifier's crops; each filter widened
//! by the scale factor when shrinking, a horizontal then a vertical pass, each rounded to 8
//! bits. A specialised loop is several times faster here than the general-purpose resampler.
//!
//! Owns: the resize kernel. Uses: `image` buffers.

use image::RgbImage;

/// The resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Pillow's `BILINEAR`: a triangle of support 1.
    Bilinear,
    /// Pillow's `BOX`: a box of support 0.5 (area averaging when shrinking).
    Box,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Self::Bilinear => 1.0,
            Self::Box => 0.5,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Self::Bilinear => (1.0 - x.abs()).max(0.0),
            Self::Box => f64::from(u8::from((-0.5..0.5).contains(&x))),
        }
    }
}

/// For each output position: the first input index and the normalised weights from there.
fn taps(input: u32, output: u32, filter: Filter) -> Vec<(usize, Vec<f32>)> {
    let scale = f64::from(input) / f64::from(output);
    let widen = scale.max(1.0);
    let support = filter.support() * widen;
    (0..output)
        .map(|o| {
            let centre = (f64::from(o) + 0.5) * scale;
            let first = ((centre - support + 0.5).floor() as i64).max(0) as usize;
            let end = ((centre + support + 0.5).floor() as i64).min(i64::from(input)) as usize;
            let mut weights: Vec<f64> =
                (first..end.max(first)).map(|i| filter.weight((i as f64 - centre + 0.5) / widen)).collect();
            let total: f64 = weights.iter().sum();
            if total > 0.0 {
                for w in &mut weights {
                    *w /= total;
                }
            }
            (first, weights.into_iter().map(|w| w as f32).collect())
        })
        .collect()
}

fn to_u8(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// `src` resized to `width` x `height` with Pillow's `BILINEAR`.
#[must_use]
pub fn resize(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize_with(src, width, height, Filter::Bilinear)
}

/// `src` resized to `width` x `height` with `filter`.
#[must_use]
pub fn resize_with(src: &RgbImage, width: u32, height: u32, filter: Filter) -> RgbImage {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let (w, h) = (width as usize, height as usize);
    let data = src.as_raw();
    // Horizontal pass: sh rows of w pixels.
    let horizontal: Vec<u8> = if w == sw {
        data.clone()
    } else {
        let taps = taps(src.width(), width, filter);
        let mut out = vec![0_u8; sh * w * 3];
        for (row_in, row_out) in data.chunks_exact(sw * 3).zip(out.chunks_exact_mut(w * 3)) {
            for ((first, weights), px) in taps.iter().zip(row_out.chunks_exact_mut(3)) {
                let mut acc = [0.0_f32; 3];
                for (k, &wt) in weights.iter().enumerate() {
                    let p = &row_in[(first + k) * 3..(first + k) * 3 + 3];
                    acc[0] += wt * f32::from(p[0]);
                    acc[1] += wt * f32::from(p[1]);
                    acc[2] += wt * f32::from(p[2]);
                }
                px.copy_from_slice(&acc.map(to_u8));
            }
        }
        out
    };
    // Vertical pass: h rows.
    let out = if h == sh {
        horizontal
    } else {
        let stride = w * 3;
        let mut out = vec![0_u8; h * stride];
        let mut acc = vec![0.0_f32; stride];
        for ((first, weights), row_out) in
            taps(src.height(), height, filter).iter().zip(out.chunks_exact_mut(stride))
        {
            acc.fill(0.0);
            for (k, &wt) in weights.iter().enumerate() {
                let row = &horizontal[(first + k) * stride..(first + k + 1) * stride];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += wt * f32::from(v);
                }
            }
            for (o, &a) in row_out.iter_mut().zip(&acc) {
                *o = to_u8(a);
            }
        }
        out
    };
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| unreachable!("buffer sized width x height x 3"))
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    #[test]
    fn uniform_pictures_stay_uniform_and_sizes_are_exact() {
        let src = RgbImage::from_pixel(150, 113, Rgb([10, 128, 250]));
        for (w, h) in [(128, 96), (256, 193), (1, 1), (150, 40)] {
            let out = resize(&src, w, h);
            assert_eq!(out.dimensions(), (w, h));
            assert!(out.pixels().all(|p| p.0 == [10, 128, 250]), "{w}x{h}");
        }
    }

    #[test]
    fn halving_averages_neighbours() {
        // Columns alternate 0 and 200: halving the width gives the mean of the covered
        // columns, weighted by the triangle (widened to 2 input pixels).
        let src =
            RgbImage::from_fn(8, 2, |x, _| if x % 2 == 0 { Rgb([0, 0, 0]) } else { Rgb([200, 200, 200]) });
        let out = resize(&src, 4, 2);
        // Output 1 (centre 3.0): inputs 1..=4 with weights 1/8, 3/8, 3/8, 1/8 -> 100.
        assert_eq!(out.get_pixel(1, 0).0, [100, 100, 100]);
        let taps = taps(8, 4, Filter::Bilinear);
        assert!(taps.iter().all(|(_, w)| (w.iter().sum::<f32>() - 1.0).abs() < 1e-6));
    }

    #[test]
    fn the_box_filter_averages_areas_down_and_repeats_pixels_up() {
        // Shrinking 6 columns to 2: each output is the mean of its 3 inputs.
        let src = RgbImage::from_fn(6, 1, |x, _| Rgb([(x * 30) as u8, 0, 0]));
        let out = resize_with(&src, 2, 1, Filter::Box);
        assert_eq!((out.get_pixel(0, 0).0[0], out.get_pixel(1, 0).0[0]), (30, 120));
        // Growing 2 columns to 4: each input pixel twice.
        let src = RgbImage::from_fn(2, 1, |x, _| Rgb([(x * 100) as u8, 0, 0]));
        let out = resize_with(&src, 4, 1, Filter::Box);
        let row: Vec<u8> = (0..4).map(|x| out.get_pixel(x, 0).0[0]).collect();
        assert_eq!(row, [0, 0, 100, 100]);
    }
}
