"""The release game (`[reduce.game]`) against Gambit (pygambit) and a brute force.

    python scripts/game_check.py target/release/moatsweep     # the check (CI: .ci/peers)
    python scripts/game_check.py --self-test                  # this script's own parsing and solvers
    python scripts/game_check.py BINARY --rows CONFIG...      # a config's equilibria, from its rows alone
    python scripts/game_check.py BINARY --backend gpu         # the GPU's reduction against its own rows
    python scripts/game_check.py BINARY --config CONFIG...    # other configs (2 to 4 players), the same check

For a two-player and a three-player game (scripts/peer-configs/game2.toml and
game3.toml), `BINARY run CONFIG --backend cpu --out TMP/x.csv` writes every row
(`rows = true`) and the reduction, x.reduced.csv. From the rows alone:

- A world is one combination of the values of the axes that are not players'
  (the `by` axes among them). The rows of a world hold its whole payoff table:
  player i's payoff at a profile is the profile's row's cell of player i's
  payoff output, read as an EXACT rational of the cell's text
  (fractions.Fraction). An empty or NaN cell counts as lower than any number
  (-inf is above it, +inf above every finite value): each player's payoffs in
  a world are handed to Gambit rank-preserving, with such cells replaced by
  rationals below (above) that player's finite payoffs in that world.
- The pure Nash equilibria of every world are Gambit's: the table goes to
  `StrategicGame.from_arrays` (pygambit 17; `Game.from_arrays` in 16), whose
  payoffs are read back and must equal the rationals given, and
  `pygambit.nash.enumpure_solve` enumerates the pure equilibria; each is mapped
  back to a profile (the strategy played with probability 1 by each player). A
  brute force here (no player gains strictly by deviating alone) must find the
  same set in every world, or the peer itself is in doubt (a failure).
- The leader-follower outcome is a brute force in plain Python: player 1
  commits to each of its values in axis order; the others play the first pure
  equilibrium, in profile order, of the game that remains (commitments whose
  remaining game has none are skipped); player 1 takes the commitment of
  highest payoff, ties to the first; "none" when every commitment is skipped.
- The reference profile: each player's `reference` in the config, else `never`
  where its axis has it, else its last value.

Then every group of x.reduced.csv (one row per combination of the `by` axes'
values, last fastest) must carry exactly the game columns below, and:
- `nash.none.share`, `nash.one.share`, `nash.many.share`, `nash.<profile>.share`
  for every profile, `leader.none.share` and `leader.<profile>.share` equal
  (parsed as floats, compared with ==) count / worlds of the group;
- `leader.<output>.mean` for every reduced output, then `reference.<output>.mean`
  for every reduced output (the order of `best.<output>.mean` and
  `reference.<output>.mean`), equal the mean of that output's cells at the
  leader outcome (at the reference profile) over the group's worlds (those with
  a leader outcome), empty cells skipped (an empty cell where no value is
  left), to 1e-12 relative.
A profile is labelled by its players' values joined by `_`, each as the rows
CSV writes its axis cell, `never` for -1 on a release-month axis.

Each config must also show the cases a game check is for (EXPECT below): worlds
with no, one and several pure equilibria, a leader outcome that is not an
equilibrium of the simultaneous game, and exact ties between a player's values;
the check fails when the sweep no longer has them (a changed model or config
would otherwise make it compare only the easy cases). Before any of it, the
self-test (--self-test) runs: the solvers on hand-made games with known
answers, Gambit on them, and the comparison on a reduced CSV with planted
errors.

With `--backend gpu` the same runs use the GPU: its reduction must give the
equilibria and leader outcomes of its own (f32) rows exactly, and the means to
1e-5 of the mean magnitude (the device adds f32 block means); the cases above
are not required there.

Prints a line per config and `game_check: N passed, M failed` last; exits 1 on
any failure or when nothing was checked.
"""

import argparse
import csv
import itertools
import math
import subprocess
import sys
import tempfile
import tomllib
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tally import Tally  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "scripts" / "peer-configs"
REL_TOL = 1e-12
# With --backend gpu the device reduces f32 values in blocks (a block's f32 mean
# times its count): its means are compared to this fraction of the mean of the
# values' magnitudes. Shares and equilibria stay exact.
GPU_TOL = 1e-5
BACKEND = "cpu"

