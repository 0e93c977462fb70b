//! The networks on inputs with known outputs (measured with onnxruntime 1.32.0 from Python on
//! the same model files), and the whole pipeline on generated pictures. These
//! need the model files: run scripts/fetch-models.sh (scripts/test does).

use std::sync::OnceLock;

use image::{Rgb, RgbImage};

use super::*;
use crate::config::Config;

/// One classifier for every test in this binary (the runtime loads once per process).
pub(crate) fn classifier() -> &'static Classifier {
    static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
    CLASSIFIER.get_or_init(|| {
        let config = Config::load_from(None, &[]).expect("default configuration");
        Classifier::load(&config.settings.vision)
            .unwrap_or_else(|e| panic!("the vision tests need the model files: {e}"))
    })
}

fn grey(size: u32, v: u8) -> RgbImage {
    RgbImage::from_pixel(size, size, Rgb([v, v, v]))
}

#[test]
fn front_blazeface_on_a_uniform_picture() {
    let raw =
        classifier().with_worker(|w| w.detectors.front.raw_scores(&grey(128, 128), 0.0)).unwrap().unwrap();
    assert_eq!(raw.len(), detect::ANCHORS);
    let (argmax, max) =
        raw.iter().enumerate().fold((0, f32::MIN), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
    assert_eq!(argmax, 837);
    assert!((max - -3.071_52).abs() < 1e-3, "{max}");
    assert!((raw[0] - -5.473_85).abs() < 1e-3, "{}", raw[0]);
    assert!((raw[895] - -46.925_59).abs() < 1e-3, "{}", raw[895]);
}

#[test]
fn face_networks_on_uniform_chips() {
    let (gender, faceapi, onet, rnet) = classifier()
        .with_worker(|w| {
            let chip = grey(64, 128);
            (
                w.nets.gender_probabilities(&align::box_half(&chip)),
                w.nets.faceapi(&grey(112, 128), false),
                w.nets.onet(&[(&grey(48, 128), false)]),
                w.nets.rnet(&grey(24, 128)),
            )
        })
        .unwrap();
    let gender = gender.unwrap();
    assert!((gender[0] - 0.8763).abs() < 1e-4 && (gender[1] - 0.1237).abs() < 1e-4, "{gender:?}");
    let faceapi = faceapi.unwrap();
    assert!((faceapi.age - 15.2696).abs() < 1e-3 && (faceapi.p_male - 0.99899).abs() < 1e-4, "{faceapi:?}");
    let onet = onet.unwrap();
    assert!((onet[0] - 3.903e-4).abs() < 1e-6, "{onet:?}");
    assert!((rnet.unwrap() - 3.5496e-3).abs() < 1e-6);
}

#[test]
fn plain_pictures_have_no_face() {
    for picture in
        [grey(150, 128), RgbImage::from_fn(320, 200, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]))]
    {
        let result = classifier().classify_rgb(&picture).unwrap();
        assert_eq!(result.profile_type, ProfileType::NoPerson);
        assert_eq!(result.abstain, Some(Abstain::NoFace));
        assert_eq!((result.face_count, result.gender, result.age), (0, None, None));
        assert_eq!(result.model, MODEL_NAME);
    }
}

#[test]
fn the_default_avatar_is_recognised_before_detection() {
    let picture = RgbImage::from_fn(150, 150, |x, y| {
        let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
        let head = (x - 75.0).powi(2) + (y - 57.0).powi(2) < 27.0_f64.powi(2);
        let body = (x - 75.0).powi(2) + (y - 150.0).powi(2) < 54.0_f64.powi(2);
        if head || body { Rgb([255, 255, 255]) } else { Rgb([219, 219, 219]) }
    });
    let result = classifier().classify_rgb(&picture).unwrap();
    assert_eq!(result.profile_type, ProfileType::DefaultAvatar);
    assert_eq!(result.abstain, Some(Abstain::DefaultAvatar));
}

#[test]
fn hostile_bytes_give_errors_through_the_classifier() {
    let c = classifier();
    assert_eq!(c.classify(&[]), Err(PictureError::Empty));
    assert_eq!(c.classify(b"GIF89a\x01\x00"), Err(PictureError::Unsupported("GIF")));
    assert!(matches!(c.classify(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16]), Err(PictureError::Truncated { .. })));
}

#[test]
fn classify_async_runs_off_the_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut png = Vec::new();
    grey(64, 40).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    let c = Arc::new(Classifier::load(&Config::load_from(None, &[]).unwrap().settings.vision).unwrap());
    let result = runtime.block_on(c.classify_async(png)).unwrap();
    assert_eq!(result.profile_type, ProfileType::NoPerson);
}
