//! What a sweep writes: the CSV ([`csv`]), streamed in row order through a file
//! that becomes final only when complete, and its manifest ([`manifest`]).

pub mod csv;
pub mod manifest;
pub mod progress;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// `<path>.partial`: where a file is written until it is complete.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// `<path>.manifest.json`.
pub fn manifest_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

/// Creates `<path>.partial` (and the folders above it), so that an output path
/// that cannot be written is reported before any work starts.
pub fn create_partial(path: &Path) -> io::Result<(PathBuf, File)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let partial = partial_path(path);
    let file = File::create(&partial)?;
    Ok((partial, file))
}
