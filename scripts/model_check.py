"""moatsweep's CPU reference against an independent implementation of model
version 3 (scripts/model_v3.py, written from MODEL.md alone).

    python scripts/model_check.py target/release/moatsweep [CONFIG]

1. The peer against the specification: the figures that MODEL.md section 6
   states (the baseline at month 35, version 1's figures with
   generation_months = 0 and investor_runway = 0, the underfunded challenger
   refinanced before the release and exiting after it), each to the digits
   the spec gives (half a unit of its last digit).
2. moatsweep against the peer: runs `moatsweep run CONFIG --backend cpu`
   (default scripts/peer-configs/v3-grid.toml: 5 firms, a released lab
   without income at version 2's tie, several release months, fundings,
   runways, hurdles and cost factors, 648 rows), solves every row with the
   peer, and compares every output cell. Real columns pass when
   |moatsweep - peer| <= 1e-5 |peer| + floor, floor = 1e-9 x the column's
   scale (its largest |value| in the CSV): npv, raised and consumer surplus
   are sums of flows of order 1e9 that can cancel to near 0, where a relative
   test alone would compare rounding noise (f64 rounding of a sum of 36
   monthly flows is about 1e-14 of the scale); 1e-9 of the scale is far above
   that and far below any modelling difference (a month's flow of the
   smallest firm is over 1e-3 of the scale). Integer columns (exit_month,
   generations, max_iterations, nonconverged_months) and empty cells (price of
   a product not offered) must be equal. The header and every axis cell must
   be the peer's. One check per column; the worst deviation of each is printed.
3. The grid must meet version 2's tie: rows whose outcome (raised or
   exit_month) differs between the peer with section 4's threshold and the
   peer with version 2's `cash < 0` must exist, or the grid no longer tests
   what it is for.

Prints `model_check: N passed, M failed` last; exits 1 on any failure or when
nothing was checked.
"""

import csv
import math
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_v3  # noqa: E402
from tally import Tally  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "target/release/moatsweep"
CONFIG = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else ROOT / "scripts/peer-configs/v3-grid.toml"
REL = 1e-5
FLOOR = 1e-9

TALLY = Tally("model_check")
check = TALLY.check


def near(got, spec, digits_unit, what):
    """got agrees with a spec figure written to a last digit of digits_unit."""
    ok = abs(got - spec) <= 0.5 * digits_unit * (1 + 1e-9)
    check(ok, f"{what}: peer {got!r}, spec {spec}")
    return ok


def spec_figures():
    base = model_v3.default_scenario()
    r = model_v3.solve(base)
    firms = ["open", "frontier_a", "frontier_b", "challenger"]
    for f, s in zip(firms, [0.427, 0.041, 0.048, 0.069]):
        near(r[f"share.{f}"], s, 1e-3, f"baseline share.{f}")
    near(r["outside_share"], 0.416, 1e-3, "baseline outside_share")
    near(r["price.open"], 1.91, 1e-2, "baseline price.open")
    for f, q in zip(firms, [2.598, 2.556, 2.440, 2.431]):
        near(r[f"quality.{f}"], q, 1e-3, f"baseline quality.{f}")
    check(all(r[f"generations.{f}"] == 3 for f in firms), "baseline: three generations each")
    check(all(r[f"exit_month.{f}"] == -1 for f in firms), "baseline: no exits")
    check(all(r[f"raised.{f}"] == 0 for f in firms), "baseline: nothing raised")
    near(r["npv.open"], -1.30e9, 1e7, "baseline npv.open")
    near(r["complement_npv.open"], 4.15e9, 1e7, "baseline complement_npv.open")
    check(r["max_iterations"] == 26, f"baseline max_iterations {r['max_iterations']}, spec 26")

    v1 = model_v3.default_scenario()
    v1["model"]["generation_months"] = 0
    v1["model"]["investor_runway"] = 0
    r = model_v3.solve(v1)
    for f, s in zip(firms, [0.4308, 0.0553, 0.0594, 0.0604]):
        near(r[f"share.{f}"], s, 1e-4, f"version 1 share.{f}")
    near(r["outside_share"], 0.3941, 1e-4, "version 1 outside_share")
    near(r["price.open"], 0.943, 1e-3, "version 1 price.open")

    def challenger(release, months=36):
        s = model_v3.default_scenario()
        model_v3.set_param(s, "firm.challenger.train_spend", 5e8)
        model_v3.set_param(s, "firm.challenger.funding", 5e7)
        model_v3.set_param(s, "firm.open.release_month", release)
        s["model"]["months"] = months
        return model_v3.solve(s)

    # "its cash turns negative in month 2": no decision in months 0-1, one in month 2
    check(
        challenger(6, 2)["raised.challenger"] == 0 and challenger(6, 3)["raised.challenger"] > 0,
        "underfunded challenger: cash first short in month 2",
    )
    r = challenger(6)
    near(r["raised.challenger"], 5.04e8, 1e6, "underfunded challenger, release 6: raised")
    check(r["exit_month.challenger"] == -1, "underfunded challenger, release 6: survives")
    r = challenger(0)
    check(r["exit_month.challenger"] == 2, f"release 0: challenger exits at {r['exit_month.challenger']}, spec 2")
    check(r["generations.challenger"] == 1, "release 0: challenger has one generation")


