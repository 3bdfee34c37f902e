"""An independent f64 implementation of the moat model, version 3, written from
the specification alone (/work/shared/MODEL.md, mirrored by docs/model.md
sections 1-6, 9 and 10), not from moatsweep's Rust or WGSL code.

    from model_v3 import load_config, grid_rows, solve, solve_month0

Plain Python floats (math), one scenario at a time: clarity over speed. A
scenario is a dict {"model": {...}, "scaling": {...}, "segments": [...],
"firms": [...]}, segments and firms as lists of dicts in config order.

- load_config(path) reads a config (tomllib) with the defaults of section 6
  for default-named firms and segments (a new name gives every field; a firm's
  cost_factor is optional, 1) and returns (base scenario, axes), where axes is
  a list of (path, values) of the `[axes]` table (grid design, `values` axes
  only: enough for the peer configs).
- grid_rows(base, axes) yields (row index, {path: value}, scenario) in grid
  order (last axis fastest).
- solve(scenario) returns the CSV row of section 5 as {column: value}: floats,
  ints, and None for an empty cell (price of a product not offered).
- solve_month0(scenario, tol, max_iter) solves month 0's equilibrium only
  (section 3, from the default start) and returns its products.
- train(...) is section 1 for one generation: (q, serving cost, ln N).
"""

import copy
import itertools
import math
import tomllib

MODEL_DEFAULTS = {
    "months": 36,
    "discount": 0.99,
    "market0": 5e7,
    "market_growth": 0.05,
    "train_usd_per_flop": 1.4e-18,
    "infer_usd_per_flop": 5e-19,
    "spill_gap": 0.15,
    "catchup_rate": 0.25,
    "talent_decay": 0.02,
    "community_gain": 0.4,
    "community_decay": 0.03,
    "community_elasticity": 0.7,
    "community_quality": 0.12,
    "community_cost": 0.5,
    "ad_uplift": 0.02,
    "tol": 1e-6,
    "max_iter": 200,
    "generation_months": 12,
    "investor_hurdle": 0.0,
    "investor_runway": 12,
}

SCALING_DEFAULTS = {
    "E": 1.8172,
    "A": 482.01,
    "B": 2085.43,
    "alpha": 0.3478,
    "beta": 0.3658,
    "repeat_scale": 15.39,
    "loss_ref": 2.2,
}

SEGMENT_FIELDS = ["weight", "intercept", "price_sens", "quality_taste", "open_taste"]
SEGMENT_DEFAULTS = {
    "enterprise": dict(zip(SEGMENT_FIELDS, [0.35, -4.0, 0.15, 3.0, -0.5])),
    "developers": dict(zip(SEGMENT_FIELDS, [0.25, -4.0, 0.6, 2.5, 0.8])),
    "consumers": dict(zip(SEGMENT_FIELDS, [0.40, -4.5, 1.5, 2.0, -0.8])),
}

FIRM_FIELDS = [
    "train_spend",
    "data_tokens",
    "release_month",
    "brand",
    "platform_revenue",
    "funding",
    "spend_growth",
    "data_growth",
]
NEVER = -1
FIRM_DEFAULTS = {
    "open": dict(zip(FIRM_FIELDS, [1.0e9, 40e12, 6, 0.0, 160e9, 50e9, 1.0, 0.5])),
    "frontier_a": dict(zip(FIRM_FIELDS, [1.5e9, 40e12, NEVER, 0.6, 0, 100e9, 1.5, 0.3])),
    "frontier_b": dict(zip(FIRM_FIELDS, [1.2e9, 20e12, NEVER, 0.9, 0, 20e9, 1.0, 0.3])),
    "challenger": dict(zip(FIRM_FIELDS, [0.15e9, 10e12, NEVER, 0.3, 0, 0.5e9, 0.5, 0.1])),
}
for _f in FIRM_DEFAULTS.values():
    _f["cost_factor"] = 1.0

INT_MODEL = {"months", "max_iter", "generation_months", "investor_runway"}


def _release(v):
    if v == "never" or v == NEVER:  # NEVER: the defaults' own "never"
        return NEVER
    if isinstance(v, float):
        if v != int(v):
            raise ValueError(f"release_month {v} is not whole")
        v = int(v)
    if not isinstance(v, int) or v < 0:
        raise ValueError(f"release_month {v!r}: an integer month >= 0 or \"never\"")
    return v


def _entry(kind, raw, defaults, fields, optional):
    name = raw["name"]
    if name in defaults:
        out = dict(defaults[name])
    else:
        missing = [f for f in fields if f not in raw]
        if missing:
            raise ValueError(f"{kind} {name!r} (a new name) must give {', '.join(missing)}")
        out = dict(optional)
    for k, v in raw.items():
        if k == "name":
            continue
        if k not in fields and k not in optional and k not in defaults.get(name, {}):
            raise ValueError(f"{kind} {name!r}: unknown key {k!r}")
        out[k] = v
    out["name"] = name
    return out


