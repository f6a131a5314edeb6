#!/usr/bin/env bash
# bench/startup.sh — container start-up time, side by side in one run:
#   rrun --rm --net none --image alpine /bin/true
#   runc run on an OCI bundle of the same Alpine rootfs
#   bwrap --unshare-all on the same rootfs
#   podman run --rm --network none --runtime runc of the same tarball imported
#   and, for what the store's disk costs, rrun again with its store on a tmpfs (rrun-tmpfs;
#   runc and bwrap keep nothing on disk; see the README on ext4 without a journal)
# Each is timed with hyperfine (no shell, warm-up runs first), >= 20 runs; prints medians and
# the ratios rrun/runc (goal <= 0.2) and rrun/bwrap (goal <= 1.2), issue 9's.
#
# Usage (root, from the project root after `cargo build --release`):
#   bench/startup.sh [RUNS]          RUNS defaults to 30 (at least 20)
# Env: RBOX_BIN  folder holding rrun, rinit and rbuild (default: target/release)
#      BENCH_SKIP_PODMAN=1  leave podman out (it is slow and noisy)
# Needs: hyperfine, runc, bubblewrap, podman, python3 (Debian packages).
set -euo pipefail

RUNS=${1:-30}
[ "$RUNS" -ge 20 ] || { echo "startup.sh: use at least 20 runs" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "startup.sh: needs root (runc and rrun's default user namespace remap)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${RBOX_BIN:-$HERE/target/release}" && pwd)
TGZ=$HERE/../shared/fixtures/alpine/alpine-minirootfs-3.15.11-x86_64.tar.gz
for t in hyperfine runc bwrap python3; do command -v $t >/dev/null || { echo "startup.sh: $t is missing" >&2; exit 2; }; done
[ -x "$BIN/rrun" ] && [ -x "$BIN/rbuild" ] && [ -x "$BIN/rinit" ] || { echo "startup.sh: build first (no rrun/rbuild/rinit in $BIN)" >&2; exit 2; }

W=$(mktemp -d /tmp/rbox-bench.XXXXXX)
chmod 755 "$W"
PODMAN_IMG=rbox-bench-alpine:$(basename "$W" | tr 'A-Z.' 'a-z-')
cleanup() {
  runc delete -f rbox-bench >/dev/null 2>&1 || true
  umount "$W/tmpfs" 2>/dev/null || true
  [ -n "${PODMAN_OK:-}" ] && podman rmi -f "$PODMAN_IMG" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

# The same Alpine rootfs for everyone.
export RBOX_ROOT=$W/store
L=$("$BIN/rbuild" layer add "$TGZ")
"$BIN/rbuild" image create "$L" --tag alpine:bench >/dev/null
mkdir -p "$W/tmpfs" "$W/bundle/rootfs"
mount -t tmpfs -o size=256m,mode=0755 rbox-bench "$W/tmpfs"
LT=$("$BIN/rbuild" --root "$W/tmpfs/store" layer add "$TGZ")
"$BIN/rbuild" --root "$W/tmpfs/store" image create "$LT" --tag alpine:bench >/dev/null
tar -xzf "$TGZ" -C "$W/bundle/rootfs"
(cd "$W/bundle" && runc spec)
python3 - "$W/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"] = {"path": "rootfs", "readonly": True}
json.dump(c, open(p, "w"))
PY

CMDS=(
  "$BIN/rrun --rm --net none --image alpine:bench /bin/true"
  "runc run -b $W/bundle rbox-bench"
  "bwrap --unshare-all --ro-bind $W/bundle/rootfs / --proc /proc --dev /dev /bin/true"
)
NAMES=(rrun runc bwrap)
CMDS+=("$BIN/rrun --root $W/tmpfs/store --rm --net none --image alpine:bench /bin/true")
NAMES+=(rrun-tmpfs)
if [ "${BENCH_SKIP_PODMAN:-}" != 1 ] && command -v podman >/dev/null; then
  # Debian's podman defaults exceed this machine's hard limits for nofile/nproc: keep them lower.
  export CONTAINERS_CONF=$W/containers.conf
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n' >"$CONTAINERS_CONF"
  podman import "$TGZ" "$PODMAN_IMG" >/dev/null && PODMAN_OK=1
  CMDS+=("podman run --rm --runtime runc --network none $PODMAN_IMG /bin/true")
  NAMES+=(podman)
fi

# Setup wrote a few MB (extracted layers, bundle, podman storage): flush them first, so that no
# run pays for writing back what setup left dirty.
sync
echo "startup.sh: $RUNS runs each, $(nproc) CPUs, kernel $(uname -r)"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/result.json" "${CMDS[@]}" >"$W/hyperfine.txt" 2>&1 \
  || { cat "$W/hyperfine.txt"; exit 1; }
python3 - "$W/result.json" "${NAMES[@]}" <<'PY'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
names = sys.argv[2:]
med = {n: statistics.median(r["times"]) * 1000 for n, r in zip(names, res)}
for n, r in zip(names, res):
    t = [x * 1000 for x in r["times"]]
    print(f"{n:10s} median {med[n]:8.2f} ms   min {min(t):7.2f}   max {max(t):8.2f}   runs {len(t)}")
for other, goal in (("runc", 0.2), ("bwrap", 1.2), ("podman", None)):
    if other in med:
        ratio = med["rrun"] / med[other]
        verdict = "" if goal is None else ("  (goal <= %.2f: %s)" % (goal, "met" if ratio <= goal else "NOT met"))
        print(f"rrun/{other:6s} = {ratio:5.2f}{verdict}")
print(f"the store on this machine's disk against a tmpfs: "
      f"+{med['rrun'] - med['rrun-tmpfs']:.2f} ms (rrun-tmpfs/bwrap = {med['rrun-tmpfs'] / med['bwrap']:.2f})")
PY
