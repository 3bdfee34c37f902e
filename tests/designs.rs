//! Sampling designs, row subsets, shards, merge and resume: every row is a pure
//! function of (resolved config, row index).

use std::path::Path;
use std::process::Command as Std;

use assert_cmd::Command;
use moatsweep::config;
use moatsweep::sweep::Plan;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn moatsweep() -> Command {
    let mut c = Command::cargo_bin("moatsweep").unwrap();
    c.current_dir(root());
    c
}

/// A plan of `design` with two axes that map [0, 1) onto themselves.
fn unit_plan(design: &str, samples: u64, seed: u64) -> Plan {
    let text = format!(
        "version = 1\n[sweep]\nname = \"t\"\ndesign = \"{design}\"\nsamples = {samples}\nseed = {seed}\n[axes]\n\"model.ad_uplift\" = {{ uniform = [0.0, 1.0] }}\n\"model.catchup_rate\" = {{ uniform = [0.0, 1.0] }}\n\"firm.open.release_month\" = {{ integers = [0, 9] }}\n"
    );
    config::parse("test.toml", &text, None, Path::new(".")).unwrap()
}

#[test]
fn lhs_hits_every_stratum_of_every_axis_once() {
    for (n, seed) in [(1u64, 0u64), (7, 1), (100, 2), (1000, 3), (4096, 99), (10_007, 12345)] {
        let plan = unit_plan("lhs", n, seed);
        for axis in 0..2 {
            let mut hits = vec![0u32; n as usize];
            for row in 0..n {
                let u = plan.axis_value(row, axis);
                assert!((0.0..1.0).contains(&u));
                hits[(u * n as f64) as usize] += 1;
            }
            assert!(
                hits.iter().all(|&h| h == 1),
                "n {n} seed {seed} axis {axis}: strata hit {:?} times",
                hits.iter().filter(|&&h| h != 1).count()
            );
        }
    }
}

#[test]
fn sobol_points_fill_dyadic_intervals_one_each() {
    for seed in [0u64, 1, 77] {
        let plan = unit_plan("sobol", 1 << 12, seed);
        for k in 0..=12u32 {
            let n = 1u64 << k;
            for axis in 0..2 {
                let mut hits = vec![0u32; n as usize];
                for row in 0..n {
                    hits[(plan.axis_value(row, axis) * n as f64) as usize] += 1;
                }
                assert!(hits.iter().all(|&h| h == 1), "seed {seed} k {k} axis {axis}");
            }
        }
    }
}

#[test]
fn random_draws_reproduce_differ_by_seed_and_are_uniform() {
    let n = 100_000;
    let a = unit_plan("random", n, 42);
    let b = unit_plan("random", n, 42);
    let c = unit_plan("random", n, 43);
    let mut same = 0;
    for axis in 0..2 {
        let mut sum = 0.0;
        for row in 0..n {
            let x = a.axis_value(row, axis);
            assert_eq!(x.to_bits(), b.axis_value(row, axis).to_bits(), "fixed seed reproduces");
            if x == c.axis_value(row, axis) {
                same += 1;
            }
            sum += x;
        }
        let mean = sum / n as f64;
        assert!((mean - 0.5).abs() < 0.01 * 0.5, "axis {axis}: mean {mean} not within 1% of 0.5");
    }
    assert!(same < 10, "seeds 42 and 43 agree on {same} draws");
    // Integer axes: every value of 0..=9 appears, with about equal frequency.
    let mut counts = [0u32; 10];
    for row in 0..n {
        counts[a.axis_value(row, 2) as usize] += 1;
    }
    assert!(counts.iter().all(|&c| (9000..11000).contains(&c)), "{counts:?}");
}

fn random_config(dir: &Path, seed: u64) -> std::path::PathBuf {
    let path = dir.join(format!("random-{seed}.toml"));
    std::fs::write(
        &path,
        format!(
            "version = 1\n[sweep]\nname = \"r\"\ndesign = \"random\"\nsamples = 3001\nseed = {seed}\n[axes]\n\"firm.open.release_month\" = {{ values = [0, 6, 12, \"never\"] }}\n\"firm.challenger.funding\" = {{ loguniform = [5e7, 5e9] }}\n\"model.ad_uplift\" = {{ uniform = [0.001, 0.1] }}\n"
        ),
    )
    .unwrap();
    path
}

