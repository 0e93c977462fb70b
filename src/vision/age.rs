//! From face-api's age (years, averaged over the chip and its mirror image) to an age bracket
//! and a probability per bracket (version "brk2"), by the rule in `calibration/brackets.json`,
//! which `audiencelens fit-brackets` writes from labelled faces (see `bracket_fit`).
//!
//! - **The bracket** is the number of cut-points at or below the age. The cuts are not the
//!   brackets' own bounds: the network over-estimates teenagers and pulls everyone towards the
//!   middle, so the cuts sit where the exact bracket is right most often while every bracket
//!   of 13-64 keeps a floor of recall.
//! - **The probabilities** model the true age as normal around the network's age, with a bias
//!   and a spread that grow with it; each bracket gets the mass between its bounds (17.5,
//!   24.5, ... 64.5). They are what a reader may expect per face, not the decision rule.
//!
//! Owns: applying the shipped rule. Uses: `bracket_fit`, `result::Bracket`.

use std::sync::LazyLock;

use super::bracket_fit::{BOUNDS, Fitted};
use super::result::{Bracket, BracketProbs};

/// Version of this mapping, recorded in the model name.
pub const VERSION: &str = "brk2";
/// The shipped rule, as `fit-brackets` wrote it.
pub const SHIPPED: &str = include_str!("calibration/brackets.json");

#[expect(clippy::expect_used, reason = "a compile-time constant, parsed by a test")]
static RULE: LazyLock<Fitted> =
    LazyLock::new(|| serde_json::from_str(SHIPPED).expect("the shipped bracket rule is valid (tested)"));

/// The bracket face-api's `age` falls in.
#[must_use]
pub fn bracket_of(age: f64) -> Bracket {
    Bracket::ALL[RULE.rule.bracket_index(age)]
}

/// Φ, the standard normal distribution function (Abramowitz and Stegun 7.1.26 for erf; error
/// under 1.5e-7, far below the 4 decimals kept).
fn phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

/// The probability of each bracket given face-api's `age`.
#[must_use]
pub fn bracket_probabilities(age: f64) -> BracketProbs {
    let [m0, m1] = RULE.rule.mu;
    let [s0, s1] = RULE.rule.sd;
    let mu = age + m0 + m1 * age;
    let sd = (s0 + s1 * age).max(1.0);
    let mut cdf = [0.0_f64; 8];
    cdf[7] = 1.0;
    for (i, b) in BOUNDS.iter().enumerate() {
        cdf[i + 1] = phi((b - mu) / sd);
    }
    BracketProbs(std::array::from_fn(|i| (((cdf[i + 1] - cdf[i]) * 10_000.0).round() / 10_000.0) as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rule_is_this_version_and_ordered() {
        assert_eq!(RULE.version, VERSION);
        let cuts = RULE.rule.cuts;
        assert!(cuts.windows(2).all(|w| w[0] < w[1]), "{cuts:?}");
        assert_eq!(bracket_of(cuts[0] - 0.01), Bracket::Teen);
        assert_eq!(bracket_of(cuts[0]), Bracket::From18);
        assert_eq!(bracket_of(cuts[5]), Bracket::From65);
        assert_eq!(bracket_of(12.0), Bracket::Teen);
        assert_eq!(bracket_of(90.0), Bracket::From65);
        assert!(cuts[0] > 17.5, "the network over-estimates teenagers: {cuts:?}");
    }

    #[test]
    fn probabilities_sum_to_one_and_follow_the_age() {
        for age in [5.0, 18.0, 30.0, 47.0, 70.0, 95.0] {
            let p = bracket_probabilities(age);
            assert!((p.0.iter().sum::<f32>() - 1.0).abs() < 2e-3, "{age}: {p:?}");
        }
        let p = bracket_probabilities(30.0).0;
        let most = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
        assert_eq!(most, Some(Bracket::From25.index()), "{p:?}");
        assert!((phi(0.0) - 0.5).abs() < 1e-9 && (phi(1.959_964) - 0.975).abs() < 1e-6);
    }
}