# What each config's worlds must show, counted over the whole sweep: worlds with
# 0, 1 and >= 2 pure equilibria ("none", "one", "many"), worlds whose leader
# outcome is not a pure equilibrium ("leader_off_nash"), worlds without a leader
# outcome ("leader_none"), and worlds where some player is indifferent between
# two of its values at some profile ("ties", exact equality of payoffs).
EXPECT = {
    "game2.toml": {"none": 1, "one": 1, "many": 1, "leader_off_nash": 1, "ties": 1},
    "game3.toml": {"none": 1, "one": 1, "many": 1, "leader_off_nash": 1, "ties": 1},
}


# ---------------------------------------------------------------------------
# Payoffs: exact, with empty/NaN lowest.


def payoff_key(text):
    """A payoff cell as a totally ordered key: (0,) empty or NaN, (1,) -inf,
    (2, Fraction) a finite number (exact rational of the text), (3,) +inf."""
    t = text.strip()
    if t == "":
        return (0,)
    x = float(t)
    if math.isnan(x):
        return (0,)
    if math.isinf(x):
        return (3,) if x > 0 else (1,)
    return (2, Fraction(t))


def rational_payoffs(keys):
    """Maps one player's payoff keys in one world to rationals in the same order:
    finite values as they are; empty/NaN to min - 2, -inf to min - 1, +inf to
    max + 1 (min, max over the finite values, 0 without any)."""
    finite = [k[1] for k in keys if k[0] == 2]
    lo = min(finite, default=Fraction(0))
    hi = max(finite, default=Fraction(0))
    sub = {0: lo - 2, 1: lo - 1, 3: hi + 1}
    return [k[1] if k[0] == 2 else sub[k[0]] for k in keys]


# ---------------------------------------------------------------------------
# The game of one world: shape (values per player), payoff keys per profile.


def profiles(shape):
    """Every profile in profile order: player 1 slowest, the last player fastest."""
    return list(itertools.product(*(range(n) for n in shape)))


def is_equilibrium(pay, shape, p, players=None):
    """Whether no player in `players` (default all) gains strictly by changing
    its own value alone at profile p; pay[p][i] is player i's payoff key."""
    for i in range(len(shape)) if players is None else players:
        u = pay[p][i]
        for s in range(shape[i]):
            if s != p[i] and pay[p[:i] + (s,) + p[i + 1 :]][i] > u:
                return False
    return True


def brute_nash(pay, shape):
    """The pure Nash equilibria, in profile order."""
    return [p for p in profiles(shape) if is_equilibrium(pay, shape, p)]


def leader_outcome(pay, shape):
    """Player 1 commits to c in axis order; the others play the first pure
    equilibrium, in profile order, of the game that remains; player 1 takes the
    commitment of highest payoff, ties to the first. None when every
    commitment's remaining game has no pure equilibrium."""
    rest = list(range(1, len(shape)))
    best = None
    for c in range(shape[0]):
        follow = next(
            (
                (c,) + q
                for q in itertools.product(*(range(shape[j]) for j in rest))
                if is_equilibrium(pay, shape, (c,) + q, rest)
            ),
            None,
        )
        if follow is not None and (best is None or pay[follow][0] > pay[best][0]):
            best = follow
    return best


def has_ties(pay, shape):
    """Whether some player has two values with exactly equal payoffs at some
    profile of the others (empty/NaN cells count as equal to each other)."""
    for p in profiles(shape):
        for i in range(len(shape)):
            if any(s != p[i] and pay[p[:i] + (s,) + p[i + 1 :]][i] == pay[p][i] for s in range(shape[i])):
                return True
    return False


# ---------------------------------------------------------------------------
# Gambit.


def gambit():
    import pygambit

    return pygambit


def gambit_nash(pay, shape):
    """Gambit's pure equilibria of the table, as profiles in profile order.
    Also returns whether Gambit's stored payoffs equal the rationals given."""
    import numpy as np

    gbt = gambit()
    n = len(shape)
    arrays = []
    for i in range(n):
        ps = profiles(shape)
        vals = rational_payoffs([pay[p][i] for p in ps])
        a = np.empty(shape, dtype=object)
        for p, v in zip(ps, vals):
            a[p] = v
        arrays.append(a)
    table = getattr(gbt, "StrategicGame", None)
    if table is not None and hasattr(table, "from_arrays"):  # pygambit 17
        g = table.from_arrays(*arrays)
        labels = [str(i + 1) for i in range(n)]
        strategies = [g.get_strategies(pl) for pl in labels]
        same = all(
            g.get_payoffs({pl: strategies[k][p[k]] for k, pl in enumerate(labels)})[labels[i]] == arrays[i][p]
            for p in profiles(shape)
            for i in range(n)
        )
        eqs = []
        for e in gbt.nash.enumpure_solve(g).equilibria:
            eqs.append(tuple(_pure_index([e[pl][s] for s in strategies[k]]) for k, pl in enumerate(labels)))
    else:  # pygambit 16
        g = gbt.Game.from_arrays(*arrays)
        players = list(g.players)
        same = all(
            Fraction(g[list(p)][players[i]]) == arrays[i][p] for p in profiles(shape) for i in range(n)
        )
        eqs = []
        for e in gbt.nash.enumpure_solve(g).equilibria:
            eqs.append(tuple(_pure_index([e[s] for s in pl.strategies]) for pl in players))
    return sorted(eqs), same


