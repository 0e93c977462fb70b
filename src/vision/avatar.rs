//! Instagram's default avatar (a grey head-and-shoulders silhouette on a plain grey background),
//! recognised by picture content so it works whatever the URL: a 64x64 nearest-neighbour grid,
//! then a few shape statistics (greyness, few grey levels, uniform border, a centred symmetric
//! figure whose centre column crosses it at least twice — head, then shoulders — and whose
//! lower half is at least as wide as its upper half). Cheap; it runs before face detection.
//!
//! Owns: the default-avatar rule. Uses: `image` pixels only.

use image::RgbImage;

const GRID: usize = 64;

/// The rule's inputs, exposed for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvatarFeatures {
    pub grey_frac: f64,
    pub top3_frac: f64,
    pub bg: i32,
    pub border_uniform: f64,
    pub fg_frac: f64,
    pub sym: f64,
    pub cx: f64,
    pub fg_contrast: f64,
    pub centre_runs: usize,
    pub shoulder_ratio: f64,
}

impl AvatarFeatures {
    /// All conditions of the rule.
    #[must_use]
    pub fn is_default_avatar(&self) -> bool {
        self.grey_frac >= 0.98
            && self.top3_frac >= 0.85
            && self.border_uniform >= 0.95
            && self.bg >= 120
            && (0.08..=0.70).contains(&self.fg_frac)
            && (12.0..=120.0).contains(&self.fg_contrast)
            && self.sym >= 0.75
            && (self.cx - 0.5).abs() <= 0.06
            && self.centre_runs >= 2
            && self.shoulder_ratio >= 1.0
    }
}

