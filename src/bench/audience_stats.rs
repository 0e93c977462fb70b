//! The audience experiment's sampling and scoring: random compositions, drawing people,
//! errors and interval hits, raw shares over bins, and the report table.

use rand::RngExt;
use rand::rngs::SmallRng;

use super::{AgeMix, AudienceBenchArgs, Item};
use crate::vision::estimate;
use crate::vision::labels::AgeBin;
use crate::vision::{Bracket, PictureResult, ProfileType, shares};

/// Absolute errors and interval hits for one share, over audiences.
#[derive(Default)]
pub(super) struct Score {
    raw_err: Vec<f64>,
    corrected_err: Vec<f64>,
    raw_hits: usize,
    corrected_hits: usize,
}

impl Score {
    pub(super) fn add(&mut self, truth: f64, raw: f64, raw_ci: [f64; 2], corrected: f64, ci: [f64; 2]) {
        self.raw_err.push((raw - truth).abs());
        self.corrected_err.push((corrected - truth).abs());
        self.raw_hits += usize::from(raw_ci[0] <= truth && truth <= raw_ci[1]);
        self.corrected_hits += usize::from(ci[0] <= truth && truth <= ci[1]);
    }
    pub(super) fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }
}

fn dirichlet_ones(rng: &mut SmallRng, k: usize) -> Vec<f64> {
    let draws: Vec<f64> = (0..k).map(|_| -(1.0 - rng.random::<f64>()).ln()).collect();
    let total: f64 = draws.iter().sum();
    draws.iter().map(|d| d / total).collect()
}

fn pick(rng: &mut SmallRng, weights: &[f64]) -> usize {
    let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

/// `size` people from `pool` with a random composition: a female share uniform in
/// [0.15, 0.85] and an age-class mix from a flat Dirichlet (or the pool's own mix);
/// drawn with replacement.
pub(super) fn draw_audience<'a>(
    pool: &[&'a Item],
    classes: usize,
    size: usize,
    age_mix: AgeMix,
    rng: &mut SmallRng,
) -> Vec<&'a Item> {
    let female_share = rng.random_range(0.15..0.85);
    let mix = match age_mix {
        AgeMix::Random => dirichlet_ones(rng, classes),
        AgeMix::Pool => (0..classes).map(|c| pool.iter().filter(|i| i.class == c).count() as f64).collect(),
    };
    let mut cells: Vec<Vec<&Item>> = vec![Vec::new(); 2 * classes];
    for &item in pool {
        cells[item.gender * classes + item.class].push(item);
    }
    let mut members = Vec::with_capacity(size);
    let mut attempts = 0;
    while members.len() < size && attempts < size * 1000 {
        attempts += 1;
        let g = usize::from(rng.random::<f64>() >= female_share);
        let cell = &cells[g * classes + pick(rng, &mix)];
        if !cell.is_empty() {
            members.push(cell[rng.random_range(0..cell.len())]);
        }
    }
    members
}

/// Raw shares over annotated bins: the predicted ages of counted faces, binned.
pub(super) fn raw_bin_shares(
    results: &[PictureResult],
    bins: &[AgeBin],
    names: &[String],
) -> Vec<estimate::Share> {
    let ages: Vec<f64> = results
        .iter()
        .filter(|r| r.profile_type == ProfileType::Person)
        .filter_map(|r| r.age.map(|a| f64::from(a.years)))
        .collect();
    let n = ages.len() as f64;
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let count = ages.iter().filter(|&&a| nearest_bin(bins, a) == i).count();
            estimate::Share {
                class: name.clone(),
                count,
                share: count as f64 / n.max(1.0),
                ci95: shares::wilson(count as f64, n, shares::Z95),
            }
        })
        .collect()
}

/// Predicted brackets of the faces the estimate counts (typed person).
pub(super) fn bracket_counts(results: &[PictureResult]) -> Vec<f64> {
    let mut out = vec![0.0; Bracket::ALL.len()];
    for b in
        results.iter().filter(|r| r.profile_type == ProfileType::Person).filter_map(PictureResult::bracket)
    {
        out[b.index()] += 1.0;
    }
    out
}