def default_scenario():
    return {
        "model": dict(MODEL_DEFAULTS),
        "scaling": dict(SCALING_DEFAULTS),
        "segments": [dict(SEGMENT_DEFAULTS[n], name=n) for n in SEGMENT_DEFAULTS],
        "firms": [dict(FIRM_DEFAULTS[n], name=n) for n in FIRM_DEFAULTS],
    }


def set_param(scen, path, value):
    """Set a parameter by its moatsweep path (model.x, scaling.x, firm.F.x, segment.S.x)."""
    parts = path.split(".")
    if parts[0] in ("model", "scaling") and len(parts) == 2:
        table = scen[parts[0]]
        if parts[1] not in table:
            raise ValueError(f"unknown parameter {path}")
        table[parts[1]] = value
        return
    if parts[0] in ("firm", "segment") and len(parts) == 3:
        for e in scen["firms" if parts[0] == "firm" else "segments"]:
            if e["name"] == parts[1]:
                if parts[2] not in e:
                    raise ValueError(f"unknown parameter {path}")
                e[parts[2]] = _release(value) if parts[2] == "release_month" else value
                return
    raise ValueError(f"unknown parameter {path}")


def load_config(path):
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    scen = default_scenario()
    for table in ("model", "scaling"):
        for k, v in doc.get(table, {}).items():
            set_param(scen, f"{table}.{k}", v)
    if "segment" in doc:
        scen["segments"] = [
            _entry("segment", s, SEGMENT_DEFAULTS, SEGMENT_FIELDS, {}) for s in doc["segment"]
        ]
    if "firm" in doc:
        scen["firms"] = [
            _entry("firm", f, FIRM_DEFAULTS, FIRM_FIELDS, {"cost_factor": 1.0}) for f in doc["firm"]
        ]
        for f in scen["firms"]:
            f["release_month"] = _release(f["release_month"])
    design = doc.get("sweep", {}).get("design", "grid")
    axes = []
    for p, spec in doc.get("axes", {}).items():
        if design != "grid" or set(spec) != {"values"}:
            raise ValueError(f"axis {p}: this peer reads grid designs with values axes only")
        axes.append((p, list(spec["values"])))
    return scen, axes


def grid_rows(base, axes):
    for i, combo in enumerate(itertools.product(*[v for _, v in axes])):
        scen = copy.deepcopy(base)
        cells = {}
        for (p, _), v in zip(axes, combo):
            set_param(scen, p, v)
            cells[p] = v
        yield i, cells, scen


# ---------------------------------------------------------------- section 1


def train(spend, unique, cost_factor, model, sc):
    """One generation: (capability q, serving cost $/Mtok, x = ln N)."""
    E, A, B = sc["E"], sc["A"], sc["B"]
    al, be, rs = sc["alpha"], sc["beta"], sc["repeat_scale"]
    lnC6 = math.log(spend / model["train_usd_per_flop"] / 6.0)
    ln_u = math.log(unique)

    def eff(lnD):
        # (ln D', ln g) for ln D
        if lnD <= ln_u:
            return lnD, 0.0
        r = math.exp(lnD - ln_u) - 1.0
        return ln_u + math.log1p(rs * -math.expm1(-r / rs)), -r / rs

    lo, hi = math.log(1e6), lnC6 - math.log(1e6)
    rhs0 = math.log(al * A)
    lhs0 = math.log(be * B)
    for _ in range(60):
        m = 0.5 * (lo + hi)
        lnD = lnC6 - m
        lnDp, lng = eff(lnD)
        if lhs0 + lng + lnD - (be + 1.0) * lnDp > rhs0 - al * m:
            hi = m
        else:
            lo = m
    x = 0.5 * (lo + hi)
    lnDp, _ = eff(lnC6 - x)
    red = A * math.exp(-al * x) + B * math.exp(-be * lnDp)
    q = math.log(sc["loss_ref"] - E) - math.log(red)
    cost = cost_factor * 2.0 * math.exp(x) * 1e6 * model["infer_usd_per_flop"]
    return q, cost, x


# ---------------------------------------------------------------- section 3


def utilities(segs, Q, b, o, p):
    """u[k][j] for the offered products (lists aligned)."""
    return [
        [s["intercept"] + s["quality_taste"] * Q[j] + b[j] + s["open_taste"] * o[j] - s["price_sens"] * p[j]
         for j in range(len(Q))]
        for s in segs
    ]


