//! `plot` and `summarize` end to end on a real quickstart sweep: image size and
//! content, SVG labels, default paths, errors for bad names, and summary means
//! checked against means computed here from the CSV.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

const AXES: &str = "firm.open.release_month, firm.challenger.funding, model.ad_uplift";

fn moatsweep() -> Command {
    let mut c = Command::cargo_bin("moatsweep").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Runs the quickstart sweep into `dir/q.csv` (with its manifest) and returns the CSV path.
fn sweep(dir: &Path) -> PathBuf {
    let csv = dir.join("q.csv");
    moatsweep().args(["run", "configs/quickstart.toml", "--backend", "cpu", "--quiet", "--out"]).arg(&csv).assert().success();
    csv
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// Width, height and RGB(A) pixels of a PNG file.
fn decode_png(path: &Path) -> (u32, u32, Vec<u8>, usize) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    // IHDR: width and height are big-endian u32 at bytes 16..24.
    let header = (u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap()));
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), header);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf, info.color_type.samples())
}

#[test]
fn heatmap_png_has_the_requested_size_and_is_not_blank() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = sweep(tmp.path());
    let png = tmp.path().join("heat.png");
    let a = moatsweep()
        .arg("plot")
        .arg(&csv)
        .args(["--x", "firm.open.release_month", "--y", "model.ad_uplift", "--z", "npv.open", "--width", "640", "--height", "480", "--out"])
        .arg(&png)
        .assert()
        .success();
    assert!(stdout(&a).contains("heatmap of mean npv.open over 2080 rows"), "{}", stdout(&a));

    let (w, h, pixels, samples) = decode_png(&png);
    assert_eq!((w, h), (640, 480));
    // Not blank: the luminance varies and the colour map shows many colours.
    let luma: Vec<f64> = pixels.chunks(samples).map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64).collect();
    let mean = luma.iter().sum::<f64>() / luma.len() as f64;
    let variance = luma.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / luma.len() as f64;
    assert!(variance > 500.0, "pixel variance {variance}");
    let colours: std::collections::HashSet<&[u8]> = pixels.chunks(samples).collect();
    assert!(colours.len() > 50, "{} colours", colours.len());
}

#[test]
fn line_plot_goes_beside_the_csv_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = sweep(tmp.path());
    moatsweep().arg("plot").arg(&csv).args(["--x", "firm.open.release_month", "--z", "hhi"]).assert().success();
    let (w, h, _, _) = decode_png(&tmp.path().join("q.hhi-by-firm.open.release_month.png"));
    assert_eq!((w, h), (1000, 700));

    moatsweep()
        .arg("plot")
        .arg(&csv)
        .args(["--x", "model.ad_uplift", "--z", "share.open", "--by", "firm.open.release_month", "--agg", "median"])
        .assert()
        .success();
    assert!(tmp.path().join("q.share.open-by-model.ad_uplift-per-firm.open.release_month.png").exists());

    moatsweep()
        .arg("plot")
        .arg(&csv)
        .args(["--x", "firm.open.release_month", "--y", "firm.challenger.funding", "--z", "exit_month.challenger", "--agg", "max"])
        .assert()
        .success();
    assert!(tmp.path().join("q.exit_month.challenger-by-firm.open.release_month-firm.challenger.funding.png").exists());
}

#[test]
fn svg_names_the_sweep_axes_scales_and_never() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = sweep(tmp.path());
    let svg = tmp.path().join("heat.svg");
    let plot = |out: &Path| {
        moatsweep()
            .arg("plot")
            .arg(&csv)
            .args(["--x", "firm.open.release_month", "--y", "model.ad_uplift", "--z", "npv.open", "--out"])
            .arg(out)
            .assert()
            .success();
        std::fs::read_to_string(out).unwrap()
    };
    let text = plot(&svg);
    assert!(text.starts_with("<svg"), "{}", &text[..100.min(text.len())]);
    for label in [
        "quickstart: npv.open",
        "mean over firm.challenger.funding",
        "firm.open.release_month",
        "model.ad_uplift (log scale)",
        "never",
        "0.001",
        "24",
    ] {
        assert!(text.contains(label), "SVG lacks {label:?}");
    }

    // Without the manifest: the title names the file, and the geometric spacing still gives a log scale.
    std::fs::remove_file(tmp.path().join("q.csv.manifest.json")).unwrap();
    let text = plot(&svg);
    assert!(text.contains("q: npv.open"), "title from the file stem");
    assert!(text.contains("model.ad_uplift (log scale)"));
    assert!(!text.contains("firm.open.release_month (log scale)"));
}

