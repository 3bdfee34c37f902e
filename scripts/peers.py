"""moatsweep against its peers on the same rows: SALib 1.6 (Sobol and Morris
indices) and EMA Workbench 2.5 (PRIM).

    python scripts/peers.py target/release/moatsweep

Runs small saltelli, morris and lhs sweeps with the real binary (CPU backend),
analyses them with `moatsweep sensitivity` and `moatsweep discover`, analyses
the same CSVs with SALib's `sobol.analyze` / `morris.analyze` and EMA
Workbench's `prim.Prim`, and fails on any index differing by more than 1e-9 or
any difference in a PRIM trajectory (coverage, density, mass, mean, res_dim of
every box). Prints `peers: N passed, M failed` last and fails when a sweep
compared no output or nothing was checked at all (N + M = 0), so a peer that
quietly compares nothing cannot pass. .ci/peers runs it in a fresh venv with
scripts/peers-requirements.txt.

How the peers get the same rows:
- Every number is read with float_precision="round_trip" (pandas' default
  parser can be one ulp off, which changes PRIM's ties).
- Sobol: Y is an output column as it stands; the CSV's rows are SALib's
  Saltelli layout (A, AB_1..AB_k, [BA_1..BA_k,] B per base point).
- Morris: SALib takes X in unit coordinates on [0, 1]; every moatsweep morris
  row has a level i/(p-1) per axis, recovered here from the manifest's axis
  mapping (`level_table`): the level whose mapped value is nearest the cell,
  the lowest such level where several map to one value (an integer or values
  axis), which keeps the direction of every step.
- Blocks that moatsweep drops for an output (an empty or non-finite cell, or a
  row with nonconverged_months > 0) are dropped here too before the peer sees Y.
"""

import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from ema_workbench.analysis import prim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tally import Tally  # noqa: E402
from SALib.analyze import morris as salib_morris
from SALib.analyze import sobol as salib_sobol

warnings.filterwarnings("ignore")
TOL = 1e-9
BIN = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path("target/release/moatsweep").resolve()

FIRMS = """
[[firm]]
name = "open"
[[firm]]
name = "frontier_a"
[[firm]]
name = "frontier_b"
[[firm]]
name = "challenger"
train_spend = 5e8
"""

AXES = """
[axes]
"firm.open.release_month" = { integers = [0, 36] }
"firm.challenger.funding" = { loguniform = [3e7, 1e9] }
"model.ad_uplift" = { uniform = [0.001, 0.1] }
"firm.open.train_spend" = { loguniform = [2e8, 5e9] }
"""

SWEEPS = {
    "saltelli1": 'design = "saltelli"\nsamples = 512\nseed = 1\n',
    "saltelli2": 'design = "saltelli"\nsamples = 256\nseed = 2\nsecond_order = true\n',
    "morris4": 'design = "morris"\ntrajectories = 300\nseed = 3\n',
    "morris6": 'design = "morris"\ntrajectories = 200\nlevels = 6\nseed = 4\n',
    "lhs": 'design = "lhs"\nsamples = 20000\nseed = 5\n',
}

# (inputs or None for every axis, expression); pandas' eval needs backquotes around dotted names.
DISCOVERIES = [
    ("firm.challenger.funding,model.ad_uplift,firm.open.train_spend", "exit_month.challenger >= 0"),
    (None, "npv.open > 1e10 and exit_month.challenger >= 0"),
    (None, "npv.open > 1e10 and firm.open.release_month <= 12"),
    (None, "share.open > 0.2 or hhi < 0.3"),
]

TALLY = Tally("peers")
check = TALLY.check


def read(path):
    return pd.read_csv(path, float_precision="round_trip")