/// Runs `cfg` on the CPU backend.
fn run(cfg: &Path, out: &Path, extra: &[&str]) {
    moatsweep().args(["run", "--quiet", "--backend", "cpu"]).arg(cfg).arg("--out").arg(out).args(extra).assert().success();
}

#[test]
fn shards_merge_into_the_bytes_of_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = random_config(tmp.path(), 5);
    let full = tmp.path().join("full.csv");
    run(&cfg, &full, &[]);
    let mut shards = Vec::new();
    for i in 0..4 {
        // --out names the whole sweep; each shard writes beside it.
        run(&cfg, &tmp.path().join("s.csv"), &["--shard", &format!("{i}/4")]);
        let s = tmp.path().join(format!("s.shard-{i}-of-4.csv"));
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join(format!("s.shard-{i}-of-4.csv.manifest.json"))).unwrap()).unwrap();
        let (a, b) = (i * 3001 / 4, (i + 1) * 3001 / 4);
        assert_eq!(m["rows"], serde_json::json!([a, b]), "shard {i} range");
        shards.push(s);
    }
    let merged = tmp.path().join("merged.csv");
    // Any input order.
    moatsweep().arg("merge").arg(&merged).args([&shards[2], &shards[0], &shards[3], &shards[1]]).assert().success();
    assert!(std::fs::read(&full).unwrap() == std::fs::read(&merged).unwrap(), "merged shards differ from the full run");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(tmp.path().join("merged.csv.manifest.json")).unwrap()).unwrap();
    assert_eq!(m["rows"], serde_json::json!([0, 3001]));
    assert_eq!(m["merged_from"].as_array().unwrap().len(), 4);

    let refused = |inputs: &[&Path], needle: &str| {
        let out = moatsweep().arg("merge").arg(tmp.path().join("bad.csv")).args(inputs).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "expected '{needle}' in: {err}");
        assert!(!tmp.path().join("bad.csv").exists());
    };
    refused(&[&shards[0], &shards[1], &shards[3]], "rows 1500..2250 are missing (before ");
    refused(&[&shards[0], &shards[1], &shards[2]], "rows 2250..3001 are missing (after ");
    refused(&[&shards[0], &shards[0], &shards[1], &shards[2], &shards[3]], "overlaps");
    // A shard of another sweep (different seed) is refused, naming it.
    let other_cfg = random_config(tmp.path(), 6);
    run(&other_cfg, &tmp.path().join("other.csv"), &["--shard", "3/4"]);
    let other = tmp.path().join("other.shard-3-of-4.csv");
    refused(&[&shards[0], &shards[1], &shards[2], &other], &format!("{}: its config", other.display()));
    // A missing manifest is named.
    std::fs::copy(&shards[3], tmp.path().join("nomanifest.csv")).unwrap();
    refused(&[&shards[0], &shards[1], &shards[2], &tmp.path().join("nomanifest.csv")], "nomanifest.csv: cannot read its manifest");

    // A shard edited in place (one digit of one value: same length, same row
    // count) is refused by merge and by check, both naming it.
    let text = std::fs::read_to_string(&shards[2]).unwrap();
    let line = text.lines().nth(5).unwrap();
    let at = text.find(line).unwrap() + line.rfind(|c: char| c.is_ascii_digit() && c != '9').unwrap();
    let mut bytes = text.into_bytes();
    bytes[at] += 1;
    std::fs::write(&shards[2], &bytes).unwrap();
    refused(&[&shards[0], &shards[1], &shards[2], &shards[3]], &format!("{}: its SHA-256 is ", shards[2].display()));
    let check = moatsweep().arg("check").args(&shards).output().unwrap();
    let err = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "{err}");
    assert!(err.starts_with(&format!("error: {}: its SHA-256 is ", shards[2].display())), "{err}");
    assert!(err.contains("the file changed after it was written"), "{err}");
    // check printed the two shards before it as matching.
    let ok = String::from_utf8_lossy(&check.stdout);
    assert_eq!(ok.lines().count(), 2, "{ok}");
    assert!(ok.starts_with(&format!("{}: ok (750 rows, ", shards[0].display())), "{ok}");
}

