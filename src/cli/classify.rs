//! `audiencelens classify PATH...`: classify picture files and folders with the local
//! classifier, Gemini, or the cascade of both. Standard output is JSON lines: one
//! `{"file", "result"}` or `{"file", "error"}` per picture in input order (with Gemini also the
//! result's `source`, why it was sent, why Gemini abstained and its cost), then with
//! `--summary` one `{"summary": ...}` holding the audience estimate of the whole set (and the
//! cost). Progress and the cost go to standard error.
//!
//! Owns: the command's input and output format. Uses: `vision`, `cascade`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;

use serde::Serialize;

use crate::cascade::{Budget, Classifiers, Mode, Outcome, Session, Totals};
use crate::clients::gemini::GeminiClient;
use crate::config::Config;
use crate::vision::calibration::Calibration;
use crate::vision::estimate::{self, EstimateOptions};
use crate::vision::result::{ErrorInfo, FileOutcome};
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
    /// local: the on-device model; gemini: Gemini for every picture (local where it gives no
    /// labels); cascade: local first, Gemini for the pictures it is unsure of. Gemini needs
    /// `GEMINI_API_KEY` and the `[gemini]` settings.
    #[arg(long, value_enum, default_value = "local")]
    pub classifier: Mode,
    /// Spend at most this on Gemini, in US dollars (default: `gemini.budget_usd_per_analysis`).
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,
}

/// The classifiers for `mode`: the Gemini client (an error saying how to set the key when it
/// is missing) and the local model (required unless the mode is gemini, where it is only the
/// fallback).
pub fn build_classifiers(config: &Config, mode: Mode, threads: Option<usize>) -> anyhow::Result<Classifiers> {
    let mut settings = config.settings.vision.clone();
    if let Some(threads) = threads {
        settings.threads = threads;
    }
    let gemini = if mode.uses_gemini() {
        Some(GeminiClient::new(&config.settings.gemini, config.secrets.gemini_api_key.as_ref())?)
    } else {
        None
    };
    let local = match Classifier::load(&settings) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) if mode == Mode::Gemini => {
            eprintln!("classify: no local fallback for pictures Gemini cannot label: {e}");
            None
        }
        Err(e) => return Err(anyhow::Error::from(e).context("loading the local classifier")),
    };
    Ok(Classifiers { mode, local, gemini, rules: config.settings.gemini.cascade.clone() })
}

/// A Gemini session with a budget of `budget_usd` (default: the configured one).
#[must_use]
pub fn session(config: &Config, budget_usd: Option<f64>) -> Session {
    let settings = &config.settings.gemini;
    let usd = budget_usd.unwrap_or(settings.budget_usd_per_analysis).max(0.0);
    Session::new(Budget::new((usd * 1e9).round() as i64, 0), settings.expected_prompt_tokens_per_picture)
}

/// Pictures per round of the cascade: the progress step, and the pictures held in memory.
const ROUND: usize = 48;

