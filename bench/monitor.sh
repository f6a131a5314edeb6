#!/usr/bin/env bash
# bench/monitor.sh — memory of the process that watches a detached container, side by side:
#   the detached rrun (the parent of the container's init, `rrun -d --net none … sleep`)
#   conmon, as podman runs it (`podman run -d --runtime runc --network none … sleep`)
# N idle containers of each; reads RSS and PSS from /proc/PID/smaps_rollup (PSS shares pages
# between the N copies, RSS counts them in each); prints medians and the ratio rrun/conmon
# (issue 9's goal: <= 1).
#
# Usage (root, from the project root after `cargo build --release`):
#   bench/monitor.sh [N]          N containers of each, default 5 (at least 3)
# Env: RBOX_BIN  folder holding rrun, rinit and rbuild (default: target/release)
# Needs: podman, conmon, runc, python3 (Debian packages). podman gets its own store under /tmp.
set -euo pipefail

N=${1:-5}
[ "$N" -ge 3 ] || { echo "monitor.sh: use at least 3 containers" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "monitor.sh: needs root" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${RBOX_BIN:-$HERE/target/release}" && pwd)
TGZ=$HERE/../shared/fixtures/alpine/alpine-minirootfs-3.15.11-x86_64.tar.gz
for t in podman conmon runc python3; do command -v $t >/dev/null || { echo "monitor.sh: $t is missing" >&2; exit 2; }; done

W=$(mktemp -d /tmp/rbox-bench-mon.XXXXXX)
chmod 755 "$W"
P=(podman --root "$W/podman/root" --runroot "$W/podman/run" --cgroup-manager cgroupfs --events-backend none)
export CONTAINERS_CONF=$W/containers.conf
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n' >"$CONTAINERS_CONF"
export RBOX_ROOT=$W/store
cleanup() {
  for i in $(seq "$N"); do "$BIN/rrun" rm -f "rbox-mon-$$-$i" >/dev/null 2>&1 || true; done
  "${P[@]}" rm -af -t 0 >/dev/null 2>&1 || true
  "${P[@]}" system reset -f >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

L=$("$BIN/rbuild" layer add "$TGZ")
"$BIN/rbuild" image create "$L" --tag alpine:bench >/dev/null
"${P[@]}" import "$TGZ" rbox-bench-mon >/dev/null

rr=() cm=()
for i in $(seq "$N"); do
  "$BIN/rrun" -d --name "rbox-mon-$$-$i" --net none --image alpine:bench sleep 100000 >/dev/null
  init=$("$BIN/rrun" inspect "rbox-mon-$$-$i" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
  rr+=("$(awk '/^PPid:/ {print $2}' "/proc/$init/status")")
  id=$("${P[@]}" run -d --runtime runc --network none rbox-bench-mon sleep 100000)
  cm+=("$("${P[@]}" inspect --format '{{.State.ConmonPid}}' "$id")")
done
sleep 2 # idle
for p in "${rr[@]}"; do grep -q rrun "/proc/$p/comm" || { echo "monitor.sh: pid $p is not rrun" >&2; exit 1; }; done
for p in "${cm[@]}"; do grep -q conmon "/proc/$p/comm" || { echo "monitor.sh: pid $p is not conmon" >&2; exit 1; }; done

echo "monitor.sh: $N idle containers each, $(nproc) CPUs, kernel $(uname -r)"
python3 - "${#rr[@]}" "${rr[@]}" "${cm[@]}" <<'PY'
import statistics, sys
n = int(sys.argv[1]); pids = sys.argv[2:]
def mem(pid):
    d = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        k, *v = line.split()
        if k in ("Rss:", "Pss:"):
            d[k[:-1]] = int(v[0])
    return d
res = {}
for name, group in (("rrun", pids[:n]), ("conmon", pids[n:])):
    m = [mem(p) for p in group]
    res[name] = {k: statistics.median(x[k] for x in m) for k in ("Rss", "Pss")}
    rng = {k: (min(x[k] for x in m), max(x[k] for x in m)) for k in ("Rss", "Pss")}
    print(f"{name:7s} RSS median {res[name]['Rss']:6.0f} kB ({rng['Rss'][0]}-{rng['Rss'][1]})   "
          f"PSS median {res[name]['Pss']:6.0f} kB ({rng['Pss'][0]}-{rng['Pss'][1]})")
for k in ("Rss", "Pss"):
    print(f"ratio rrun/conmon {k.upper()} {res['rrun'][k] / res['conmon'][k]:.2f} (goal <= 1)")
PY