#[test]
fn row_ranges_and_chunk_sizes_and_threads_do_not_change_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = random_config(tmp.path(), 9);
    let full = tmp.path().join("full.csv");
    run(&cfg, &full, &[]);
    let full_text = std::fs::read_to_string(&full).unwrap();
    let lines: Vec<&str> = full_text.lines().collect();

    run(&cfg, &tmp.path().join("part.csv"), &["--rows", "1000..1234"]);
    let part = tmp.path().join("part.rows-1000-1234.csv");
    let part_text = std::fs::read_to_string(&part).unwrap();
    let want: Vec<&str> = std::iter::once(lines[0]).chain(lines[1001..1235].iter().copied()).collect();
    assert_eq!(part_text.lines().collect::<Vec<_>>(), want);

    for (k, extra) in [&["--chunk-rows", "1000"][..], &["--chunk-rows", "7"], &["--chunk-rows", "100000"]].iter().enumerate() {
        let p = tmp.path().join(format!("c{k}.csv"));
        run(&cfg, &p, extra);
        assert!(std::fs::read_to_string(&p).unwrap() == full_text, "chunk size {extra:?} changed the bytes");
    }
    let one = tmp.path().join("one.csv");
    moatsweep().args(["--threads", "1", "run", "--quiet", "--backend", "cpu"]).arg(&cfg).arg("--out").arg(&one).assert().success();
    assert!(std::fs::read_to_string(&one).unwrap() == full_text, "1 thread changed the bytes");
}

#[test]
fn a_killed_run_resumes_to_the_uninterrupted_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = root().join("configs/release-timing-lhs.toml");
    let rows = ["--rows", "0..60000", "--chunk-rows", "2000"];
    run(&cfg, &tmp.path().join("full.csv"), &rows);
    let full = tmp.path().join("full.rows-0-60000.csv");

    // --out names the sweep; the block's files are killed.rows-0-60000.csv*.
    let out = tmp.path().join("killed.csv");
    let block = tmp.path().join("killed.rows-0-60000.csv");
    let checkpoint = tmp.path().join("killed.rows-0-60000.csv.partial.checkpoint");
    let mut child = Std::new(env!("CARGO_BIN_EXE_moatsweep"))
        .args(["run", "--quiet", "--backend", "cpu"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .args(rows)
        .spawn()
        .unwrap();
    // Kill it (SIGKILL: no chance to clean up) once some chunks have reached the disk.
    let t0 = std::time::Instant::now();
    loop {
        let next = std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["next_row"].as_u64());
        if next.is_some_and(|n| n >= 6000) || t0.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!block.exists(), "the run finished before it could be killed; make it longer");
    assert!(tmp.path().join("killed.rows-0-60000.csv.partial").exists());

    // A changed config is refused.
    let changed = tmp.path().join("changed.toml");
    std::fs::write(&changed, std::fs::read_to_string(&cfg).unwrap().replace("seed = 2026", "seed = 2027")).unwrap();
    let res = moatsweep()
        .args(["run", "--quiet", "--backend", "cpu"])
        .arg(&changed)
        .arg("--out")
        .arg(&out)
        .args(rows)
        .arg("--resume")
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("the config changed"));

    run(&cfg, &out, &[&rows[..], &["--resume"]].concat());
    assert!(std::fs::read(&block).unwrap() == std::fs::read(&full).unwrap(), "resumed run differs from the uninterrupted one");
    assert!(!checkpoint.exists() && !tmp.path().join("killed.rows-0-60000.csv.partial").exists());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("killed.rows-0-60000.csv.manifest.json")).unwrap()).unwrap();
    assert!(m["resumed_at_row"].as_u64().unwrap() >= 6000);
}

