//! The statistics behind audience shares: Wilson score intervals for raw counts, and shares
//! corrected for classifier errors — the maximum-likelihood composition given the observed
//! predictions and a confusion matrix (P(predicted | true) from calibration counts), found by
//! EM on the simplex — with percentile intervals from a bootstrap that resamples both the
//! audience's predictions and the calibration counts.
//!
//! Where the confusion system has an interior solution this is adjusted classify-and-count
//! (solve `observed = Aᵀ π`); unlike clipping, EM stays on the simplex and also uses
//! outcomes without a class (abstentions) as evidence.
//!
//! Owns: interval and correction maths. Uses: `rand`.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval for `k` successes out of `n`.
#[must_use]
pub fn wilson(k: f64, n: f64, z: f64) -> [f64; 2] {
    if n <= 0.0 {
        return [0.0, 1.0];
    }
    let p = k / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// Rows of `counts` normalised to probabilities; `None` when a row is empty.
#[must_use]
pub fn row_probabilities(counts: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    counts
        .iter()
        .map(|row| {
            let total: f64 = row.iter().sum();
            (total > 0.0).then(|| row.iter().map(|v| v / total).collect())
        })
        .collect()
}

/// Maximum-likelihood true composition given `observed` counts per predicted outcome and
/// `confusion[t][p]` = P(p | t). Starts from uniform; stops when no share moves by 1e-9.
#[must_use]
pub fn correct(observed: &[f64], confusion: &[Vec<f64>]) -> Vec<f64> {
    let classes = confusion.len();
    let total: f64 = observed.iter().sum();
    let mut pi = vec![1.0 / classes as f64; classes];
    if total <= 0.0 {
        return pi;
    }
    for _ in 0..5000 {
        let mut next = vec![0.0; classes];
        for (p, &n) in observed.iter().enumerate() {
            let denom: f64 = (0..classes).map(|t| pi[t] * confusion[t][p]).sum();
            if n <= 0.0 || denom <= 0.0 {
                continue;
            }
            for t in 0..classes {
                next[t] += n * pi[t] * confusion[t][p] / denom;
            }
        }
        let mass: f64 = next.iter().sum();
        if mass <= 0.0 {
            return pi;
        }
        for v in &mut next {
            *v /= mass;
        }
        let moved = next.iter().zip(&pi).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        pi = next;
        if moved < 1e-9 {
            break;
        }
    }
    pi
}

/// A multinomial draw of `n` items with probabilities `p`.
/// A Gamma(shape, 1) draw (Marsaglia and Tsang; shapes below 1 boosted by U^(1/shape)).
fn gamma(rng: &mut SmallRng, shape: f64) -> f64 {
    if shape < 1.0 {
        let boost: f64 = rng.random_range(f64::EPSILON..1.0);
        return gamma(rng, shape + 1.0) * boost.powf(1.0 / shape);
    }
    let offset = shape - 1.0 / 3.0;
    let scale = 1.0 / (9.0 * offset).sqrt();
    loop {
        // A standard normal by Box-Muller.
        let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let cube = (1.0 + scale * normal).powi(3);
        if cube <= 0.0 {
            continue;
        }
        let accept: f64 = rng.random_range(f64::EPSILON..1.0);
        if accept.ln() < 0.5 * normal * normal + offset - offset * cube + offset * cube.ln() {
            return offset * cube;
        }
    }
}

/// Observed counts redrawn from their posterior under a Jeffreys prior (Dirichlet with
/// counts + 1/2), scaled back to the same total. Unlike resampling the observed shares, a
/// class never observed still varies, so "0 of 9" does not get a zero-width interval.
fn posterior_counts(rng: &mut SmallRng, observed: &[f64]) -> Vec<f64> {
    let total: f64 = observed.iter().sum();
    let draws: Vec<f64> = observed.iter().map(|c| gamma(rng, c + 0.5)).collect();
    let sum: f64 = draws.iter().sum();
    draws.iter().map(|g| if sum > 0.0 { g / sum * total } else { 0.0 }).collect()
}

fn multinomial(rng: &mut SmallRng, n: u64, p: &[f64]) -> Vec<f64> {
    let mut cumulative = Vec::with_capacity(p.len());
    let mut acc = 0.0;
    for v in p {
        acc += v;
        cumulative.push(acc);
    }
    let mut out = vec![0.0; p.len()];
    for _ in 0..n {
        let u = rng.random::<f64>() * acc;
        let i = cumulative.partition_point(|&c| c <= u).min(p.len() - 1);
        out[i] += 1.0;
    }
    out
}

/// Corrected shares with 95 % percentile intervals from `rounds` bootstrap resamples of the
/// observed counts and of each calibration row. `None` when a calibration row is empty.
#[must_use]
pub fn correct_with_interval(
    observed: &[f64],
    confusion_counts: &[Vec<f64>],
    rounds: usize,
    seed: u64,
) -> Option<Vec<(f64, [f64; 2])>> {
    let confusion = row_probabilities(confusion_counts)?;
    let point = correct(observed, &confusion);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut draws: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); point.len()];
    for _ in 0..rounds {
        let resampled_counts: Vec<Vec<f64>> = confusion_counts
            .iter()
            .zip(&confusion)
            .map(|(row, p)| multinomial(&mut rng, row.iter().sum::<f64>().round() as u64, p))
            .collect();
        let Some(resampled) = row_probabilities(&resampled_counts) else { continue };
        let observed_star = posterior_counts(&mut rng, observed);
        for (slot, v) in draws.iter_mut().zip(correct(&observed_star, &resampled)) {
            slot.push(v);
        }
    }
    Some(
        point
            .into_iter()
            .zip(draws)
            .map(|(share, mut d)| {
                d.sort_by(f64::total_cmp);
                let at = |q: f64| d.get(((d.len() as f64 - 1.0) * q).round() as usize).copied();
                (share, [at(0.025).unwrap_or(0.0).min(share), at(0.975).unwrap_or(1.0).max(share)])
            })
            .collect(),
    )
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "exactly representable values")]
mod tests {
    use super::*;

