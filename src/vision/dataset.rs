//! Labelled picture sets for calibration and benchmarks: which pictures to use, and preparing
//! them the way profile pictures are served (longer side resized with a Lanczos filter, then
//! re-encoded as JPEG), the same protocol as `scripts/reference_bench.py`.
//!
//! Owns: selection and preparation of labelled sets. Uses: `labels`, `decode`, `files`.

use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};

use super::decode::{DecodeLimits, decode_rgb};
use super::files;
use super::labels::{self, Labelled};

/// A labels file, keeping rows of people aged `min_age` and over when given.
pub fn read_labels(path: &Path, min_age: Option<u32>) -> Result<Vec<Labelled>, labels::LabelsError> {
    let all = labels::read(path)?;
    Ok(all.into_iter().filter(|l| min_age.is_none_or(|m| l.reaches_age(m))).collect())
}

/// The pictures to use: labelled ones that exist (sorted by name), or every picture of the
/// folder; then the first `limit`.
pub fn select(
    images: &Path,
    labels: Option<&[Labelled]>,
    limit: Option<usize>,
) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = match labels {
        Some(labels) => {
            let mut p: Vec<PathBuf> =
                labels.iter().map(|l| images.join(&l.file)).filter(|p| p.is_file()).collect();
            p.sort();
            p
        }
        None => files::list_pictures(&[images.to_path_buf()])?,
    };
    if let Some(n) = limit {
        paths.truncate(n);
    }
    Ok(paths)
}

/// A prepared picture: its file name and the bytes to classify.
pub struct Prepared {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Files that could not be prepared: how many, and the first with its reason.
#[derive(Debug, Default)]
pub struct Skipped {
    pub count: usize,
    pub example: Option<String>,
}

impl Skipped {
    pub fn add(&mut self, path: &Path, reason: impl std::fmt::Display) {
        self.count += 1;
        self.example.get_or_insert_with(|| format!("{}: {reason}", path.display()));
    }
}

#[must_use]
pub fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Reads the pictures; with a `size`, each is decoded, resized so its longer side is `size`
/// and re-encoded as JPEG at `quality`. Unreadable files are counted, not fatal.
#[must_use]
pub fn prepare(
    paths: &[PathBuf],
    size: Option<u32>,
    quality: u8,
    limits: &DecodeLimits,
) -> (Vec<Prepared>, Skipped) {
    let (mut out, mut skipped) = (Vec::new(), Skipped::default());
    for path in paths {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                skipped.add(path, e);
                continue;
            }
        };
        let Some(size) = size else {
            out.push(Prepared { name: file_name(path), bytes });
            continue;
        };
        let rgb = match decode_rgb(&bytes, limits) {
            Ok(rgb) => rgb,
            Err(e) => {
                skipped.add(path, e);
                continue;
            }
        };
        let scale = f64::from(size) / f64::from(rgb.width().max(rgb.height()));
        let target = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
        let (w, h) = (target(rgb.width()), target(rgb.height()));
        let resized =
            if (w, h) == rgb.dimensions() { rgb } else { imageops::resize(&rgb, w, h, FilterType::Lanczos3) };
        let mut jpeg = Vec::new();
        match JpegEncoder::new_with_quality(&mut jpeg, quality).encode_image(&resized) {
            Ok(()) => out.push(Prepared { name: file_name(path), bytes: jpeg }),
            Err(e) => skipped.add(path, e),
        }
    }
    (out, skipped)
}