#[test]
fn bad_names_list_the_valid_ones_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = sweep(tmp.path());
    let fail = |args: &[&str]| {
        let a = moatsweep().arg(args[0]).arg(&csv).args(&args[1..]).assert().code(2);
        stderr(&a)
    };

    let e = fail(&["plot", "--x", "firm.open.release", "--z", "npv.open"]);
    assert!(e.contains("--x:") && e.contains("no axis \"firm.open.release\""), "{e}");
    assert!(e.contains("did you mean \"firm.open.release_month\"?"), "{e}");
    assert!(e.contains(&format!("its axes are: {AXES}")), "{e}");

    let e = fail(&["plot", "--x", "model.ad_uplift", "--z", "npv.opne"]);
    assert!(e.contains("--z:") && e.contains("did you mean \"npv.open\"?"), "{e}");
    assert!(e.contains("its outputs are: share.open, share.frontier_a,") && e.contains("nonconverged_months"), "{e}");

    let e = fail(&["plot", "--x", "model.ad_uplift", "--y", "npv.open", "--z", "hhi"]);
    assert!(e.contains("--y: \"npv.open\" is not an axis") && e.contains(AXES), "{e}");

    let e = fail(&["plot", "--x", "model.ad_uplift", "--by", "model.ad_uplift", "--z", "hhi"]);
    assert!(e.contains("--by must name another axis than --x"), "{e}");

    let e = fail(&["plot", "--x", "model.ad_uplift", "--z", "hhi", "--out", "x.jpg"]);
    assert!(e.contains("must end in .png or .svg"), "{e}");

    let e = fail(&["summarize", "--by", "model.uplift"]);
    assert!(e.contains("--by:") && e.contains("did you mean \"model.ad_uplift\"?") && e.contains(AXES), "{e}");

    let a = moatsweep().args(["summarize", "no-such-file.csv"]).assert().code(2);
    assert!(stderr(&a).contains("cannot read no-such-file.csv"), "{}", stderr(&a));
}

/// Column values of a CSV written by moatsweep (no quoting needed).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    (header, lines.map(|l| l.split(',').map(str::to_string).collect()).collect())
}

#[test]
fn summary_means_match_means_computed_from_the_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = sweep(tmp.path());
    let out = tmp.path().join("summary.csv");
    moatsweep().arg("summarize").arg(&csv).args(["--by", "firm.open.release_month", "--out"]).arg(&out).assert().success();

    // The means, exit shares and counts per release month, computed here.
    let (header, rows) = read_csv(&csv);
    let col = |name: &str| header.iter().position(|c| c == name).unwrap();
    // An exit month counts only where the firm exited (-1: it survived).
    let checked = ["npv.open", "share.challenger", "price.open", "hhi", "exit_month.challenger", "exit_month.open", "max_iterations"];
    /// One release month's rows: their count, the sum and count of each checked column's values, exits,
    /// rows with a non-converged month.
    struct Group {
        rows: u64,
        sums: Vec<(f64, u64)>,
        exits: u64,
        nonconverged: u64,
    }
    let mut sums: BTreeMap<String, Group> = BTreeMap::new();
    for r in &rows {
        let g = sums.entry(r[col("firm.open.release_month")].clone()).or_insert(Group {
            rows: 0,
            sums: vec![(0.0, 0); checked.len()],
            exits: 0,
            nonconverged: 0,
        });
        g.rows += 1;
        for (k, name) in checked.iter().enumerate() {
            if let Ok(v) = r[col(name)].parse::<f64>()
                && !(name.starts_with("exit_month.") && v < 0.0)
            {
                g.sums[k].0 += v;
                g.sums[k].1 += 1;
            }
        }
        g.exits += (r[col("exit_month.challenger")].parse::<i64>().unwrap() >= 0) as u64;
        g.nonconverged += (r[col("nonconverged_months")] != "0") as u64;
    }
    assert_eq!(sums.len(), 8);
    // The quickstart's challenger exits after some releases and never without one: both cases are checked.
    assert!(sums["-1"].exits == 0 && sums["0"].exits > 0);

    let (s_header, s_rows) = read_csv(&out);
    let s_col = |name: &str| s_header.iter().position(|c| c == name).unwrap_or_else(|| panic!("summary lacks {name}"));
    assert_eq!(s_rows.len(), 8);
    // Groups in axis order, never (-1) last.
    let months: Vec<&str> = s_rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(months, ["0", "3", "6", "9", "12", "18", "24", "-1"]);
    for r in &s_rows {
        let g = &sums[&r[s_col("firm.open.release_month")]];
        assert_eq!(r[s_col("rows")], g.rows.to_string());
        for (k, name) in checked.iter().enumerate() {
            let cell = &r[s_col(&format!("{name}.mean"))];
            if g.sums[k].1 == 0 {
                assert_eq!(cell, "", "{name} month {}: no row has a value", r[0]);
                continue;
            }
            let want = g.sums[k].0 / g.sums[k].1 as f64;
            let got: f64 = cell.parse().unwrap();
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "{name} month {}: summary {got}, CSV {want}", r[0]);
        }
        let share: f64 = r[s_col("exited.challenger")].parse().unwrap();
        assert_eq!(share, g.exits as f64 / g.rows as f64);
        // The mean exit month is over the exits alone, so it is a month (>= 0), or empty without exits.
        assert_eq!(g.sums[4].1, g.exits);
        let min = &r[s_col("exit_month.challenger.min")];
        assert!(if g.exits == 0 { min.is_empty() } else { min.parse::<f64>().unwrap() >= 0.0 }, "min {min}");
        assert_eq!(r[s_col("nonconverged_scenarios")], g.nonconverged.to_string());
    }
}

