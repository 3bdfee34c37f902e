//! The GPU path through the real binary: same header and row order as the CPU
//! path, byte-identical CSV whatever the chunk size, adapter and --verify report in
//! the manifest. Needs a GPU adapter (lavapipe will do); without one it says so
//! loudly and passes, unless MOATSWEEP_REQUIRE_GPU=1 (CI).

use std::path::Path;

mod common;

use assert_cmd::Command;
use common::have_gpu;

fn moatsweep() -> Command {
    let mut c = Command::cargo_bin("moatsweep").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(out: &Path, extra: &[&str]) -> String {
    moatsweep().args(["run", "--quiet", "configs/quickstart.toml", "--out"]).arg(out).args(extra).assert().success();
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn gpu_csv_has_the_cpu_layout_and_a_verified_manifest() {
    if !have_gpu() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cpu = run(&tmp.path().join("cpu.csv"), &["--backend", "cpu"]);
    let gpu = run(&tmp.path().join("gpu.csv"), &["--backend", "gpu"]);
    let (cl, gl): (Vec<&str>, Vec<&str>) = (cpu.lines().collect(), gpu.lines().collect());
    assert_eq!(cl[0], gl[0], "header");
    assert_eq!(cl.len(), gl.len(), "row count");
    for (c, g) in cl.iter().zip(&gl).skip(1) {
        // scenario index and the three axis values are written from the plan on both paths
        let key = |l: &str| l.split(',').take(4).collect::<Vec<_>>().join(",");
        assert_eq!(key(c), key(g), "row order");
    }
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(tmp.path().join("gpu.csv.manifest.json")).unwrap()).unwrap();
    assert_eq!(m["backend"]["kind"], "gpu");
    assert_eq!(m["backend"]["precision"], "f32");
    assert!(m["backend"]["adapter"]["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert_eq!(m["verify"]["rows_checked"], 64);
    assert_eq!(m["verify"]["beyond_tolerance"], 0, "{}", m["verify"]);
    assert!(m["verify"]["columns"]["share.open"]["max_rel"].as_f64().unwrap() < 1e-4);
}

#[test]
fn gpu_chunk_size_does_not_change_the_bytes() {
    if !have_gpu() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = run(&tmp.path().join("a.csv"), &["--backend", "gpu", "--verify", "0"]);
    let b = run(&tmp.path().join("b.csv"), &["--backend", "gpu", "--verify", "0", "--chunk-rows", "333"]);
    assert!(a == b, "chunk size 333 changed the GPU CSV");
}
