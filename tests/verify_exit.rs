//! `run --verify` fails the run (exit status 1) when the re-solved rows are beyond
//! tolerance or more of them are exempted than the caps allow, after the files are
//! complete and the manifest holds the report; a clean report exits 0.

mod common;
mod support;

use support::moatsweep;

/// Months that stop after 2 markup iterations: the f64 reference does not
/// converge in most rows, so "reference not converged" exemptions far exceed their
/// 2% cap (src/verify.rs, `CAPS`).
const CUT_SHORT: &str = r#"version = 1
[sweep]
name = "verify-caps"
[model]
months = 12
max_iter = 2
[axes]
"firm.open.release_month" = { values = [0, 6, "never"] }
"model.ad_uplift" = { logspace = [1e-3, 1e-1], steps = 20 }
"#;

const CLEAN: &str = r#"version = 1
[sweep]
name = "verify-clean"
[model]
months = 12
[axes]
"firm.open.release_month" = { values = [0, 6, "never"] }
"model.ad_uplift" = { logspace = [1e-3, 1e-1], steps = 20 }
"#;

#[test]
fn verify_over_the_caps_fails_the_run_once_its_files_are_complete() {
    if !common::have_gpu() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (name, text, fails) in [("caps", CUT_SHORT, true), ("clean", CLEAN, false)] {
        let cfg = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let out = tmp.path().join(format!("{name}.csv"));
        let r =
            moatsweep().args(["run", "--quiet", "--backend", "gpu", "--verify", "60"]).arg(&cfg).arg("--out").arg(&out).output().unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join(format!("{name}.csv.manifest.json"))).unwrap()).unwrap();
        let v = &manifest["verify"];
        assert_eq!(v["rows_checked"], 60, "{name}: {v}");
        // The verdict, from the report's own counts and the caps of src/verify.rs
        // (exit edges 1%, convergence causes together 2%, probe admissions 5% of the
        // rows checked; any row beyond tolerance).
        let n = v["rows_checked"].as_f64().unwrap();
        let ex = |k: &str| v["exempted"][k].as_f64().unwrap_or(0.0);
        let conv = ex("reference_not_converged") + ex("probe_not_converged") + ex("near_iteration_cap") + ex("oscillating_fixed_point");
        let over = ex("exit_or_investor_edge") / n > 0.01 || conv / n > 0.02 || v["admitted_by_probe"].as_f64().unwrap() / n > 0.05;
        let beyond = v["beyond_tolerance"].as_u64().unwrap() > 0;
        assert_eq!(fails, over || beyond, "{name}: {v}");
        if fails {
            assert!(conv / n > 0.02, "{name}: the months cut short should exempt most rows: {v}");
        }
        if fails {
            assert_eq!(r.status.code(), Some(1), "{name}: {err}");
            assert!(err.contains("--verify") && err.contains("caps"), "{name}: {err}");
        } else {
            assert!(r.status.success(), "{name}: {err}");
        }
        // Either way the output is complete and checks.
        assert!(out.exists(), "{name}");
        let c = moatsweep().arg("check").arg(&out).output().unwrap();
        assert!(c.status.success(), "{name}: {}", String::from_utf8_lossy(&c.stderr));
    }
}
