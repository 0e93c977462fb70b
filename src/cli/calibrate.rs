//! `audiencelens calibrate --images DIR --labels CSV`: measure how often the classifier gives
//! each answer for each true class on a labelled set, and write a calibration file (counts
//! only, never pictures) for corrected audience shares.
//!
//! Which labels feed which matrix: gender from every labelled picture; the age-bracket matrix
//! only from rows with an exact age (`age_exact`), because a 10-year bin such as FairFace's
//! "20-29" straddles two brackets; rows with only a bin feed the age-bin matrix instead, which
//! can correct shares over those bins. Only pictures typed person with a classified face are
//! counted, as in the audience estimate.
//!
//! Owns: the command. Uses: `vision` (dataset, calibration), `cli::classify` (progress).

use std::path::PathBuf;

use anyhow::Context as _;

use super::classify::Progress;
use crate::cascade::{Classifiers, Mode};
use crate::clients::gemini::GeminiClient;
use crate::config::Config;
use crate::vision::calibration::{Calibration, Dataset};
use crate::vision::dataset;
use crate::vision::decode::DecodeLimits;
use crate::vision::{Classifier, batch};

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Folder of labelled pictures.
    #[arg(long)]
    pub images: PathBuf,
    /// Labels CSV: `file`, `gender`, `age_exact` and/or `age_bin` columns (others are ignored).
    #[arg(long)]
    pub labels: PathBuf,
    /// Write the calibration here (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Resize pictures so the longer side is this many pixels (JPEG q95) before classifying, as
    /// profile pictures are served: 150 or 320.
    #[arg(long)]
    pub size: Option<u32>,
    /// Keep people aged N and over (an exact age, or an age bin reaching N).
    #[arg(long, default_value_t = 13)]
    pub min_age: u32,
    /// Describes the data set in the file (default: folder, count, size).
    #[arg(long)]
    pub description: Option<String>,
    /// Pictures classified at once (default: vision.threads).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The classifier to calibrate: local; gemini (against the configured endpoint; needs
    /// `GEMINI_API_KEY`, and costs what the pictures cost); or cascade (the cascade's final
    /// answers, as one classifier). Point `gemini.calibration` at the file written to use it.
    #[arg(long, value_enum, default_value = "local")]
    pub classifier: Mode,
    /// Spend at most this on Gemini, in US dollars (default: `gemini.budget_usd_per_analysis`).
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,
}

pub async fn run(args: CalibrateArgs, config: Config) -> anyhow::Result<()> {
    match args.classifier {
        Mode::Local => {}
        Mode::Gemini | Mode::Cascade => return calibrate_gemini(&args, &config).await,
    }
    let mut settings = config.settings.vision.clone();
    if let Some(threads) = args.threads {
        settings.threads = threads;
    }
    tokio::task::spawn_blocking(move || calibrate(&args, &settings)).await.context("calibration thread")?
}

fn calibrate(args: &CalibrateArgs, settings: &crate::config::VisionSettings) -> anyhow::Result<()> {
    let labels = dataset::read_labels(&args.labels, Some(args.min_age))?;
    let paths = dataset::select(&args.images, Some(&labels), None)?;
    anyhow::ensure!(!paths.is_empty(), "none of the labelled files is in {}", args.images.display());
    let (pictures, skipped) = dataset::prepare(&paths, args.size, 95, &DecodeLimits::from(settings));
    if skipped.count > 0 {
        eprintln!(
            "calibrate: skipped {} unreadable files, e.g. {}",
            skipped.count,
            skipped.example.as_deref().unwrap_or_default()
        );
    }
    anyhow::ensure!(!pictures.is_empty(), "none of the {} labelled pictures could be read", paths.len());
    let classifier = Classifier::load(settings).context("loading the local classifier")?;
    let progress = Progress::new("calibrate", pictures.len());
    let mut results = Vec::with_capacity(pictures.len());
    batch::run_ordered(
        &pictures,
        classifier.threads(),
        |p| classifier.classify(&p.bytes).ok(),
        |i, r| {
            results.push(r);
            progress.tick(i + 1, 0);
        },
    );
    write_calibration(args, &labels, &pictures, results, classifier.model())
}

