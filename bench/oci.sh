#!/usr/bin/env bash
# bench/oci.sh — podman's start-to-exit through each OCI runtime, side by side in one run:
#   podman --runtime target/release/rrun-oci run --rm --network none IMAGE /bin/true
#   podman --runtime runc …, podman --runtime crun …   (Debian's runc and crun)
# The image is the Alpine fixture imported once; podman gets its own --root and --runroot under
# /tmp, with cgroupfs, events to a file and ulimits within this machine's hard limits. Each
# runtime is timed with hyperfine (no shell, warm-up runs first); prints medians, the spread and
# the ratios of rrun-oci to runc and crun.
#
# Usage (root, from the project root after `cargo build --release`):
#   bench/oci.sh [RUNS]          RUNS defaults to 20 (at least 10)
# Env: RBOX_BIN  folder holding rrun-oci (default: target/release)
# Needs: podman, conmon, runc, crun, hyperfine, python3 (Debian packages). crun 1.8 refuses
# cgroup v1 hybrid hosts; there it is left out, saying why.
set -euo pipefail

RUNS=${1:-20}
[ "$RUNS" -ge 10 ] || { echo "oci.sh: use at least 10 runs" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "oci.sh: needs root" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${RBOX_BIN:-$HERE/target/release}" && pwd)
TGZ=$HERE/../shared/fixtures/alpine/alpine-minirootfs-3.15.11-x86_64.tar.gz
for t in podman conmon runc crun hyperfine python3; do command -v $t >/dev/null || { echo "oci.sh: $t is missing" >&2; exit 2; }; done
[ -x "$BIN/rrun-oci" ] || { echo "oci.sh: build first (no rrun-oci in $BIN)" >&2; exit 2; }

W=$(mktemp -d /tmp/rbox-bench-oci.XXXXXX)
chmod 755 "$W"
P="podman --root $W/root --runroot $W/run --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"
export CONTAINERS_CONF=$W/containers.conf
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n' >"$CONTAINERS_CONF"
cleanup() {
  $P rm -af -t 0 >/dev/null 2>&1 || true
  $P system reset -f >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

$P import "$TGZ" rbox-bench-oci >/dev/null
# Each runtime must work before it is timed; crun 1.8 refuses cgroup v1 hybrid hosts (as this
# VM is), and is then left out with its reason.
NAMES=() CMDS=()
for rt in "$BIN/rrun-oci" runc crun; do
  out=$($P --runtime "$rt" run --rm --network none rbox-bench-oci echo ok 2>&1) || true
  if [ "$out" = ok ]; then
    NAMES+=("$(basename "$rt")")
    CMDS+=("$P --runtime $rt run --rm --network none rbox-bench-oci /bin/true")
  elif [ "$rt" = crun ]; then
    echo "oci.sh: crun left out: $(echo "$out" | tail -1)"
  else
    echo "oci.sh: podman --runtime $rt: $out" >&2; exit 1
  fi
done

sync
echo "oci.sh: $RUNS runs each, $(nproc) CPUs, kernel $(uname -r)"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/result.json" "${CMDS[@]}" >"$W/hyperfine.txt" 2>&1 \
  || { cat "$W/hyperfine.txt"; exit 1; }
python3 - "$W/result.json" "${NAMES[@]}" <<'PY'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
med = {}
for n, r in zip(sys.argv[2:], res):
    t = [x * 1000 for x in r["times"]]
    med[n] = statistics.median(t)
    print(f"podman + {n:8s} median {med[n]:7.1f} ms   min {min(t):7.1f}   max {max(t):7.1f}   runs {len(t)}")
for other in [n for n in med if n != "rrun-oci"]:
    print(f"ratio rrun-oci/{other} {med['rrun-oci'] / med[other]:.2f}")
PY