#[test]
fn summary_prints_one_block_per_group() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = sweep(tmp.path());
    let a = moatsweep().arg("summarize").arg(&csv).assert().success();
    let text = stdout(&a);
    assert!(text.contains("(sweep quickstart): 2080 rows"), "{text}");
    assert!(text.contains("all rows: 2080"), "{text}");

    let a = moatsweep().arg("summarize").arg(&csv).args(["--by", "firm.open.release_month", "--by", "model.ad_uplift"]).assert().success();
    let text = stdout(&a);
    assert!(text.contains("2080 rows in 104 groups by firm.open.release_month, model.ad_uplift"), "{text}");
    assert!(text.contains("firm.open.release_month = never, model.ad_uplift = 0.1: 20 rows"), "{text}");
    assert_eq!(text.matches("  output ").count(), 104);
    assert_eq!(text.matches("  npv.open ").count(), 104);
    assert_eq!(text.matches("exited (share of rows): open ").count(), 104);
}

/// A sampling design draws a new value of each axis for every row: such axes
/// are cut into bins instead of getting one cell or group per value.
#[test]
fn sampled_axes_are_binned() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("lhs.csv");
    moatsweep()
        .args(["run", "configs/release-timing-lhs.toml", "--backend", "cpu", "--quiet", "--rows", "0..3000", "--out"])
        .arg(&csv)
        .assert()
        .success();
    let csv = tmp.path().join("lhs.rows-0-3000.csv");
    let svg = tmp.path().join("lhs.svg");
    moatsweep()
        .arg("plot")
        .arg(&csv)
        .args(["--x", "firm.challenger.funding", "--y", "firm.open.release_month", "--z", "share.challenger", "--out"])
        .arg(&svg)
        .assert()
        .success();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("firm.challenger.funding (log scale, 25 bins)"), "binned log axis");
    assert!(text.contains(">\n36\n<"), "release months 0..36 stay one cell each");

    let out = tmp.path().join("summary.csv");
    moatsweep().arg("summarize").arg(&csv).args(["--by", "firm.challenger.funding", "--out"]).arg(&out).assert().success();
    let (header, rows) = read_csv(&out);
    assert_eq!(header[..2], ["firm.challenger.funding", "rows"]);
    assert!(rows.len() <= 25 && rows.len() > 20, "{} groups", rows.len());
    assert_eq!(rows.iter().map(|r| r[1].parse::<u64>().unwrap()).sum::<u64>(), 3000);
    let centres: Vec<f64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(centres.windows(2).all(|w| w[0] < w[1]), "bins in ascending order");
}

