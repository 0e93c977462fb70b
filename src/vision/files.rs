//! Which files are pictures to classify: files named on the command line are always taken;
//! folders contribute their JPEG, PNG and WebP files (by extension, sorted, not recursive).
//!
//! Owns: picture listing. Uses: std only.

use std::path::{Path, PathBuf};

/// Extensions taken from folders (case-insensitive).
pub const PICTURE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

#[must_use]
pub fn has_picture_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PICTURE_EXTENSIONS.iter().any(|p| p.eq_ignore_ascii_case(e)))
}

/// The picture files of `paths`, in order: each file as given, each folder's pictures sorted.
pub fn list_pictures(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && has_picture_extension(p))
                .collect();
            found.sort();
            out.extend(found);
        } else if path.exists() {
            out.push(path.clone());
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} does not exist", path.display()),
            ));
        }
    }
    Ok(out)
}
