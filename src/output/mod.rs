//! What a sweep writes: the CSV ([`csv`]: header and rows; [`sink`]: the ordered
//! writer thread), streamed in row order through a file that becomes final only
//! when complete, the [`checkpoint`] that says how much of it is on disk, and its
//! [`manifest`].

pub mod checkpoint;
pub mod csv;
pub mod manifest;
pub mod nonfinite;
pub mod parquet;
pub mod progress;
pub mod sink;
pub mod transaction;

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The format of a sweep's rows file (defined with the provenance types, which record it).
pub use crate::sweep::provenance::OutputFormat;

/// An I/O error on a file of the output, naming the file (exit status 1).
#[derive(Debug, thiserror::Error)]
#[error("{what} {}", path.display())]
pub struct FileError {
    /// What was being done, e.g. "writing".
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl FileError {
    pub fn new(what: &'static str, path: &Path, source: io::Error) -> FileError {
        FileError { what, path: path.to_path_buf(), source }
    }
}

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

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file's first line (its CSV header, newline included), length, line count
/// and SHA-256, from one pass over it.
pub struct Scan {
    pub header: String,
    pub bytes: u64,
    pub lines: u64,
    pub sha256: String,
}

/// Reads `path` once: [`Scan`].
pub fn scan(path: &Path) -> Result<Scan, FileError> {
    let err = |e| FileError::new("reading", path, e);
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(err)?);
    // The first line as bytes (a Parquet file is not text), at most 1 MiB of it: a
    // header is a few KiB; the rest of a longer "line" is hashed and counted below.
    let mut first = Vec::new();
    (&mut r).take(1 << 20).read_until(b'\n', &mut first).map_err(err)?;
    let mut hash = Sha256::new();
    hash.update(&first);
    let (mut bytes, mut lines) = (first.len() as u64, first.ends_with(b"\n") as u64);
    let header = String::from_utf8_lossy(&first).into_owned();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bytes += n as u64;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok(Scan { header, bytes, lines, sha256: hex(&hash.finalize()) })
}

/// The SHA-256 state of the first `len` bytes of `file` (read from its start),
/// or `None` when the file is shorter.
pub fn hash_prefix(file: &mut File, len: u64) -> io::Result<Option<Sha256>> {
    use io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    let mut hash = Sha256::new();
    let copied = io::copy(&mut Read::take(&mut *file, len), &mut hash)?;
    Ok((copied == len).then_some(hash))
}

/// A file being appended to and hashed as it goes: the ordered writer's output
/// (and a Parquet run's side log), and `merge`'s output.
pub struct HashedWriter {
    path: PathBuf,
    w: BufWriter<File>,
    bytes: u64,
    hash: Sha256,
}

impl HashedWriter {
    /// A new, empty file.
    pub fn new(path: PathBuf, file: File, capacity: usize) -> HashedWriter {
        HashedWriter::resume(path, file, capacity, 0, Sha256::new())
    }

    /// A file that already holds `bytes` bytes hashing to `hash`, opened for appending.
    pub fn resume(path: PathBuf, file: File, capacity: usize, bytes: u64, hash: Sha256) -> HashedWriter {
        HashedWriter { path, w: BufWriter::with_capacity(capacity, file), bytes, hash }
    }

    pub fn put(&mut self, b: &[u8]) -> Result<(), FileError> {
        self.w.write_all(b).map_err(|e| FileError::new("writing", &self.path, e))?;
        self.hash.update(b);
        self.bytes += b.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The SHA-256 (hex) of the bytes written so far.
    pub fn sha256(&self) -> String {
        hex(&self.hash.clone().finalize())
    }

    /// Flushes and syncs the file, and checks that it is still where it was.
    pub fn sync(&mut self) -> Result<(), FileError> {
        let synced = self.w.flush().and_then(|()| self.w.get_ref().sync_data()).and_then(|()| still_there(&self.path, self.w.get_ref()));
        synced.map_err(|e| FileError::new("writing", &self.path, e))
    }
}

/// Fails when `path` no longer names `file` (removed or replaced during the run),
/// so that rows are not written on into a file nobody will find.
fn still_there(path: &Path, file: &File) -> std::io::Result<()> {
    let gone = || std::io::Error::new(std::io::ErrorKind::NotFound, "the file was removed or replaced during the run");
    let on_disk = std::fs::metadata(path).map_err(|e| if e.kind() == std::io::ErrorKind::NotFound { gone() } else { e })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata()?;
        if (on_disk.dev(), on_disk.ino()) != (open.dev(), open.ino()) {
            return Err(gone());
        }
    }
    #[cfg(not(unix))]
    let _ = (on_disk, file);
    Ok(())
}