def seg_shares(segs, Q, b, o, p):
    """s[k][j] and the per-segment log-sum ln(1 + sum_j exp u_jk)."""
    out, lse = [], []
    for uk in utilities(segs, Q, b, o, p):
        mx = max(0.0, max(uk, default=0.0))
        ex = [math.exp(u - mx) for u in uk]
        den = math.exp(-mx) + sum(ex)
        out.append([e / den for e in ex])
        lse.append(mx + math.log(den))
    return out, lse


def equilibrium(segs, Q, b, o, c, closed, markup, tol, max_iter):
    """Section 3's zeta fixed point. closed[j]: whether j prices in equilibrium;
    markup[j]: start (None: 1 / sum w alpha). Returns (prices, S, s, lse,
    markups, iterations, converged)."""
    n = len(Q)
    w = [s["weight"] for s in segs]
    al = [s["price_sens"] for s in segs]
    start = 1.0 / sum(wk * ak for wk, ak in zip(w, al))
    m = [(markup[j] if markup[j] is not None else start) if closed[j] else 0.0 for j in range(n)]
    iters, converged = 0, True
    if any(closed):
        converged = False
        while iters < max_iter:
            p = [c[j] + m[j] for j in range(n)]
            s, _ = seg_shares(segs, Q, b, o, p)
            iters += 1
            diff = 0.0
            new = list(m)
            for j in range(n):
                if not closed[j]:
                    continue
                S = sum(w[k] * s[k][j] for k in range(len(segs)))
                lam = sum(w[k] * al[k] * s[k][j] for k in range(len(segs)))
                gam = sum(w[k] * al[k] * s[k][j] ** 2 for k in range(len(segs)))
                new[j] = (S + gam * m[j]) / lam
                diff = max(diff, abs(new[j] - m[j]) / (1.0 + abs(m[j])))
            m = new
            if diff < tol:
                converged = True
                break
    p = [c[j] + m[j] for j in range(n)]
    s, lse = seg_shares(segs, Q, b, o, p)
    S = [sum(w[k] * s[k][j] for k in range(len(segs))) for j in range(n)]
    return p, S, s, lse, m, iters, converged


# ---------------------------------------------------------------- sections 2, 4, 5


