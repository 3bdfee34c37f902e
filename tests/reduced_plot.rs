//! `plot` and `summarize` on a reduced CSV (src/analysis/reduced.rs), from a
//! real run of tests/configs/strategy-map-small.toml on the CPU backend:
//! `summarize` prints the reduced CSV's cells, `plot --z best` draws per cell
//! the release month that a brute-force argmax over the rows of the same grid
//! picks in the most worlds, `plot --z delta.<output>` draws best minus
//! reference, and bad flags exit 2 naming the valid columns.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::moatsweep;

const CONFIG: &str = "tests/configs/strategy-map-small.toml";
const X: &str = "model.ad_uplift";
const Y: &str = "firm.challenger.funding";
/// The choice axis's values in axis order, as the reduced CSV labels them (never = -1).
const MONTHS: [(f64, &str); 8] =
    [(0.0, "0"), (3.0, "3"), (6.0, "6"), (9.0, "9"), (12.0, "12"), (18.0, "18"), (24.0, "24"), (-1.0, "never")];

/// A CSV read as a header and string cells.
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn read(path: &Path) -> Csv {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = text.lines();
        let header = lines.next().unwrap().split(',').map(str::to_string).collect();
        let rows = lines.map(|l| l.split(',').map(str::to_string).collect()).collect();
        Csv { header, rows }
    }

    fn col(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    fn num(&self, row: usize, name: &str) -> f64 {
        self.rows[row][self.col(name)].parse().unwrap()
    }
}