/// `plot --z exit_month.challenger`: each cell is the mean exit month over the
/// rows where the challenger exited, computed here from the CSV, or -1 where it
/// survived in every row; those cells are drawn in a colour outside the scale,
/// and the figure says what -1 means.
#[test]
fn exit_month_heatmap_draws_survival_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = sweep(tmp.path());
    let (svg, cells) = (tmp.path().join("exit.svg"), tmp.path().join("exit.csv"));
    moatsweep()
        .arg("plot")
        .arg(&csv)
        .args(["--x", "firm.open.release_month", "--y", "firm.challenger.funding", "--z", "exit_month.challenger", "--out"])
        .arg(&svg)
        .arg("--cells")
        .arg(&cells)
        .assert()
        .success();

    let (header, rows) = read_csv(&csv);
    let col = |name: &str| header.iter().position(|c| c == name).unwrap();
    // (release month, funding) -> (sum and count of exit months where exited, rows).
    let mut want: BTreeMap<(String, String), (f64, u64, u64)> = BTreeMap::new();
    for r in &rows {
        let e = want.entry((r[col("firm.open.release_month")].clone(), r[col("firm.challenger.funding")].clone())).or_default();
        let month: i64 = r[col("exit_month.challenger")].parse().unwrap();
        e.2 += 1;
        if month >= 0 {
            e.0 += month as f64;
            e.1 += 1;
        }
    }
    let (c_header, c_rows) = read_csv(&cells);
    assert_eq!(c_header, ["firm.open.release_month", "firm.challenger.funding", "exit_month.challenger"]);
    assert_eq!(c_rows.len(), want.len());
    let mut survived = 0;
    for r in &c_rows {
        // The cells CSV writes the funding as its shortest decimal, as the sweep CSV does.
        let key = want.keys().find(|(m, f)| *m == r[0] && f.parse::<f64>().unwrap() == r[1].parse::<f64>().unwrap()).unwrap();
        let (sum, exits, _) = want[key];
        let got: f64 = r[2].parse().unwrap();
        if exits == 0 {
            assert_eq!(got, -1.0, "cell {key:?}: the challenger survived in every row");
            survived += 1;
        } else {
            assert!((got - sum / exits as f64).abs() < 1e-12, "cell {key:?}: {got} against {}", sum / exits as f64);
        }
    }
    // The quickstart has both: releases after which it exits, and never releasing, after which it survives.
    assert!(survived >= 20 && survived < c_rows.len(), "{survived} survived cells");

    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("-1 = survived"), "the figure says what -1 means");
    // One rectangle per survived cell, and one for the swatch beside the colour bar.
    assert_eq!(text.matches("fill=\"#E6550D\"").count(), survived + 1);
}

/// A manifest beside the CSV that lacks a key is an error naming the manifest and
/// the key (exit 2), not a silent default; so is one that belongs to another CSV.
#[test]
fn a_manifest_missing_a_key_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = sweep(tmp.path());
    let path = tmp.path().join("q.csv.manifest.json");
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    /// What the error must say, and the edit of the manifest that causes it.
    type Case = (&'static str, fn(&mut serde_json::Value));
    let cases: [Case; 3] = [
        ("missing field `name`", |m| {
            m["config"]["sweep"].as_object_mut().unwrap().remove("name");
        }),
        ("a logspace axis records `steps`, and it is missing", |m| {
            m["config"]["axes"][1].as_object_mut().unwrap().remove("steps");
        }),
        ("a morris design records `trajectories`, and it is missing", |m| m["config"]["sweep"]["design"] = "morris".into()),
    ];
    for (want, edit) in cases {
        let mut m = good.clone();
        edit(&mut m);
        std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        for args in [&["summarize"][..], &["plot", "--x", "model.ad_uplift", "--z", "npv.open"][..]] {
            let a = moatsweep().arg(args[0]).arg(&csv).args(&args[1..]).assert().code(2);
            let err = stderr(&a);
            assert!(err.contains("q.csv.manifest.json: not a moatsweep manifest") && err.contains(want), "{args:?}: {err}");
        }
    }
    let mut m = good.clone();
    m["columns"].as_array_mut().unwrap().pop();
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let a = moatsweep().arg("summarize").arg(&csv).assert().code(2);
    assert!(stderr(&a).contains("q.csv: its header differs from the columns of its manifest"), "{}", stderr(&a));
    assert!(stderr(&a).contains("in the file, nothing in the manifest"), "{}", stderr(&a));
}
