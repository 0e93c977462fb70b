//! The local profile-picture classifier: picture bytes → profile type (person, group, no
//! person, default avatar), face count, gender with p(male), age with bracket probabilities, or
//! an explicit abstention — offline, on the CPU, no API cost.
//!
//! Pipeline for one picture, all on the caller's thread:
//!
//! ```text
//! decode (limits, EXIF) ─► avatar rule ─► cascade: BlazeFace front (+ mirrored re-check,
//!   rescue pass) ─► back model when no close-up face ─► type ─► verify the faces (MTCNN O-Net
//!   and R-Net, chip texture; a second look at a face-less picture's best weak detection) ─►
//!   align the largest face (a 112x112 chip for face-api, 32x32 for Cydral's gender network)
//!   ─► age and gender, each averaged with the mirror image ─► bracket cuts, gender combined
//! ```
//!
//! A [`Classifier`] is built once (it fails naming any missing model file) and shared via `Arc`.
//! Each concurrent picture checks out a worker holding its own sessions (one inference thread
//! each); batch work runs pictures in parallel with [`batch::run_ordered`], async callers use
//! [`Classifier::classify_async`], which moves the work off the async runtime.
//!
//! Submodules: `decode`, `avatar`, `detect` + `boxes` + `cascade`, `verify`, `align`, `nets` +
//! `age`,
//! `result` (serialised types), `estimate` + `calibration` (audience shares), `labels`
//! (labelled sets), `runtime` + `pool` (ONNX Runtime and workers).
//!
//! Owns: the classification pipeline. Uses: `config::VisionSettings`; `ort`, `image`.

pub mod age;
pub mod align;
pub mod avatar;
pub mod batch;
pub mod boxes;
pub mod bracket_fit;
pub mod calibration;
pub mod cascade;
pub mod dataset;
pub mod decode;
pub mod detect;
pub mod error;
pub mod estimate;
pub mod files;
#[cfg(test)]
mod golden_tests;
pub mod labels;
pub mod nets;
mod pipeline;
mod pool;
pub mod resample;
pub mod result;
pub mod runtime;
mod settings;
pub mod shares;
pub mod verify;

use std::sync::Arc;
use std::time::Instant;

use image::RgbImage;

use self::cascade::Detectors;
use self::decode::DecodeLimits;
use self::detect::BlazeFace;
pub use self::error::{PictureError, VisionError};
use self::nets::FaceNets;
pub use self::pipeline::{StageTimes, default_avatar};
use self::pool::Pool;
pub use self::result::{
    Abstain, AgeEstimate, Bracket, FaceBox, Gender, GenderEstimate, PictureResult, ProfileType,
};
use self::runtime::ModelPaths;
pub use self::settings::{LabelSettings, MODEL_NAME};
use crate::config::VisionSettings;

/// The sessions one picture at a time needs.
pub(crate) struct Worker {
    pub(crate) detectors: Detectors,
    pub(crate) nets: FaceNets,
}

impl Worker {
    fn load(paths: &ModelPaths) -> Result<Self, VisionError> {
        let env = runtime::environment(&paths.library)?;
        Ok(Self {
            detectors: Detectors {
                front: BlazeFace::new(runtime::session(&env, &paths.front)?, 128),
                back: BlazeFace::new(runtime::session(&env, &paths.back)?, 256),
            },
            nets: FaceNets {
                gender: runtime::session(&env, &paths.gender)?,
                faceapi: runtime::session(&env, &paths.faceapi)?,
                onet: runtime::session(&env, &paths.onet)?,
                rnet: runtime::session(&env, &paths.rnet)?,
            },
        })
    }
}

/// The classifier: models loaded once, shared by every thread.
pub struct Classifier {
    paths: ModelPaths,
    labels: LabelSettings,
    limits: DecodeLimits,
    model: String,
    workers: Pool<Worker>,
}

impl Classifier {
    /// Loads the models named by `settings` (one worker now, more on demand up to
    /// `settings.worker_threads()`).
    pub fn load(settings: &VisionSettings) -> Result<Self, VisionError> {
        let paths = ModelPaths::new(settings);
        paths.check()?;
        let first = Worker::load(&paths)?;
        let labels = LabelSettings::from(settings);
        Ok(Self {
            model: labels.model_version(),
            labels,
            limits: DecodeLimits::from(settings),
            workers: Pool::new(first, settings.worker_threads()),
            paths,
        })
    }

    /// Model name and version recorded with every result.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.model
    }

    /// How many pictures can be classified at once.
    #[must_use]
    pub fn threads(&self) -> usize {
        self.workers.max()
    }

    /// Runs `f` with a worker (waiting for one if all are busy).
    pub(crate) fn with_worker<R>(&self, f: impl FnOnce(&mut Worker) -> R) -> Result<R, PictureError> {
        let mut worker = self
            .workers
            .checkout(|| Worker::load(&self.paths))
            .map_err(|e| PictureError::Inference(e.to_string()))?;
        Ok(f(&mut worker))
    }

    /// Classifies one picture given as file bytes (JPEG, PNG or WebP). Blocking: call it from a
    /// thread of its own, or use [`Classifier::classify_async`].
    pub fn classify(&self, bytes: &[u8]) -> Result<PictureResult, PictureError> {
        self.classify_timed(bytes, &mut StageTimes::default())
    }

    /// [`Classifier::classify`], adding the time of each stage to `times` (benchmarks).
    pub fn classify_timed(
        &self,
        bytes: &[u8],
        times: &mut StageTimes,
    ) -> Result<PictureResult, PictureError> {
        let started = Instant::now();
        let rgb = decode::decode_rgb(bytes, &self.limits);
        times.decode += started.elapsed();
        self.classify_rgb_timed(&rgb?, times)
    }

    /// [`Classifier::classify`] on a blocking thread, off the async runtime.
    pub async fn classify_async(self: &Arc<Self>, bytes: Vec<u8>) -> Result<PictureResult, PictureError> {
        let classifier = Arc::clone(self);
        tokio::task::spawn_blocking(move || classifier.classify(&bytes))
            .await
            .map_err(|e| PictureError::Inference(format!("classification task failed: {e}")))?
    }

    /// Classifies decoded pixels.
    pub fn classify_rgb(&self, rgb: &RgbImage) -> Result<PictureResult, PictureError> {
        self.classify_rgb_timed(rgb, &mut StageTimes::default())
    }

    fn classify_rgb_timed(
        &self,
        rgb: &RgbImage,
        times: &mut StageTimes,
    ) -> Result<PictureResult, PictureError> {
        times.pictures += 1;
        let started = Instant::now();
        let avatar = avatar::is_default_avatar(rgb);
        times.avatar += started.elapsed();
        if avatar {
            return Ok(default_avatar(&self.model));
        }
        self.with_worker(|worker| pipeline::classify_faces(worker, rgb, &self.labels, &self.model, times))?
    }
}