/// The bin an age falls in; ages between bins go to the lower one, beyond them to the ends.
fn nearest_bin(bins: &[AgeBin], age: f64) -> usize {
    bins.iter().rposition(|b| age >= f64::from(b.lo)).unwrap_or(0)
}

pub(super) fn print_report(
    args: &AudienceBenchArgs,
    female: &Score,
    classes: &[Score],
    names: &[String],
    by_exact: bool,
    items: usize,
) {
    let a = args.audiences as f64;
    println!(
        "bench audience: {} audiences of {} people drawn (with replacement) from {items} labelled pictures at {} px, \
         cross-fitted over {} folds",
        args.audiences,
        args.audience_size,
        args.size,
        args.folds.max(2)
    );
    println!(
        "  age classes: {}; age mix: {}",
        if by_exact { "brackets (exact ages)" } else { "annotated age bins (no exact ages)" },
        match args.age_mix {
            AgeMix::Random => "random (flat Dirichlet) per audience",
            AgeMix::Pool => "the labelled set's own, in every audience",
        }
    );
    println!();
    println!(
        "{:<28} {:>12} {:>12} {:>14} {:>14}",
        "share", "MAE raw", "MAE corr.", "95% CI raw", "95% CI corr."
    );
    let line = |name: &str, s: &Score, hits: f64| {
        println!(
            "{name:<28} {:>9.2} pt {:>9.2} pt {:>12.1} % {:>12.1} %",
            100.0 * Score::mean(&s.raw_err),
            100.0 * Score::mean(&s.corrected_err),
            100.0 * s.raw_hits as f64 / hits,
            100.0 * s.corrected_hits as f64 / hits,
        );
    };
    line("female", female, a);
    for (name, s) in names.iter().zip(classes) {
        line(&format!("age {name}"), s, a);
    }
    let all = Score {
        raw_err: classes.iter().flat_map(|s| s.raw_err.clone()).collect(),
        corrected_err: classes.iter().flat_map(|s| s.corrected_err.clone()).collect(),
        raw_hits: classes.iter().map(|s| s.raw_hits).sum(),
        corrected_hits: classes.iter().map(|s| s.corrected_hits).sum(),
    };
    line("age, all classes", &all, a * classes.len() as f64);
    let worst = classes.iter().map(|s| Score::mean(&s.corrected_err)).fold(0.0, f64::max);
    println!("  worst age class, corrected MAE: {:.2} pt", 100.0 * worst);
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::vision::labels::Labelled;

    /// A pool with 10 % of its people in class 0 and 90 % in class 1, both genders.
    fn pool() -> Vec<Item> {
        (0..100)
            .map(|i| Item {
                index: i,
                label: Labelled {
                    file: format!("{i}.jpg"),
                    gender: None,
                    age: None,
                    bin: None,
                    category: None,
                },
                gender: i % 2,
                class: usize::from(i >= 10),
                result: None,
            })
            .collect()
    }

    fn class0_shares(mix: AgeMix) -> Vec<f64> {
        let items = pool();
        let everyone: Vec<&Item> = items.iter().collect();
        let mut rng = SmallRng::seed_from_u64(7);
        (0..40)
            .map(|_| {
                let members = draw_audience(&everyone, 2, 500, mix, &mut rng);
                assert_eq!(members.len(), 500);
                members.iter().filter(|m| m.class == 0).count() as f64 / 500.0
            })
            .collect()
    }

    #[test]
    fn the_pool_mix_keeps_every_audience_at_the_pools_age_mix() {
        let pooled = class0_shares(AgeMix::Pool);
        assert!(pooled.iter().all(|s| (s - 0.10).abs() < 0.05), "{pooled:?}");
        // A flat Dirichlet over two classes puts class 0 anywhere in [0, 1].
        let random = class0_shares(AgeMix::Random);
        assert!(random.iter().any(|s| *s > 0.4), "{random:?}");
    }
}
