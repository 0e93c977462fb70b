//! `audiencelens fit-brackets`: the age rule (bracket cuts and residual model) fitted from
//! labelled faces with exact ages, cross-validated, written as the file the binary ships
//! (`src/vision/calibration/brackets.json`).
//!
//! Owns: the command. Uses: `vision::bracket_fit`, `vision::dataset`, the local classifier.

use std::path::PathBuf;

use anyhow::Context as _;

use super::classify::Progress;
use crate::config::Config;
use crate::vision::bracket_fit::{self, Fitted, Floors, Sample};
use crate::vision::decode::DecodeLimits;
use crate::vision::{Bracket, Classifier, age, batch, dataset};

#[derive(Debug, clap::Args)]
pub struct FitBracketsArgs {
    /// Folder of labelled pictures.
    #[arg(long)]
    pub images: PathBuf,
    /// Labels CSV with `file` and `age_exact` columns (others are ignored).
    #[arg(long)]
    pub labels: PathBuf,
    /// Write the rule here (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Resize pictures so the longer side is this many pixels (JPEG q95) first, as profile
    /// pictures are served.
    #[arg(long, default_value_t = 150)]
    pub size: u32,
    /// Keep people aged N and over.
    #[arg(long, default_value_t = 13)]
    pub min_age: u32,
    /// Cross-validation folds (a fixed-seed random split).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Least share right a fit keeps for teens (13-17).
    #[arg(long, default_value_t = 0.42)]
    pub teen_floor: f64,
    /// Least share right a fit keeps for each bracket of 18-64.
    #[arg(long, default_value_t = 0.37)]
    pub adult_floor: f64,
    /// What the pictures are and their licence, recorded in the file.
    #[arg(long)]
    pub description: Option<String>,
}

pub async fn run(args: FitBracketsArgs, config: Config) -> anyhow::Result<()> {
    let settings = config.settings.vision.clone();
    tokio::task::spawn_blocking(move || fit(&args, &settings)).await.context("fitting thread")?
}

/// The network's age and the true age of every labelled face the classifier found.
fn samples(args: &FitBracketsArgs, settings: &crate::config::VisionSettings) -> anyhow::Result<Vec<Sample>> {
    let labels: Vec<_> = dataset::read_labels(&args.labels, Some(args.min_age))?
        .into_iter()
        .filter(|l| l.age.is_some())
        .collect();
    anyhow::ensure!(
        !labels.is_empty(),
        "{} has no exact ages (age_exact) of people aged {}+",
        args.labels.display(),
        args.min_age
    );
    let paths = dataset::select(&args.images, Some(&labels), None)?;
    anyhow::ensure!(!paths.is_empty(), "none of the labelled files is in {}", args.images.display());
    let (pictures, skipped) = dataset::prepare(&paths, Some(args.size), 95, &DecodeLimits::from(settings));
    if skipped.count > 0 {
        eprintln!("fit-brackets: skipped {} unreadable files", skipped.count);
    }
    let classifier = Classifier::load(settings).context("loading the local classifier")?;
    let progress = Progress::new("fit-brackets", pictures.len());
    let mut ages = Vec::with_capacity(pictures.len());
    batch::run_ordered(
        &pictures,
        classifier.threads(),
        |p| classifier.classify(&p.bytes).ok().and_then(|r| r.age).map(|a| f64::from(a.years)),
        |i, a| {
            ages.push(a);
            progress.tick(i + 1, 0);
        },
    );
    let truth: std::collections::HashMap<&str, u32> =
        labels.iter().filter_map(|l| Some((l.file.as_str(), l.age?))).collect();
    Ok(pictures
        .iter()
        .zip(ages)
        .filter_map(|(p, age)| Some(Sample { predicted: age?, truth: *truth.get(p.name.as_str())? }))
        .collect())
}

fn fit(args: &FitBracketsArgs, settings: &crate::config::VisionSettings) -> anyhow::Result<()> {
    anyhow::ensure!(args.folds >= 2, "--folds must be at least 2");
    let samples = samples(args, settings)?;
    anyhow::ensure!(
        samples.len() >= 50 * args.folds,
        "only {} faces with an age: too few to fit",
        samples.len()
    );
    let floors = Floors { teens: args.teen_floor, adults: args.adult_floor };
    let scores = bracket_fit::cross_validate(&samples, floors, args.folds);
    let rule = bracket_fit::fit(&samples, floors);
    let fitted_on = args.description.clone().unwrap_or_else(|| {
        format!(
            "{} faces aged {}+ from {}, at {} px",
            samples.len(),
            args.min_age,
            args.images.display(),
            args.size
        )
    });
    let fitted = Fitted {
        version: age::VERSION.to_owned(),
        rule,
        floors,
        fitted_on,
        faces: samples.len(),
        folds: args.folds,
        cross_validated: scores,
    };
    let json = serde_json::to_string_pretty(&fitted)? + "\n";
    match &args.out {
        Some(path) => std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{json}"),
    }
    let s = &fitted.cross_validated;
    eprintln!(
        "fit-brackets: {} faces, {}-fold cross-validated: exact {:.1} %, within one {:.1} %, MAE {:.2} years (network), {:.2} (residual model)",
        s.faces,
        args.folds,
        100.0 * s.exact,
        100.0 * s.within_one,
        s.mae_years,
        s.mae_years_mu
    );
    for (b, r) in Bracket::ALL.iter().zip(s.per_bracket) {
        if let Some(r) = r {
            eprintln!("fit-brackets:   {:<6} {:.1} %", b.label(), 100.0 * r);
        }
    }
    eprintln!("fit-brackets: cuts {:?}", fitted.rule.cuts);
    Ok(())
}
