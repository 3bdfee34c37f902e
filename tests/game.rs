//! `[reduce.game]` on the CPU backend: every `nash.*` and `leader.*` share of the
//! reduced CSV equals a brute force over the rows the same run wrote (`rows =
//! true`), written here from the definitions of docs/config.md (each world's
//! payoffs keyed by the players' values, every unilateral deviation tried), for
//! two and three players; the means at the leader outcome and the reference
//! profile equal the rows'; the reduced bytes do not depend on where the players'
//! axes stand, threads, chunk size, shards + merge or kill -9 + resume; `validate`
//! prints the game's shape. On the GPU (lavapipe will do), the device's
//! equilibria equal the brute force over the GPU's own rows, and its bytes do not
//! depend on the rows being read back, the players' place or chunk size. (Gambit
//! checks the CPU's in CI: scripts/game_check.py.)

mod common;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::{Table, moatsweep};

fn run(cfg: &Path, extra: &[&str]) {
    let out = moatsweep().args(["run", "--quiet", "--backend", "cpu"]).arg(cfg).args(extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// One player: its axis, its values as the rows CSV holds them (-1 for never) with
/// their labels, and its payoff column.
struct P {
    axis: &'static str,
    values: &'static [(f64, &'static str)],
    payoff: &'static str,
}

const MONTHS: &[(f64, &str)] = &[(0.0, "0"), (12.0, "12"), (-1.0, "never")];

const TWO: &[P] = &[
    P { axis: "firm.open.release_month", values: MONTHS, payoff: "npv.open" },
    P { axis: "firm.frontier_a.release_month", values: MONTHS, payoff: "npv.frontier_a" },
];

const THREE: &[P] = &[
    P { axis: "firm.open.release_month", values: MONTHS, payoff: "npv.open" },
    P { axis: "firm.frontier_a.release_month", values: &[(0.0, "0"), (-1.0, "never")], payoff: "npv.frontier_a" },
    P { axis: "firm.challenger.spend_growth", values: &[(0.0, "0.0"), (1.0, "1.0"), (2.0, "2.0")], payoff: "npv.challenger" },
];

/// World axes before the players' (ad uplift groups the worlds).
const WORLD_AXES: &str = "\"model.ad_uplift\" = { logspace = [1e-3, 3e-1], steps = 6 }\n\
                          \"firm.frontier_a.platform_revenue\" = { values = [1e11, 2e11, 3e11] }\n\
                          \"firm.challenger.funding\" = { values = [1e8, 1e9] }\n";

const OUTPUTS: &[&str] = &["npv.open", "npv.frontier_a", "share.open", "consumer_surplus_npv"];

fn player_axes(players: &[P]) -> String {
    players
        .iter()
        .map(|p| {
            let vals: Vec<String> =
                p.values.iter().map(|&(v, l)| if l == "never" { "\"never\"".to_string() } else { format!("{v:?}") }).collect();
            format!("\"{}\" = {{ values = [{}] }}\n", p.axis, vals.join(", "))
        })
        .collect()
}

/// A game config; `players_first` puts the players' axes before the worlds'.
fn config(dir: &Path, name: &str, players: &[P], players_first: bool, rows: bool) -> PathBuf {
    let axes =
        if players_first { format!("{}{WORLD_AXES}", player_axes(players)) } else { format!("{WORLD_AXES}{}", player_axes(players)) };
    let list: Vec<String> = players.iter().map(|p| format!("{{ axis = \"{}\", payoff = \"{}\" }}", p.axis, p.payoff)).collect();
    let outputs: Vec<String> = OUTPUTS.iter().map(|o| format!("\"{o}\"")).collect();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "version = 1\n[sweep]\nname = \"{name}\"\n[model]\nmonths = 24\n[axes]\n{axes}[reduce]\nby = [\"model.ad_uplift\"]\noutputs = [{}]\nrows = {rows}\n[reduce.game]\nplayers = [{}]\n",
            outputs.join(", "),
            list.join(", ")
        ),
    )
    .unwrap();
    path
}

/// The brute force: per world (its non-player axis values), each profile's row;
/// then equilibria and the leader outcome from the definitions.
struct Expected {
    /// Per group (ad uplift bits): worlds, [none, one, many], nash count per profile label,
    /// leader count per label (and "none"), means' sums at leader and reference.
    groups: BTreeMap<u64, Group>,
}

