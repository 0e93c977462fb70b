//! Changes between two audiences (two snapshots of one account over time, or two accounts side
//! by side): the difference of each raw share with its 95 % interval, by Newcombe's hybrid
//! score method (his method 10: the Wilson intervals of the two shares combined), and whether
//! the interval leaves out zero. Raw shares: a corrected share's interval comes from a
//! bootstrap of its own and does not combine this way.
//!
//! Owns: the difference test. Uses: `vision::shares`, `snapshot`.

use serde::Serialize;

use super::snapshot::Snapshot;
use crate::vision::estimate::{Breakdown, Share};
use crate::vision::shares::{Z95, wilson};

/// One share's change from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// `gender`, `age_bracket` or `profile_type`.
    pub dimension: String,
    pub class: String,
    pub from: f64,
    pub to: f64,
    /// `to - from`, in share points (0.06 is +6 points).
    pub delta: f64,
    pub ci95: [f64; 2],
    /// The interval leaves out zero.
    pub significant: bool,
}

/// The difference `k2/n2 - k1/n1` and its Newcombe hybrid score interval; `None` when either
/// sample is empty.
#[must_use]
pub fn difference(k1: f64, n1: f64, k2: f64, n2: f64) -> Option<(f64, [f64; 2])> {
    if n1 <= 0.0 || n2 <= 0.0 {
        return None;
    }
    let (p1, p2) = (k1 / n1, k2 / n2);
    let [l1, u1] = wilson(k1, n1, Z95);
    let [l2, u2] = wilson(k2, n2, Z95);
    let d = p2 - p1;
    let lo = d - ((p2 - l2).powi(2) + (u1 - p1).powi(2)).sqrt();
    let hi = d + ((u2 - p2).powi(2) + (p1 - l1).powi(2)).sqrt();
    Some((d, [lo.max(-1.0), hi.min(1.0)]))
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn shares_changes(dimension: &str, a: &[Share], b: &[Share], out: &mut Vec<Change>) {
    let n = |s: &[Share]| s.iter().map(|x| x.count).sum::<usize>() as f64;
    let (n1, n2) = (n(a), n(b));
    for x in a {
        let Some(y) = b.iter().find(|y| y.class == x.class) else { continue };
        if let Some((delta, ci)) = difference(x.count as f64, n1, y.count as f64, n2) {
            out.push(Change {
                dimension: dimension.to_owned(),
                class: x.class.clone(),
                from: x.share,
                to: y.share,
                delta: round4(delta),
                ci95: ci.map(round4),
                significant: ci[0] > 0.0 || ci[1] < 0.0,
            });
        }
    }
}

fn breakdown_changes(dimension: &str, a: &Breakdown, b: &Breakdown, out: &mut Vec<Change>) {
    shares_changes(dimension, &a.raw, &b.raw, out);
}

/// How each raw share of `to` differs from `from` (commenter-weighted audience).
#[must_use]
pub fn changes(from: &Snapshot, to: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    breakdown_changes("gender", &from.audience.gender, &to.audience.gender, &mut out);
    breakdown_changes("age_bracket", &from.audience.age_brackets, &to.audience.age_brackets, &mut out);
    shares_changes("profile_type", &from.audience.profile_types, &to.audience.profile_types, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newcombe_matches_his_worked_example() {
        // Newcombe (1998), Statistics in Medicine 17:873, table II example (h): 56/70 vs 48/80.
        let (d, [lo, hi]) = difference(48.0, 80.0, 56.0, 70.0).expect("both samples");
        assert!((d - 0.2).abs() < 1e-9);
        assert!((lo - 0.0524).abs() < 5e-4, "{lo}");
        assert!((hi - 0.3339).abs() < 5e-4, "{hi}");
        assert_eq!(difference(1.0, 0.0, 1.0, 2.0), None);
    }
}
