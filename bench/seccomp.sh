#!/usr/bin/env bash
# bench/seccomp.sh — what the default seccomp filter adds to a container's start-up, side by
# side in one run: `rrun --rm --net none --image alpine /bin/true` with the default filter (a
# cached program: one seccomp(2) call in the child) against `--security-opt seccomp=unconfined`,
# and with a cold cache (the profile compiled by libseccomp at each start). Timed with hyperfine
# (no shell, warm-up runs first); prints medians, spreads and the difference (goal: < 0.3 ms).
#
# Usage (root, from the project root after `cargo build --release`):
#   bench/seccomp.sh [RUNS]          RUNS defaults to 40 (at least 20)
# Env: RBOX_BIN  folder holding rrun, rinit and rbuild (default: target/release)
# Needs: hyperfine, python3 (Debian packages).
set -euo pipefail

RUNS=${1:-40}
[ "$RUNS" -ge 20 ] || { echo "seccomp.sh: use at least 20 runs" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "seccomp.sh: needs root" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${RBOX_BIN:-$HERE/target/release}" && pwd)
TGZ=$HERE/../shared/fixtures/alpine/alpine-minirootfs-3.15.11-x86_64.tar.gz
for t in hyperfine python3; do command -v $t >/dev/null || { echo "seccomp.sh: $t is missing" >&2; exit 2; }; done

W=$(mktemp -d /tmp/rbox-bench-seccomp.XXXXXX)
chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
export RBOX_ROOT=$W/store
L=$("$BIN/rbuild" layer add "$TGZ")
"$BIN/rbuild" image create "$L" --tag alpine:bench >/dev/null
R="$BIN/rrun --rm --net none"

# One --prepare per command, in order (a single one would apply to all three).
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$W/h.json" \
  --prepare true --prepare true --prepare "rm -rf $RBOX_ROOT/seccomp" \
  -n unconfined "$R --security-opt seccomp=unconfined --image alpine:bench /bin/true" \
  -n default "$R --image alpine:bench /bin/true" \
  -n cold-cache "$R --image alpine:bench /bin/true" >/dev/null

python3 - "$W/h.json" <<'PY'
import json, sys, statistics as st
r = {x["command"]: x["times"] for x in json.load(open(sys.argv[1]))["results"]}
med = {k: st.median(v) * 1e3 for k, v in r.items()}
for k, v in r.items():
    q = sorted(t * 1e3 for t in v)
    print(f"{k:11s} median {med[k]:7.3f} ms  (p10 {q[len(q)//10]:.3f}, p90 {q[len(q)*9//10]:.3f}, {len(q)} runs)")
print(f"filter adds   {med['default'] - med['unconfined']:+.3f} ms (cached program; goal < 0.3 ms)")
print(f"cold cache    {med['cold-cache'] - med['unconfined']:+.3f} ms (libseccomp compiles at start)")
PY
