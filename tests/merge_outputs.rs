//! `merge` of a `rows = true` run's row shards gives both of the run's outputs: the
//! rows file and, beside it, the reduced CSV (and state) merged from the shards'
//! reduced companions, each the bytes one run of the whole sweep writes.

mod support;

use std::path::Path;

use support::moatsweep;

/// 4 x 8 x 160 = 5,120 rows: two reduction blocks (4,096 + 1,024), rows kept.
const CONFIG: &str = r#"version = 1
[sweep]
name = "both"
[model]
months = 12
[axes]
"firm.open.release_month" = { values = [0, 6, 12, "never"] }
"firm.challenger.funding" = { logspace = [3e7, 1e9], steps = 8 }
"model.ad_uplift" = { logspace = [1e-3, 1e-1], steps = 160 }
[reduce]
by = ["firm.challenger.funding"]
outputs = ["npv.open", "exited.challenger"]
stats = ["mean", "max", "count"]
rows = true
"#;

fn ok(cmd: &mut std::process::Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn merging_a_rows_true_runs_shards_gives_both_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = dir.join("both.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    for format in ["csv", "parquet"] {
        let whole = dir.join(format!("whole.{format}"));
        ok(moatsweep().args(["run", "--quiet", "--backend", "cpu", "--format", format]).arg(&cfg).arg("--out").arg(&whole), "one run");
        let split = dir.join(format!("split.{format}"));
        let mut shards = Vec::new();
        for i in 0..2 {
            let shard = format!("{i}/2");
            ok(
                moatsweep()
                    .args(["run", "--quiet", "--backend", "cpu", "--format", format, "--shard", &shard])
                    .arg(&cfg)
                    .arg("--out")
                    .arg(&split),
                "a shard",
            );
            shards.push(dir.join(format!("split.shard-{i}-of-2.{format}")));
        }
        let merged = dir.join(format!("merged.{format}"));
        let said = ok(moatsweep().arg("merge").arg(&merged).args(&shards), "merge");
        assert_eq!(read(&merged), read(&whole), "{format}: the merged rows differ from one run's");
        let (merged_reduced, whole_reduced) = (dir.join("merged.reduced.csv"), dir.join("whole.reduced.csv"));
        assert!(said.contains("merged.reduced.csv"), "{format}: merge does not say where the reduced CSV went: {said}");
        assert_eq!(read(&merged_reduced), read(&whole_reduced), "{format}: the merged reduced CSV differs from one run's");
        assert_eq!(read(&dir.join("merged.reduced.state")), read(&dir.join("whole.reduced.state")), "{format}: state");
        for f in [&merged, &merged_reduced] {
            ok(moatsweep().arg("check").arg(f), "check");
        }
        std::fs::remove_file(&merged_reduced).unwrap();
    }
}