/// Runs the small strategy map into `dir` and returns the path of its reduced
/// CSV; with `rows`, without its `[reduce]` tables: a normal run of the same
/// grid, whose rows are `dir/sm.csv`.
fn run(dir: &Path, rows: bool) -> PathBuf {
    let mut config = std::fs::read_to_string(support::root().join(CONFIG)).unwrap();
    if rows {
        let (from, to) = (config.find("[reduce]").unwrap(), config.find("[output]").unwrap());
        config.replace_range(from..to, "");
        assert!(!config.contains("[reduce"));
    }
    let cfg = dir.join("sm.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = dir.join("sm.csv");
    let o = moatsweep().args(["run", "--quiet", "--backend", "cpu"]).arg(&cfg).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.join("sm.reduced.csv")
}

fn moat(args: &[&str]) -> std::process::Output {
    moatsweep().args(args).output().unwrap()
}

/// Index of the distinct value nearest `v` in `values` (same axis value, written by two writers).
fn index_of(values: &[f64], v: f64) -> usize {
    let i = (0..values.len()).min_by(|&a, &b| (values[a] - v).abs().total_cmp(&(values[b] - v).abs())).unwrap();
    assert!((values[i] - v).abs() <= 1e-9 * v.abs(), "{v} is not one of {values:?}");
    i
}

fn distinct(xs: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = xs.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

#[test]
fn plot_best_is_the_modal_argmax_of_the_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let reduced = run(tmp.path(), false);
    run(tmp.path(), true);
    let rows = Csv::read(&tmp.path().join("sm.csv"));
    let (cx, cy, cm, npv) = (rows.col(X), rows.col(Y), rows.col("firm.open.release_month"), rows.col("npv.open"));
    let c_ch = rows.col("firm.challenger.train_spend");
    let c_op = rows.col("firm.open.train_spend");
    let num = |r: &Vec<String>, c: usize| -> f64 { r[c].parse().unwrap() };
    let xs = distinct(rows.rows.iter().map(|r| num(r, cx)));
    let ys = distinct(rows.rows.iter().map(|r| num(r, cy)));
    assert_eq!((xs.len(), ys.len()), (5, 4));

    // Per world (group x, y and both spends): npv.open per release month, in axis order.
    let mut worlds: BTreeMap<(usize, usize, u64, u64), [Option<f64>; 8]> = BTreeMap::new();
    for r in &rows.rows {
        let key = (index_of(&xs, num(r, cx)), index_of(&ys, num(r, cy)), num(r, c_ch).to_bits(), num(r, c_op).to_bits());
        let k = MONTHS.iter().position(|&(m, _)| m == num(r, cm)).unwrap();
        let slot = &mut worlds.entry(key).or_insert([None; 8])[k];
        assert!(slot.is_none(), "one row per world and month");
        *slot = Some(num(r, npv));
    }
    assert_eq!(worlds.len(), 5 * 4 * 4 * 5);
    // Per group, how many worlds each month is the first argmax in.
    let mut counts: BTreeMap<(usize, usize), [u32; 8]> = BTreeMap::new();
    for (&(i, j, _, _), npvs) in &worlds {
        let npvs = npvs.map(|v| v.expect("every month of a world"));
        let best = (0..8).fold(0, |b, k| if npvs[k] > npvs[b] { k } else { b });
        counts.entry((i, j)).or_insert([0; 8])[best] += 1;
    }
    let modal: BTreeMap<(usize, usize), &str> =
        counts.iter().map(|(&g, c)| (g, MONTHS[(0..8).fold(0, |b, k| if c[k] > c[b] { k } else { b })].1)).collect();
    let chosen: std::collections::BTreeSet<&str> = modal.values().copied().collect();
    assert!(chosen.len() >= 2, "the small map should not be one colour: {modal:?}");

    let cells = tmp.path().join("cells.csv");
    let png = tmp.path().join("best.png");
    let o = moat(&[
        "plot",
        reduced.to_str().unwrap(),
        "--x",
        X,
        "--y",
        Y,
        "--z",
        "best",
        "--out",
        png.to_str().unwrap(),
        "--cells",
        cells.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("categorical heatmap"));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let drawn = Csv::read(&cells);
    assert_eq!(drawn.header, [X, Y, "best"]);
    assert_eq!(drawn.rows.len(), 20, "one cell per group");
    for (r, row) in drawn.rows.iter().enumerate() {
        let g = (index_of(&xs, drawn.num(r, X)), index_of(&ys, drawn.num(r, Y)));
        assert_eq!(row[2], modal[&g], "cell {row:?}: counts {:?}", counts[&g]);
    }
}

#[test]
fn plot_delta_is_best_minus_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let reduced = run(tmp.path(), false);
    let red = Csv::read(&reduced);
    let cells = tmp.path().join("cells.csv");
    let png = tmp.path().join("d.svg");
    let o = moat(&[
        "plot",
        reduced.to_str().unwrap(),
        "--x",
        Y,
        "--y",
        X,
        "--z",
        "delta.exited.challenger",
        "--out",
        png.to_str().unwrap(),
        "--cells",
        cells.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(&png).unwrap().contains("<svg"));
    let drawn = Csv::read(&cells);
    assert_eq!(drawn.rows.len(), red.rows.len());
    for r in 0..drawn.rows.len() {
        let g =
            (0..red.rows.len()).find(|&g| red.num(g, X) == drawn.num(r, X) && red.num(g, Y) == drawn.num(r, Y)).expect("a cell per group");
        let want = red.num(g, "best.exited.challenger.mean") - red.num(g, "reference.exited.challenger.mean");
        let got = drawn.num(r, "delta.exited.challenger");
        assert!((got - want).abs() <= 1e-12, "cell {r}: {got} vs {want}");
    }
}

#[test]
fn summarize_prints_the_cells_of_the_reduced_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let reduced = run(tmp.path(), false);
    let red = Csv::read(&reduced);
    let o = moat(&["summarize", reduced.to_str().unwrap(), "--output", "npv.open", "--output", "exited.challenger"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let blocks: Vec<&str> = text.split("\n\n").skip(1).collect();
    assert_eq!(blocks.len(), red.rows.len(), "one block per group:\n{text}");
    assert!(!text.contains("share.open"), "only the outputs asked for");
    let stats = ["mean", "std", "min", "max", "count"];
    for (g, block) in blocks.iter().enumerate() {
        let lines: Vec<&str> = block.lines().collect();
        let heads: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(heads, ["output", "mean", "std", "min", "max", "count", "best", "reference"]);
        for (line, output) in lines[2..4].iter().zip(["npv.open", "exited.challenger"]) {
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cells[0], output);
            let names = stats.iter().map(|s| format!("{output}.{s}")).chain(["best", "reference"].map(|p| format!("{p}.{output}.mean")));
            for (cell, name) in cells[1..].iter().zip(names) {
                let want = red.num(g, &name);
                let got: f64 = cell.parse().unwrap_or_else(|_| panic!("{name}: {cell}"));
                // Six significant digits are printed.
                assert!((got - want).abs() <= 5e-6 * want.abs(), "group {g} {name}: printed {got}, CSV {want}");
            }
        }
        // The modal best value and its share, from the best.<v>.share cells.
        let shares: Vec<f64> = MONTHS.iter().map(|(_, l)| red.num(g, &format!("best.{l}.share"))).collect();
        let k = (0..8).fold(0, |b, k| if shares[k] > shares[b] { k } else { b });
        let want = format!("best firm.open.release_month: {} in {:.1}% of worlds", MONTHS[k].1, 100.0 * shares[k]);
        assert!(lines[4].trim_start().starts_with(&want), "group {g}: {:?} vs {want:?}", lines[4]);
        assert!(lines[0].starts_with(&format!("{X} = ")) && lines[0].contains(&format!(", {Y} = ")));
    }
}

#[test]
fn bad_flags_on_a_reduced_csv_exit_2_naming_the_valid_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let reduced = run(tmp.path(), false);
    let r = reduced.to_str().unwrap();
    let out = tmp.path().join("x.png");
    let o = out.to_str().unwrap();
    for (args, names) in [
        (
            vec!["plot", r, "--x", X, "--y", Y, "--z", "bset", "--out", o],
            vec!["\"bset\"", "did you mean \"best\"", "best.never.share", "delta.npv.open"],
        ),
        (vec!["plot", r, "--x", X, "--y", Y, "--z", X, "--out", o], vec!["is a group axis", "npv.open.mean"]),
        (
            vec!["plot", r, "--x", "model.ad_uplfit", "--y", Y, "--z", "best", "--out", o],
            vec!["--x", "did you mean \"model.ad_uplift\"", Y],
        ),
        (vec!["plot", r, "--x", "firm.open.release_month", "--y", Y, "--z", "best", "--out", o], vec!["--x", "no group axis", X]),
        (vec!["plot", r, "--x", X, "--z", "best", "--out", o], vec!["needs --y", "best.never.share"]),
        (vec!["summarize", r, "--output", "npv.opne"], vec!["--output", "did you mean \"npv.open\"", "consumer_surplus_npv"]),
        (vec!["summarize", r, "--by", X], vec!["--by", "reduced CSV"]),
    ] {
        let res = moat(&args);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{args:?}: {err}");
        for n in names {
            assert!(err.contains(n), "{args:?}: {err} should name {n}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!out.exists(), "nothing drawn on bad flags");
}