def fmt_axis(v):
    return -1.0 if v == "never" else float(v)


def grid_check():
    base, axes = model_v3.load_config(CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "grid.csv"
        subprocess.run(
            [str(BIN), "run", str(CONFIG), "--backend", "cpu", "--out", str(out), "-q"], check=True
        )
        with open(out, newline="") as f:
            rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    peer_rows = list(model_v3.grid_rows(base, axes))
    if not check(len(body) == len(peer_rows), f"rows: moatsweep {len(body)}, peer {len(peer_rows)}"):
        return
    ours = [(i, cells, model_v3.solve(s), model_v3.solve(s, v2_rule=True)) for i, cells, s in peer_rows]
    out_cols = list(ours[0][2])
    expect = ["scenario"] + [p for p, _ in axes] + out_cols
    if not check(header == expect, f"header {header} != peer's {expect}"):
        return
    col = {h: k for k, h in enumerate(header)}
    axis_ok = all(
        int(r[0]) == i and all(float(r[col[p]]) == fmt_axis(v) for p, v in cells.items())
        for r, (i, cells, _, _) in zip(body, ours)
    )
    check(axis_ok, "scenario index and axis cells are the grid's")

    print(f"{len(body)} rows of {CONFIG.name}: |moatsweep - peer| <= {REL:g} |peer| + {FLOOR:g} x column scale")
    print(f"{'column':32s} {'scale':>10s} {'worst dev':>10s} {'at row':>6s}")
    for name in out_cols:
        k = col[name]
        is_int = name.startswith(model_v3.INT_COLUMNS)
        cells = [r[k] for r in body]
        scale = max((abs(float(c)) for c in cells if c != ""), default=0.0)
        floor = FLOOR * scale
        worst, where, bad = 0.0, -1, []
        for row, (c, (_, _, p, _)) in enumerate(zip(cells, ours)):
            v = p[name]
            if v is None or c == "":
                if not (v is None and c == ""):
                    bad.append(f"row {row}: moatsweep {c!r}, peer {v!r}")
                continue
            got = float(c)
            if is_int:
                dev = abs(got - v)
                if not (got == int(got) and got == v):
                    bad.append(f"row {row}: moatsweep {c}, peer {v}")
            else:
                if not math.isfinite(got):
                    bad.append(f"row {row}: moatsweep {c}")
                    continue
                dev = abs(got - v) / max(abs(v), floor / REL, 1e-300)
                if abs(got - v) > REL * abs(v) + floor:
                    bad.append(f"row {row}: moatsweep {c}, peer {v!r}")
            if dev > worst or where < 0:
                worst, where = dev, row
        kind = "(int, abs)" if is_int else ""
        print(f"{name:32s} {scale:10.3g} {worst:10.2e} {where:6d} {kind}")
        check(not bad, f"{name}: {len(bad)} cells differ, e.g. {bad[:3]}")

    ties = sum(
        any(p[c] != p2[c] for c in out_cols if c.startswith(("raised.", "exit_month.")))
        for _, _, p, p2 in ours
    )
    print(f"rows whose raised or exit_month differ under version 2's rule (cash < 0): {ties}")
    check(ties > 0, "the grid meets version 2's tie on some rows")
    factors = {s["firms"][k]["cost_factor"] for _, _, s in peer_rows for k in range(len(s["firms"]))}
    check(any(f != 1.0 for f in factors), "the grid has cost factors other than 1")


def main():
    spec_figures()
    grid_check()
    TALLY.finish()


if __name__ == "__main__":
    main()
