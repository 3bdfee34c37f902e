"""`moatsweep calibrate` against pyblp 1.3 (Conlon and Gortmaker), the
structural-IO package whose inversion MODEL.md section 9 follows.

    python scripts/pyblp_check.py target/release/moatsweep

For each market below the observations are made here: chosen primitives
(brands, cost factors, with --margin a scale of every segment's price
sensitivity) are solved at month 0 with scripts/model_v3.py (the independent
implementation of MODEL.md) to tol 1e-14, and the shares and prices written
to an observations CSV (shortest round-trip decimals). Then:

 (i)   `moatsweep calibrate` must recover the chosen brands and cost factors
       (and the price-sensitivity scale, and market0 with --usage) to 1e-8.
 (ii)  pyblp's Bertrand-Nash equilibrium, at the calibrated brands and costs
       (cost_factor x the plain serving cost of model_v3's scaling law) and
       the calibrated segments, must give the observed prices and shares back
       to 1e-8 (relative). Also at the chosen primitives (a self-check of the
       peer's own month-0 solver).
 (iii) pyblp's own inversion at the fixed demand parameters (its delta
       contraction with `Optimization('return')`, then `compute_costs()`) must
       give the chosen brands and the calibrated costs to 1e-8.
 (iv)  `moatsweep calibrate --sweep` on the same config and observations (one
       row) must give the same brands and cost factors, the own-price
       elasticities of pyblp's `compute_elasticities()` at the observed point
       to 1e-8, and the Lerner index: --margin's L to 1e-9, else the one of
       the chosen primitives.

The model in pyblp's terms: one market, the segments are its agents (weights
w_k, no integration nodes: sigma = 0) with demographics d_k = (a_k, beta_k,
theta_k, alpha_k); X2 = [1, Q, o, prices] with Pi = diag(1, 1, 1, -1), so
mu_jk = a_k + beta_k Q_j + theta_k o_j - alpha_k p_j; delta_j = b_j (X1 =
[brand] with beta = 1 and xi = 0 in the Simulation; in the Problem delta is
what the contraction returns, X1 and its instrument only feed a linear IV
step that plays no part here). Each firm is its own pyblp firm.

A product released at month 0 is sold at cost by competing hosts (MODEL.md
section 2): nobody sets its price. pyblp has no exogenously priced product,
so two things are done for it:
- its row and column of the ownership matrix are zero, so no firm's
  first-order condition involves it. For costs (iii) pyblp then solves a
  block-diagonal system with a zero block: scipy's solve refuses it as
  singular and pyblp falls back to the Moore-Penrose pseudo-inverse
  (pyblp.options.pseudo_inverses, on by default, so it records no error),
  which is exact here: the pseudo-inverse of diag(A, 0) is diag(A^-1, 0), so
  that product's markup is 0 and its cost its price.
- for prices (ii), pyblp's zeta-markup update with a zero ownership row would
  still give that product a markup of S_j / |Lambda_j|. The equilibrium is
  therefore computed with pyblp's own contraction (Simulation.replace_endogenous)
  under a custom iteration routine (pyblp's documented `Iteration(method=
  callable)`) that is the 'simple' iteration with the open product's price
  held at its cost after every step: a Nash equilibrium of the closed firms
  given the open product priced at cost. Markets without an open product use
  pyblp's own 'simple' iteration.

Prints a table per market and `pyblp_check: N passed, M failed` last; exits
1 on any failure or when nothing was checked.
"""

import csv
import math
import subprocess
import sys
import tempfile
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pyblp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_v3  # noqa: E402
from tally import Tally  # noqa: E402

warnings.filterwarnings("ignore")
pyblp.options.verbose = False
pyblp.options.collinear_atol = pyblp.options.collinear_rtol = 0  # o is all zero in a market without a release

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "target/release/moatsweep"
TOL = 1e-8
PI = np.diag([1.0, 1.0, 1.0, -1.0])

TALLY = Tally("pyblp_check")
check = TALLY.check