/// Pairs results with labels, measures the matrices and writes the file.
fn write_calibration(
    args: &CalibrateArgs,
    labels: &[crate::vision::labels::Labelled],
    pictures: &[dataset::Prepared],
    results: Vec<Option<crate::vision::PictureResult>>,
    model: &str,
) -> anyhow::Result<()> {
    let by_file: std::collections::HashMap<&str, &crate::vision::labels::Labelled> =
        labels.iter().map(|l| (l.file.as_str(), l)).collect();
    let pairs: Vec<_> = pictures
        .iter()
        .zip(results)
        .filter_map(|(p, r)| by_file.get(p.name.as_str()).map(|l| ((*l).clone(), r)))
        .collect();
    let description = args.description.clone().unwrap_or_else(|| {
        format!(
            "{} labelled pictures from {} aged {}+{}",
            pairs.len(),
            args.images.display(),
            args.min_age,
            args.size.map_or(String::new(), |s| format!(", resized to {s} px (JPEG q95)"))
        )
    });
    let dataset =
        Dataset { description, pictures: pairs.len(), counted: 0, size_px: args.size, min_age: args.min_age };
    let calibration = Calibration::measure(model, &pairs, dataset);
    let json = serde_json::to_string_pretty(&calibration)? + "\n";
    match &args.out {
        Some(path) => std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{json}"),
    }
    eprintln!(
        "calibrate: {} of {} pictures counted (typed person with a face)",
        calibration.dataset.counted,
        pairs.len()
    );
    if let Some(g) = &calibration.gender {
        eprintln!("calibrate: gender rows true female/male, columns female/male/abstained: {:?}", g.counts);
    }
    for note in &calibration.notes {
        eprintln!("calibrate: note: {note}");
    }
    Ok(())
}

/// `--classifier gemini`: the labelled pictures through Gemini alone (no local fallback: the
/// matrices describe Gemini's answers; its abstentions count as abstentions).
/// `--classifier cascade`: through the cascade as configured, measuring its final answers (the
/// local model's, or Gemini's where it was asked), so the selection the cascade makes is part
/// of what is measured.
async fn calibrate_gemini(args: &CalibrateArgs, config: &Config) -> anyhow::Result<()> {
    let labels = dataset::read_labels(&args.labels, Some(args.min_age))?;
    let paths = dataset::select(&args.images, Some(&labels), None)?;
    anyhow::ensure!(!paths.is_empty(), "none of the labelled files is in {}", args.images.display());
    let cascade = args.classifier == Mode::Cascade;
    let (model, classifiers) = if cascade {
        (
            crate::cascade::cascade_model(config),
            super::classify::build_classifiers(config, Mode::Cascade, args.threads)?,
        )
    } else {
        let gemini = GeminiClient::new(&config.settings.gemini, config.secrets.gemini_api_key.as_ref())?;
        let classifiers = Classifiers {
            mode: Mode::Gemini,
            local: None,
            gemini: Some(gemini.clone()),
            rules: config.settings.gemini.cascade.clone(),
        };
        (gemini.model_version(), classifiers)
    };
    let (size, limits) = (args.size, DecodeLimits::from(&config.settings.vision));
    let (pictures, skipped) =
        tokio::task::spawn_blocking(move || dataset::prepare(&paths, size, 95, &limits))
            .await
            .context("preparing")?;
    if skipped.count > 0 {
        eprintln!("calibrate: skipped {} unreadable files", skipped.count);
    }
    let session = super::classify::session(config, args.budget_usd);
    let inputs = pictures.iter().map(|p| Ok(p.bytes.clone())).collect();
    let mut results = vec![None; pictures.len()];
    // Pictures Gemini was never asked about (budget, outage, format) are left out: counting
    // them as abstentions would describe the run, not the model.
    let mut answered = vec![false; pictures.len()];
    let totals = super::classify::run_rounds(&classifiers, &session, inputs, "calibrate", |i, outcome| {
        if cascade {
            // Kept by the local model, or answered by Gemini: the cascade's own answer.
            answered[i] = outcome.sent_because.is_none() || was_answered(&outcome);
            results[i] = outcome.best().cloned().map(|mut r| {
                r.model.clone_from(&model);
                r
            });
        } else {
            answered[i] = was_answered(&outcome);
            results[i] = outcome.gemini;
        }
    })
    .await?;
    eprintln!("{}", super::classify::cost_line("calibrate", &totals, &classifiers, &session));
    let left_out = answered.iter().filter(|a| !**a).count();
    if left_out > 0 {
        eprintln!(
            "calibrate: {left_out} pictures left out: Gemini was not asked about them (see the counts above)"
        );
    }
    let (pictures, results): (Vec<_>, Vec<_>) =
        pictures.into_iter().zip(results).zip(answered).filter(|(_, a)| *a).map(|(pr, _)| pr).unzip();
    anyhow::ensure!(!pictures.is_empty(), "Gemini answered for none of the pictures");
    write_calibration(args, &labels, &pictures, results, &model)
}

/// Gemini looked at the picture (it labelled it or abstained on its content).
fn was_answered(outcome: &crate::cascade::Outcome) -> bool {
    outcome.gemini.is_some()
        || outcome.gemini_abstain.as_deref().is_some_and(|r| {
            r != crate::clients::gemini::OVER_BUDGET
                && !r.starts_with("Gemini unavailable")
                && !r.starts_with("Gemini not asked")
                && !r.starts_with("not a JPEG")
        })
}
