//! Fitting the age rule of [`super::age`] from labelled faces: the six cut-points that turn
//! face-api's age into a bracket, and the residual model that turns it into a probability per
//! bracket. `audiencelens fit-brackets` runs the classifier on a labelled set and calls
//! [`fit`] and [`cross_validate`]; the file it writes is the one the binary ships
//! (`calibration/brackets.json`).
//!
//! - **Cuts**: coordinate ascent on a 0.25-year grid, starting from the brackets' own bounds,
//!   maximising exact-bracket accuracy subject to a floor on the recall of teens and of each
//!   bracket of 18-64 (a rule that puts everyone in 25-34 is not a good rule). Where no cuts
//!   meet the floors, the shortfall is minimised instead.
//! - **Residual model**: the true age is taken as normal around `mu = A + m0 + m1 A` with
//!   `sd = s0 + s1 A` (at least 1), both lines fitted by least squares (the spread from the
//!   absolute residuals, scaled by √(π/2)).
//!
//! Owns: the fitting and its cross-validation. Uses: `result::Bracket`.

use serde::{Deserialize, Serialize};

use super::result::Bracket;

/// Bracket bounds in whole years (a bracket holds the ages that round into it).
pub const BOUNDS: [f64; 6] = [17.5, 24.5, 34.5, 44.5, 54.5, 64.5];
const GRID: f64 = 0.25;
const LOWEST: f64 = 10.0;
const HIGHEST: f64 = 90.0;

/// One labelled face: the network's age and the true age.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub predicted: f64,
    pub truth: u32,
}

impl Sample {
    fn bracket(&self) -> usize {
        Bracket::of_age(i64::from(self.truth)).index()
    }
}

/// The least recall a fit must keep: teens (13-17), and each bracket of 18-64.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Floors {
    pub teens: f64,
    pub adults: f64,
}

/// The rule [`super::age`] applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub cuts: [f64; 6],
    /// `mu = A + mu[0] + mu[1] A`.
    pub mu: [f64; 2],
    /// `sd = max(sd[0] + sd[1] A, 1)`.
    pub sd: [f64; 2],
}

impl Rule {
    /// The bracket index of the network's `age`.
    #[must_use]
    pub fn bracket_index(&self, age: f64) -> usize {
        self.cuts.iter().filter(|&&c| c <= age).count()
    }
}

/// Exact-bracket accuracy and more, of a rule on faces it was not fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub faces: usize,
    pub exact: f64,
    pub within_one: f64,
    /// Share right per true bracket (`None` without faces of that bracket).
    pub per_bracket: [Option<f64>; 7],
    /// `confusion[true][given]`.
    pub confusion: [[usize; 7]; 7],
    /// Mean absolute error of the network's age, and of the residual model's `mu`.
    pub mae_years: f64,
    pub mae_years_mu: f64,
}

/// The file `fit-brackets` writes and the binary ships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fitted {
    pub version: String,
    pub rule: Rule,
    pub floors: Floors,
    /// What the rule was fitted on, and under what licence those pictures are.
    pub fitted_on: String,
    pub faces: usize,
    pub folds: usize,
    pub cross_validated: Scores,
}

fn confusion(rule: &Rule, samples: &[Sample]) -> [[usize; 7]; 7] {
    let mut out = [[0; 7]; 7];
    for s in samples {
        out[s.bracket()][rule.bracket_index(s.predicted)] += 1;
    }
    out
}

fn recall(row: &[usize; 7], i: usize) -> Option<f64> {
    let total: usize = row.iter().sum();
    (total > 0).then(|| row[i] as f64 / total as f64)
}

/// Exact count when every floor holds; otherwise minus the shortfall (always lower).
fn objective(cuts: &[f64; 6], samples: &[Sample], floors: Floors) -> f64 {
    let rule = Rule { cuts: *cuts, mu: [0.0; 2], sd: [0.0; 2] };
    let matrix = confusion(&rule, samples);
    let mut shortfall = 0.0;
    for (i, row) in matrix.iter().enumerate().take(6) {
        let floor = if i == 0 { floors.teens } else { floors.adults };
        if let Some(r) = recall(row, i) {
            shortfall += (floor - r).max(0.0);
        }
    }
    if shortfall > 0.0 {
        return -1.0 - shortfall;
    }
    (0..7).map(|i| matrix[i][i]).sum::<usize>() as f64
}