#[derive(Default)]
struct Group {
    worlds: u64,
    counts: [u64; 3],
    nash: BTreeMap<String, u64>,
    leader: BTreeMap<String, u64>,
    at_leader: Vec<Vec<f64>>,
    at_ref: Vec<Vec<f64>>,
}

/// A world's rows by each player's strategy index.
type WorldRows<'a> = BTreeMap<Vec<usize>, &'a Vec<Option<f64>>>;

fn brute_force(rows: &Table, players: &[P]) -> Expected {
    let pcols: Vec<usize> = players.iter().map(|p| rows.col(p.axis)).collect();
    let world_cols: Vec<usize> = (0..rows.header.len())
        .filter(|&c| {
            rows.header[c].contains('.') && !pcols.contains(&c) && {
                let h = &rows.header[c];
                h.starts_with("model.") || h.starts_with("firm.")
            }
        })
        .collect();
    // world key -> (strategy indices -> row)
    let mut worlds: BTreeMap<Vec<u64>, WorldRows> = BTreeMap::new();
    for r in &rows.rows {
        let key: Vec<u64> = world_cols.iter().map(|&c| r[c].unwrap().to_bits()).collect();
        let strat: Vec<usize> = players
            .iter()
            .zip(&pcols)
            .map(|(p, &c)| p.values.iter().position(|&(v, _)| v == r[c].unwrap()).expect("a player's value"))
            .collect();
        assert!(worlds.entry(key).or_default().insert(strat, r).is_none(), "a profile twice in a world");
    }
    let n_profiles: usize = players.iter().map(|p| p.values.len()).product();
    let pay = |r: &Vec<Option<f64>>, i: usize| r[rows.col(players[i].payoff)].unwrap_or(f64::NAN);
    let better = |a: f64, b: f64| !a.is_nan() && (b.is_nan() || a > b);
    let c_group = rows.col("model.ad_uplift");
    let mut groups: BTreeMap<u64, Group> = BTreeMap::new();
    for table in worlds.values() {
        assert_eq!(table.len(), n_profiles, "every profile in every world");
        // No player among `who` gains by changing its own value alone.
        let stable = |s: &Vec<usize>, who: &[usize]| {
            who.iter().all(|&i| {
                let own = pay(table[s], i);
                (0..players[i].values.len()).all(|a| {
                    let mut t = s.clone();
                    t[i] = a;
                    !better(pay(table[&t], i), own)
                })
            })
        };
        let label = |s: &Vec<usize>| s.iter().enumerate().map(|(i, &k)| players[i].values[k].1).collect::<Vec<_>>().join("_");
        // BTreeMap order of Vec<usize> keys is profile order (first player slowest).
        let everyone: Vec<usize> = (0..players.len()).collect();
        let nash: Vec<&Vec<usize>> = table.keys().filter(|s| stable(s, &everyone)).collect();
        let mut leader: Option<(&Vec<usize>, f64)> = None;
        for c in 0..players[0].values.len() {
            let Some(s) = table.keys().filter(|s| s[0] == c).find(|s| stable(s, &everyone[1..])) else { continue };
            let v = pay(table[s], 0);
            if leader.is_none() || better(v, leader.unwrap().1) {
                leader = Some((s, v));
            }
        }
        let any = table.values().next().unwrap();
        let g = groups.entry(any[c_group].unwrap().to_bits()).or_default();
        g.worlds += 1;
        g.counts[nash.len().min(2)] += 1;
        for s in &nash {
            *g.nash.entry(label(s)).or_default() += 1;
        }
        *g.leader.entry(leader.map_or("none".into(), |(s, _)| label(s))).or_default() += 1;
        let reference: Vec<usize> =
            players.iter().map(|p| p.values.iter().position(|v| v.1 == "never").unwrap_or(p.values.len() - 1)).collect();
        g.at_leader.resize(OUTPUTS.len(), Vec::new());
        g.at_ref.resize(OUTPUTS.len(), Vec::new());
        for (j, o) in OUTPUTS.iter().enumerate() {
            if let Some((s, _)) = leader {
                g.at_leader[j].extend(table[s][rows.col(o)]);
            }
            g.at_ref[j].extend(table[&reference][rows.col(o)]);
        }
    }
    Expected { groups }
}

/// Every profile label of `players`, in profile order.
fn labels(players: &[P]) -> Vec<String> {
    let mut out = vec![String::new()];
    for (i, p) in players.iter().enumerate() {
        out = out
            .iter()
            .flat_map(|pre| p.values.iter().map(move |v| if i == 0 { v.1.to_string() } else { format!("{pre}_{}", v.1) }))
            .collect();
    }
    out
}