/// Classifies `inputs` (bytes, or why a file could not be read) in rounds, calling `each`
/// with every outcome in input order.
///
/// # Errors
/// A fatal Gemini error (key, project, model): what came before it was already passed on.
pub async fn run_rounds(
    classifiers: &Classifiers,
    session: &Session,
    inputs: Vec<Result<Vec<u8>, String>>,
    label: &'static str,
    mut each: impl FnMut(usize, Outcome),
) -> anyhow::Result<Totals> {
    let total = inputs.len();
    let mut totals = Totals::default();
    let mut inputs = inputs.into_iter().enumerate().peekable();
    let started = Instant::now();
    while inputs.peek().is_some() {
        let round: Vec<(usize, Result<Vec<u8>, String>)> = inputs.by_ref().take(ROUND).collect();
        let readable: Vec<Vec<u8>> = round.iter().filter_map(|(_, r)| r.as_ref().ok().cloned()).collect();
        let run = classifiers.run(readable, session).await;
        totals.add(&run.totals);
        if let Some(fatal) = run.fatal {
            // What was spent before the error is still reported.
            totals.pictures = total;
            eprintln!("{}", cost_line(label, &totals, classifiers, session));
            return Err(anyhow::Error::from(fatal).context("Gemini stopped"));
        }
        let mut outcomes = run.outcomes.into_iter();
        for (i, input) in round {
            let outcome = match input {
                Ok(_) => outcomes.next().unwrap_or_else(|| Outcome::failed("no outcome".into())),
                Err(e) => Outcome::failed(e),
            };
            each(i, outcome);
        }
        let done = inputs.peek().map_or(total, |(i, _)| *i);
        if total >= ROUND {
            eprintln!(
                "{label}: {done}/{total} pictures, {} sent to Gemini, ${:.6} so far, {:.0} pictures/s",
                totals.sent_to_gemini,
                totals.cost_nano_usd as f64 / 1e9,
                done as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    totals.pictures = total;
    Ok(totals)
}

/// The cost line printed after a run with Gemini.
#[must_use]
pub fn cost_line(label: &str, totals: &Totals, classifiers: &Classifiers, session: &Session) -> String {
    let price = classifiers.gemini.as_ref().map(|g| g.price().clone());
    format!(
        "{label}: Gemini: {} of {} pictures sent in {} requests; {} labelled, {} abstained, {} over budget, \
         {} not sent (Gemini unavailable), {} not sent (format); tokens: {} prompt, {} output, {} thinking; \
         cost ${:.6}{} (budget ${:.2})",
        totals.sent_to_gemini,
        totals.pictures,
        totals.requests,
        totals.gemini_labelled,
        totals.gemini_abstained,
        totals.over_budget,
        totals.gemini_unavailable,
        totals.unsupported,
        totals.usage.prompt_tokens,
        totals.usage.candidates_tokens,
        totals.usage.thoughts_tokens,
        totals.cost_nano_usd as f64 / 1e9,
        price.map_or(String::new(), |p| format!(
            " at ${}/${} per million input/output tokens ({})",
            p.input, p.output, p.model
        )),
        session.budget.limit_nano_usd() as f64 / 1e9,
    )
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
    if args.classifier != Mode::Local {
        return run_with_gemini(args, &config).await;
    }
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
    all_failed(errors, paths.len())
}

/// Some pictures failing is a result (each has its error line); all of them failing is not.
fn all_failed(errors: usize, pictures: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        pictures == 0 || errors < pictures,
        "none of the {pictures} pictures could be classified (see their \"error\" lines)"
    );
    Ok(())
}

/// One output line of a run with Gemini.
#[derive(Serialize)]
struct Line<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a PictureResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_because: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gemini_abstain: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorInfo>,
}

async fn run_with_gemini(args: ClassifyArgs, config: &Config) -> anyhow::Result<()> {
    let calibration = match &args.calibration {
        Some(path) => vec![Calibration::load(path)?],
        None => crate::cascade::calibrations(config),
    };
    let paths = files::list_pictures(&args.paths)?;
    anyhow::ensure!(!paths.is_empty(), "no pictures found in the given paths");
    let classifiers = build_classifiers(config, args.classifier, args.threads)?;
    let session = session(config, args.budget_usd);
    let inputs: Vec<Result<Vec<u8>, String>> = paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| PictureError::Unreadable(e.to_string()).to_string()))
        .collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut results, mut errors, mut write_error) = (Vec::new(), 0_usize, None);
    let totals = run_rounds(&classifiers, &session, inputs, "classify", |i, outcome| {
        let file = paths[i].display().to_string();
        let best = outcome.best();
        let line = Line {
            file: &file,
            result: best,
            source: best.map(|_| if outcome.gemini.is_some() { "gemini" } else { "local" }),
            sent_because: outcome.sent_because,
            gemini_abstain: outcome.gemini_abstain.as_deref(),
            cost_usd: (outcome.cost_nano_usd > 0).then(|| outcome.cost_nano_usd as f64 / 1e9),
            error: outcome
                .error
                .as_ref()
                .filter(|_| best.is_none())
                .map(|e| ErrorInfo { code: "unreadable", message: e.clone() }),
        };
        let line = serde_json::to_string(&line).map_err(std::io::Error::from);
        if let Err(e) = line.and_then(|line| writeln!(out, "{line}")) {
            write_error.get_or_insert(e);
        }
        match best {
            Some(r) => results.push(r.clone()),
            None => errors += 1,
        }
    })
    .await?;
    if let Some(e) = write_error {
        return Err(e).context("writing results");
    }
    if args.summary {
        let options = EstimateOptions { include_groups: args.include_groups, ..EstimateOptions::default() };
        if args.classifier == Mode::Cascade
            && totals.over_budget + totals.gemini_unavailable + totals.unsupported == 0
        {
            let system = crate::cascade::cascade_model(config);
            crate::cascade::as_system(&mut results, Some(&system), &calibration);
        }
        let chosen = crate::cascade::pick_calibration(&results, &calibration).or(calibration.first());
        let estimate = estimate::estimate(&results, errors, chosen, &options);
        writeln!(
            out,
            "{}",
            json!({ "summary": estimate, "cost": {
                "total_usd": totals.cost_nano_usd as f64 / 1e9,
                "gemini": totals,
            }})
        )?;
    }
    out.flush()?;
    if errors > 0 {
        eprintln!(
            "classify: {errors} of {} pictures could not be classified (see their \"error\" lines)",
            paths.len()
        );
    }
    eprintln!("{}", cost_line("classify", &totals, &classifiers, &session));
    all_failed(errors, paths.len())
}