/// Cuts for `samples` (see the module header).
#[must_use]
pub fn fit_cuts(samples: &[Sample], floors: Floors) -> [f64; 6] {
    let mut cuts = BOUNDS;
    let mut best = objective(&cuts, samples, floors);
    for _ in 0..50 {
        let mut improved = false;
        for k in 0..6 {
            let lo = if k == 0 { LOWEST } else { cuts[k - 1] + GRID };
            let hi = if k == 5 { HIGHEST } else { cuts[k + 1] - GRID };
            let steps = ((hi - lo) / GRID).round() as i64;
            for step in 0..=steps {
                let mut candidate = cuts;
                candidate[k] = lo + step as f64 * GRID;
                let value = objective(&candidate, samples, floors);
                if value > best {
                    (best, cuts, improved) = (value, candidate, true);
                }
            }
        }
        if !improved {
            break;
        }
    }
    cuts
}

/// Least-squares line `y = a + b x`.
fn line(points: impl Iterator<Item = (f64, f64)> + Clone) -> [f64; 2] {
    let n = points.clone().count() as f64;
    if n < 2.0 {
        return [0.0, 0.0];
    }
    let (sx, sy) = points.clone().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) =
        points.fold((0.0, 0.0), |(a, b), (x, y)| (a + (x - mx) * (y - my), b + (x - mx) * (x - mx)));
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    [my - slope * mx, slope]
}

/// The residual model for `samples`.
#[must_use]
pub fn fit_residual(samples: &[Sample]) -> ([f64; 2], [f64; 2]) {
    let mu = line(samples.iter().map(|s| (s.predicted, f64::from(s.truth) - s.predicted)));
    let centre = |s: &Sample| s.predicted + mu[0] + mu[1] * s.predicted;
    let scale = (std::f64::consts::PI / 2.0).sqrt();
    let sd = line(samples.iter().map(|s| (s.predicted, (f64::from(s.truth) - centre(s)).abs() * scale)));
    (mu, sd)
}

/// The whole rule for `samples`.
#[must_use]
pub fn fit(samples: &[Sample], floors: Floors) -> Rule {
    let (mu, sd) = fit_residual(samples);
    Rule { cuts: fit_cuts(samples, floors), mu, sd }
}

/// The fold of the `i`-th sample: a shuffle of the indices by a fixed-seed `SplitMix64`, dealt
/// round-robin, so folds are random, the same on every run and never depend on who is pictured.
#[must_use]
pub fn folds_of(n: usize, folds: usize) -> Vec<usize> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let mut fold = vec![0; n];
    for (rank, &i) in order.iter().enumerate() {
        fold[i] = rank % folds.max(1);
    }
    fold
}