def solve(scen, v2_rule=False):
    """Section 5's row of one scenario. v2_rule=True decides with version 2's
    `cash < 0` instead of section 4's threshold (only to show that a grid meets
    version 2's ties: its rows then differ)."""
    mo, sc, segs, firms = scen["model"], scen["scaling"], scen["segments"], scen["firms"]
    nf = len(firms)
    T = int(mo["months"])
    G = int(mo["generation_months"])
    runway = mo["investor_runway"]
    q, c0, spend, n, rel, K = [], [], [], [], [False] * nf, [0.0] * nf
    for f in firms:
        qi, ci, _ = train(f["train_spend"], f["data_tokens"], f.get("cost_factor", 1.0), mo, sc)
        q.append(qi)
        c0.append(ci)
        spend.append(f["train_spend"])
        n.append(1)
    cash = [float(f["funding"]) for f in firms]
    raised = [0.0] * nf
    alive = [True] * nf
    markup = [None] * nf
    exit_m = [-1] * nf
    npv = [0.0] * nf
    cnpv = [0.0] * nf
    cs_npv = 0.0
    tstar = None
    max_it, noncon = 0, 0
    last = None
    for t in range(T):
        if G > 0 and t > 0 and t % G == 0:
            for i, f in enumerate(firms):
                if not alive[i]:
                    continue
                spend[i] = f["train_spend"] * (1.0 + f["spend_growth"]) ** (t / 12.0)
                U = f["data_tokens"] * (1.0 + f["data_growth"]) ** (t / 12.0)
                qn, cn, _ = train(spend[i], U, f.get("cost_factor", 1.0), mo, sc)
                q[i] = max(q[i], qn)
                c0[i] = cn
                n[i] += 1
        for i, f in enumerate(firms):
            if alive[i] and f["release_month"] == t:
                rel[i] = True
        if tstar is None and any(rel):
            tstar = t
        idx = [i for i in range(nf) if rel[i] or alive[i]]
        Q, c, b, o, closed, mk = [], [], [], [], [], []
        for i in idx:
            if rel[i]:
                Q.append(q[i] + mo["community_quality"] * math.log1p(K[i]))
                c.append(c0[i] / (1.0 + mo["community_cost"] * K[i]))
                b.append(firms[i]["brand"])
                o.append(1.0)
                closed.append(False)
            else:
                Q.append(q[i])
                c.append(c0[i])
                decay = math.exp(-mo["talent_decay"] * (t - tstar)) if tstar is not None else 1.0
                b.append(firms[i]["brand"] * decay)
                o.append(0.0)
                closed.append(True)
            mk.append(markup[i])
        p, S, _, lse, m, iters, conv = equilibrium(
            segs, Q, b, o, c, closed, mk, mo["tol"], int(mo["max_iter"])
        )
        max_it = max(max_it, iters)
        noncon += 0 if conv else 1
        for jj, i in enumerate(idx):
            if closed[jj]:
                markup[i] = m[jj]
        s_out = 1.0 - sum(S)
        M = mo["market0"] * (1.0 + mo["market_growth"]) ** t
        d = mo["discount"] ** t
        cs = M * sum(sg["weight"] * lse[k] / sg["price_sens"] for k, sg in enumerate(segs))
        cs_npv += d * cs
        pos = {i: jj for jj, i in enumerate(idx)}
        rel_Q = [(i, Q[pos[i]]) for i in idx if rel[i]]
        for i, f in enumerate(firms):
            if not alive[i]:
                continue
            jj = pos[i]
            direct = M * S[jj] * (p[jj] - c[jj]) if closed[jj] else 0.0
            comp = f["platform_revenue"] / 12.0 * mo["ad_uplift"] * (1.0 - s_out)
            flow = direct + comp - spend[i] / 12.0
            npv[i] += d * flow
            cnpv[i] += d * comp
            cash[i] += flow
            if cash[i] < (0.0 if v2_rule else -spend[i] / 12000.0):
                others = [qq for j, qq in rel_Q if j != i]
                lead = Q[jj] - max(others) if others else math.inf
                if runway > 0 and lead >= mo["investor_hurdle"]:
                    top = runway * spend[i] / 12.0
                    raised[i] += top - cash[i]
                    cash[i] = top
                else:
                    alive[i] = False
                    exit_m[i] = t
                    markup[i] = None
        if t == T - 1:
            last = (dict(pos), list(p), list(S), list(Q), list(rel), s_out, list(q))
        for i in idx:
            if rel[i]:
                K[i] = (1.0 - mo["community_decay"]) * K[i] + mo["community_gain"] * S[pos[i]] ** mo[
                    "community_elasticity"
                ]
        if rel_Q:
            best = max(qq for _, qq in rel_Q)
            for i in range(nf):
                if not rel[i]:
                    q[i] += mo["catchup_rate"] * max(0.0, best - mo["spill_gap"] - q[i])
    pos, p, S, Q, relT, s_out, q = last  # q before month T-1's spillover
    row = {}
    names = [f["name"] for f in firms]
    for i, nm in enumerate(names):
        row[f"share.{nm}"] = S[pos[i]] if i in pos else 0.0
    for i, nm in enumerate(names):
        row[f"price.{nm}"] = p[pos[i]] if i in pos else None
    for i, nm in enumerate(names):
        row[f"quality.{nm}"] = Q[pos[i]] if i in pos else q[i]
    for col, vals in (
        ("npv", npv),
        ("complement_npv", cnpv),
        ("exit_month", exit_m),
        ("raised", raised),
        ("generations", n),
    ):
        for i, nm in enumerate(names):
            row[f"{col}.{nm}"] = vals[i]
    inside = sum(S)
    row["outside_share"] = s_out
    row["open_share"] = sum(S[pos[i]] for i in pos if relT[i])
    row["hhi"] = 1e4 * sum((x / inside) ** 2 for x in S) if inside > 0 else 0.0
    row["consumer_surplus_npv"] = cs_npv
    row["max_iterations"] = max_it
    row["nonconverged_months"] = noncon
    return row


INT_COLUMNS = ("exit_month.", "generations.", "max_iterations", "nonconverged_months")


def solve_month0(scen, tol=1e-14, max_iter=100000):
    """Month 0 of a scenario (every firm offers a product; o = 1 for release
    month 0), solved from the default start. Returns a dict of per-firm lists:
    names, q0, plain_cost (cost_factor 1), cost, brand, open, price, share,
    and iterations, converged, segs."""
    mo, sc, segs, firms = scen["model"], scen["scaling"], scen["segments"], scen["firms"]
    q0, plain = [], []
    for f in firms:
        qi, ci, _ = train(f["train_spend"], f["data_tokens"], 1.0, mo, sc)
        q0.append(qi)
        plain.append(ci)
    cost = [f.get("cost_factor", 1.0) * pc for f, pc in zip(firms, plain)]
    o = [1.0 if f["release_month"] == 0 else 0.0 for f in firms]
    b = [f["brand"] for f in firms]
    closed = [x == 0.0 for x in o]
    p, S, s, _, m, iters, conv = equilibrium(
        segs, q0, b, o, cost, closed, [None] * len(firms), tol, max_iter
    )
    return {
        "names": [f["name"] for f in firms],
        "q0": q0,
        "plain_cost": plain,
        "cost": cost,
        "brand": b,
        "open": o,
        "price": p,
        "share": S,
        "seg_shares": s,
        "iterations": iters,
        "converged": conv,
    }