def _pure_index(probs):
    """The strategy a degenerate mixed strategy plays (probability exactly 1)."""
    ones = [k for k, x in enumerate(probs) if x == 1]
    if len(ones) != 1 or any(x != 0 for k, x in enumerate(probs) if k != ones[0]):
        raise ValueError(f"Gambit returned a profile that is not pure: {probs}")
    return ones[0]


# ---------------------------------------------------------------------------
# A sweep's rows and its game.


def read_csv(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        return header, [row for row in r]


def value_label(axis, text):
    """A value's label in a game column: the cell's text, `never` for -1 on a
    release-month axis."""
    if axis.endswith(".release_month") and float(text) == -1:
        return "never"
    return text


class Sweep:
    """A grid sweep's rows, as the game sees them."""

    def __init__(self, cfg, header, rows):
        self.cfg = cfg
        axes = list(cfg["axes"].keys())
        if header[0] != "scenario" or header[1 : 1 + len(axes)] != axes:
            got = header[: 1 + len(axes)]
            raise ValueError(f"the rows' first columns are not scenario then the axes {axes}: {got}")
        self.axes = axes
        self.col = {h: k for k, h in enumerate(header)}
        # Each axis's values in axis order: in grid order a value's first row
        # comes before the next value's, so first appearances are axis order.
        self.values = []
        for a, path in enumerate(axes):
            seen = {}
            for row in rows:
                seen.setdefault(row[1 + a], len(seen))
            self.values.append(list(seen))
        sizes = [len(v) for v in self.values]
        if len(rows) != math.prod(sizes):
            raise ValueError(f"{len(rows)} rows, not the grid's {' x '.join(map(str, sizes))}")
        # Grid order: row r's value indices are r's mixed-radix digits, last fastest.
        index = [{t: k for k, t in enumerate(v)} for v in self.values]
        for r, row in enumerate(rows):
            digits, q = [], r
            for n in reversed(sizes):
                digits.append(q % n)
                q //= n
            digits.reverse()
            got = [index[a][row[1 + a]] for a in range(len(axes))]
            if got != digits or int(row[0]) != r:
                raise ValueError(f"row {r} (scenario {row[0]}) is not in grid order")
        self.rows = rows
        red = cfg["reduce"]
        game = red["game"]
        self.players = game["players"]
        self.player_axes = [p["axis"] for p in self.players]
        n = len(self.players)
        if axes[-n:] != self.player_axes:
            raise ValueError(f"the players' axes {self.player_axes} are not the config's last axes, in player order")
        self.by = list(red.get("by", []))
        self.outputs = list(red["outputs"])
        self.shape = tuple(sizes[-n:])
        self.world_axes = axes[:-n]
        self.world_sizes = sizes[:-n]

    def cell(self, row, name):
        """Text of `name` in a row; `exited.<firm>` is 1 when its exit month >= 0."""
        if name.startswith("exited."):
            t = row[self.col["exit_month." + name[len("exited.") :]]]
            return "" if t == "" else ("1" if float(t) >= 0 else "0")
        return row[self.col[name]]

    def worlds(self):
        """(world's value indices, {profile: row}) for every world, in grid order."""
        per = math.prod(self.shape)
        for w, start in enumerate(range(0, len(self.rows), per)):
            block = self.rows[start : start + per]
            digits, q = [], w
            for n in reversed(self.world_sizes):
                digits.append(q % n)
                q //= n
            yield tuple(reversed(digits)), dict(zip(profiles(self.shape), block))

    def pay(self, table):
        """Payoff keys per profile: pay[p][i] for player i."""
        return {p: tuple(payoff_key(row[self.col[pl["payoff"]]]) for pl in self.players) for p, row in table.items()}

    def group_of(self, world):
        return tuple(world[self.world_axes.index(b)] for b in self.by)

    def groups(self):
        """Every group of the by axes, in mixed radix (last fastest)."""
        return list(itertools.product(*(range(len(self.values[self.axes.index(b)])) for b in self.by)))

    def profile_label(self, p):
        return "_".join(value_label(a, self.values[self.axes.index(a)][k]) for a, k in zip(self.player_axes, p))

    def reference(self):
        """The reference profile: each player's `reference`, else never, else its last value."""
        ref = []
        for pl in self.players:
            vals = self.values[self.axes.index(pl["axis"])]
            r = pl.get("reference")
            if r is None:
                r = "never" if pl["axis"].endswith(".release_month") and any(float(v) == -1 for v in vals) else None
            if r is None:
                ref.append(len(vals) - 1)
                continue
            x = -1.0 if r == "never" else float(r)
            hit = [k for k, v in enumerate(vals) if float(v) == x]
            if len(hit) != 1:
                raise ValueError(f"reference {r!r} of {pl['axis']} is not one of its values {vals}")
            ref.append(hit[0])
        return tuple(ref)


def solve(sweep, use_gambit=True):
    """Per world: its group, Gambit's equilibria, the brute force's, the leader
    outcome, and whether Gambit read the payoffs back exactly."""
    out = []
    for world, table in sweep.worlds():
        pay = sweep.pay(table)
        brute = brute_nash(pay, sweep.shape)
        gnash, same = gambit_nash(pay, sweep.shape) if use_gambit else (brute, True)
        out.append(
            {
                "world": world,
                "group": sweep.group_of(world),
                "table": table,
                "nash": gnash,
                "brute": brute,
                "payoffs_exact": same,
                "leader": leader_outcome(pay, sweep.shape),
                "ties": has_ties(pay, sweep.shape),
            }
        )
    return out


class Mean(float):
    """A mean, with the mean of its values' magnitudes (`scale`)."""

    def __new__(cls, value, scale):
        m = super().__new__(cls, value)
        m.scale = scale
        return m


def mean_of(texts):
    """The mean of the cells (empty/NaN skipped), None without values: the exact
    rational sum divided, then rounded once; with infinite values +inf, -inf, or
    NaN for both signs."""
    keys = [payoff_key(t) for t in texts]
    keys = [k for k in keys if k[0] != 0]
    if not keys:
        return None
    pos, neg = any(k[0] == 3 for k in keys), any(k[0] == 1 for k in keys)
    if pos or neg:
        return Mean(math.nan if pos and neg else (math.inf if pos else -math.inf), math.inf)
    n = len(keys)
    return Mean(float(sum((k[1] for k in keys), Fraction(0)) / n), float(sum(abs(k[1]) for k in keys) / n))


def expected_columns(sweep, solved):
    """{group: {column: expected value}} for the game's columns; a share is a
    float, a mean a float or None (an empty cell)."""
    shape = sweep.shape
    profs = profiles(shape)
    ref = sweep.reference()
    exp = {}
    for g in sweep.groups():
        ws = [s for s in solved if s["group"] == g]
        n = len(ws)
        e = {}
        counts = [sum(1 for s in ws if len(s["nash"]) == 0), sum(1 for s in ws if len(s["nash"]) == 1)]
        counts.append(n - counts[0] - counts[1])
        for name, c in zip(["none", "one", "many"], counts):
            e[f"nash.{name}.share"] = c / n
        for p in profs:
            e[f"nash.{sweep.profile_label(p)}.share"] = sum(1 for s in ws if p in s["nash"]) / n
        e["leader.none.share"] = sum(1 for s in ws if s["leader"] is None) / n
        for p in profs:
            e[f"leader.{sweep.profile_label(p)}.share"] = sum(1 for s in ws if s["leader"] == p) / n
        led = [s for s in ws if s["leader"] is not None]
        for o in sweep.outputs:
            e[f"leader.{o}.mean"] = mean_of([sweep.cell(s["table"][s["leader"]], o) for s in led])
        for o in sweep.outputs:
            e[f"reference.{o}.mean"] = mean_of([sweep.cell(s["table"][ref], o) for s in ws])
        exp[g] = e
    return exp


def cell_value(text):
    return None if text.strip() == "" else float(text)


def same_share(got, want):
    return got is not None and got == want


def same_mean(got, want):
    if want is None or got is None:
        return got is None and want is None
    if math.isnan(want) or math.isinf(want):
        return (math.isnan(got) and math.isnan(want)) or got == want
    if BACKEND == "gpu":
        return abs(got - want) <= GPU_TOL * getattr(want, "scale", abs(want))
    return abs(got - want) <= REL_TOL * abs(want) or got == want


# ---------------------------------------------------------------------------
# The check.


def structure(sweep, solved):
    """What the sweep's worlds show (EXPECT's keys) and a line per group."""
    c = {
        "worlds": len(solved),
        "none": sum(1 for s in solved if not s["nash"]),
        "one": sum(1 for s in solved if len(s["nash"]) == 1),
        "many": sum(1 for s in solved if len(s["nash"]) >= 2),
        "leader_off_nash": sum(1 for s in solved if s["leader"] is not None and s["leader"] not in s["nash"]),
        "leader_none": sum(1 for s in solved if s["leader"] is None),
        "ties": sum(1 for s in solved if s["ties"]),
    }
    return c


def run_rows(binary, config, tmp, strip_game=False):
    """Runs the binary on a config (rows = true) and returns (cfg, x.csv, x.reduced.csv)."""
    text = Path(config).read_text()
    cfg = tomllib.loads(text)
    if strip_game:  # a binary without [reduce.game]: rows only
        lines = text.splitlines(keepends=True)
        cut = next(k for k, line in enumerate(lines) if line.split("#")[0].strip() == "[reduce.game]")
        text = "".join(lines[:cut])
    cfg_path = Path(tmp) / Path(config).name
    cfg_path.write_text(text)
    out = Path(tmp) / (Path(config).stem + ".csv")
    r = subprocess.run(
        [str(binary), "run", str(cfg_path), "--backend", BACKEND, "--out", str(out)], capture_output=True, text=True
    )
    if r.returncode != 0:
        raise ValueError(f"moatsweep run {Path(config).name} failed (exit status {r.returncode}): {r.stderr.strip()}")
    return cfg, out, out.with_name(out.stem + ".reduced.csv")


def group_name(sweep, g):
    return ", ".join(f"{b}={sweep.values[sweep.axes.index(b)][k]}" for b, k in zip(sweep.by, g)) or "all worlds"


def compare_reduced(t, name, sweep, exp, rheader, rrows):
    """Compares the reduced CSV's game columns with the peer's, group by group.
    Returns the number of cells compared."""
    groups = sweep.groups()
    if not t.check(
        len(rrows) == len(groups), f"{name}: {len(rrows)} rows in the reduced CSV, expected {len(groups)} groups"
    ):
        return 0
    rcol = {h: k for k, h in enumerate(rheader)}
    want_cols = list(exp[groups[0]].keys())
    game_cols = [h for h in rheader if h.split(".")[0] in ("nash", "leader", "reference")]
    k = next((k for k, (x, y) in enumerate(zip(game_cols, want_cols)) if x != y), min(len(game_cols), len(want_cols)))
    t.check(
        game_cols == want_cols,
        f"{name}: the reduced CSV's game columns differ from the peer's at game column {k}: "
        f"moatsweep {game_cols[k : k + 3]}, peer {want_cols[k : k + 3]} ({len(game_cols)} and {len(want_cols)} in all)",
    )
    t.check(
        rheader[: len(sweep.by)] == sweep.by,
        f"{name}: the reduced CSV does not start with the by axes {sweep.by}: {rheader[: len(sweep.by)]}",
    )
    compared = 0
    for g, rrow in zip(groups, rrows):
        gname = group_name(sweep, g)
        if len(rrow) != len(rheader):
            t.check(False, f"{name}: group {gname}: {len(rrow)} cells, the header has {len(rheader)}")
            continue
        for b, k in zip(sweep.by, g):
            t.check(
                float(rrow[rcol[b]]) == float(sweep.values[sweep.axes.index(b)][k]),
                f"{name}: group {gname}: its {b} cell is {rrow[rcol[b]]!r}",
            )
        for c, want in exp[g].items():
            if c not in rcol:
                t.check(False, f"{name}: group {gname}: no column {c}")
                continue
            text = rrow[rcol[c]]
            try:
                got = cell_value(text)
            except ValueError:
                got = "unreadable"
            ok = got != "unreadable" and (same_share(got, want) if c.endswith(".share") else same_mean(got, want))
            t.check(ok, f"{name}: group {gname}, {c}: moatsweep {text!r}, peer {want!r}")
            compared += 1
    return compared


def check_config(t, binary, config, tmp, rows_only=False):
    """Runs one config and checks it; with rows_only (a binary without
    [reduce.game]) only what the rows show: Gambit against the brute force and
    the cases the config must have."""
    name = Path(config).name
    cfg, rows_path, reduced_path = run_rows(binary, config, tmp, strip_game=rows_only)
    header, rows = read_csv(rows_path)
    sweep = Sweep(cfg, header, rows)
    solved = solve(sweep)
    st = structure(sweep, solved)
    print(
        f"{name}: {len(sweep.shape)} players x {list(sweep.shape)} values, {st['worlds']} worlds in "
        f"{len(sweep.groups())} groups; worlds with no/one/several pure equilibria "
        f"{st['none']}/{st['one']}/{st['many']}; "
        f"leader outcome off the equilibria in {st['leader_off_nash']}, none in {st['leader_none']}; "
        f"worlds with ties {st['ties']}"
    )
    bad = [s for s in solved if s["nash"] != s["brute"]]
    for s in bad[:5]:
        print(f"  world {s['world']}: Gambit {s['nash']}, brute force {s['brute']}")
    t.check(not bad, f"{name}: Gambit's pure equilibria differ from the brute force's in {len(bad)} worlds")
    inexact = sum(1 for s in solved if not s["payoffs_exact"])
    t.check(inexact == 0, f"{name}: Gambit's payoffs differ from the CSV's rationals in {inexact} worlds")
    # The cases are the CPU's (f64): f32 rows may merge or split a knife edge.
    for k, want in EXPECT.get(name, {}).items() if BACKEND == "cpu" else []:
        t.check(
            st[k] >= want,
            f"{name}: {st[k]} worlds with {k}, expected at least {want}: the sweep lost a case the check is for",
        )
    if rows_only:
        return sweep, solved
    exp = expected_columns(sweep, solved)
    rheader, rrows = read_csv(reduced_path)
    compared = compare_reduced(t, name, sweep, exp, rheader, rrows)
    print(f"{name}: compared {compared} game cells of {len(sweep.groups())} groups with moatsweep's")
    return sweep, solved


def rows_only(binary, configs):
    """A config's equilibria from its rows alone (a binary without [reduce.game])."""
    t = Tally("game_check --rows")
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            sweep, solved = check_config(t, binary, config, tmp, rows_only=True)
            for s in solved:
                nash = [sweep.profile_label(p) for p in s["nash"]]
                lead = sweep.profile_label(s["leader"]) if s["leader"] is not None else "none"
                wl = ", ".join(sweep.values[a][k] for a, k in enumerate(s["world"]))
                print(f"  {wl}: nash {nash} leader {lead}{' ties' if s['ties'] else ''}")
    t.finish()


# ---------------------------------------------------------------------------
# Self-test: the solvers and the reading of a sweep, on hand-made games.


class Quiet(Tally):
    """A tally that prints nothing (the self-test's comparisons that must fail)."""

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def self_test(t):
    global BACKEND
    backend, BACKEND = BACKEND, "cpu"  # its tolerances are the CPU's
    try:
        _self_test(t)
    finally:
        BACKEND = backend


def _self_test(t):
    k = payoff_key
    t.check(k("") < k("-inf") < k("-1e300") < k("0") < k("inf"), "payoff keys: empty < -inf < numbers < inf")
    t.check(k("NaN") == k(""), "payoff keys: NaN is an empty cell")
    t.check(
        k("0.1")[1] == Fraction(1, 10) and k("-1.5e3")[1] == Fraction(-1500), "payoff keys: exact rationals of the text"
    )
    t.check(rational_payoffs([k(""), k("-inf"), k("2"), k("inf")]) == [0, 1, 2, 3], "rational payoffs keep the order")

    def game(shape, fn):
        return {p: tuple(k(x) for x in fn(p)) for p in profiles(shape)}

    # Prisoner's dilemma (0 = cooperate, 1 = defect): one equilibrium (1, 1).
    pd = {(0, 0): (3, 3), (0, 1): (0, 5), (1, 0): (5, 0), (1, 1): (1, 1)}
    g = game((2, 2), lambda p: map(str, pd[p]))
    t.check(brute_nash(g, (2, 2)) == [(1, 1)], "prisoner's dilemma: (defect, defect)")
    t.check(leader_outcome(g, (2, 2)) == (1, 1), "prisoner's dilemma: the leader defects")
    # Matching pennies: no pure equilibrium; the leader still has an outcome.
    mp = {(0, 0): (1, -1), (0, 1): (-1, 1), (1, 0): (-1, 1), (1, 1): (1, -1)}
    g = game((2, 2), lambda p: map(str, mp[p]))
    t.check(brute_nash(g, (2, 2)) == [], "matching pennies: no pure equilibrium")
    t.check(leader_outcome(g, (2, 2)) == (0, 1), "matching pennies: the leader loses either way: its first commitment")
    # Chicken (0 = swerve, 1 = straight): two mirror equilibria; the leader goes straight.
    ch = {(0, 0): (0, 0), (0, 1): (-1, 1), (1, 0): (1, -1), (1, 1): (-10, -10)}
    g = game((2, 2), lambda p: map(str, ch[p]))
    t.check(brute_nash(g, (2, 2)) == [(0, 1), (1, 0)], "chicken: two equilibria in profile order")
    t.check(leader_outcome(g, (2, 2)) == (1, 0), "chicken: the leader commits to straight")
    # Ties are equilibria; the follower's first best reply in axis order.
    g = game((2, 3), lambda p: ("0", "1"))
    t.check(len(brute_nash(g, (2, 3))) == 6, "all ties: every profile is an equilibrium")
    t.check(leader_outcome(g, (2, 3)) == (0, 0), "all ties: leader outcome is the first profile")
    t.check(has_ties(g, (2, 3)), "all ties: has ties")
    t.check(not has_ties(game((2, 2), lambda p: map(str, pd[p])), (2, 2)), "prisoner's dilemma: no ties")
    # An empty cell is lower than any number, -1e308 included; two empty cells tie.
    g = game((2, 1), lambda p: ("" if p[0] == 0 else "-1e308", "0"))
    t.check(brute_nash(g, (2, 1)) == [(1, 0)], "an empty payoff is below -1e308")
    g = game((2, 1), lambda p: ("nan", "0"))
    t.check(brute_nash(g, (2, 1)) == [(0, 0), (1, 0)], "two NaN payoffs tie")
    # Three players, leader none: player 1's commitments each leave matching pennies to 2 and 3.
    g = game((2, 2, 2), lambda p: ("0", str(mp[p[1:]][0]), str(mp[p[1:]][1])))
    t.check(leader_outcome(g, (2, 2, 2)) is None, "3 players: no commitment leaves a pure equilibrium: none")
    t.check(brute_nash(g, (2, 2, 2)) == [], "3 players: matching pennies for 2 and 3: no equilibrium")

    # A three-player game against Gambit, with ties, empty cells and exact decimals that f64 would merge.
    def f(p):
        a, b, c = p
        return (
            ["0.1", "0.30000000000000004", "", "0.3"][(a + b + c) % 4],
            str((a * 7 + b * 3 + c) % 5),
            ["1e-320", "0", "-0", "nan", "1e308"][(a + 2 * b + c) % 5],
        )

    shape = (2, 3, 2)
    g = game(shape, f)
    try:
        gn, same = gambit_nash(g, shape)
        t.check(same, "Gambit stores the exact rationals given")
        t.check(gn == brute_nash(g, shape), f"Gambit's equilibria {gn} equal the brute force's {brute_nash(g, shape)}")
        for name, tab in [("prisoner's dilemma", pd), ("matching pennies", mp), ("chicken", ch)]:
            gg = game((2, 2), lambda p: map(str, tab[p]))
            t.check(gambit_nash(gg, (2, 2))[0] == brute_nash(gg, (2, 2)), f"Gambit on {name}")
    except ImportError:
        print("self-test: pygambit is not installed; its part skipped")

    # Reading a sweep: a 2 x (2 x 2) grid written as moatsweep writes rows.
    cfg = tomllib.loads(
        """
[axes]
"model.ad_uplift" = { values = [0.01, 0.1] }
"firm.open.release_month" = { values = [0, "never"] }
"firm.frontier_a.release_month" = { values = [0, "never"] }
[reduce]
by = ["model.ad_uplift"]
outputs = ["npv.open"]
rows = true
[reduce.game]
players = [
  { axis = "firm.open.release_month", payoff = "npv.open" },
  { axis = "firm.frontier_a.release_month", payoff = "npv.frontier_a" },
]
"""
    )
    header = ["scenario", "model.ad_uplift", "firm.open.release_month", "firm.frontier_a.release_month"]
    header += ["npv.open", "npv.frontier_a"]
    rows = []
    for r, (u, a, b) in enumerate(itertools.product(["0.01", "0.1"], ["0", "-1"], ["0", "-1"])):
        # chicken when uplift is 0.1, else releasing is dominated for both.
        if u == "0.1":
            po = ch[(int(a == "0"), int(b == "0"))]
        else:
            po = (1 if a == "-1" else 0, 1 if b == "-1" else 0)
        rows.append([str(r), u, a, b, str(po[0]), str(po[1])])
    sw = Sweep(cfg, header, rows)
    t.check(sw.shape == (2, 2) and sw.world_axes == ["model.ad_uplift"], "sweep: players' shape and world axes")
    t.check(sw.reference() == (1, 1), "sweep: the reference is never, never")
    labels = [sw.profile_label(p) for p in profiles(sw.shape)]
    t.check(labels == ["0_0", "0_never", "never_0", "never_never"], f"sweep: labels {labels}")
    solved = solve(sw, use_gambit=False)
    t.check([s["nash"] for s in solved] == [[(1, 1)], [(0, 1), (1, 0)]], "sweep: equilibria per world")
    exp = expected_columns(sw, solved)
    t.check(exp[(1,)]["nash.0_never.share"] == 1 and exp[(0,)]["nash.never_never.share"] == 1, "sweep: nash shares")
    t.check(exp[(1,)]["nash.many.share"] == 1 and exp[(0,)]["nash.one.share"] == 1, "sweep: nash counts")
    t.check(exp[(1,)]["leader.0_never.share"] == 1, "sweep: the leader releases when it pays")
    t.check(exp[(1,)]["leader.npv.open.mean"] == 1.0 and exp[(1,)]["reference.npv.open.mean"] == 0.0, "sweep: means")
    # The comparison with a reduced CSV: the peer's own values written as
    # moatsweep writes them (shortest round trip, whole numbers without ".0")
    # pass; a changed share, a mean off by 1e-10, a missing column fail.
    def fmt(v):
        return "" if v is None else ("%d" % v if v == int(v) else repr(v))

    cols = list(exp[(0,)].keys())
    rheader = ["model.ad_uplift", "npv.open.mean"] + cols
    rrows = [[sw.values[0][g[0]], "0"] + [fmt(exp[g][c]) for c in cols] for g in sw.groups()]
    t.check(
        "leader.npv.open.mean" in cols and rrows[1][2 + cols.index("nash.many.share")] == "1", "reduced CSV: as written"
    )
    q = Quiet("fake")
    n = compare_reduced(q, "fake", sw, exp, rheader, rrows)
    t.check(
        q.failed == 0 and n == 2 * len(cols), f"reduced CSV: its own values pass ({q.passed} passed, {q.failed} failed)"
    )
    for what, col, change, fails in [
        ("a share", "nash.0_never.share", lambda x: "0.5", 1),
        ("a mean 1e-10 off", "leader.npv.open.mean", lambda x: repr(float(x) * (1 + 1e-10)), 1),
        ("a mean 1e-14 off", "leader.npv.open.mean", lambda x: repr(float(x) * (1 + 1e-14)), 0),
        ("an empty share", "leader.none.share", lambda x: "", 1),
    ]:
        rr = [row[:] for row in rrows]
        k = 2 + cols.index(col)
        rr[1][k] = change(rr[1][k])
        q = Quiet("fake")
        compare_reduced(q, "fake", sw, exp, rheader, rr)
        t.check(q.failed == fails, f"reduced CSV: {what} gives {q.failed} failures, expected {fails}")
    q = Quiet("fake")
    compare_reduced(q, "fake", sw, exp, rheader[:-1], [row[:-1] for row in rrows])
    t.check(q.failed >= 1, "reduced CSV: a missing column fails")

    bad = [row[:] for row in rows]
    bad[1], bad[2] = bad[2], bad[1]
    try:
        Sweep(cfg, header, bad)
        t.check(False, "sweep: rows out of grid order are refused")
    except ValueError:
        t.check(True, "sweep: rows out of grid order are refused")
    t.check(mean_of(["1", "", "2"]) == 1.5 and mean_of(["", "nan"]) is None, "means skip empty cells")
    t.check(mean_of(["0.1", "0.2"]) == 0.15, "means: exact sum, rounded once")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary", nargs="?", default=str(ROOT / "target/release/moatsweep"))
    ap.add_argument("--self-test", action="store_true", help="only this script's own tests (no binary)")
    ap.add_argument("--rows", nargs="+", metavar="CONFIG", help="only what these configs' rows show")
    ap.add_argument("--config", nargs="+", metavar="CONFIG", help="check these configs instead of the two")
    ap.add_argument(
        "--backend",
        choices=["cpu", "gpu"],
        default="cpu",
        help="gpu: the reduction against the GPU's own rows (means to %g of the mean magnitude)" % GPU_TOL,
    )
    args = ap.parse_args()
    global BACKEND
    BACKEND = args.backend
    t = Tally("game_check")
    if args.self_test:
        self_test(t)
        t.finish()
    binary = Path(args.binary).resolve()
    if args.rows:
        rows_only(binary, args.rows)
        return
    print(f"pygambit {gambit().__version__}, moatsweep --backend {BACKEND}")
    self_test(t)
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.config or [CONFIGS / name for name in EXPECT]:
            try:
                check_config(t, binary, config, tmp)
            except Exception as e:  # noqa: BLE001 (any error is this config's failure; the tally line stays last)
                t.check(False, f"{Path(config).name}: {type(e).__name__}: {e}")
    t.finish()


if __name__ == "__main__":
    main()