/// Scores of rules fitted on all folds but one, each on the fold it did not see.
#[must_use]
pub fn cross_validate(samples: &[Sample], floors: Floors, folds: usize) -> Scores {
    let fold = folds_of(samples.len(), folds);
    let mut matrix = [[0; 7]; 7];
    let (mut abs, mut abs_mu) = (0.0, 0.0);
    for f in 0..folds.max(1) {
        let train: Vec<Sample> =
            samples.iter().zip(&fold).filter(|(_, k)| **k != f).map(|(s, _)| *s).collect();
        let test: Vec<Sample> =
            samples.iter().zip(&fold).filter(|(_, k)| **k == f).map(|(s, _)| *s).collect();
        let rule = fit(&train, floors);
        for (t, row) in confusion(&rule, &test).iter().enumerate() {
            for (g, n) in row.iter().enumerate() {
                matrix[t][g] += n;
            }
        }
        for s in &test {
            let truth = f64::from(s.truth);
            abs += (s.predicted - truth).abs();
            abs_mu += (s.predicted + rule.mu[0] + rule.mu[1] * s.predicted - truth).abs();
        }
    }
    let faces = samples.len();
    let share = |k: usize| if faces == 0 { 0.0 } else { k as f64 / faces as f64 };
    let exact = (0..7).map(|i| matrix[i][i]).sum();
    let mut within = 0;
    for (t, row) in matrix.iter().enumerate() {
        for (g, n) in row.iter().enumerate() {
            if t.abs_diff(g) <= 1 {
                within += n;
            }
        }
    }
    Scores {
        faces,
        exact: share(exact),
        within_one: share(within),
        per_bracket: std::array::from_fn(|i| recall(&matrix[i], i)),
        confusion: matrix,
        mae_years: if faces == 0 { 0.0 } else { abs / faces as f64 },
        mae_years_mu: if faces == 0 { 0.0 } else { abs_mu / faces as f64 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOORS: Floors = Floors { teens: 0.4, adults: 0.35 };

    /// A network that squeezes ages towards 30 (as real ones do), with a little noise.
    fn squeezed(n: u32) -> Vec<Sample> {
        (0..n)
            .map(|i| {
                let truth = 13 + (i * 7919) % 60;
                let noise = f64::from((i * 104_729) % 7) - 3.0;
                Sample { predicted: 30.0 + 0.6 * (f64::from(truth) - 30.0) + noise, truth }
            })
            .collect()
    }

    #[test]
    fn cuts_undo_a_squeeze_and_beat_the_brackets_own_bounds() {
        let samples = squeezed(3000);
        let fitted = Rule { cuts: fit_cuts(&samples, FLOORS), mu: [0.0; 2], sd: [0.0; 2] };
        let naive = Rule { cuts: BOUNDS, mu: [0.0; 2], sd: [0.0; 2] };
        let right = |r: &Rule| (0..7).map(|i| confusion(r, &samples)[i][i]).sum::<usize>();
        assert!(right(&fitted) > right(&naive) + 600, "{} vs {}", right(&fitted), right(&naive));
        assert!(fitted.cuts[0] > 18.0 && fitted.cuts[0] < 22.0, "{:?}", fitted.cuts);
        assert!(fitted.cuts.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_residual_model_finds_the_squeeze() {
        let (mu, sd) = fit_residual(&squeezed(3000));
        // Least squares of the truth on the noisy age: slope 0.6 var(T) / (0.36 var(T) + var(noise))
        // with var(T) = 300 (13..72) and var(noise) = 4, so a residual slope of about 0.607.
        assert!((mu[1] - 0.607).abs() < 0.03, "{mu:?}");
        assert!(sd[0] + sd[1] * 30.0 > 0.5 && sd[0] + sd[1] * 30.0 < 6.0, "{sd:?}");
    }

    #[test]
    fn folds_are_balanced_fixed_and_scored_out_of_sample() {
        let fold = folds_of(103, 5);
        assert_eq!(fold, folds_of(103, 5));
        for f in 0..5 {
            let n = fold.iter().filter(|&&k| k == f).count();
            assert!(n == 20 || n == 21, "{n}");
        }
        assert_ne!(fold[..10], [0, 1, 2, 3, 4, 0, 1, 2, 3, 4], "shuffled");
        let scores = cross_validate(&squeezed(1000), FLOORS, 5);
        assert_eq!(scores.faces, 1000);
        assert_eq!(scores.confusion.iter().flatten().sum::<usize>(), 1000);
        assert!(scores.exact > 0.5 && scores.within_one > scores.exact, "{scores:?}");
        assert!(scores.mae_years_mu < scores.mae_years, "{scores:?}");
    }

    #[test]
    fn floors_are_kept_when_they_can_be() {
        let samples = squeezed(3000);
        let strict = Floors { teens: 0.6, adults: 0.5 };
        let rule = Rule { cuts: fit_cuts(&samples, strict), mu: [0.0; 2], sd: [0.0; 2] };
        let matrix = confusion(&rule, &samples);
        for (i, row) in matrix.iter().enumerate().take(6) {
            let floor = if i == 0 { strict.teens } else { strict.adults };
            assert!(recall(row, i).unwrap() >= floor, "bracket {i}: {row:?}");
        }
    }
}
