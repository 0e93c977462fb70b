//! From the age network's 81 one-year classes to an age: the expected value (class 0 counts as
//! a quarter year, as the reference does), a piecewise-linear calibration map that undoes the
//! network's pull towards 30-40, and bracket probabilities.
//!
//! Owns: the age calibration map (version "cal1"). Uses: `result::Bracket`.

use super::result::{Bracket, BracketProbs};

/// Number of age classes (0..=80 years).
pub const AGE_CLASSES: usize = 81;
/// Knots of the map: raw expected age -> calibrated age, slope 1 outside. Fitted on FairFace
/// apparent-age bins; stable across folds.
const KNOTS_RAW: [f64; 6] = [5.0, 15.0, 25.0, 40.0, 60.0, 75.0];
const KNOTS_CAL: [f64; 6] = [5.0, 10.5, 21.5, 48.5, 63.5, 67.0];

/// Weight of class k in the expected age.
fn class_age(k: usize) -> f64 {
    if k == 0 { 0.25 } else { k as f64 }
}

/// The network's expected age.
#[must_use]
pub fn expected_age(probs: &[f32]) -> f64 {
    probs.iter().enumerate().map(|(k, &p)| class_age(k) * f64::from(p)).sum()
}

/// The calibration map.
#[must_use]
pub fn calibrate(raw: f64) -> f64 {
    let last = KNOTS_RAW.len() - 1;
    if raw <= KNOTS_RAW[0] {
        return raw - KNOTS_RAW[0] + KNOTS_CAL[0];
    }
    if raw >= KNOTS_RAW[last] {
        return raw - KNOTS_RAW[last] + KNOTS_CAL[last];
    }
    let i = KNOTS_RAW.iter().rposition(|&k| k <= raw).unwrap_or(0).min(last - 1);
    let t = (raw - KNOTS_RAW[i]) / (KNOTS_RAW[i + 1] - KNOTS_RAW[i]);
    KNOTS_CAL[i] + t * (KNOTS_CAL[i + 1] - KNOTS_CAL[i])
}

/// The inverse map (it is increasing).
fn uncalibrate(cal: f64) -> f64 {
    let last = KNOTS_CAL.len() - 1;
    if cal <= KNOTS_CAL[0] {
        return cal - KNOTS_CAL[0] + KNOTS_RAW[0];
    }
    if cal >= KNOTS_CAL[last] {
        return cal - KNOTS_CAL[last] + KNOTS_RAW[last];
    }
    let i = KNOTS_CAL.iter().rposition(|&k| k <= cal).unwrap_or(0).min(last - 1);
    let t = (cal - KNOTS_CAL[i]) / (KNOTS_CAL[i + 1] - KNOTS_CAL[i]);
    KNOTS_RAW[i] + t * (KNOTS_RAW[i + 1] - KNOTS_RAW[i])
}

/// Bracket of a calibrated age: rounded to whole years first.
#[must_use]
pub fn bracket_of(calibrated: f64) -> Bracket {
    Bracket::of_age((calibrated + 0.5).floor() as i64)
}

/// Bracket probabilities: class k stands for raw ages [k - 0.5, k + 0.5); each class's mass is
/// split at the bracket boundaries carried back through the map (a calibrated boundary at
/// L - 0.5 years, the rounding point of `bracket_of`).
#[must_use]
pub fn bracket_probabilities(probs: &[f32]) -> BracketProbs {
    let cuts: Vec<f64> = Bracket::LOWER[1..].iter().map(|&lo| uncalibrate(f64::from(lo) - 0.5)).collect();
    let mut out = [0.0_f64; 7];
    for (k, &p) in probs.iter().enumerate() {
        let (lo, hi) = (k as f64 - 0.5, k as f64 + 0.5);
        let mut start = lo;
        for (b, slot) in out.iter_mut().enumerate() {
            let end = cuts.get(b).copied().unwrap_or(f64::INFINITY).clamp(lo, hi);
            if end > start {
                *slot += f64::from(p) * (end - start);
                start = end;
            }
        }
    }
    let total: f64 = out.iter().sum();
    BracketProbs(
        out.map(|v| if total > 0.0 { ((v / total * 10_000.0).round() / 10_000.0) as f32 } else { 0.0 }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_map_matches_the_golden_values() {
        for (raw, cal) in [(15.0, 10.5), (20.0, 16.0), (30.0, 30.5), (45.0, 52.25), (70.0, 65.833_333)] {
            assert!((calibrate(raw) - cal).abs() < 1e-5, "{raw} -> {}", calibrate(raw));
            assert!((uncalibrate(cal) - raw).abs() < 1e-4);
        }
        assert!((calibrate(2.0) - 2.0).abs() < 1e-12);
        assert!((calibrate(80.0) - 72.0).abs() < 1e-12);
    }

    #[test]
    fn raw_cut_points_match_the_recipe() {
        let cuts: Vec<f64> = Bracket::LOWER[1..].iter().map(|&lo| uncalibrate(f64::from(lo) - 0.5)).collect();
        for (cut, want) in cuts.iter().zip([21.36, 26.67, 32.22, 37.78, 48.00, 64.29]) {
            assert!((cut - want).abs() < 0.01, "{cut} vs {want}");
        }
    }

    #[test]
    fn bracket_probabilities_sum_to_one_and_follow_the_mass() {
        let mut probs = vec![0.0_f32; AGE_CLASSES];
        probs[30] = 1.0;
        let b = bracket_probabilities(&probs);
        assert!((b.0.iter().sum::<f32>() - 1.0).abs() < 1e-3);
        assert!((b.0[Bracket::From25.index()] - 1.0).abs() < 1e-6, "raw 30 -> calibrated 30.5: {b:?}");
        assert_eq!(bracket_of(calibrate(30.0)), Bracket::From25);
        probs[30] = 0.0;
        probs[10] = 1.0;
        assert!((bracket_probabilities(&probs).0[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn expected_age_weights_class_zero_a_quarter() {
        let mut probs = vec![0.0_f32; AGE_CLASSES];
        probs[0] = 0.5;
        probs[2] = 0.5;
        assert!((expected_age(&probs) - 1.125).abs() < 1e-9);
    }
}
