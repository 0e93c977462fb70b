//! The vision module's errors: [`VisionError`] when the classifier cannot be built (missing
//! model files, runtime library), [`PictureError`] for one picture that cannot be classified.
//!
//! Owns: error types only. Uses: nothing else in the crate.

use std::path::PathBuf;

/// The classifier cannot be set up. Start-up errors: the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("{what} not found at {}: run scripts/fetch-models.sh (it writes models/) or set {setting}", path.display())]
    MissingFile { what: &'static str, path: PathBuf, setting: &'static str },
    #[error("cannot load the ONNX Runtime library {}: {reason}", path.display())]
    Runtime { path: PathBuf, reason: String },
    #[error(
        "ONNX Runtime is already loaded from {} in this process; cannot switch to {}",
        loaded.display(),
        requested.display()
    )]
    RuntimeAlreadyLoaded { loaded: PathBuf, requested: PathBuf },
    #[error("cannot load the model {}: {reason}", path.display())]
    Model { path: PathBuf, reason: String },
}

/// One picture could not be classified. Every variant is a clear, expected outcome for hostile
/// or broken input, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PictureError {
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    #[error("empty file")]
    Empty,
    #[error("unsupported format: {0} (JPEG, PNG and WebP are supported)")]
    Unsupported(&'static str),
    #[error("file too large: {bytes} bytes (limit {limit})")]
    TooManyBytes { bytes: usize, limit: usize },
    #[error("picture too large: {width}x{height} pixels (limit {max_side} per side, {max_pixels} in all)")]
    TooLarge { width: u32, height: u32, max_side: u32, max_pixels: u64 },
    #[error("picture too small: {width}x{height} pixels (at least {min_side} per side)")]
    TooSmall { width: u32, height: u32, min_side: u32 },
    #[error("truncated {format} data")]
    Truncated { format: &'static str },
    #[error("cannot decode {format}: {reason}")]
    Corrupt { format: &'static str, reason: String },
    #[error("inference failed: {0}")]
    Inference(String),
}

impl PictureError {
    /// A stable machine-readable code, for JSON output and counts.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreadable(_) => "unreadable",
            Self::Empty => "empty",
            Self::Unsupported(_) => "unsupported_format",
            Self::TooManyBytes { .. } => "too_many_bytes",
            Self::TooLarge { .. } => "too_large",
            Self::TooSmall { .. } => "too_small",
            Self::Truncated { .. } => "truncated",
            Self::Corrupt { .. } => "corrupt",
            Self::Inference(_) => "inference",
        }
    }
}

impl From<ort::Error> for PictureError {
    fn from(error: ort::Error) -> Self {
        Self::Inference(error.to_string())
    }
}
