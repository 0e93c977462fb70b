//! `audiencelens bench vision`: throughput of the local classifier on one thread and on all
//! cores, and with labels its accuracy, printed as a table; with `--reference`, the Python
//! reference (`scripts/reference_bench.py`) runs on the identical prepared JPEGs in the same
//! run, alternating with ours when `--rounds` > 1, and the table shows both with ratios.
//! Absolute speeds depend on the machine's load; the ratios are the result.
//!
//! Owns: the benchmark protocol and its report. Uses: `vision`, `vision_prep`, `vision_eval`.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;

use super::vision_eval::{self, Metric, Prediction, Unit};
use super::vision_prep::{self, ReferenceOptions};
use crate::config::Config;
use crate::vision::dataset::{self, Prepared};
use crate::vision::decode::DecodeLimits;
use crate::vision::result::FileOutcome;
use crate::vision::{
    Classifier, LabelSettings, PictureError, PictureResult, ProfileType, StageTimes, batch, labels,
};

#[derive(Debug, clap::Args)]
pub struct VisionBenchArgs {
    /// Folder of pictures.
    #[arg(long)]
    pub images: PathBuf,
    /// Labels CSV (columns `file`, `gender`, `age_exact`, `age_bin`, `category`; others are ignored).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Resize each picture so its longer side is this many pixels and re-encode it as JPEG
    /// first, as the reference benchmark does (profile pictures are 150 or 320 px).
    #[arg(long)]
    pub size: Option<u32>,
    /// JPEG quality of prepared pictures.
    #[arg(long, default_value_t = 95)]
    pub quality: u8,
    /// Keep labelled pictures aged N and over (an exact age, or an age bin reaching N).
    #[arg(long)]
    pub min_age: Option<u32>,
    /// Only the first N pictures (sorted by name).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Threads of the all-cores run (default: vision.threads, 0 there = one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also run the Python reference on the identical prepared pictures (needs --size).
    #[arg(long)]
    pub reference: bool,
    /// The reference benchmark script.
    #[arg(long, default_value = "scripts/reference_bench.py")]
    pub reference_script: PathBuf,
    /// One-thread timing rounds, alternating with the reference; medians are reported.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Pictures run once, untimed, before timing.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Write our per-picture results here (JSON lines).
    #[arg(long)]
    pub per_image: Option<PathBuf>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

type Outcome = Result<PictureResult, PictureError>;

/// One thread, in order: (outcomes, pictures per second, stage times).
fn time_one_thread(classifier: &Classifier, pictures: &[Prepared]) -> (Vec<Outcome>, f64, StageTimes) {
    let mut times = StageTimes::default();
    let started = Instant::now();
    let outcomes: Vec<Outcome> =
        pictures.iter().map(|p| classifier.classify_timed(&p.bytes, &mut times)).collect();
    (outcomes, pictures.len() as f64 / started.elapsed().as_secs_f64(), times)
}

fn time_all_threads(classifier: &Classifier, pictures: &[Prepared]) -> f64 {
    let started = Instant::now();
    batch::run_ordered(pictures, classifier.threads(), |p| classifier.classify(&p.bytes).is_ok(), |_, _| {});
    pictures.len() as f64 / started.elapsed().as_secs_f64()
}

pub fn run(args: &VisionBenchArgs, config: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(!args.reference || args.size.is_some(), "--reference needs --size (150 or 320)");
    let mut settings = config.settings.vision.clone();
    if let Some(threads) = args.threads {
        settings.threads = threads;
    }
    let labels = args.labels.as_deref().map(|path| dataset::read_labels(path, args.min_age)).transpose()?;
    let paths = dataset::select(&args.images, labels.as_deref(), args.limit)?;
    anyhow::ensure!(!paths.is_empty(), "no pictures to benchmark in {}", args.images.display());
    let work = std::env::temp_dir().join(format!("audiencelens-bench-vision-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let reference_options = ReferenceOptions {
        script: &args.reference_script,
        images: &args.images,
        size: args.size.unwrap_or(0),
        quality: args.quality,
        labels: args.labels.as_deref(),
        min_age: args.min_age,
        limit: args.limit,
        warmup: args.warmup,
    };
    let mut reference_runs = Vec::new();
    let (pictures, skipped, prepared_by) = if args.reference {
        let export = work.join("prepared");
        eprintln!("bench vision: running the reference on {} pictures (round 1)", paths.len());
        reference_runs.push(vision_prep::run_reference(&reference_options, &work, Some(&export))?);
        let (p, s) = vision_prep::read_exported(&paths, &export);
        (p, s, "the reference script (identical JPEG bytes for both)")
    } else {
        let (p, s) = dataset::prepare(&paths, args.size, args.quality, &DecodeLimits::from(&settings));
        (
            p,
            s,
            if args.size.is_some() {
                "this binary (Lanczos3, then JPEG)"
            } else {
                "none (files as they are)"
            },
        )
    };
    anyhow::ensure!(!pictures.is_empty(), "none of the {} pictures could be read", paths.len());
    let classifier = Classifier::load(&settings).context("loading the local classifier")?;
    for p in pictures.iter().take(args.warmup) {
        let _ = classifier.classify(&p.bytes);
    }
    let mut rates = Vec::new();
    let mut first = None;
    for round in 0..args.rounds.max(1) {
        if args.reference && round > 0 {
            eprintln!("bench vision: reference round {}", round + 1);
            reference_runs.push(vision_prep::run_reference(&reference_options, &work, None)?);
        }
        eprintln!("bench vision: ours, one thread, round {}", round + 1);
        let (outcomes, rate, times) = time_one_thread(&classifier, &pictures);
        rates.push(rate);
        first.get_or_insert((outcomes, times));
    }
    eprintln!("bench vision: ours, {} threads", classifier.threads());
    let all_rate = time_all_threads(&classifier, &pictures);
    let (outcomes, times) = first.context("no timing round ran")?;
    if let Some(path) = &args.per_image {
        write_per_image(path, &pictures, &outcomes)?;
    }
    let _ = std::fs::remove_dir_all(&work);

    let report = Report {
        pictures: &pictures,
        outcomes: &outcomes,
        labels: labels.as_deref(),
        label_settings: LabelSettings::from(&settings),
        one_thread: median(rates.clone()),
        rates,
        all_threads: all_rate,
        threads: classifier.threads(),
        times,
        reference: reference_runs,
    };
    println!("bench vision: {} pictures from {}", pictures.len(), args.images.display());
    println!(
        "  prepared by: {prepared_by}; size {}",
        args.size.map_or("original".into(), |s| format!("{s} px"))
    );
    if skipped.count > 0 {
        println!(
            "  skipped {} unreadable files, e.g. {}",
            skipped.count,
            skipped.example.unwrap_or_default()
        );
    }
    report.print();
    Ok(())
}

fn write_per_image(path: &PathBuf, pictures: &[Prepared], outcomes: &[Outcome]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (p, o) in pictures.iter().zip(outcomes) {
        writeln!(out, "{}", serde_json::to_string(&FileOutcome::new(&p.name, o))?)?;
    }
    Ok(())
}

struct Report<'a> {
    pictures: &'a [Prepared],
    outcomes: &'a [Outcome],
    labels: Option<&'a [labels::Labelled]>,
    label_settings: LabelSettings,
    one_thread: f64,
    rates: Vec<f64>,
    all_threads: f64,
    threads: usize,
    times: StageTimes,
    reference: Vec<vision_prep::ReferenceRun>,
}

#[path = "vision_report.rs"]
mod report;