#[test]
fn shard_auto_reads_slurm_and_kubernetes_indices() {
    use moatsweep::engine::RowSelection;
    let env = |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string());
    let slurm = env(&[("SLURM_ARRAY_TASK_ID", "7"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "4")]);
    assert_eq!(RowSelection::shard_from_env(None, slurm).unwrap(), RowSelection::Shard(2, 4));
    let k8s = env(&[("JOB_COMPLETION_INDEX", "3")]);
    assert_eq!(RowSelection::shard_from_env(Some(8), k8s).unwrap(), RowSelection::Shard(3, 8));
    assert!(RowSelection::shard_from_env(None, k8s).unwrap_err().0.contains("--shards N"));
    assert!(RowSelection::shard_from_env(None, env(&[])).unwrap_err().0.contains("neither is set"));
    let past = env(&[("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_COUNT", "4")]);
    assert!(RowSelection::shard_from_env(None, past).unwrap_err().0.contains("does not exist"));
    // The binary refuses with that message and exit status 2 outside a job array.
    let out = moatsweep()
        .args(["run", "--quiet", "--backend", "cpu", "configs/quickstart.toml", "--shard", "auto"])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard auto needs a job array"));
}

/// The Kubernetes example's shard command resumes a retried pod's shard: run as
/// written (its paths moved to a temporary folder, a small config), it names the
/// shard file moatsweep writes for JOB_COMPLETION_INDEX, and passes --resume only
/// once that shard's checkpoint exists.
#[test]
fn kubernetes_example_resumes_a_retried_shard() {
    let yaml = std::fs::read_to_string(root().join("examples/kubernetes/sweep-job.yaml")).unwrap();
    // The container's command: a flow sequence of double-quoted strings over several
    // lines, which YAML folds into one line (each line break and indent a space).
    let start = yaml.find("command: [\"sh\", \"-c\",").expect("the shard command runs through sh -c");
    let end = start + yaml[start..].find("\"]").unwrap() + 2;
    let folded: Vec<&str> = yaml[start + "command: ".len()..end].lines().map(str::trim).collect();
    let command: Vec<String> = serde_json::from_str(&folded.join(" ")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let script = command[2]
        .replace("/results", &tmp.path().display().to_string())
        .replace("configs/release-timing-lhs.toml", &root().join("configs/quickstart.toml").display().to_string())
        .replace("release-timing-lhs", "quickstart");
    let bin = assert_cmd::cargo::cargo_bin("moatsweep");
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let pod = |script: &str| {
        let out = Std::new("sh").args(["-c", script]).env("PATH", &path).env("JOB_COMPLETION_INDEX", "1").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The first attempt starts fresh and writes the shard the script looks for.
    assert!(!pod(&script.replace("exec moatsweep", "exec echo moatsweep")).trim_end().ends_with("--resume"));
    pod(&script);
    let shard = tmp.path().join("quickstart.shard-1-of-4.csv");
    assert!(shard.exists(), "the example's shard path is not the file moatsweep wrote");
    // A retried pod whose attempt left a checkpoint passes --resume.
    std::fs::write(tmp.path().join("quickstart.shard-1-of-4.csv.partial.checkpoint"), "").unwrap();
    assert!(pod(&script.replace("exec moatsweep", "exec echo moatsweep")).trim_end().ends_with("--resume"));
}

#[test]
fn list_designs_run_their_rows_and_name_bad_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = root().join("tests/configs/list.toml");
    let out = tmp.path().join("list.csv");
    run(&cfg, &out, &[]);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("scenario,firm.open.release_month,model.ad_uplift,"));
    assert!(lines[1].starts_with("0,0,0.01,") && lines[2].starts_with("1,6,0.02,") && lines[3].starts_with("2,-1,0.05,"), "{text}");

    let bad = |list: &str, want: &str| {
        let cfg = tmp.path().join("bad.toml");
        std::fs::write(
            &cfg,
            format!("version = 1\n[sweep]\ndesign = \"list\"\nlist = \"{}\"\n", root().join("tests/configs/lists").join(list).display()),
        )
        .unwrap();
        let out = moatsweep().arg("validate").arg(&cfg).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("error: {}:{want}", root().join("tests/configs/lists").join(list).display());
        assert!(err.starts_with(&want), "want {want}\ngot  {err}");
    };
    bad("bad-cell.csv", "5:4: model.ad_uplift: value -0.5 is outside the allowed range [0, 1000]");
    bad("bad-header.csv", "1:25: model.adplift: unknown model parameter \"adplift\" (did you mean \"ad_uplift\"?)");
}

