//! Helpers for the tests that drive the real binary as a process: signals, files
//! watched while it runs, a small tmpfs (root only).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_moatsweep")
}

/// The binary, run from the repository root.
pub fn moatsweep() -> Command {
    let mut c = Command::new(bin());
    c.current_dir(root());
    c
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits for `cond`, polling. The limit only keeps a broken run from hanging the
/// suite; no assertion depends on how long anything takes.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(300), "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The checkpoint at `path`, read as plain JSON (not through moatsweep's own type).
pub fn checkpoint(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// `next_row` of the checkpoint at `path`, if it exists and is complete.
pub fn checkpoint_row(path: &Path) -> Option<u64> {
    checkpoint(path)?["next_row"].as_u64()
}

/// Checks that the checkpoint at `cp` vouches only for bytes that are in `partial`:
/// its `bytes` long prefix has its `sha256` and holds the header and exactly the
/// rows `first_row..next_row`, in order. Returns (next_row, bytes).
pub fn assert_checkpoint_consistent(cp: &Path, partial: &Path, first_row: u64) -> (u64, u64) {
    let c = checkpoint(cp).unwrap_or_else(|| panic!("no readable checkpoint at {}", cp.display()));
    let (next, len) = (c["next_row"].as_u64().unwrap(), c["bytes"].as_u64().unwrap());
    let data = std::fs::read(partial).unwrap();
    assert!(data.len() as u64 >= len, "the checkpoint claims {len} bytes, the file holds {}", data.len());
    let prefix = &data[..len as usize];
    assert_eq!(sha256_hex(prefix), c["sha256"].as_str().unwrap(), "SHA-256 of the prefix the checkpoint vouches for");
    let text = std::str::from_utf8(prefix).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "the prefix ends mid-line");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, if len == 0 { 0 } else { next - first_row + 1 }, "header + rows {first_row}..{next}");
    for (k, line) in lines.iter().skip(1).enumerate() {
        assert!(line.starts_with(&format!("{},", first_row + k as u64)), "row {} out of place: {line}", first_row + k as u64);
    }
    (next, len)
}

/// A running binary whose stderr is collected as it comes.
pub struct Running {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Running { child, stderr }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends a real signal to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.child.id());
    }

    /// Whether the process has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Waits for the process and for the last of its stderr.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        // The reader thread ends at EOF, which follows the exit.
        wait_for("the end of stderr", || Arc::strong_count(&self.stderr) == 1);
        let text = self.stderr();
        (status, text)
    }
}

/// The files of a run whose `--out` is `out` and whose rows are `a..b` of a larger sweep.
pub struct Block {
    pub csv: PathBuf,
    pub partial: PathBuf,
    pub checkpoint: PathBuf,
    pub manifest: PathBuf,
}

impl Block {
    pub fn new(dir: &Path, stem: &str, suffix: &str) -> Block {
        let csv = dir.join(format!("{stem}.{suffix}.csv"));
        let with = |ext: &str| PathBuf::from(format!("{}{ext}", csv.display()));
        Block { partial: with(".partial"), checkpoint: with(".partial.checkpoint"), manifest: with(".manifest.json"), csv }
    }
}

/// A tmpfs of `size` (e.g. "3m") mounted on a fresh folder, unmounted on drop.
/// Needs root; without it (or where mount fails) the test is skipped loudly,
/// unless MOATSWEEP_REQUIRE_ROOT_TESTS=1 (CI runs as root and sets it).
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let required = std::env::var("MOATSWEEP_REQUIRE_ROOT_TESTS").as_deref() == Ok("1");
        let skip = |why: String| {
            assert!(!required, "MOATSWEEP_REQUIRE_ROOT_TESTS=1 but {why}");
            eprintln!("ROOT TESTS SKIPPED: {why} (a small tmpfs is needed to fill a disk; run as root, as CI does)");
            None
        };
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        if uid != 0 {
            return skip(format!("not root (uid {uid})"));
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir.path()).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => skip(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => skip(format!("cannot run mount: {e}")),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Gives the tmpfs a new size, keeping its files.
    pub fn resize(&self, size: &str) {
        let st = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(self.path()).status().unwrap();
        assert!(st.success(), "remount of the tmpfs failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A CSV (a sweep's or a reduced one) read as rows of optional numbers (an empty
/// cell is None).
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Option<f64>>>,
}

impl Table {
    pub fn read(path: &Path) -> Table {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = text.lines();
        let header: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
        let rows = lines
            .map(|l| l.split(',').map(|c| if c.is_empty() { None } else { Some(c.parse::<f64>().unwrap()) }).collect::<Vec<_>>())
            .collect::<Vec<_>>();
        for r in &rows {
            assert_eq!(r.len(), header.len(), "{}", path.display());
        }
        Table { header, rows }
    }

    /// The index of column `name`.
    pub fn col(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }
}
