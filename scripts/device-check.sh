#!/usr/bin/env bash
# The GPU check for a machine with a real GPU:
# - agreement with the f64 CPU reference on a sample of a sampled design (nothing
#   beyond tolerance, and the rows exempted at the reference's edges or admitted
#   only through the probe within their caps, src/verify.rs);
# - scenarios made on the device against the host's packing: the same rows run
#   with --expand host and --expand device must write identical bytes (a grid,
#   configs/strategy-map.toml, and a Latin hypercube, configs/release-timing-lhs.toml);
# - the bytes uploaded to and read back from the device per scenario and the
#   longest dispatch against its budget (from the manifests of that run and of a
#   reduced run of configs/strategy-map.toml, both ways);
# - kernel-only, end-to-end and reduced throughput of configs/strategy-map.toml
#   (1e8 scenarios: the whole sweep) with rows made on the host and on the device,
#   measured in one process (bench adds bytes, host CPU and kernel time per scenario).
# Prints everything; writes only under $WORK (a temporary folder by default).
# Exits non-zero when agreement or the byte comparison fails.
#
#   scripts/device-check.sh [BIN]     BIN defaults to target/release/moatsweep
#
# Environment: ROWS (scenarios per GPU throughput measurement, default 100000000),
# CPU_ROWS (per CPU one, default 1000000), AGREE (GPU rows in the agreement run,
# default 1000000), VERIFY (rows of those re-solved on the f64 reference, default
# 10000), EXPAND (rows of each host/device comparison, default 1048576; the reduced
# config's are cut to whole blocks of 4096), REDUCED
# (positions of the reduced runs, a multiple of 4096, default 4194304), ADAPTER (a
# name for --adapter; default: the first adapter), WORK. A quick rehearsal on lavapipe:
#   ROWS=100000 CPU_ROWS=4096 AGREE=20000 VERIFY=500 EXPAND=20480 REDUCED=65536 scripts/device-check.sh
set -euo pipefail
bin=${1:-target/release/moatsweep}
rows=${ROWS:-100000000}
cpu_rows=${CPU_ROWS:-1000000}
expand=${EXPAND:-1048576}
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

echo "== expansion: $expand rows made on the host and on the device, identical bytes"
for config in configs/strategy-map.toml configs/release-timing-lhs.toml; do
    name=$(basename "$config" .toml)
    limit=$expand
    if [ "$name" = strategy-map ]; then limit=$(( (expand + 4095) / 4096 * 4096 )); fi
    for mode in host device; do
        "$bin" run --quiet "$config" --backend gpu "${adapter[@]}" --expand "$mode" --limit "$limit" --verify 0 \
            --out "$work/expand-$name-$mode.csv"
    done
    # A reduced config writes its reduced CSV and state, a plain one its rows
    # (named for the rows they hold); every file of the host's run has its twin.
    found=0
    for a in "$work/expand-$name-host".*; do
        case "$a" in *.manifest.json) continue ;; esac
        b=${a/expand-$name-host/expand-$name-device}
        if ! cmp "$a" "$b"; then
            echo "EXPANSION FAILED: $config --expand device wrote other bytes than --expand host ($a, $b)" >&2
            exit 1
        fi
        echo "$config: $(basename "$b") identical to the host's ($(wc -c <"$a") bytes)"
        found=$((found + 1))
    done
    if [ "$found" = 0 ]; then
        echo "EXPANSION FAILED: no output of $config to compare in $work" >&2
        exit 1
    fi
done

echo "== bytes: a reduced run of $reduced positions of configs/strategy-map.toml on the GPU, rows made on the host and on the device"
for mode in host device; do
    "$bin" run --quiet configs/strategy-map.toml --backend gpu "${adapter[@]}" --expand "$mode" --limit "$reduced" --out "$work/reduced-$mode.csv"
    manifest=$(ls "$work"/reduced-$mode*.reduced.csv.manifest.json)
    if command -v python3 >/dev/null; then
        python3 - "$manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
n = m["rows"][1] - m["rows"][0]
print(f"expand {m.get('expand')}: {n} positions, kernel {m.get('kernel_time_s')} s, wall {m['wall_time_s']} s")
print(f"uploaded {m['uploaded_bytes'] / n:.3f} B, read back {m['read_back_bytes'] / n:.3f} B per scenario; "
      f"longest dispatch {m['longest_dispatch_s']:.3f} s of budget {m.get('dispatch_budget_s')} s")
PY
    else
        grep -E '"(expand|uploaded_bytes|read_back_bytes|longest_dispatch_s|dispatch_budget_s|rows_written)"' "$manifest"
    fi
done

echo "== throughput: $rows scenarios of configs/strategy-map.toml per GPU measurement ($cpu_rows per CPU one)"
"$bin" bench configs/strategy-map.toml --rows "$rows" --cpu-rows "$cpu_rows" "${adapter[@]}"
echo "device check passed"