/// Model version 2's parameters work as axes in every design: each axis sets its
/// parameter in every row, and the outputs they drive move with them (generations
/// with generation_months, money raised with the investors' runway).
#[test]
fn version_2_parameters_are_axes_in_every_design() {
    use moatsweep::backend::ScenarioSource;
    use moatsweep::model::{Out, solve};
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("v2.csv");
    let mut rows = String::from(
        "model.generation_months,model.investor_hurdle,model.investor_runway,firm.challenger.spend_growth,firm.challenger.data_growth\n",
    );
    for k in 0..6 {
        rows += &format!(
            "{},{},{},{},{}\n",
            [0, 3, 6, 12, 18, 24][k],
            -0.2 + 0.08 * k as f64,
            [0.0, 3.0, 6.0, 12.0, 18.0, 24.0][k],
            0.1 * k as f64,
            0.05 * k as f64
        );
    }
    std::fs::write(&list, rows).unwrap();
    let sampled = "[axes]\n\"model.generation_months\" = { integers = [0, 24] }\n\"model.investor_hurdle\" = { uniform = [-0.2, 0.2] }\n\"model.investor_runway\" = { uniform = [0.0, 24.0] }\n\"firm.challenger.spend_growth\" = { uniform = [0.0, 1.0] }\n\"firm.challenger.data_growth\" = { uniform = [0.0, 1.0] }\n";
    let grid = "[axes]\n\"model.generation_months\" = { values = [0, 6, 12] }\n\"model.investor_hurdle\" = { values = [-0.2, 0.2] }\n\"model.investor_runway\" = { values = [0, 12] }\n\"firm.challenger.spend_growth\" = { values = [0.0, 1.0] }\n\"firm.challenger.data_growth\" = { values = [0.0, 0.5] }\n";
    // The underfunded challenger of docs/model.md section 6 runs out of cash in month 2.
    let base = "version = 1\n[[firm]]\nname = \"open\"\n[[firm]]\nname = \"frontier_a\"\n[[firm]]\nname = \"frontier_b\"\n[[firm]]\nname = \"challenger\"\ntrain_spend = 5e8\nfunding = 5e7\n";
    let designs = [
        ("grid", String::new(), grid),
        ("random", "samples = 64\nseed = 1\n".into(), sampled),
        ("lhs", "samples = 64\nseed = 2\n".into(), sampled),
        ("sobol", "samples = 64\nseed = 3\n".into(), sampled),
        ("saltelli", "samples = 8\nseed = 4\n".into(), sampled),
        ("morris", "trajectories = 8\nseed = 5\n".into(), sampled),
        ("list", format!("list = \"{}\"\n", list.display()), ""),
    ];
    for (design, keys, axes) in designs {
        let text = format!("{base}[sweep]\nname = \"v2\"\ndesign = \"{design}\"\n{keys}{axes}");
        let plan = config::parse("v2.toml", &text, None, tmp.path()).unwrap_or_else(|e| panic!("{design}: {e}"));
        assert_eq!(plan.axes.len(), 5, "{design}");
        let (mut generations, mut raised) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
        for row in 0..plan.rows.min(64) {
            let sc = plan.scenario(row);
            for (a, axis) in plan.axes.iter().enumerate() {
                assert_eq!(axis.param.get(&sc), plan.axis_value(row, a), "{design} row {row}: {} not set", axis.path);
            }
            let o = solve(&sc);
            generations.insert(o.firm(Out::Generations, 3) as i64);
            raised.insert((o.firm(Out::Raised, 3) > 0.0, sc.model.investor_runway > 0.0));
        }
        assert!(generations.len() >= 2, "{design}: generations never vary with generation_months: {generations:?}");
        assert!(
            raised.contains(&(true, true)) && !raised.contains(&(true, false)),
            "{design}: money is raised only with a runway: {raised:?}"
        );
    }
}
