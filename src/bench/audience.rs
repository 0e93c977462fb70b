//! `audiencelens bench audience`: do corrected shares recover an audience's true composition?
//! Every labelled picture is classified once; then, many times over, an audience with a random
//! composition (female share, age-class mix) is drawn from one fold of the pictures, the
//! calibration is measured on the other folds (never on the faces it is tested on), and the
//! estimate's raw and corrected shares and 95 % intervals are compared with the truth.
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
    /// People per audience (drawn with replacement from the test fold).
    #[arg(long, default_value_t = 300)]
    pub audience_size: usize,
    /// Cross-validation folds: calibration on the others, audiences from one.
    #[arg(long, default_value_t = 2)]
    pub folds: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pictures classified at once (default: vision.threads).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// One labelled, classified picture: gender index, age class index, result.
struct Item {
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
    let labels = dataset::read_labels(&args.labels, Some(args.min_age))?;
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
        items.push(Item { label: label.clone(), gender: gender as usize, class, result });
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

pub fn run(args: &AudienceBenchArgs, config: &Config) -> anyhow::Result<()> {
    let mut settings = config.settings.vision.clone();
    if let Some(threads) = args.threads {
        settings.threads = threads;
    }
    let x = classify_items(args, &settings)?;
    let folds = args.folds.max(2);
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let fold = assign_folds(x.items.len(), folds, &mut rng);
    let mut female = Score::default();
    let mut floor = Vec::new();
    let mut classes: Vec<Score> = x.class_names.iter().map(|_| Score::default()).collect();
    for a in 0..args.audiences {
        let k = a % folds;
        let train: Vec<(Labelled, Option<PictureResult>)> = x
            .items
            .iter()
            .zip(&fold)
            .filter(|(_, f)| **f != k)
            .map(|(i, _)| (i.label.clone(), i.result.clone()))
            .collect();
        let info = Dataset {
            description: format!("folds other than {k}"),
            pictures: train.len(),
            counted: 0,
            size_px: Some(args.size),
            min_age: args.min_age,
        };
        let calibration = Calibration::measure(&x.model, &train, info);
        let pool: Vec<&Item> = x.items.iter().zip(&fold).filter(|(_, f)| **f == k).map(|(i, _)| i).collect();
        let members = draw_audience(&pool, x.class_names.len(), args.audience_size, &mut rng);
        let n = members.len() as f64;
        let truth_female = members.iter().filter(|m| m.gender == Gender::Female as usize).count() as f64 / n;
        let found: Vec<PictureResult> = members.iter().filter_map(|m| m.result.clone()).collect();
        let e =
            estimate(&found, members.len() - found.len(), Some(&calibration), &EstimateOptions::default());
        let corrected = e.gender.corrected.as_ref().context("no corrected gender share")?;
        // The same estimate with a calibration measured on the test fold itself: not a valid
        // test, but the floor that audience sampling alone leaves.
        let pool_pairs: Vec<(Labelled, Option<PictureResult>)> =
            pool.iter().map(|i| (i.label.clone(), i.result.clone())).collect();
        let own = Calibration::measure(&x.model, &pool_pairs, calibration.dataset.clone());
        let own_female = estimate(
            &found,
            0,
            Some(&own),
            &EstimateOptions { bootstrap_rounds: 0, ..EstimateOptions::default() },
        )
        .gender
        .corrected
        .map_or(f64::NAN, |c| c[0].share);
        floor.push((own_female - truth_female).abs());
        female.add(
            truth_female,
            e.gender.raw[0].share,
            e.gender.raw[0].ci95,
            corrected[0].share,
            corrected[0].ci95,
        );
        let (raw_classes, corrected_classes) = if x.by_exact {
            (e.age_brackets.raw.clone(), e.age_brackets.corrected.clone())
        } else {
            let observed = bracket_counts(&found);
            let bins = calibration.age_bin.as_ref().context("the calibration has no age-bin matrix")?;
            (
                raw_bin_shares(&found, &x.bins, &x.class_names),
                estimate::corrected(&observed, bins, &EstimateOptions::default()),
            )
        };
        let corrected_classes =
            corrected_classes.context("no corrected age shares (calibration without that matrix)")?;
        for (c, score) in classes.iter_mut().enumerate() {
            let truth = members.iter().filter(|m| m.class == c).count() as f64 / n;
            let fixed = corrected_classes.iter().find(|v| v.class == x.class_names[c]);
            let (share, ci) = fixed.map_or((0.0, [0.0, 0.0]), |v| (v.share, v.ci95));
            score.add(truth, raw_classes[c].share, raw_classes[c].ci95, share, ci);
        }
    }
    print_report(args, &female, &classes, &x.class_names, x.by_exact, x.items.len());
    println!(
        "  female, calibration measured on the test fold itself (no cross-validation; the floor left by \
         audience sampling): MAE {:.2} pt",
        100.0 * Score::mean(&floor)
    );
    Ok(())
}

#[path = "audience_stats.rs"]
mod stats;
