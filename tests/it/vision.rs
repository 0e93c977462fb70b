//! The local classifier through the real binary: `classify` on pictures generated here (and
//! two tiny generated fixtures), hostile files included; a clear failure without model files;
//! and, when the development set is next to the project (../shared), a quick accuracy check
//! on a few dozen labelled faces (skipped with a message otherwise).
//!
//! Needs the model files (scripts/test runs scripts/fetch-models.sh first).

use std::path::PathBuf;
use std::process::Command;

use audiencelens::config::Config;
use audiencelens::vision::{self, Classifier, ProfileType, dataset};
use image::{Rgb, RgbImage};
use serde_json::Value;

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary in the project root (where models/ is) with a clean environment.
fn audiencelens(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_audiencelens"))
        .args(args)
        .current_dir(project_root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AUDIENCELENS__LOG__FILTER", "warn")
        .envs(vars.iter().copied())
        .output()
        .expect("run audiencelens");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn silhouette(size: u32) -> RgbImage {
    let s = f64::from(size);
    RgbImage::from_fn(size, size, |x, y| {
        let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
        let head = (x - s / 2.0).powi(2) + (y - 0.38 * s).powi(2) < (0.18 * s).powi(2);
        let body = (x - s / 2.0).powi(2) + (y - s).powi(2) < (0.36 * s).powi(2);
        if head || body { Rgb([255, 255, 255]) } else { Rgb([219, 219, 219]) }
    })
}

/// A folder of generated pictures, good and hostile, with the answer expected for each.
fn picture_folder() -> (tempdir::Dir, Vec<(&'static str, &'static str)>) {
    let dir = tempdir::Dir::new("vision-classify");
    let save = |name: &str, picture: &RgbImage| picture.save(dir.path().join(name)).expect("save");
    save("avatar.png", &silhouette(150));
    save("grey.jpg", &RgbImage::from_pixel(150, 150, Rgb([120, 130, 140])));
    save(
        "stripes.webp",
        &RgbImage::from_fn(320, 320, |x, _| if x % 40 < 20 { Rgb([200, 30, 30]) } else { Rgb([20, 20, 20]) }),
    );
    let mut jpeg = Vec::new();
    RgbImage::from_pixel(64, 64, Rgb([90, 90, 90]))
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .expect("encode");
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).expect("write");
    write("truncated.jpg", &jpeg[..jpeg.len() / 2]);
    write("empty.jpg", &[]);
    write("anim.gif.jpg", b"GIF89a\x01\x00\x01\x00\x80\x00\x00");
    write("page.png", b"<!doctype html><html><body>404</body></html>");
    let fixtures = project_root().join("tests/fixtures");
    write("cmyk.jpg", &std::fs::read(fixtures.join("cmyk.jpg")).expect("fixture"));
    write("animated.webp", &std::fs::read(fixtures.join("animated.webp")).expect("fixture"));
    write("notes.txt", b"not a picture: folders only contribute picture extensions");
    let expected = vec![
        ("anim.gif.jpg", "error:unsupported_format"),
        ("animated.webp", "no_person"),
        ("avatar.png", "default_avatar"),
        ("cmyk.jpg", "no_person"),
        ("empty.jpg", "error:empty"),
        ("grey.jpg", "no_person"),
        ("page.png", "error:unsupported_format"),
        ("stripes.webp", "no_person"),
        ("truncated.jpg", "error:truncated"),
    ];
    (dir, expected)
}

#[test]
fn classify_prints_one_line_per_picture_and_a_summary() {
    let (dir, expected) = picture_folder();
    let folder = dir.path().to_str().expect("utf-8 path");
    let (code, stdout, stderr) = audiencelens(&["classify", folder, "--summary", "--threads", "2"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), expected.len() + 1, "{stdout}");
    for (line, (name, want)) in lines.iter().zip(&expected) {
        assert!(line["file"].as_str().is_some_and(|f| f.ends_with(name)), "order: {line}");
        let got = match line.get("result") {
            Some(r) => r["profile_type"].as_str().expect("type").to_owned(),
            None => format!("error:{}", line["error"]["code"].as_str().expect("code")),
        };
        assert_eq!(got, *want, "{name}: {line}");
        if let Some(r) = line.get("result") {
            assert_eq!(r["model"], vision::MODEL_NAME);
            assert!(r["abstain"].is_string(), "no face, no labels: {r}");
        }
    }
    let summary = &lines[expected.len()]["summary"];
    assert_eq!(summary["pictures"], 9);
    assert_eq!(summary["not_classified"], 4);
    assert_eq!(summary["gender"]["n"], 0);
    assert!(stderr.contains("4 of 9 pictures could not be classified"), "{stderr}");
}

#[test]
fn hostile_single_files_give_errors_not_crashes() {
    let dir = tempdir::Dir::new("vision-hostile");
    let huge = dir.path().join("huge.png");
    // A valid PNG header claiming 20000x20000 pixels, followed by a token of data.
    let mut ihdr = 20_000_u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&20_000_u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    png.extend(png_chunk(b"IEND", &[]));
    std::fs::write(&huge, &png).expect("write");
    let tiny = dir.path().join("tiny.png");
    RgbImage::from_pixel(1, 1, Rgb([0, 0, 0])).save(&tiny).expect("save");
    let (code, stdout, stderr) =
        audiencelens(&["classify", huge.to_str().expect("path"), tiny.to_str().expect("path")], &[]);
    assert_eq!(code, 1, "every picture failed: the command fails. {stderr}");
    assert!(stderr.contains("none of the 2 pictures could be classified"), "{stderr}");
    assert!(stdout.contains(r#""code":"too_large""#) && stdout.contains("20000x20000"), "{stdout}");
    assert!(stdout.contains(r#""code":"too_small""#), "{stdout}");
    // One readable picture among them: a result, with the failures in their lines.
    let plain = dir.path().join("plain.png");
    RgbImage::from_pixel(64, 64, Rgb([120, 140, 160])).save(&plain).expect("save");
    let (code, stdout, stderr) =
        audiencelens(&["classify", huge.to_str().expect("path"), plain.to_str().expect("path")], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(r#""code":"too_large""#) && stdout.contains(r#""profile_type""#), "{stdout}");
}

fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    let mut out = u32::try_from(data.len()).expect("small").to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn missing_models_are_named_with_the_fix() {
    let dir = tempdir::Dir::new("vision-nomodels");
    let picture = dir.path().join("grey.png");
    RgbImage::from_pixel(64, 64, Rgb([1, 2, 3])).save(&picture).expect("save");
    let empty = dir.path().to_str().expect("path");
    let (code, _, stderr) = audiencelens(
        &["classify", picture.to_str().expect("path")],
        &[("AUDIENCELENS__VISION__MODELS_DIR", empty)],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("blazeface.onnx") && stderr.contains("scripts/fetch-models.sh"), "{stderr}");
}

/// The development set, when it is next to the project.
fn shared_faces() -> Option<PathBuf> {
    let dir = project_root().join("../shared/data/faces");
    dir.join("labels.csv").is_file().then_some(dir)
}

#[test]
fn fairface_smoke_check_when_the_development_set_is_present() {
    let Some(faces) = shared_faces() else {
        eprintln!("skipped: ../shared/data/faces is not here (the development set is optional)");
        return;
    };
    let labels = dataset::read_labels(&faces.join("labels.csv"), Some(13)).expect("labels");
    let fairface: Vec<_> =
        labels.into_iter().filter(|l| l.file.starts_with("ff_")).step_by(10).take(40).collect();
    let paths = dataset::select(&faces, Some(&fairface), None).expect("select");
    let (pictures, _) =
        dataset::prepare(&paths, Some(150), 95, &vision::decode::DecodeLimits::from(&settings()));
    assert!(pictures.len() >= 30, "FairFace pictures are real JPEGs: {}", pictures.len());
    let classifier = Classifier::load(&settings()).expect("models");
    let (mut found, mut right) = (0, 0);
    for picture in &pictures {
        let label = fairface.iter().find(|l| l.file == picture.name).expect("labelled");
        let result = classifier.classify(&picture.bytes).expect("classified");
        let typed_face = matches!(result.profile_type, ProfileType::Person | ProfileType::Group);
        if let (true, Some(gender)) = (typed_face, result.gender) {
            found += 1;
            right += usize::from((gender.p_male > 0.7) == (label.gender == Some(vision::Gender::Male)));
        }
    }
    let n = pictures.len();
    assert!(found * 100 >= n * 95, "faces found in {found} of {n}");
    assert!(right * 100 >= found * 70, "gender right for {right} of {found}");
}

fn settings() -> audiencelens::config::VisionSettings {
    let mut settings = Config::load_from(None, &[]).expect("config").settings.vision;
    settings.models_dir = project_root().join("models");
    settings.onnxruntime_library = project_root().join("models/libonnxruntime.so");
    settings
}

/// A scratch folder removed on drop.
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(label: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("audiencelens-{label}-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&path).expect("temp dir");
            Self(path)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
