//! `audiencelens classify PATH...`: classify picture files and folders with the local
//! classifier. Standard output is JSON lines: one `{"file", "result"}` or `{"file", "error"}`
//! per picture in input order, then with `--summary` one `{"summary": ...}` holding the
//! audience estimate of the whole set. Progress goes to standard error.
//!
//! Owns: the command's input and output format. Uses: `vision`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;

use crate::config::Config;
use crate::vision::calibration::Calibration;
use crate::vision::estimate::{self, EstimateOptions};
use crate::vision::result::FileOutcome;
use crate::vision::{Classifier, PictureError, PictureResult, batch, files};

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Picture files, or folders of pictures (their .jpg, .jpeg, .png and .webp files).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// After the pictures, print the audience estimate of the whole set.
    #[arg(long)]
    pub summary: bool,
    /// Calibration file for corrected shares (default: the one built in).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Count the largest face of group pictures in gender and age shares.
    #[arg(long)]
    pub include_groups: bool,
    /// Pictures classified at once (default: vision.threads).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Reads and classifies one file.
pub fn classify_file(classifier: &Classifier, path: &PathBuf) -> Result<PictureResult, PictureError> {
    match std::fs::read(path) {
        Ok(bytes) => classifier.classify(&bytes),
        Err(e) => Err(PictureError::Unreadable(e.to_string())),
    }
}

/// Prints a progress line to standard error every `every` pictures and at the end.
pub struct Progress {
    label: &'static str,
    total: usize,
    every: usize,
    started: Instant,
}

impl Progress {
    #[must_use]
    pub fn new(label: &'static str, total: usize) -> Self {
        Self { label, total, every: if total >= 200 { 100 } else { usize::MAX }, started: Instant::now() }
    }

    pub fn tick(&self, done: usize, errors: usize) {
        if done.is_multiple_of(self.every) || (done == self.total && self.every != usize::MAX) {
            let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            eprintln!(
                "{}: {done}/{} pictures, {errors} errors, {rate:.0} pictures/s",
                self.label, self.total
            );
        }
    }
}

pub async fn run(args: ClassifyArgs, config: Config) -> anyhow::Result<()> {
    let mut settings = config.settings.vision.clone();
    if let Some(threads) = args.threads {
        settings.threads = threads;
    }
    let calibration = match &args.calibration {
        Some(path) => Calibration::load(path)?,
        None => Calibration::shipped()?,
    };
    let paths = files::list_pictures(&args.paths)?;
    anyhow::ensure!(!paths.is_empty(), "no pictures found in the given paths");
    let classifier = Arc::new(Classifier::load(&settings).context("loading the local classifier")?);
    let options = EstimateOptions { include_groups: args.include_groups, ..EstimateOptions::default() };
    tokio::task::spawn_blocking(move || {
        classify_paths(&classifier, &paths, args.summary.then_some((&calibration, options)))
    })
    .await
    .context("classification thread")?
}

fn classify_paths(
    classifier: &Classifier,
    paths: &[PathBuf],
    summary: Option<(&Calibration, EstimateOptions)>,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let progress = Progress::new("classify", paths.len());
    let (mut results, mut errors, mut write_error) = (Vec::new(), 0_usize, None);
    batch::run_ordered(
        paths,
        classifier.threads(),
        |path| classify_file(classifier, path),
        |i, outcome| {
            let file = paths[i].display().to_string();
            let line =
                serde_json::to_string(&FileOutcome::new(&file, &outcome)).map_err(std::io::Error::from);
            if let Err(e) = line.and_then(|line| writeln!(out, "{line}")) {
                write_error.get_or_insert(e);
            }
            match outcome {
                Ok(result) => results.push(result),
                Err(_) => errors += 1,
            }
            progress.tick(i + 1, errors);
        },
    );
    if let Some(e) = write_error {
        return Err(e).context("writing results");
    }
    if errors > 0 {
        eprintln!(
            "classify: {errors} of {} pictures could not be classified (see their \"error\" lines)",
            paths.len()
        );
    }
    if let Some((calibration, options)) = summary {
        let estimate = estimate::estimate(&results, errors, Some(calibration), &options);
        writeln!(out, "{}", json!({ "summary": estimate }))?;
    }
    out.flush()?;
    Ok(())
}
