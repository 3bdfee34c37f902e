#!/usr/bin/env bash
# The GPU check for a machine with a real GPU: agreement with the f64 CPU
# reference on a sample of a sampled design (nothing beyond tolerance, and the
# rows exempted at the reference's edges or admitted only through the probe
# within their caps, src/verify.rs), the bytes uploaded to and read back from the
# device per scenario and the longest dispatch against its budget (from the
# manifests of that run and of a reduced run of configs/strategy-map.toml), then
# kernel-only, compute and end-to-end throughput of both backends at 10 million
# scenarios, measured in one process (bench adds bytes, host CPU and kernel time
# per scenario).
# Prints everything; writes only under $WORK (a temporary folder by default).
# Exits non-zero when agreement fails.
#
#   scripts/device-check.sh [BIN]     BIN defaults to target/release/moatsweep
#
# Environment: ROWS (scenarios per throughput measurement, default 10000000),
# AGREE (GPU rows in the agreement run, default 1000000), VERIFY (rows of those
# re-solved on the f64 reference, default 10000), REDUCED (positions of the
# reduced run, a multiple of 4096, default 4194304), ADAPTER (a name for
# --adapter; default: the first adapter), WORK. A quick rehearsal on lavapipe:
#   ROWS=200000 AGREE=100000 VERIFY=500 REDUCED=65536 scripts/device-check.sh
set -euo pipefail
bin=${1:-target/release/moatsweep}
rows=${ROWS:-10000000}
agree=${AGREE:-1000000}
verify=${VERIFY:-10000}
reduced=${REDUCED:-4194304}
work=${WORK:-$(mktemp -d)}
adapter=()
if [ -n "${ADAPTER:-}" ]; then adapter=(--adapter "$ADAPTER"); fi

echo "== adapters"
"$bin" adapters

echo "== agreement: $agree rows of configs/release-timing-lhs.toml on the GPU, $verify re-solved in f64"
"$bin" run --quiet configs/release-timing-lhs.toml --backend gpu "${adapter[@]}" --limit "$agree" \
    --verify "$verify" --out "$work/agree.csv"
manifest=$(ls "$work"/agree*.manifest.json)
if command -v python3 >/dev/null; then
    python3 - "$manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
v = m["verify"]
print("backend:", json.dumps(m["backend"]))
print(f"kernel {m.get('kernel_time_s')} s, wall {m['wall_time_s']} s")
n = m["rows"][1] - m["rows"][0]
print(f"uploaded {m['uploaded_bytes'] / n:.1f} B, read back {m['read_back_bytes'] / n:.1f} B per scenario; "
      f"longest dispatch {m['longest_dispatch_s']:.3f} s of budget {m.get('dispatch_budget_s')} s")
print(f"verify: {v['rows_checked']} rows, {v['rows_compared']} compared, exempted {v['exempted']}, "
      f"admitted through the probe {v['admitted_by_probe']}, beyond tolerance {v['beyond_tolerance']}, "
      f"within caps {v['within_caps']} (caps {v['caps']})")
worst = sorted(v["columns"].items(), key=lambda kv: -kv[1]["max_rel"])[:5]
for name, c in worst:
    print(f"  {name}: max rel {c['max_rel']:.2e}, max abs {c['max_abs']:.3g}")
PY
else
    cat "$manifest"
fi
if ! grep -q '"beyond_tolerance": 0' "$manifest"; then
    echo "AGREEMENT FAILED: rows beyond tolerance, see $manifest" >&2
    exit 1
fi
if ! grep -q '"within_caps": true' "$manifest"; then
    echo "AGREEMENT FAILED: more rows exempted or admitted through the probe than the caps allow, see $manifest" >&2
    exit 1
fi

echo "== bytes: a reduced run of $reduced positions of configs/strategy-map.toml on the GPU"
"$bin" run --quiet configs/strategy-map.toml --backend gpu "${adapter[@]}" --limit "$reduced" --out "$work/reduced.csv"
manifest=$(ls "$work"/reduced*.reduced.csv.manifest.json)
if command -v python3 >/dev/null; then
    python3 - "$manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
n = m["rows"][1] - m["rows"][0]
print(f"{n} positions, kernel {m.get('kernel_time_s')} s, wall {m['wall_time_s']} s")
print(f"uploaded {m['uploaded_bytes'] / n:.1f} B, read back {m['read_back_bytes'] / n:.3f} B per scenario; "
      f"longest dispatch {m['longest_dispatch_s']:.3f} s of budget {m.get('dispatch_budget_s')} s")
PY
else
    grep -E '"(uploaded_bytes|read_back_bytes|longest_dispatch_s|dispatch_budget_s|rows_written)"' "$manifest"
fi

echo "== throughput: $rows scenarios of configs/release-timing.toml per measurement"
"$bin" bench configs/release-timing.toml --rows "$rows" "${adapter[@]}"
echo "device check passed"