def rel_dev(a, b):
    """max |a - b| / |b|, elementwise."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def abs_dev(a, b):
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))))


# ------------------------------------------------------------------ markets

FIRMS4 = """
[[firm]]
name = "open"
release_month = {open_release}
[[firm]]
name = "frontier_a"
[[firm]]
name = "frontier_b"
[[firm]]
name = "challenger"
"""

LAB = """
[[firm]]
name = "lab"
train_spend = 3e8
data_tokens = 12e12
release_month = "never"
brand = 0.0
platform_revenue = 0
funding = 1e9
spend_growth = 0.5
data_growth = 0.2
"""


def config_text(name, open_release, lab):
    return (
        f"# pyblp_check market {name}: the firms and segments; calibrate sets brands and cost factors\n"
        f'version = 1\n\n[sweep]\nname = "{name}"\n'
        + FIRMS4.format(open_release=open_release)
        + (LAB if lab else "")
    )


MARKETS = [
    # (name, open release month, 5th firm, chosen brands, chosen cost factors,
    #  price-sensitivity scale (None: no --margin), observation form)
    ("a-open-at-cost", 0, False, [0.2, 0.7, 1.0, 0.35], [1.3, 0.8, 1.5, 2.0], None, "share"),
    ("b-five-firms", "\"never\"", True, [0.1, 0.6, 0.9, 0.3, -0.4], [1.0, 0.7, 1.25, 2.5, 0.6], None, "revenue_share"),
    # --margin at prices of 2.5 to 6.9 $/Mtok (2025 list prices are 2 to 6): the
    # bracket's end lambda = 1e3 puts brands near 2e3, where one ulp (4.5e-13)
    # exceeds an absolute stop of 1e-13 (calibrate's first cut failed here)
    ("c-margin", 0, False, [0.3, 0.8, 0.6, 0.2], [0.9, 1.1, 0.75, 1.6], 2.7, "share"),
    # --margin at prices of 1.1 to 3.1 $/Mtok (brands below 1e3 at lambda = 1e3)
    ("d-margin-low-prices", 0, False, [0.3, 0.8, 0.6, 0.2], [0.4, 0.5, 0.3, 0.6], 6.0, "share"),
]
USAGE = 3.2e9  # --usage of market b: market0 = V / sum of shares


def primitives(cfg_path, brands, factors, scale):
    scen, axes = model_v3.load_config(cfg_path)
    assert not axes
    for f, b, cf in zip(scen["firms"], brands, factors):
        f["brand"], f["cost_factor"] = b, cf
    if scale is not None:
        for s in scen["segments"]:
            s["price_sens"] *= scale
    return scen


def lerner(m0):
    closed = [j for j, o in enumerate(m0["open"]) if o == 0.0]
    S = [m0["share"][j] for j in closed]
    return sum(m0["share"][j] * (m0["price"][j] - m0["cost"][j]) / m0["price"][j] for j in closed) / sum(S)


# ------------------------------------------------------------------ pyblp


def pyblp_data(scen, m0, prices, shares=None, brands=None):
    J = len(m0["names"])
    segs = scen["segments"]
    own = np.eye(J)
    for j, o in enumerate(m0["open"]):
        if o:
            own[j, j] = 0.0
    product = {
        "market_ids": np.zeros(J),
        "firm_ids": np.arange(J),
        "ownership": own,
        "Q": np.array(m0["q0"]),
        "o": np.array(m0["open"]),
        "prices": np.asarray(prices, float),
        "brand": np.zeros(J) if brands is None else np.asarray(brands, float),
    }
    if shares is not None:
        product["shares"] = np.asarray(shares, float)
        product["demand_instruments0"] = np.arange(J, dtype=float)
    agents = {
        "market_ids": np.zeros(len(segs)),
        "weights": np.array([s["weight"] for s in segs]),
        "nodes": np.zeros((len(segs), 4)),
        "a": np.array([s["intercept"] for s in segs]),
        "bq": np.array([s["quality_taste"] for s in segs]),
        "th": np.array([s["open_taste"] for s in segs]),
        "al": np.array([s["price_sens"] for s in segs]),
    }
    return product, agents


AGENT_F = pyblp.Formulation("0 + a + bq + th + al")
X2 = pyblp.Formulation("1 + Q + o + prices")


def held_at_cost(is_open, cost):
    """pyblp custom iteration: 'simple' iteration of pyblp's contraction with
    the open products' prices reset to their cost after every step."""

    def method(initial, contraction, callback, max_evaluations=100000, atol=1e-13):
        x = np.where(is_open, cost, initial)
        for _ in range(max_evaluations):
            x1, _, _ = contraction(x)
            x1 = np.where(is_open, cost, x1)
            callback()
            if np.max(np.abs(x1 - x) / (1.0 + np.abs(x))) < atol:
                return x1, True
            x = x1
        return x, False

    return method


def pyblp_equilibrium(scen, m0, brands, costs):
    """pyblp's Bertrand-Nash prices and shares at brands and costs, from prices = costs."""
    costs = np.asarray(costs, float)
    product, agents = pyblp_data(scen, m0, costs, brands=brands)
    sim = pyblp.Simulation(
        (pyblp.Formulation("0 + brand"), X2),
        product,
        beta=[1.0],
        sigma=np.zeros((4, 4)),
        pi=PI,
        agent_formulation=AGENT_F,
        agent_data=agents,
        xi=np.zeros(len(costs)),
    )
    is_open = np.array(m0["open"]) == 1.0
    if is_open.any():
        it = pyblp.Iteration(held_at_cost(is_open, costs), {"atol": 1e-14})
    else:
        it = pyblp.Iteration("simple", {"atol": 1e-14, "max_evaluations": 100000})
    res = sim.replace_endogenous(costs=costs, prices=costs, iteration=it, constant_costs=True)
    conv = bool(np.all(res.fp_converged))
    return res.product_data.prices.ravel(), res.product_data.shares.ravel(), conv


