"""Times SALib and EMA Workbench on the 1M-row files of BENCHMARKS.md (run from the
repository root in the scripts/peers-requirements.txt venv, after the two runs there):

    python scripts/peers_bench.py salib   # results/sensitivity-1m.csv
    python scripts/peers_bench.py ema     # results/release-timing-lhs.csv
"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd
t0 = time.time()
from SALib.analyze import sobol
from ema_workbench.analysis import prim
which = sys.argv[1]
if which == "salib":
    csv = "results/sensitivity-1m.csv"
    t = time.time(); df = pd.read_csv(csv, float_precision="round_trip"); read = time.time() - t
    m = json.load(open(csv + ".manifest.json")); axes = [a["path"] for a in m["config"]["axes"]]; k = len(axes)
    problem = {"num_vars": k, "names": axes, "bounds": [[0.0, 1.0]] * k}
    t = time.time()
    sobol.analyze(problem, df["npv.open"].to_numpy(dtype=float), calc_second_order=False, num_resamples=1000, seed=1)
    one = time.time() - t
    print(f"SALib: read_csv {read:.1f} s; sobol.analyze npv.open (1 output, 1000 resamples) {one:.1f} s")
else:
    csv = "results/release-timing-lhs.csv"
    t = time.time(); df = pd.read_csv(csv, float_precision="round_trip"); read = time.time() - t
    m = json.load(open(csv + ".manifest.json")); axes = [a["path"] for a in m["config"]["axes"]]
    y = (df["exit_month.challenger"] >= 0).to_numpy()
    t = time.time()
    alg = prim.Prim(df[axes], y, threshold=0.8)
    box = alg.find_box()
    print(f"EMA: read_csv {read:.1f} s; Prim(...).find_box() {time.time() - t:.1f} s, {len(box.peeling_trajectory)} boxes")
