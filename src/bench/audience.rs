//! `audiencelens bench audience`: do corrected shares recover an audience's true composition?
//! Every labelled picture is classified once; then, many times over, an audience with a random
//! composition (female share, age-class mix) is drawn from all of them and the estimate's raw
//! and corrected shares and 95 % intervals are compared with the truth. Correction is
//! cross-fitted: each audience gets a fresh random split into folds, the members from each fold
//! are corrected with the calibration measured on the other folds (never on their own
//! pictures), and the parts are combined weighted by their counted faces.
//!
//! Age classes are the labels' brackets when every picture has an exact age, otherwise their
//! annotated bins (corrected through the calibration's age-bin matrix; raw shares count the
//! predicted ages falling in each bin).
//!
//! Owns: the experiment. Uses: `vision` (dataset, calibration, estimate).

use std::path::PathBuf;

use anyhow::Context as _;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::config::Config;
use crate::vision::calibration::{Calibration, Dataset};
use crate::vision::decode::DecodeLimits;
use crate::vision::estimate::{self, EstimateOptions, estimate};
use crate::vision::labels::{AgeBin, Labelled};
use crate::vision::{Bracket, Classifier, Gender, PictureResult, batch, dataset};

use self::stats::{Score, bracket_counts, draw_audience, print_report, raw_bin_shares};

#[derive(Debug, clap::Args)]
pub struct AudienceBenchArgs {
    /// Folder of labelled pictures.
    #[arg(long)]
    pub images: PathBuf,
    /// Labels CSV (`file`, `gender`, `age_exact` and/or `age_bin`).
    #[arg(long)]
    pub labels: PathBuf,
    /// Resize pictures so the longer side is this many pixels (JPEG q95) first.
    #[arg(long, default_value_t = 150)]
    pub size: u32,
    #[arg(long, default_value_t = 13)]
    pub min_age: u32,
    /// Audiences drawn.
    #[arg(long, default_value_t = 50)]
    pub audiences: usize,
    /// People per audience (drawn with replacement from all labelled pictures).
    #[arg(long, default_value_t = 300)]
    pub audience_size: usize,
    /// Cross-fitting folds: each fold's members are corrected with the others' calibration.
    #[arg(long, default_value_t = 2)]
    pub folds: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write every labelled picture's result as JSON lines (file, result) to FILE.
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// Pictures classified at once (default: vision.threads).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Age mix of each audience: `random` (a flat Dirichlet over the age classes, the strict
    /// test) or `pool` (the labelled set's own mix; only the female share varies). The two
    /// side by side separate the error that age-dependent classifier errors add.
    #[arg(long, value_enum, default_value_t = AgeMix::Random)]
    pub age_mix: AgeMix,
    /// Age classes: `auto` (brackets when every labelled picture has an exact age, otherwise
    /// the annotated bins), or `brackets` (only the pictures with an exact age, and the seven
    /// brackets the product reports).
    #[arg(long, value_enum, default_value_t = AgeClasses::Auto)]
    pub age_classes: AgeClasses,
}

/// Which age classes the audiences are scored on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgeClasses {
    Auto,
    Brackets,
}

/// How the age classes of a drawn audience are mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgeMix {
    Random,
    Pool,
}

/// One labelled, classified picture: gender index, age class index, result.
struct Item {
    /// Position in `Experiment::items`.
    index: usize,
    label: Labelled,
    gender: usize,
    class: usize,
    result: Option<PictureResult>,
}

/// The classified labelled set and its age classes.
struct Experiment {
    items: Vec<Item>,
    class_names: Vec<String>,
    bins: Vec<AgeBin>,
    by_exact: bool,
    model: String,
}

