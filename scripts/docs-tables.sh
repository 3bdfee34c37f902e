#!/usr/bin/env bash
# Pastes `moatsweep params` and `moatsweep params --outputs` into docs/model.md
# between their markers (tests/cli.rs checks that the two agree).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/moatsweep}
python3 - "$bin" <<'PY'
import subprocess, sys
bin = sys.argv[1]
doc = open("docs/model.md").read()
for marker, args in [("params", []), ("outputs", ["--outputs"])]:
    table = subprocess.run([bin, "params", *args], check=True, capture_output=True, text=True).stdout.strip()
    begin, end = f"<!-- {marker}:begin -->\n", f"<!-- {marker}:end -->"
    a = doc.index(begin) + len(begin)
    b = doc.index(end)
    doc = doc[:a] + table + "\n" + doc[b:]
open("docs/model.md", "w").write(doc)
PY