/// Median with numpy's convention (mean of the two middle values for an even count).
fn median(values: &mut [i32]) -> f64 {
    values.sort_unstable();
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 { f64::from(values[n / 2]) } else { f64::from(values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// Computes the features of `rgb` (any size).
#[must_use]
pub fn avatar_features(rgb: &RgbImage) -> AvatarFeatures {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let pick = |i: usize, n: usize| (((i as f64 + 0.5) * n as f64 / GRID as f64) as usize).min(n - 1);
    let mut lum = [[0_i32; GRID]; GRID];
    let mut grey = 0_usize;
    let mut hist = [0_usize; 32];
    for (i, row) in lum.iter_mut().enumerate() {
        let y = pick(i, h) as u32;
        for (j, cell) in row.iter_mut().enumerate() {
            let p = rgb.get_pixel(pick(j, w) as u32, y).0.map(i32::from);
            let sat = p.iter().max().unwrap_or(&0) - p.iter().min().unwrap_or(&0);
            grey += usize::from(sat <= 16);
            *cell = (299 * p[0] + 587 * p[1] + 114 * p[2]) / 1000;
            hist[(*cell / 8) as usize] += 1;
        }
    }
    let cells = (GRID * GRID) as f64;
    hist.sort_unstable();
    let top3 = hist[29..].iter().sum::<usize>();
    // Top row plus the side columns of the upper three quarters (shoulders may touch the bottom).
    let mut border: Vec<i32> = lum[0].to_vec();
    border.extend(lum[..48].iter().map(|r| r[0]));
    border.extend(lum[..48].iter().map(|r| r[GRID - 1]));
    let bg = median(&mut border.clone()) as i32;
    let uniform = border.iter().filter(|&&v| (v - bg).abs() <= 12).count();
    let fg: Vec<[bool; GRID]> = lum.iter().map(|r| r.map(|v| (v - bg).abs() > 12)).collect();
    let (mut both, mut either, mut count, mut xsum) = (0_usize, 0_usize, 0_usize, 0_usize);
    let mut fg_lum = Vec::new();
    for (i, row) in fg.iter().enumerate() {
        for j in 0..GRID {
            let (a, b) = (row[j], row[GRID - 1 - j]);
            both += usize::from(a && b);
            either += usize::from(a || b);
            if a {
                count += 1;
                xsum += j;
                fg_lum.push(lum[i][j]);
            }
        }
    }
    let (cx, fg_contrast) = if count > 0 {
        ((xsum as f64 / count as f64 + 0.5) / GRID as f64, (median(&mut fg_lum) - f64::from(bg)).abs())
    } else {
        (0.0, 0.0)
    };
    let centre: Vec<bool> = fg.iter().map(|r| r[30..34].iter().filter(|&&v| v).count() >= 2).collect();
    let width =
        |rows: &[[bool; GRID]]| rows.iter().map(|r| r.iter().filter(|&&v| v).count()).max().unwrap_or(0);
    AvatarFeatures {
        grey_frac: grey as f64 / cells,
        top3_frac: top3 as f64 / cells,
        bg,
        border_uniform: uniform as f64 / border.len() as f64,
        fg_frac: count as f64 / cells,
        sym: both as f64 / either.max(1) as f64,
        cx,
        fg_contrast,
        centre_runs: long_runs(&centre),
        shoulder_ratio: width(&fg[32..]) as f64 / width(&fg[..32]).max(1) as f64,
    }
}

/// Runs of `true` at least 3 long.
fn long_runs(column: &[bool]) -> usize {
    let mut runs = 0;
    let mut length = 0;
    for &v in column.iter().chain(std::iter::once(&false)) {
        if v {
            length += 1;
        } else {
            runs += usize::from(length >= 3);
            length = 0;
        }
    }
    runs
}

/// Whether `rgb` is the default avatar.
#[must_use]
pub fn is_default_avatar(rgb: &RgbImage) -> bool {
    avatar_features(rgb).is_default_avatar()
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    /// A default-avatar-like picture: grey background, lighter head disc and shoulder arc.
    pub(crate) fn silhouette(size: u32, bg: u8, fg: u8) -> RgbImage {
        let s = f64::from(size);
        RgbImage::from_fn(size, size, |x, y| {
            let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let head = (x - s / 2.0).powi(2) + (y - 0.38 * s).powi(2) < (0.18 * s).powi(2);
            let body =
                (x - s / 2.0).powi(2) / (0.36 * s).powi(2) + (y - 1.0 * s).powi(2) / (0.36 * s).powi(2) < 1.0;
            let v = if head || body { fg } else { bg };
            Rgb([v, v, v])
        })
    }

    #[test]
    fn silhouettes_are_default_avatars_at_every_size_and_polarity() {
        for size in [150, 320, 1080] {
            for (bg, fg) in [(219, 255), (200, 170), (239, 219)] {
                let f = avatar_features(&silhouette(size, bg, fg));
                assert!(f.is_default_avatar(), "{size} px, bg {bg}, fg {fg}: {f:?}");
            }
        }
    }

    #[test]
    fn plain_gradient_and_colour_pictures_are_not() {
        let plain = RgbImage::from_pixel(150, 150, Rgb([200, 200, 200]));
        let gradient = RgbImage::from_fn(150, 150, |x, y| Rgb([(x + y) as u8, (x + y) as u8, (x + y) as u8]));
        let mut colour = silhouette(150, 219, 255);
        for p in colour.pixels_mut() {
            p.0[0] = p.0[0].saturating_sub(80);
        }
        for picture in [plain, gradient, colour] {
            assert!(!is_default_avatar(&picture));
        }
    }

    #[test]
    fn a_head_without_shoulders_is_not() {
        let s = 150.0;
        let head_only = RgbImage::from_fn(150, 150, |x, y| {
            let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let v =
                if (x - s / 2.0).powi(2) + (y - s / 2.0).powi(2) < (0.25 * s).powi(2) { 255 } else { 219 };
            Rgb([v, v, v])
        });
        let f = avatar_features(&head_only);
        assert!(!f.is_default_avatar(), "{f:?}");
        assert_eq!(f.centre_runs, 1);
    }

    #[test]
    fn runs_are_counted_from_three() {
        assert_eq!(long_runs(&[true, true, false, true, true, true, false, true, true, true, true]), 2);
        assert_eq!(long_runs(&[]), 0);
    }
}