/// `rel`: the means' tolerance (the GPU's are f32 block means added exactly).
fn check_against_rows(reduced: &Table, rows: &Table, players: &[P], rel: f64) -> [u64; 3] {
    let want = brute_force(rows, players);
    assert_eq!(reduced.rows.len(), want.groups.len(), "one reduced row per ad uplift");
    let mut seen = [0u64; 3];
    for r in &reduced.rows {
        let g = &want.groups[&r[reduced.col("model.ad_uplift")].unwrap().to_bits()];
        let share = |n: u64| n as f64 / g.worlds as f64;
        for (k, name) in ["none", "one", "many"].iter().enumerate() {
            assert_eq!(r[reduced.col(&format!("nash.{name}.share"))], Some(share(g.counts[k])), "nash.{name}.share");
            seen[k] += g.counts[k];
        }
        for l in labels(players) {
            assert_eq!(r[reduced.col(&format!("nash.{l}.share"))], Some(share(g.nash.get(&l).copied().unwrap_or(0))), "nash.{l}.share");
            assert_eq!(
                r[reduced.col(&format!("leader.{l}.share"))],
                Some(share(g.leader.get(&l).copied().unwrap_or(0))),
                "leader.{l}.share"
            );
        }
        assert_eq!(r[reduced.col("leader.none.share")], Some(share(g.leader.get("none").copied().unwrap_or(0))));
        for (j, o) in OUTPUTS.iter().enumerate() {
            for (what, xs) in [("leader", &g.at_leader[j]), ("reference", &g.at_ref[j])] {
                let got = r[reduced.col(&format!("{what}.{o}.mean"))];
                if xs.is_empty() {
                    assert_eq!(got, None, "{what}.{o}.mean without values");
                    continue;
                }
                let mean = xs.iter().sum::<f64>() / xs.len() as f64;
                let got = got.unwrap();
                assert!((got - mean).abs() <= rel * mean.abs().max(1.0), "{what}.{o}.mean: reduced {got} vs rows {mean}");
            }
        }
    }
    seen
}

#[test]
fn two_and_three_player_games_equal_a_brute_force_over_the_rows() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, players) in [("two", TWO), ("three", THREE)] {
        let cfg = config(tmp.path(), name, players, false, true);
        let out = tmp.path().join(format!("{name}.csv"));
        run(&cfg, &["--out", out.to_str().unwrap()]);
        let rows = Table::read(&out);
        let reduced = Table::read(&tmp.path().join(format!("{name}.reduced.csv")));
        let seen = check_against_rows(&reduced, &rows, players, 1e-12);
        // The sweep must show what the game is for: worlds with one and with several equilibria.
        assert!(seen[1] > 0 && seen[2] > 0, "{name}: worlds by equilibria {seen:?}: make the sweep show both");

        // The players' axes first: positions reorder the rows, the reduction is the same.
        let first = config(tmp.path(), &format!("{name}-first"), players, true, false);
        let out2 = tmp.path().join(format!("{name}-first.csv"));
        run(&first, &["--out", out2.to_str().unwrap()]);
        assert!(
            std::fs::read(tmp.path().join(format!("{name}-first.reduced.csv"))).unwrap()
                == std::fs::read(tmp.path().join(format!("{name}.reduced.csv"))).unwrap(),
            "{name}: where the players' axes stand changed the reduction"
        );
    }
}

/// About 40,000 rows: 4,536 worlds of 9 profiles (blocks of 4,095 rows).
fn long_config(dir: &Path) -> PathBuf {
    let cfg = dir.join("long.toml");
    std::fs::write(
        &cfg,
        "version = 1\n[sweep]\nname = \"long\"\n[model]\nmonths = 24\n[axes]\n\
         \"firm.open.release_month\" = { values = [0, 12, \"never\"] }\n\
         \"model.ad_uplift\" = { logspace = [1e-3, 3e-1], steps = 14 }\n\
         \"firm.frontier_a.platform_revenue\" = { logspace = [3e10, 3e11], steps = 18 }\n\
         \"firm.frontier_a.release_month\" = { values = [0, 12, \"never\"] }\n\
         \"firm.challenger.funding\" = { logspace = [3e7, 3e9], steps = 18 }\n\
         [reduce]\nby = [\"model.ad_uplift\"]\noutputs = [\"npv.open\", \"share.open\"]\nstats = [\"mean\", \"q50\"]\n\
         [reduce.game]\nplayers = [{ axis = \"firm.open.release_month\", payoff = \"npv.open\" }, { axis = \"firm.frontier_a.release_month\", payoff = \"npv.frontier_a\", reference = 0 }]\n",
    )
    .unwrap();
    cfg
}

