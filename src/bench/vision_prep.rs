//! The reference side of the vision benchmark: running `scripts/reference_bench.py` to get
//! its throughput, its per-image answers and the identical prepared JPEGs (`--export-dir`).
//!
//! Owns: the reference subprocess and its output format. Uses: `vision`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;

use super::vision_eval::Prediction;
use crate::vision::dataset::{Prepared, Skipped, file_name};
use crate::vision::{Bracket, Gender};

/// Reads the JPEGs the reference script exported for `paths` (`<stem>.jpg`); a picture it
/// could not read has none.
pub fn read_exported(paths: &[PathBuf], dir: &Path) -> (Vec<Prepared>, Skipped) {
    let (mut out, mut skipped) = (Vec::new(), Skipped::default());
    for path in paths {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match std::fs::read(dir.join(format!("{stem}.jpg"))) {
            Ok(bytes) => out.push(Prepared { name: file_name(path), bytes }),
            Err(_) => skipped.add(path, "not readable by the reference script either"),
        }
    }
    (out, skipped)
}

/// What one run of the reference script reported.
pub struct ReferenceRun {
    pub throughput: f64,
    pub images: usize,
    pub report: serde_json::Value,
    pub predictions: BTreeMap<String, Prediction>,
}

/// Options passed through to the reference script.
pub struct ReferenceOptions<'a> {
    pub script: &'a Path,
    pub images: &'a Path,
    pub size: u32,
    pub quality: u8,
    pub labels: Option<&'a Path>,
    pub min_age: Option<u32>,
    pub limit: Option<usize>,
    pub warmup: usize,
}

/// Runs the reference script once; `export` writes its prepared JPEGs there.
pub fn run_reference(
    o: &ReferenceOptions<'_>,
    work: &Path,
    export: Option<&Path>,
) -> anyhow::Result<ReferenceRun> {
    let per_image = work.join("reference-per-image.jsonl");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut cmd = Command::new(&python);
    cmd.arg(o.script)
        .arg(o.images)
        .args(["--size", &o.size.to_string(), "--quality", &o.quality.to_string()])
        .args(["--warmup", &o.warmup.to_string()])
        .arg("--per-image")
        .arg(&per_image)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(labels) = o.labels {
        cmd.arg("--labels").arg(labels);
    }
    if let Some(min_age) = o.min_age {
        cmd.args(["--min-age", &min_age.to_string()]);
    }
    if let Some(limit) = o.limit {
        cmd.args(["--limit", &limit.to_string()]);
    }
    if let Some(dir) = export {
        cmd.arg("--export-dir").arg(dir);
    }
    let output = cmd.output().with_context(|| format!("running {python} {}", o.script.display()))?;
    anyhow::ensure!(output.status.success(), "the reference benchmark failed ({})", output.status);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading the reference benchmark's JSON report")?;
    let number = |key: &str| report.get(key).and_then(serde_json::Value::as_f64);
    let throughput = number("throughput_img_per_s").context("the reference report has no throughput")?;
    let images = number("images").unwrap_or(0.0) as usize;
    let text = std::fs::read_to_string(&per_image).context("reading the reference's per-image output")?;
    let mut predictions = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).context("reference per-image line")?;
        let file = v.get("file").and_then(|f| f.as_str()).unwrap_or_default().to_owned();
        let age = v.get("age").and_then(serde_json::Value::as_f64);
        predictions.insert(
            file,
            Prediction {
                faces: v.get("faces").and_then(serde_json::Value::as_u64).unwrap_or(0) as u32,
                gender: v.get("gender").and_then(|g| g.as_str()).and_then(Gender::parse),
                age,
                // The reference script buckets the unrounded age.
                bracket: age.map(|a| {
                    Bracket::ALL[Bracket::LOWER.iter().rposition(|&lo| a >= f64::from(lo)).unwrap_or(0)]
                }),
            },
        );
    }
    Ok(ReferenceRun { throughput, images, report, predictions })
}
