#!/usr/bin/env bash
# bench/exec.sh — joining a running container, side by side in one run:
#   rrun exec NAME /bin/true      into a detached `rrun -d --net none … sleep`
#   runc exec ID /bin/true        into a detached `runc run -d` of the same Alpine rootfs
# Each is timed with hyperfine (no shell, warm-up runs first), >= 20 runs; prints medians, the
# spread and the ratio rrun/runc (issue 9's goal: <= 0.15).
#
# Usage (root, from the project root after `cargo build --release`):
#   bench/exec.sh [RUNS]          RUNS defaults to 30 (at least 20)
# Env: RBOX_BIN  folder holding rrun, rinit and rbuild (default: target/release)
# Needs: hyperfine, runc, python3 (Debian packages).
set -euo pipefail

RUNS=${1:-30}
[ "$RUNS" -ge 20 ] || { echo "exec.sh: use at least 20 runs" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "exec.sh: needs root (runc, rrun's default remap)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${RBOX_BIN:-$HERE/target/release}" && pwd)
TGZ=$HERE/../shared/fixtures/alpine/alpine-minirootfs-3.15.11-x86_64.tar.gz
for t in hyperfine runc python3; do command -v $t >/dev/null || { echo "exec.sh: $t is missing" >&2; exit 2; }; done
[ -x "$BIN/rrun" ] && [ -x "$BIN/rbuild" ] || { echo "exec.sh: build first (no rrun/rbuild in $BIN)" >&2; exit 2; }

W=$(mktemp -d /tmp/rbox-bench-exec.XXXXXX)
chmod 755 "$W"
NAME=rbox-bench-exec-$$
cleanup() {
  runc delete -f "$NAME" >/dev/null 2>&1 || true
  RBOX_ROOT=$W/store "$BIN/rrun" rm -f "$NAME" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

export RBOX_ROOT=$W/store
L=$("$BIN/rbuild" layer add "$TGZ")
"$BIN/rbuild" image create "$L" --tag alpine:bench >/dev/null
"$BIN/rrun" -d --name "$NAME" --net none --image alpine:bench sleep 100000 >/dev/null

mkdir -p "$W/bundle/rootfs"
tar -xzf "$TGZ" -C "$W/bundle/rootfs"
(cd "$W/bundle" && runc spec)
python3 - "$W/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "100000"]
c["root"] = {"path": "rootfs", "readonly": True}
json.dump(c, open(p, "w"))
PY
runc run -d -b "$W/bundle" "$NAME" </dev/null >/dev/null 2>&1

sync
echo "exec.sh: $RUNS runs each, $(nproc) CPUs, kernel $(uname -r)"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/result.json" \
  "$BIN/rrun exec $NAME /bin/true" "runc exec $NAME /bin/true" >"$W/hyperfine.txt" 2>&1 \
  || { cat "$W/hyperfine.txt"; exit 1; }
python3 - "$W/result.json" <<'PY'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
med = {}
for n, r in zip(["rrun exec", "runc exec"], res):
    t = [x * 1000 for x in r["times"]]
    med[n] = statistics.median(t)
    q = statistics.quantiles(t, n=10)
    print(f"{n:9s} median {med[n]:7.2f} ms   p10 {q[0]:6.2f}   p90 {q[-1]:7.2f}   runs {len(t)}")
print(f"ratio rrun/runc {med['rrun exec'] / med['runc exec']:.3f} (goal <= 0.15)")
PY