def pyblp_inversion(scen, m0, prices, shares):
    """pyblp's delta (its contraction at the fixed Pi) and its first-order-condition costs."""
    product, agents = pyblp_data(scen, m0, prices, shares=shares)
    problem = pyblp.Problem(
        (pyblp.Formulation("0 + Q"), X2), product, agent_formulation=AGENT_F, agent_data=agents
    )
    res = problem.solve(
        sigma=np.zeros((4, 4)),
        pi=PI,
        pi_bounds=(PI, PI),
        optimization=pyblp.Optimization("return"),
        iteration=pyblp.Iteration("squarem", {"atol": 1e-14, "max_evaluations": 100000}),
        method="1s",
    )
    costs = res.compute_costs().ravel()
    own = np.diag(res.compute_elasticities())
    return res.delta.ravel(), costs, own, bool(np.all(res.converged))


# ------------------------------------------------------------------ one market


def run_market(tmp, name, open_release, lab, brands, factors, scale, form):
    print(f"\n== market {name}: {4 + lab} firms, open release {open_release}"
          + (f", --margin (price-sensitivity scale {scale})" if scale else "") + f", observed as {form}")
    cfg = tmp / f"{name}.toml"
    cfg.write_text(config_text(name.replace("-", "_"), open_release, lab))
    scen = primitives(cfg, brands, factors, scale)
    m0 = model_v3.solve_month0(scen, tol=1e-14)
    if not check(m0["converged"], f"{name}: month 0 of the chosen primitives converges"):
        return
    names, S, p = m0["names"], m0["share"], m0["price"]
    s_out = 1.0 - sum(S)
    obs = tmp / f"{name}.csv"
    lines = [f"# made by scripts/pyblp_check.py: month 0 of chosen primitives, tol 1e-14"]
    args = []
    if form == "share":
        lines.append("firm,share,price")
        lines += [f"{n},{s!r},{q!r}" for n, s, q in zip(names, S, p)]
    else:
        rev = [s * q for s, q in zip(S, p)]
        lines.append("firm,revenue_share,price")
        lines += [f"{n},{r / sum(rev)!r},{q!r}" for n, r, q in zip(names, rev, p)]
        args += ["--outside-share", repr(s_out), "--usage", repr(USAGE)]
    obs.write_text("\n".join(lines) + "\n")
    L = None
    if scale is not None:
        L = lerner(m0)
        args += ["--margin", repr(L)]
    out = tmp / f"{name}-calibrated.toml"
    cmd = [str(BIN), "calibrate", str(cfg), "--observed", str(obs)] + args
    run = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True)
    cal = None
    if check(run.returncode == 0 and out.exists(), f"{name}: calibrate exits 0 ({run.stderr.strip()[-300:]})"):
        cal, _ = model_v3.load_config(out)
        with open(out, "rb") as f:
            doc = tomllib.load(f)

    # (i) calibrate recovers the primitives
    if cal is not None:
        cb = [f["brand"] for f in cal["firms"]]
        ccf = [f["cost_factor"] for f in cal["firms"]]
        check(abs_dev(cb, brands) <= TOL, f"{name}: calibrated brands {cb} vs chosen {brands}")
        check(rel_dev(ccf, factors) <= TOL, f"{name}: calibrated cost factors {ccf} vs chosen {factors}")
        check([f["name"] for f in cal["firms"]] == names, f"{name}: firms of the calibrated config")
        if scale is not None:
            sens = [s["price_sens"] for s in cal["segments"]]
            want = [s["price_sens"] for s in scen["segments"]]
            check(rel_dev(sens, want) <= TOL, f"{name}: calibrated price_sens {sens} vs chosen {want}")
        else:
            check("segment" not in doc or all(
                s["price_sens"] == d["price_sens"] for s, d in zip(cal["segments"], scen["segments"])
            ), f"{name}: price_sens unchanged without --margin")
        if form != "share":
            want = USAGE / sum(S)
            check(abs(cal["model"]["market0"] - want) <= TOL * want,
                  f"{name}: market0 {cal['model']['market0']} vs V / sum S = {want}")
        else:
            check(cal["model"]["market0"] == scen["model"]["market0"], f"{name}: market0 unchanged without --usage")

    # (ii) pyblp's equilibrium gives the observations back
    for label, sc_, b_, cost_ in (
        ["chosen", scen, brands, m0["cost"]],
        *(
            [["calibrated", cal, [f["brand"] for f in cal["firms"]],
              [f["cost_factor"] * c for f, c in zip(cal["firms"], m0["plain_cost"])]]]
            if cal is not None else []
        ),
    ):
        pp, ps, conv = pyblp_equilibrium(sc_, m0, b_, cost_)
        check(conv, f"{name}: pyblp equilibrium at the {label} primitives converges")
        dp, ds = rel_dev(pp, p), rel_dev(ps, S)
        print(f"pyblp equilibrium at the {label} primitives: prices to {dp:.1e}, shares to {ds:.1e} (relative)")
        check(dp <= TOL and ds <= TOL, f"{name}: pyblp equilibrium at the {label} primitives: prices {pp} shares {ps}")
        if label == "calibrated":
            eq_p, eq_s = pp, ps

    # (iii) pyblp's inversion
    inv_scen = cal if cal is not None else scen
    delta, pcost, pel, conv = pyblp_inversion(inv_scen, m0, p, S)
    check(conv, f"{name}: pyblp's delta contraction converges")
    check(abs_dev(delta, brands) <= TOL, f"{name}: pyblp's delta {delta} vs chosen brands {brands}")
    check(rel_dev(pcost, m0["cost"]) <= TOL, f"{name}: pyblp's costs {pcost} vs chosen {m0['cost']}")
    if cal is not None:
        ccost = [f["cost_factor"] * c for f, c in zip(cal["firms"], m0["plain_cost"])]
        check(abs_dev(delta, cb) <= TOL, f"{name}: pyblp's delta vs calibrated brands")
        check(rel_dev(pcost, ccost) <= TOL, f"{name}: pyblp's costs vs calibrated costs")

    # calibrate --sweep: the same calibration as a CSV row, with elasticities
    sweep = tmp / f"{name}-sweep.csv"
    run = subprocess.run(cmd + ["--out", str(sweep), "--sweep"], capture_output=True, text=True)
    if check(run.returncode == 0 and sweep.exists(), f"{name}: calibrate --sweep exits 0 ({run.stderr.strip()[-300:]})"):
        with open(sweep, newline="") as f:
            rows = list(csv.DictReader(f))
        r = rows[0] if len(rows) == 1 else {}
        check(len(rows) == 1 and r.get("error", "") == "", f"{name}: --sweep gives one row without error: {rows}")
        if r and r.get("error", "") == "":
            sb = [float(r[f"brand.{n}"]) for n in names]
            scf = [float(r[f"cost_factor.{n}"]) for n in names]
            sel = [float(r[f"elasticity.{n}"]) for n in names]
            check(abs_dev(sb, brands) <= TOL, f"{name}: --sweep brands {sb} vs chosen {brands}")
            check(rel_dev(scf, factors) <= TOL, f"{name}: --sweep cost factors {scf} vs chosen {factors}")
            check(rel_dev(sel, pel) <= TOL, f"{name}: --sweep own-price elasticities {sel} vs pyblp's {pel}")
            if scale is not None:
                ps_ = float(r["price_scale"])
                check(abs(ps_ - scale) <= TOL * scale, f"{name}: --sweep price_scale {ps_} vs chosen {scale}")
            want = L if L is not None else lerner(m0)
            check(abs(float(r["lerner"]) - want) <= 1e-9 * want, f"{name}: --sweep Lerner index {r['lerner']} vs {want}")
            print(f"calibrate --sweep: own-price elasticities vs pyblp's to {rel_dev(sel, pel):.1e}, "
                  f"Lerner index {r['lerner']} vs {want!r}")
    if L is not None:
        print(f"--margin {L!r}: price-sensitivity scale chosen {scale}, calibrated "
              + (f"{cal['segments'][0]['price_sens'] / model_v3.SEGMENT_DEFAULTS[cal['segments'][0]['name']]['price_sens']!r}" if cal else "-"))

    head = ["firm", "obs share", "obs price", "brand", "calib brand", "pyblp delta", "cost f.", "calib c.f.",
            "calib cost", "pyblp cost", "pyblp price", "pyblp share", "pyblp elast."]
    print(" ".join(f"{h:>12s}" for h in head))
    for j, n in enumerate(names):
        row = [n, S[j], p[j], brands[j], cb[j] if cal else math.nan, delta[j], factors[j],
               ccf[j] if cal else math.nan, ccost[j] if cal else math.nan, pcost[j],
               eq_p[j] if cal else math.nan, eq_s[j] if cal else math.nan, pel[j]]
        print(f"{row[0]:>12s} " + " ".join(f"{x:12.8g}" for x in row[1:]))


def main():
    with tempfile.TemporaryDirectory() as t:
        for m in MARKETS:
            run_market(Path(t), *m)
    TALLY.finish()


if __name__ == "__main__":
    main()