def run(*args):
    subprocess.run([str(BIN), *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def sweep(tmp, name, extra=""):
    cfg = tmp / f"{name}.toml"
    # A values axis too in the morris sweeps (a list maps levels to items).
    axes = AXES + ('"firm.challenger.release_month" = { values = [12, "never"] }\n' if name.startswith("morris") else "")
    cfg.write_text(f'version = 1\n[sweep]\nname = "{name}"\n{SWEEPS[name]}{extra}{FIRMS}{axes}')
    csv = tmp / f"{name}.csv"
    run("run", cfg, "--backend", "cpu", "--quiet", "--out", csv)
    return csv


def manifest(csv):
    return json.loads(Path(f"{csv}.manifest.json").read_text())


def kept(df, column, block):
    y = df[column].to_numpy(dtype=float).reshape(-1, block)
    nc = df["nonconverged_months"].to_numpy(dtype=float).reshape(-1, block)
    return y, np.isfinite(y).all(axis=1) & (nc <= 0).all(axis=1)


def compare_sobol(tmp, name):
    csv = sweep(tmp, name)
    run("sensitivity", csv, "--resamples", "50")
    df, ours = read(csv), read(csv.with_name(f"{name}.sensitivity.csv"))
    m = manifest(csv)
    axes = [a["path"] for a in m["config"]["axes"]]
    k, second = len(axes), m["config"]["sweep"]["second_order"]
    block = 2 * k + 2 if second else k + 2
    problem = {"num_vars": k, "names": axes, "bounds": [[0.0, 1.0]] * k}
    worst = 0.0
    outputs = ours["output"].unique()
    for out in outputs:
        y, keep = kept(df, out, block)
        s = salib_sobol.analyze(problem, y[keep].ravel(), calc_second_order=second, num_resamples=10, seed=1)
        mine = ours[ours.output == out]
        diffs = []
        for index in ["S1", "ST"]:
            for j, a in enumerate(axes):
                v = mine[(mine["index"] == index) & (mine.parameter == a)].value.iloc[0]
                diffs.append(abs(v - s[index][j]))
        if second:
            for j in range(k):
                for l in range(j + 1, k):
                    row = mine[(mine["index"] == "S2") & (mine.parameter == axes[j]) & (mine.parameter2 == axes[l])]
                    diffs.append(abs(row.value.iloc[0] - s["S2"][j, l]))
        worst = max(worst, max(diffs))
        check(max(diffs) <= TOL, f"{name} {out}: SALib differs by {max(diffs):.3g}")
    check(len(outputs) > 0, f"{name}: moatsweep sensitivity gave no output to compare")
    print(f"{name}: {len(outputs)} outputs, largest difference from SALib sobol.analyze {worst:.3g}")
    return worst


def level_table(axis, p):
    """Each level's value on an axis, as moatsweep maps unit coordinates (docs/config.md)."""
    values = []
    for i in range(p):
        u = i / (p - 1)
        if "uniform" in axis:
            lo, hi = axis["uniform"]
            values.append(hi if u >= 1 else lo + (hi - lo) * u)
        elif "loguniform" in axis:
            lo, hi = axis["loguniform"]
            values.append(hi if u >= 1 else np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u))
        elif "integers" in axis:
            lo, hi = axis["integers"]
            values.append(lo + min(np.floor(u * (hi - lo + 1)), hi - lo))
        else:
            items = [-1 if x == "never" else x for x in axis["values"]]
            values.append(items[min(int(u * len(items)), len(items) - 1)])
    return np.asarray(values, dtype=float)


def unit_coordinates(df, m):
    p = m["config"]["sweep"]["levels"]
    axes = m["config"]["axes"]
    x = np.zeros((len(df), len(axes)))
    for j, axis in enumerate(axes):
        table = level_table(axis, p)
        cells = df[axis["path"]].to_numpy(dtype=float)
        distance = np.abs(cells[:, None] - table[None, :])
        x[:, j] = np.argmax(distance == distance.min(axis=1, keepdims=True), axis=1) / (p - 1)
    return x


def compare_morris(tmp, name):
    csv = sweep(tmp, name)
    run("sensitivity", csv, "--resamples", "50")
    df, ours = read(csv), read(csv.with_name(f"{name}.sensitivity.csv"))
    m = manifest(csv)
    axes = [a["path"] for a in m["config"]["axes"]]
    k, p = len(axes), m["config"]["sweep"]["levels"]
    x = unit_coordinates(df, m).reshape(-1, k + 1, k)
    problem = {"num_vars": k, "names": axes, "bounds": [[0.0, 1.0]] * k}
    worst = 0.0
    outputs = ours["output"].unique()
    for out in outputs:
        y, keep = kept(df, out, k + 1)
        s = salib_morris.analyze(problem, x[keep].reshape(-1, k), y[keep].ravel(), num_levels=p, num_resamples=10, seed=1)
        mine = ours[ours.output == out]
        diffs = []
        for index in ["mu", "mu_star", "sigma"]:
            for j, a in enumerate(axes):
                v = mine[(mine["index"] == index) & (mine.parameter == a)].value.iloc[0]
                diffs.append(abs(v - s[index][j]) / max(1.0, abs(s[index][j])))
        worst = max(worst, max(diffs))
        check(max(diffs) <= TOL, f"{name} {out}: SALib differs by {max(diffs):.3g} (relative)")
    check(len(outputs) > 0, f"{name}: moatsweep sensitivity gave no output to compare")
    print(f"{name}: {len(outputs)} outputs, largest difference from SALib morris.analyze {worst:.3g} (relative to max(1, |value|))")
    return worst


def backquoted(expr, columns):
    for c in sorted(columns, key=len, reverse=True):
        expr = expr.replace(c, f"`{c}`")
    return expr.replace("``", "`")


def compare_prim(tmp, csv, inputs, expr, n):
    out = tmp / f"discover-{n}.csv"
    args = ["discover", csv, "--where", expr, "--out", out]
    if inputs:
        args += ["--inputs", inputs]
    printed = subprocess.run([str(BIN), *map(str, args)], check=True, capture_output=True, text=True).stdout
    df, ours = read(csv), read(out)
    m = manifest(csv)
    names = inputs.split(",") if inputs else [a["path"] for a in m["config"]["axes"]]
    y = df.eval(backquoted(expr, df.columns)).to_numpy()
    alg = prim.Prim(df[names], y, threshold=0.8)
    # find_box's steps, kept whatever the final density: the whole trajectory.
    box = prim.PrimBox(alg, alg.box_init, alg.yi_remaining[:])
    box = alg._paste(alg._peel(box))
    theirs = box.peeling_trajectory
    same_length = len(theirs) == len(ours)
    check(same_length, f"PRIM '{expr}': {len(ours)} boxes, EMA {len(theirs)}")
    if not same_length:
        return
    for column in ["coverage", "density", "mass", "mean", "res_dim"]:
        a, b = ours[column].to_numpy(dtype=float), theirs[column].to_numpy(dtype=float)
        check(np.array_equal(a, b), f"PRIM '{expr}': {column} differs at boxes {np.flatnonzero(a != b)[:5]}")
    # The chosen box's quasi-p-values (printed to 3 significant digits).
    chosen = int(printed.split("\nbox ")[1].split(" ")[0])
    qp = box.qp[chosen]
    lines = printed.split("qp upper\n")[1].strip().splitlines() if qp else []
    for line in lines:
        cells = line.split()
        name, lower, upper = cells[0], cells[-2], cells[-1]
        for mine, theirs_qp in [(lower, qp[name][0]), (upper, qp[name][1])]:
            if mine == "-":
                check(theirs_qp == -1, f"PRIM '{expr}' box {chosen} {name}: EMA has a quasi-p-value {theirs_qp}")
            else:
                v = float(mine)
                check(abs(v - theirs_qp) <= 0.006 * theirs_qp + 1e-300, f"PRIM '{expr}' box {chosen} {name}: qp {v} vs EMA {theirs_qp}")
    print(f"PRIM '{expr}': {len(ours)} boxes equal to EMA Workbench's; box {chosen}'s quasi-p-values agree")


def main():
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        worst = max(compare_sobol(tmp, "saltelli1"), compare_sobol(tmp, "saltelli2"))
        worst_m = max(compare_morris(tmp, "morris4"), compare_morris(tmp, "morris6"))
        lhs = sweep(tmp, "lhs")
        for n, (inputs, expr) in enumerate(DISCOVERIES):
            compare_prim(tmp, lhs, inputs, expr, n)
        print(f"largest differences: Sobol {worst:.3g}, Morris {worst_m:.3g}; PRIM trajectories compared exactly")
    TALLY.finish()


if __name__ == "__main__":
    main()
