//! ONNX Runtime set-up: the shared library is loaded once per process from the configured path
//! (never from the internet), one environment is kept for the process's life, and every session
//! runs on its caller's thread (one intra-op thread, sequential execution, all graph
//! optimisations). Model files are checked up front so a missing one is named.
//!
//! Owns: the runtime environment and session options; model file names. Uses: `ort`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use super::error::VisionError;
use crate::config::VisionSettings;

/// File names inside `vision.models_dir`.
pub const FRONT_MODEL: &str = "blazeface.onnx";
pub const BACK_MODEL: &str = "blazeface-back.onnx";
pub const GENDER_MODEL: &str = "gender-v1-ftz.onnx";
pub const FACEAPI_MODEL: &str = "faceapi-age-gender.onnx";
pub const ONET_MODEL: &str = "mtcnn-onet.onnx";
pub const RNET_MODEL: &str = "mtcnn-rnet.onnx";

/// Where every file the classifier loads lives.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    pub library: PathBuf,
    pub front: PathBuf,
    pub back: PathBuf,
    pub gender: PathBuf,
    pub faceapi: PathBuf,
    pub onet: PathBuf,
    pub rnet: PathBuf,
}

impl ModelPaths {
    #[must_use]
    pub fn new(settings: &VisionSettings) -> Self {
        let dir = &settings.models_dir;
        Self {
            library: settings.onnxruntime_library.clone(),
            front: dir.join(FRONT_MODEL),
            back: dir.join(BACK_MODEL),
            gender: dir.join(GENDER_MODEL),
            faceapi: dir.join(FACEAPI_MODEL),
            onet: dir.join(ONET_MODEL),
            rnet: dir.join(RNET_MODEL),
        }
    }

    /// Fails naming the first missing file.
    pub fn check(&self) -> Result<(), VisionError> {
        let files = [
            (&self.library, "the ONNX Runtime library", "vision.onnxruntime_library"),
            (&self.front, "the BlazeFace front model", "vision.models_dir"),
            (&self.back, "the BlazeFace back model", "vision.models_dir"),
            (&self.gender, "the gender network", "vision.models_dir"),
            (&self.faceapi, "the age and gender network (face-api)", "vision.models_dir"),
            (&self.onet, "the face verifier (MTCNN O-Net)", "vision.models_dir"),
            (&self.rnet, "the face verifier (MTCNN R-Net)", "vision.models_dir"),
        ];
        for (path, what, setting) in files {
            if !path.is_file() {
                return Err(VisionError::MissingFile { what, path: path.clone(), setting });
            }
        }
        Ok(())
    }
}

/// The process's ONNX Runtime environment, loading the library from `library` the first time.
pub fn environment(library: &Path) -> Result<Environment, VisionError> {
    static LOADED: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);
    let absolute = std::fs::canonicalize(library).map_err(|_| VisionError::MissingFile {
        what: "the ONNX Runtime library",
        path: library.to_path_buf(),
        setting: "vision.onnxruntime_library",
    })?;
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((path, env)) = loaded.as_ref() {
        if *path != absolute {
            return Err(VisionError::RuntimeAlreadyLoaded { loaded: path.clone(), requested: absolute });
        }
        return Ok(env.clone());
    }
    let runtime_error = |reason: String| VisionError::Runtime { path: absolute.clone(), reason };
    let env = ort::init_from(&absolute)
        .map_err(|e| runtime_error(e.to_string()))?
        .with_name("audiencelens")
        .with_telemetry(false)
        .build()
        .map_err(|e| runtime_error(e.to_string()))?;
    *loaded = Some((absolute, env.clone()));
    Ok(env)
}

/// A session for the model at `path` that runs on the calling thread only.
pub fn session(env: &Environment, path: &Path) -> Result<Session, VisionError> {
    let build = || -> ort::Result<Session> {
        Session::builder(env)?
            .with_intra_threads(1)?
            .with_inter_threads(1)?
            .with_parallel_execution(false)?
            .with_optimization_level(GraphOptimizationLevel::All)?
            .commit_from_file(path)
    };
    build().map_err(|e| VisionError::Model { path: path.to_path_buf(), reason: e.to_string() })
}