#[test]
fn game_bytes_do_not_depend_on_threads_chunks_shards_or_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = long_config(dir);
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    run(&cfg, &["--out", &path("full.csv")]);
    let full = std::fs::read(dir.join("full.reduced.csv")).unwrap();
    let text = String::from_utf8_lossy(&full);
    assert!(text.starts_with("model.ad_uplift,"), "{}", &text[..80]);

    let one = moatsweep()
        .args(["--threads", "1", "run", "--quiet", "--backend", "cpu"])
        .arg(&cfg)
        .args(["--out", &path("one.csv"), "--chunk-rows", "7"])
        .output()
        .unwrap();
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    assert!(std::fs::read(dir.join("one.reduced.csv")).unwrap() == full, "1 thread and 7-row chunks changed the bytes");

    let mut shards = Vec::new();
    for i in 0..3 {
        run(&cfg, &["--out", &path("s.csv"), "--shard", &format!("{i}/3")]);
        shards.push(dir.join(format!("s.shard-{i}-of-3.reduced.csv")));
    }
    let merged = dir.join("merged.reduced.csv");
    let m = moatsweep().arg("merge").arg(&merged).args([&shards[1], &shards[2], &shards[0]]).output().unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert!(std::fs::read(&merged).unwrap() == full, "merged shards differ from one run");

    let out = path("killed.csv");
    let checkpoint = dir.join("killed.reduced.csv.partial.checkpoint");
    let mut child = std::process::Command::new(support::bin())
        .args(["--threads", "1", "run", "--quiet", "--backend", "cpu", "--chunk-rows", "4095"])
        .arg(&cfg)
        .args(["--out", &out])
        .spawn()
        .unwrap();
    support::wait_for("a checkpoint past the first rows", || support::checkpoint_row(&checkpoint).is_some_and(|r| r >= 4095));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.join("killed.reduced.csv").exists(), "the run finished before it could be killed; make it longer");
    run(&cfg, &["--out", &out, "--resume"]);
    assert!(std::fs::read(dir.join("killed.reduced.csv")).unwrap() == full, "the resumed run differs");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("killed.reduced.csv.manifest.json")).unwrap()).unwrap();
    assert!(manifest["resumed_at_row"].as_u64().unwrap() >= 4095);
    let game = &manifest["reduce"]["spec"]["game"];
    assert_eq!(game["order"], "players fastest");
    assert_eq!(game["players"][1]["reference"], 0);
    assert_eq!(game["players"][0]["reference"], "never");
}

#[test]
fn validate_prints_the_games_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), "three", THREE, true, false);
    let out = moatsweep().arg("validate").arg(&cfg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // 6 x 3 x 2 world values; 3 x 2 x 3 profiles.
    assert!(
        text.contains("game:     3 players, 3 x 2 x 3 = 18 profiles per world, 36 worlds; solved with the players' axes fastest"),
        "{text}"
    );
    assert!(
        text.contains("player 1: leads, maximizes npv.open over firm.open.release_month (3 values: 0, 12, never), reference never"),
        "{text}"
    );
    assert!(text.contains("nash.never_0_2.0.share"), "{text}");
}