    #[test]
    fn a_class_never_observed_still_gets_an_interval() {
        let confusion = vec![vec![90.0, 10.0], vec![10.0, 90.0]];
        let out = correct_with_interval(&[9.0, 0.0], &confusion, 500, 1).expect("corrected");
        let [lo, hi] = out[0].1;
        assert!(hi >= out[0].0 && lo < 0.95, "9 of 9 must not be certain: [{lo}, {hi}]");
        assert!(out[1].1[1] > 0.0, "the unobserved class's upper bound is above 0");
    }

    #[test]
    fn wilson_matches_a_known_interval() {
        // 40 of 100: Wilson 95 % = [0.3094, 0.4980].
        let [lo, hi] = wilson(40.0, 100.0, Z95);
        assert!((lo - 0.3094).abs() < 1e-4 && (hi - 0.4980).abs() < 1e-4, "{lo} {hi}");
        assert_eq!(wilson(0.0, 0.0, Z95), [0.0, 1.0]);
        let [lo, hi] = wilson(0.0, 10.0, Z95);
        assert!(lo == 0.0 && hi > 0.2);
    }

    #[test]
    fn correction_recovers_a_known_composition() {
        // Three classes, a classifier that confuses neighbours; true composition 0.6/0.3/0.1.
        let confusion = vec![vec![0.8, 0.15, 0.05], vec![0.2, 0.7, 0.1], vec![0.05, 0.25, 0.7]];
        let truth = [0.6, 0.3, 0.1];
        let observed: Vec<f64> =
            (0..3).map(|p| 1000.0 * (0..3).map(|t| truth[t] * confusion[t][p]).sum::<f64>()).collect();
        let raw: Vec<f64> = observed.iter().map(|v| v / 1000.0).collect();
        assert!((raw[0] - 0.6).abs() > 0.05, "raw counting is biased: {raw:?}");
        for (got, want) in correct(&observed, &confusion).iter().zip(truth) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn abstentions_are_evidence_too() {
        // Women abstain more often than men: predicted columns female, male, abstain.
        let confusion = vec![vec![0.7, 0.1, 0.2], vec![0.05, 0.9, 0.05]];
        let truth = [0.3, 0.7];
        let observed: Vec<f64> =
            (0..3).map(|p| 600.0 * (0..2).map(|t| truth[t] * confusion[t][p]).sum::<f64>()).collect();
        let got = correct(&observed, &confusion);
        assert!((got[0] - 0.3).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn impossible_observations_stay_on_the_simplex() {
        let confusion = vec![vec![0.9, 0.1], vec![0.3, 0.7]];
        // 95 % predicted first: beyond what even an all-first audience gives (90 %).
        let got = correct(&[95.0, 5.0], &confusion);
        assert!((got[0] - 1.0).abs() < 1e-3 && got.iter().all(|v| (0.0..=1.0).contains(v)), "{got:?}");
    }

    #[test]
    fn bootstrap_intervals_contain_the_point_and_shrink_with_data() {
        let counts = vec![vec![80.0, 20.0], vec![15.0, 85.0]];
        let small = correct_with_interval(&[30.0, 20.0], &counts, 300, 1).unwrap();
        let large = correct_with_interval(&[3000.0, 2000.0], &counts, 300, 1).unwrap();
        for (share, [lo, hi]) in small.iter().chain(&large) {
            assert!(lo <= share && share <= hi);
        }
        assert!(large[0].1[1] - large[0].1[0] < small[0].1[1] - small[0].1[0]);
        assert!(correct_with_interval(&[1.0, 1.0], &[vec![0.0, 0.0], vec![1.0, 1.0]], 10, 1).is_none());
    }
}