fn classify_items(
    args: &AudienceBenchArgs,
    settings: &crate::config::VisionSettings,
) -> anyhow::Result<Experiment> {
    let mut labels = dataset::read_labels(&args.labels, Some(args.min_age))?;
    if args.age_classes == AgeClasses::Brackets {
        labels.retain(|l| l.age.is_some());
        anyhow::ensure!(!labels.is_empty(), "{} has no exact ages (age_exact)", args.labels.display());
    }
    let by_exact = labels.iter().all(|l| l.age.is_some());
    let bins: Vec<AgeBin> = labels
        .iter()
        .filter_map(|l| l.bin.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let class_names: Vec<String> = if by_exact {
        Bracket::ALL.iter().map(|b| b.label().to_owned()).collect()
    } else {
        bins.iter().map(AgeBin::label).collect()
    };
    let paths = dataset::select(&args.images, Some(&labels), None)?;
    let (pictures, skipped) = dataset::prepare(&paths, Some(args.size), 95, &DecodeLimits::from(settings));
    anyhow::ensure!(!pictures.is_empty(), "no readable labelled pictures in {}", args.images.display());
    let classifier = Classifier::load(settings).context("loading the local classifier")?;
    eprintln!(
        "bench audience: classifying {} pictures ({} unreadable skipped)",
        pictures.len(),
        skipped.count
    );
    let mut results = Vec::new();
    batch::run_ordered(
        &pictures,
        classifier.threads(),
        |p| classifier.classify(&p.bytes).ok(),
        |_, r| results.push(r),
    );
    let mut items = Vec::new();
    for (p, result) in pictures.iter().zip(results) {
        let Some(label) = labels.iter().find(|l| l.file == p.name) else { continue };
        let Some(gender) = label.gender else { continue };
        let class = if by_exact {
            label.bracket().map(Bracket::index)
        } else {
            label.bin.as_ref().and_then(|b| bins.iter().position(|x| x == b))
        };
        let Some(class) = class else { continue };
        items.push(Item { index: items.len(), label: label.clone(), gender: gender as usize, class, result });
    }
    Ok(Experiment { items, class_names, bins, by_exact, model: classifier.model().to_owned() })
}

/// Fold of each item: a seeded shuffle dealt round-robin.
fn assign_folds(n: usize, folds: usize, rng: &mut SmallRng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let mut fold = vec![0; n];
    for (rank, &i) in order.iter().enumerate() {
        fold[i] = rank % folds;
    }
    fold
}

/// One fold's part of an audience, estimated with the calibration of the other folds.
struct Part {
    /// Faces the gender estimate counts (typed person, with a gender outcome).
    weight: f64,
    female: Interval,
    classes: Vec<Interval>,
}

fn estimate_part(
    x: &Experiment,
    members: &[&Item],
    calibration: &Calibration,
    options: &EstimateOptions,
) -> anyhow::Result<Part> {
    let found: Vec<PictureResult> = members.iter().filter_map(|m| m.result.clone()).collect();
    let e = estimate(&found, members.len() - found.len(), Some(calibration), options);
    let corrected = e.gender.corrected.as_ref().context("no corrected gender share")?;
    let corrected_classes = if x.by_exact {
        e.age_brackets.corrected.clone()
    } else {
        let bins = calibration.age_bin.as_ref().context("the calibration has no age-bin matrix")?;
        estimate::corrected(&bracket_counts(&found), bins, options)
    }
    .context("no corrected age shares (calibration without that matrix)")?;
    let classes = x
        .class_names
        .iter()
        .map(|name| {
            corrected_classes
                .iter()
                .find(|v| &v.class == name)
                .map_or((0.0, [0.0, 0.0]), |v| (v.share, v.ci95))
        })
        .collect();
    let weight = found
        .iter()
        .filter(|r| r.profile_type == crate::vision::ProfileType::Person && r.gender.is_some())
        .count() as f64;
    Ok(Part { weight, female: (corrected[0].share, corrected[0].ci95), classes })
}

/// A share with its 95 % interval.
type Interval = (f64, [f64; 2]);

/// Parts' shares combined by weight; each side of the interval combined as independent
/// normal errors (the parts are different pictures corrected with different calibrations).
fn combine(parts: &[(f64, Interval)]) -> Interval {
    let total: f64 = parts.iter().map(|p| p.0).sum();
    if total <= 0.0 {
        return (f64::NAN, [0.0, 1.0]);
    }
    let share = parts.iter().map(|(w, (v, _))| w * v).sum::<f64>() / total;
    let (mut below, mut above) = (0.0_f64, 0.0_f64);
    for (w, (v, [lo, hi])) in parts {
        below += (w / total * (v - lo)).powi(2);
        above += (w / total * (hi - v)).powi(2);
    }
    (share, [(share - below.sqrt()).max(0.0), (share + above.sqrt()).min(1.0)])
}

pub fn run(args: &AudienceBenchArgs, config: &Config) -> anyhow::Result<()> {
    let mut settings = config.settings.vision.clone();
    if let Some(threads) = args.threads {
        settings.threads = threads;
    }
    let x = classify_items(args, &settings)?;
    if let Some(path) = &args.results {
        let mut out = String::new();
        for item in &x.items {
            let outcome = crate::vision::result::FileOutcome {
                file: &item.label.file,
                result: item.result.as_ref(),
                error: None,
            };
            out.push_str(&serde_json::to_string(&outcome)?);
            out.push('\n');
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    let folds = args.folds.max(2);
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let everyone: Vec<&Item> = x.items.iter().collect();
    let pairs = |keep: &dyn Fn(usize) -> bool| -> Vec<(Labelled, Option<PictureResult>)> {
        x.items
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, i)| (i.label.clone(), i.result.clone()))
            .collect()
    };
    let info = |description: String, pictures: usize| Dataset {
        description,
        pictures,
        counted: 0,
        size_px: Some(args.size),
        min_age: args.min_age,
    };
    let in_sample =
        Calibration::measure(&x.model, &pairs(&|_| true), info("all pictures".into(), x.items.len()));
    let options = EstimateOptions::default();
    let mut female = Score::default();
    let mut in_sample_err = Vec::new();
    let mut classes: Vec<Score> = x.class_names.iter().map(|_| Score::default()).collect();
    for _ in 0..args.audiences {
        // A fresh split for every audience, so no one lucky split decides the result.
        let fold = assign_folds(x.items.len(), folds, &mut rng);
        let members =
            draw_audience(&everyone, x.class_names.len(), args.audience_size, args.age_mix, &mut rng);
        let n = members.len() as f64;
        let truth_female = members.iter().filter(|m| m.gender == Gender::Female as usize).count() as f64 / n;
        let found: Vec<PictureResult> = members.iter().filter_map(|m| m.result.clone()).collect();
        let raw = estimate(&found, members.len() - found.len(), None, &options);
        let mut parts = Vec::new();
        for k in 0..folds {
            let part: Vec<&Item> = members.iter().copied().filter(|m| fold[m.index] == k).collect();
            if part.is_empty() {
                continue;
            }
            let train = pairs(&|i| fold[i] != k);
            let calibration =
                Calibration::measure(&x.model, &train, info(format!("folds other than {k}"), train.len()));
            parts.push(estimate_part(&x, &part, &calibration, &options)?);
        }
        let (share, ci) = combine(&parts.iter().map(|p| (p.weight, p.female)).collect::<Vec<_>>());
        female.add(truth_female, raw.gender.raw[0].share, raw.gender.raw[0].ci95, share, ci);
        let own = estimate(&found, 0, Some(&in_sample), &EstimateOptions { bootstrap_rounds: 0, ..options })
            .gender
            .corrected
            .map_or(f64::NAN, |c| c[0].share);
        in_sample_err.push((own - truth_female).abs());
        let raw_classes = if x.by_exact {
            raw.age_brackets.raw.clone()
        } else {
            raw_bin_shares(&found, &x.bins, &x.class_names)
        };
        for (c, score) in classes.iter_mut().enumerate() {
            let truth = members.iter().filter(|m| m.class == c).count() as f64 / n;
            let (share, ci) = combine(&parts.iter().map(|p| (p.weight, p.classes[c])).collect::<Vec<_>>());
            score.add(truth, raw_classes[c].share, raw_classes[c].ci95, share, ci);
        }
    }
    print_report(args, &female, &classes, &x.class_names, x.by_exact, x.items.len());
    println!(
        "  female, calibration measured on all pictures, audience included (no hold-out): MAE {:.2} pt",
        100.0 * Score::mean(&in_sample_err)
    );
    Ok(())
}

#[path = "audience_stats.rs"]
mod stats;

#[cfg(test)]
mod tests {
    use super::combine;

    #[test]
    fn parts_combine_by_weight_and_their_errors_add_in_quadrature() {
        let (share, [lo, hi]) = combine(&[(1.0, (0.4, [0.3, 0.5])), (1.0, (0.6, [0.5, 0.7]))]);
        assert!((share - 0.5).abs() < 1e-12, "{share}");
        let half = (2.0 * 0.05_f64.powi(2)).sqrt();
        assert!((share - lo - half).abs() < 1e-12 && (hi - share - half).abs() < 1e-12, "[{lo}, {hi}]");
        let (weighted, _) = combine(&[(3.0, (0.2, [0.1, 0.3])), (1.0, (0.6, [0.5, 0.7]))]);
        assert!((weighted - 0.3).abs() < 1e-12, "{weighted}");
        assert!(combine(&[(0.0, (0.5, [0.4, 0.6]))]).0.is_nan(), "nothing counted, no share");
    }
}