#[test]
fn the_devices_equilibria_equal_those_of_the_gpu_rows() {
    if !common::have_gpu() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let gpu = |cfg: &Path, out: &Path, extra: &[&str]| {
        let o = moatsweep().args(["run", "--quiet", "--backend", "gpu"]).arg(cfg).arg("--out").arg(out).args(extra).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out.with_file_name(format!("{}.reduced.csv", out.file_stem().unwrap().to_string_lossy()))).unwrap()
    };
    for (name, players) in [("two", TWO), ("three", THREE)] {
        let cfg = config(tmp.path(), name, players, false, true);
        let out = tmp.path().join(format!("{name}.csv"));
        let with_rows = gpu(&cfg, &out, &[]);
        let rows = Table::read(&out);
        let reduced = Table::read(&tmp.path().join(format!("{name}.reduced.csv")));
        let seen = check_against_rows(&reduced, &rows, players, 1e-5);
        assert!(seen[1] > 0 && seen[2] > 0, "{name}: worlds by equilibria {seen:?}");
        // No rows read back, the players first (positions reordered), small chunks: the same bytes.
        let first = config(tmp.path(), &format!("{name}-first"), players, true, false);
        assert!(
            gpu(&first, &tmp.path().join(format!("{name}-first.csv")), &[]) == with_rows,
            "{name}: the players' place changed the bytes"
        );
        let small = gpu(&first, &tmp.path().join(format!("{name}-small.csv")), &["--chunk-rows", "1"]);
        assert!(small == with_rows, "{name}: one-block chunks changed the bytes");
    }
    // 40,824 rows in 3 shards of whole blocks, merged: the bytes of one run.
    let long = long_config(tmp.path());
    let full = gpu(&long, &tmp.path().join("long.csv"), &[]);
    let mut shards = Vec::new();
    for i in 0..3 {
        let o = moatsweep()
            .args(["run", "--quiet", "--backend", "gpu", "--shard", &format!("{i}/3")])
            .arg(&long)
            .arg("--out")
            .arg(tmp.path().join("s.csv"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        shards.push(tmp.path().join(format!("s.shard-{i}-of-3.reduced.csv")));
    }
    let merged = tmp.path().join("merged.reduced.csv");
    let m = moatsweep().arg("merge").arg(&merged).args(&shards).output().unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert!(std::fs::read(&merged).unwrap() == full, "merged GPU shards changed the bytes");
    // A game whose world one invocation cannot solve within llvmpipe's loop cap
    // (6 x 6 x 6 x 6 profiles) is refused there, not solved wrong.
    // (Where lavapipe is the only adapter, as in CI, the run takes it.)
    let adapters = moatsweep::gpu::list_adapters();
    if adapters.iter().all(|a| a.name.starts_with("llvmpipe")) {
        let months = "{ values = [0, 3, 6, 9, 12, \"never\"] }";
        let firms = ["open", "frontier_a", "frontier_b", "challenger"];
        let axes: String = firms.iter().map(|f| format!("\"firm.{f}.release_month\" = {months}\n")).collect();
        let players: Vec<String> = firms.iter().map(|f| format!("{{ axis = \"firm.{f}.release_month\", payoff = \"npv.{f}\" }}")).collect();
        let cfg = tmp.path().join("big.toml");
        std::fs::write(
            &cfg,
            format!("version = 1\n[model]\nmonths = 6\n[axes]\n{axes}[reduce]\n[reduce.game]\nplayers = [{}]\n", players.join(", ")),
        )
        .unwrap();
        let o = moatsweep()
            .args(["run", "--quiet", "--backend", "gpu"])
            .arg(&cfg)
            .arg("--out")
            .arg(tmp.path().join("big.csv"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("this game cannot run on llvmpipe: solving one world's payoff table (1296 profiles)"), "{err}");
        assert!(!tmp.path().join("big.reduced.csv").exists());
    }
}

/// `configs/release-game.toml` says its market is the calibrated one of
/// `configs/llm-market-2025.toml`: every model, firm and segment value the same.
#[test]
fn the_shipped_game_plays_in_the_calibrated_market() {
    fn market(path: &str) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(support::root().join(path)).unwrap();
        let doc: toml_edit::DocumentMut = text.parse().unwrap();
        let mut out = BTreeMap::new();
        let mut put = |prefix: &str, t: &toml_edit::Table| {
            for (k, v) in t.iter() {
                let mut v = v.as_value().unwrap_or_else(|| panic!("{path}: {prefix}.{k}")).clone();
                v.decor_mut().clear();
                out.insert(format!("{prefix}.{k}"), v.to_string());
            }
        };
        put("model", doc["model"].as_table().unwrap());
        for key in ["firm", "segment"] {
            for t in doc[key].as_array_of_tables().unwrap() {
                put(&format!("{key}.{}", t["name"].as_str().unwrap()), t);
            }
        }
        out
    }
    let game = market("configs/release-game.toml");
    assert!(game.len() > 40, "{game:?}");
    assert_eq!(game, market("configs/llm-market-2025.toml"));
}

/// `plot --z nash` and `--z leader` draw per group the profile with the largest
/// share (the first in profile order on a tie; `none` where more worlds have
/// none), crossed where some world has several equilibria: the `--cells` file
/// against the reduced CSV read here; `summarize` tables each group's
/// equilibria; `--z nash` without `--y` is refused.
#[test]
fn plot_and_summarize_read_a_game() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), "two", TWO, false, false);
    // Two group axes: ad uplift and the platform revenue.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("by = [\"model.ad_uplift\"]", "by = [\"model.ad_uplift\", \"firm.frontier_a.platform_revenue\"]");
    std::fs::write(&cfg, text).unwrap();
    let out = tmp.path().join("two.csv");
    run(&cfg, &["--out", out.to_str().unwrap()]);
    let reduced = tmp.path().join("two.reduced.csv");
    let red = Table::read(&reduced);
    let labels = labels(TWO);
    for (z, prefix) in [("nash", "nash"), ("leader", "leader")] {
        let cells = tmp.path().join(format!("{z}.cells.csv"));
        let o = moatsweep()
            .args(["plot"])
            .arg(&reduced)
            .args(["--x", "model.ad_uplift", "--y", "firm.frontier_a.platform_revenue", "--z", z, "--out"])
            .arg(tmp.path().join(format!("{z}.svg")))
            .arg("--cells")
            .arg(&cells)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&cells).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), format!("model.ad_uplift,firm.frontier_a.platform_revenue,{z},nash.many"));
        let drawn: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(drawn.len(), red.rows.len(), "one cell per group");
        let mut marked = 0;
        for r in &red.rows {
            let (x, y) = (r[red.col("model.ad_uplift")].unwrap(), r[red.col("firm.frontier_a.platform_revenue")].unwrap());
            let cell =
                drawn.iter().find(|c| c[0].parse::<f64>().unwrap() == x && c[1].parse::<f64>().unwrap() == y).expect("the group's cell");
            let mut want = ("", 0.0);
            for l in labels.iter().map(String::as_str).chain(["none"]) {
                let share = r[red.col(&format!("{prefix}.{l}.share"))].unwrap();
                if share > want.1 {
                    want = (l, share);
                }
            }
            assert_eq!(cell[2], want.0, "{z} at ({x}, {y})");
            let several = r[red.col("nash.many.share")].unwrap() > 0.0;
            assert_eq!(cell[3], if several { "1" } else { "0" });
            marked += several as usize;
        }
        assert!(marked > 0, "no group with several equilibria to mark");
    }
    let o = moatsweep().arg("plot").arg(&reduced).args(["--x", "model.ad_uplift", "--z", "nash"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--z nash draws a categorical heatmap and needs --y"));

    let o = moatsweep().arg("summarize").arg(&reduced).args(["--output", "npv.open"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("game: firm.open.release_month (maximizing npv.open) x firm.frontier_a.release_month (maximizing npv.frontier_a)"),
        "{text}"
    );
    // Each group's block ends with its equilibria: check one against the CSV.
    let r = &red.rows[0];
    let pct = |name: &str| format!("{:.1}%", 100.0 * r[red.col(name)].unwrap());
    let line = format!(
        "worlds with no pure equilibrium {}, one {}, several {}",
        pct("nash.none.share"),
        pct("nash.one.share"),
        pct("nash.many.share")
    );
    assert!(text.contains(&line), "{line} in {text}");
    assert_eq!(text.matches("leader-follower outcome: ").count(), red.rows.len());
}

/// More shards than blocks: some shards are empty and one holds every block;
/// each keeps its shard's name, so `merge` finds them all and gives one run's
/// bytes. (A shard that covered every row used to be written under the whole
/// sweep's name, and merge could not find it.)
#[test]
fn more_shards_than_blocks_merge_to_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), "two", TWO, false, false);
    let path = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    run(&cfg, &["--out", &path("full.csv")]);
    let full = std::fs::read(tmp.path().join("full.reduced.csv")).unwrap();
    let mut shards = Vec::new();
    for i in 0..3 {
        run(&cfg, &["--out", &path("s.csv"), "--shard", &format!("{i}/3")]);
        shards.push(tmp.path().join(format!("s.shard-{i}-of-3.reduced.csv")));
    }
    assert!(!tmp.path().join("s.reduced.csv").exists(), "a shard wrote the whole sweep's file");
    let merged = tmp.path().join("merged.reduced.csv");
    let m = moatsweep().arg("merge").arg(&merged).args(&shards).output().unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert!(std::fs::read(&merged).unwrap() == full, "merged shards differ from one run");
}
