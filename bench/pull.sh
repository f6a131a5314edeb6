#!/usr/bin/env bash
# bench/pull.sh — pulling a multi-layer image from a registry on loopback, side by side:
#   rbuild pull 127.0.0.1:PORT/bench/multi:1                       (into an empty store)
#   skopeo copy docker://… oci:DIR:1, then rbuild import DIR:1      (into an empty store)
#   podman pull --tls-verify=false 127.0.0.1:PORT/bench/multi:1     (into an empty --root)
# The image: Alpine 3.15 and 3.20 minirootfs layers plus a generated 48 MiB layer (half random,
# half text), pushed once by rbuild to Debian's docker-registry listening on 127.0.0.1 only.
# RUNS rounds, the three tools interleaved within each round, each from an empty store, with the
# page cache as it comes; prints the median wall time with min–max and the ratios of rbuild pull
# to the two others.
#
# Usage (root, from the project root after `cargo build --release`):
#   bench/pull.sh [RUNS]          RUNS defaults to 7 (at least 5)
# Env: RBOX_BIN  folder holding rbuild (default: target/release)
# Needs: docker-registry, skopeo, podman, python3 (Debian packages). No traffic leaves loopback.
set -euo pipefail

RUNS=${1:-7}
[ "$RUNS" -ge 5 ] || { echo "pull.sh: use at least 5 runs" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "pull.sh: needs root (podman's store as root)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${RBOX_BIN:-$HERE/target/release}" && pwd)
FIX=$HERE/../shared/fixtures/alpine
for t in docker-registry skopeo podman python3; do command -v $t >/dev/null || { echo "pull.sh: $t is missing" >&2; exit 2; }; done
[ -x "$BIN/rbuild" ] || { echo "pull.sh: build first (no rbuild in $BIN)" >&2; exit 2; }

W=$(mktemp -d /tmp/rbox-bench-pull.XXXXXX)
chmod 755 "$W"
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
  for d in "$W"/podman-*; do
    [ -d "$d" ] && podman --root "$d/root" --runroot "$d/run" --storage-driver overlay \
      system reset -f >/dev/null 2>&1 || true
  done
  rm -rf "$W"
}
trap cleanup EXIT

# docker-registry on a free loopback port, storage in $W.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$W/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: 127.0.0.1:$PORT
  secret: bench-$$
EOF
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null && break
  sleep 0.1
done
REF=127.0.0.1:$PORT/bench/multi:1

# The image, built and pushed once.
export RBOX_ROOT=$W/src
L1=$("$BIN/rbuild" layer add "$FIX/alpine-minirootfs-3.15.11-x86_64.tar.gz")
L2=$("$BIN/rbuild" layer add "$FIX/alpine-minirootfs-3.20.3-x86_64.tar.gz")
mkdir -p "$W/gen/data"
python3 - "$W/gen/data" <<'PY'
import os, random, sys
d = sys.argv[1]; r = random.Random(9)
words = [("w%05d" % i) for i in range(5000)]
for i in range(48):
    with open(os.path.join(d, "f%02d" % i), "wb") as f:
        if i % 2:
            f.write(r.randbytes(1 << 20))
        else:
            f.write(" ".join(r.choice(words) for _ in range(180000)).encode()[: 1 << 20])
PY
L3=$("$BIN/rbuild" layer add "$W/gen")
IMG=$("$BIN/rbuild" image create "$L1" "$L2" "$L3" --tag bench/multi:1)
"$BIN/rbuild" push "$IMG" "$REF" >/dev/null 2>&1
unset RBOX_ROOT

ms() { date +%s%N; }
: >"$W/times"
sync
echo "pull.sh: $RUNS rounds, 3 layers ($(du -sh "$W/registry" | cut -f1) in the registry), $(nproc) CPUs, kernel $(uname -r)"
for i in $(seq "$RUNS"); do
  t0=$(ms)
  RBOX_ROOT=$W/rb-$i "$BIN/rbuild" pull "$REF" >/dev/null 2>"$W/err" || { cat "$W/err"; exit 1; }
  t1=$(ms)
  skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$W/layout-$i:1" >/dev/null 2>"$W/err" \
    || { cat "$W/err"; exit 1; }
  RBOX_ROOT=$W/sk-$i "$BIN/rbuild" import "$W/layout-$i:1" >/dev/null 2>"$W/err" || { cat "$W/err"; exit 1; }
  t2=$(ms)
  podman --root "$W/podman-$i/root" --runroot "$W/podman-$i/run" --storage-driver overlay \
    --cgroup-manager cgroupfs --events-backend file \
    pull -q --tls-verify=false "$REF" >/dev/null 2>"$W/err" || { cat "$W/err"; exit 1; }
  t3=$(ms)
  echo "$(( (t1 - t0) / 1000 )) $(( (t2 - t1) / 1000 )) $(( (t3 - t2) / 1000 ))" >>"$W/times"
  rm -rf "$W/rb-$i" "$W/sk-$i" "$W/layout-$i"
done
python3 - "$W/times" <<'PY'
import statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
names = ["rbuild pull", "skopeo copy + rbuild import", "podman pull"]
med = []
for j, n in enumerate(names):
    t = [r[j] / 1000 for r in rows]
    med.append(statistics.median(t))
    print(f"{n:28s} median {med[-1]:8.1f} ms   min {min(t):8.1f}   max {max(t):8.1f}   runs {len(t)}")
print(f"ratio rbuild pull / (skopeo copy + import) {med[0] / med[1]:.2f}")
print(f"ratio rbuild pull / podman pull            {med[0] / med[2]:.2f}")
PY
