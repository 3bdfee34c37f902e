#!/usr/bin/env python3
"""CI (.ci/parquet): pandas (pyarrow engine) and polars read moatsweep's Parquet.

Usage: parquet_check.py path/to/moatsweep

Runs a small sweep to CSV and to Parquet on the CPU backend and on the GPU backend
(skipped with a note when there is no adapter, unless MOATSWEEP_REQUIRE_GPU=1), then
checks with pandas and with polars, each on its own: the columns are the CSV's
header; scenario is uint64, integer columns int32, real columns float64 (the axes,
and every output on the CPU) or float32 (outputs on the GPU); every value equals
the CSV's (its shortest decimal parsed as a float64, or as a float32 on the GPU);
nulls are exactly the CSV's empty cells; the footer holds the moatsweep.manifest
and moatsweep.float_precision key-values. One line per check; the last line is
"parquet: N passed, M failed"; the exit status is 1 if any check failed.
"""

import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq

# An integer axis with `never`, real axes, and prices that are empty where a
# product is not offered (so that nulls occur).
CONFIG = """version = 1
[sweep]
name = "parquet-check"
[model]
months = 24
[[firm]]
name = "open"
[[firm]]
name = "frontier_a"
[[firm]]
name = "challenger"
train_spend = 5e8
[axes]
"firm.open.release_month" = { values = [0, 6, 12, "never"] }
"firm.challenger.funding" = { logspace = [3e7, 1e9], steps = 6 }
"model.ad_uplift" = { logspace = [1e-3, 1e-1], steps = 5 }
"""

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def is_int_literal(cell):
    d = cell[1:] if cell.startswith("-") else cell
    return d.isdigit()


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def expected(header, rows, axes, f32):
    """Per column: (kind, null mask, values of the present cells) from the CSV."""
    out = {}
    for c, name in enumerate(header):
        cells = [r[c] for r in rows]
        null = np.array([x == "" for x in cells])
        present = [x for x in cells if x != ""]
        if c == 0:
            kind, vals = "uint64", np.array([int(x) for x in present], dtype=np.uint64)
        elif all(is_int_literal(x) for x in cells):
            kind, vals = "int32", np.array([int(x) for x in present], dtype=np.int32)
        elif f32 and name not in axes:
            kind, vals = "float32", np.array([np.float32(float(x)) for x in present], dtype=np.float32)
        else:
            kind, vals = "float64", np.array([float(x) for x in present], dtype=np.float64)
        out[name] = (kind, null, vals)
    return out


def same_values(got, want):
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    if got.dtype.kind == "f":
        bits = np.uint32 if got.dtype == np.float32 else np.uint64
        return bool(np.array_equal(got.view(bits), want.view(bits)))
    return bool(np.array_equal(got, want))


def check_pandas(tag, path, header, want, precision):
    df = pd.read_parquet(path, engine="pyarrow")
    check(f"{tag} pandas: columns are the CSV header", list(df.columns) == header, f"{list(df.columns)[:5]}...")
    bad_types, bad_values, bad_nulls = [], [], []
    for name in header:
        kind, null, vals = want[name]
        s = df[name]
        if str(s.dtype) != kind:
            bad_types.append(f"{name}: {s.dtype}, want {kind}")
            continue
        got_null = s.isna().to_numpy()
        if not np.array_equal(got_null, null):
            bad_nulls.append(name)
        if not same_values(s.to_numpy()[~got_null], vals):
            bad_values.append(name)
    check(f"{tag} pandas: dtypes (scenario uint64, ints int32, reals float64/float32)", not bad_types, "; ".join(bad_types))
    check(f"{tag} pandas: nulls exactly where the CSV is empty", not bad_nulls, ", ".join(bad_nulls))
    check(f"{tag} pandas: values equal the CSV's exactly", not bad_values, ", ".join(bad_values))
    meta = pq.read_schema(path).metadata or {}
    manifest = meta.get(b"moatsweep.manifest")
    ok = manifest is not None and json.loads(manifest)["columns"] == header
    check(f"{tag} pyarrow: footer moatsweep.manifest lists the columns", ok, str(list(meta)))
    got = meta.get(b"moatsweep.float_precision", b"").decode()
    check(f"{tag} pyarrow: moatsweep.float_precision is {precision}", got == precision, got)


POLARS = {"uint64": pl.UInt64, "int32": pl.Int32, "float64": pl.Float64, "float32": pl.Float32}


def check_polars(tag, path, header, want, precision):
    df = pl.read_parquet(path)
    check(f"{tag} polars: columns are the CSV header", df.columns == header, f"{df.columns[:5]}...")
    bad_types, bad_values, bad_nulls = [], [], []
    for name in header:
        kind, null, vals = want[name]
        s = df[name]
        if s.dtype != POLARS[kind]:
            bad_types.append(f"{name}: {s.dtype}, want {kind}")
            continue
        got_null = s.is_null().to_numpy()
        if not np.array_equal(got_null, null):
            bad_nulls.append(name)
        if not same_values(s.drop_nulls().to_numpy(), vals):
            bad_values.append(name)
    check(f"{tag} polars: dtypes (scenario UInt64, ints Int32, reals Float64/Float32)", not bad_types, "; ".join(bad_types))
    check(f"{tag} polars: nulls exactly where the CSV is empty", not bad_nulls, ", ".join(bad_nulls))
    check(f"{tag} polars: values equal the CSV's exactly", not bad_values, ", ".join(bad_values))
    meta = pl.read_parquet_metadata(path)
    ok = "moatsweep.manifest" in meta and json.loads(meta["moatsweep.manifest"])["columns"] == header
    check(f"{tag} polars: footer moatsweep.manifest lists the columns", ok, str(list(meta)))
    got = meta.get("moatsweep.float_precision", "")
    check(f"{tag} polars: moatsweep.float_precision is {precision}", got == precision, got)


def run(binary, args):
    return subprocess.run([binary, "run", "--quiet", *args], capture_output=True, text=True)


def main():
    binary = os.path.abspath(sys.argv[1])
    require_gpu = os.environ.get("MOATSWEEP_REQUIRE_GPU") == "1"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "check.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG)
        for backend in ["cpu", "gpu"]:
            f32 = backend == "gpu"
            csv_path = os.path.join(tmp, f"{backend}.csv")
            pq_path = os.path.join(tmp, f"{backend}.parquet")
            a = run(binary, ["--backend", backend, cfg, "--out", csv_path])
            if a.returncode != 0 and backend == "gpu" and not require_gpu:
                print(f"note: GPU checks skipped (no adapter; MOATSWEEP_REQUIRE_GPU is not 1): {a.stderr.strip()}")
                continue
            b = run(binary, ["--backend", backend, cfg, "--out", pq_path, "--format", "parquet"])
            check(f"{backend}: moatsweep writes the CSV and the Parquet", a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr)
            if a.returncode != 0 or b.returncode != 0:
                continue
            header, rows = read_csv(csv_path)
            with open(csv_path + ".manifest.json") as f:
                axes = {ax["path"] for ax in json.load(f)["config"]["axes"]}
            want = expected(header, rows, axes, f32)
            check(f"{backend}: the sweep has empty cells (nulls are tested)", any(w[1].any() for w in want.values()))
            precision = "f32" if f32 else "f64"
            check_pandas(backend, pq_path, header, want, precision)
            check_polars(backend, pq_path, header, want, precision)
    print(f"parquet: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
