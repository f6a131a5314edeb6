#!/usr/bin/env bash
# bench/rootless-net.sh — rootless published-port throughput: `rrun --net pasta` against
# `rrun --net slirp4netns`, each container running an iperf3 server behind `-p`, the iperf3
# client on the host side. Two paths per helper: the host's loopback (127.0.0.1, pasta's
# socket splice path) and the host's own address (through the tap device for both).
# Both containers run side by side and the client runs alternate between them, RUNS rounds of
# SECS seconds each; printed: the median with the spread (min-max) in Gbit/s, and the ratio
# pasta / slirp4netns of the medians.
#
# Everything runs inside a throwaway "host" network namespace H with a veth to a namespace I
# (198.18.0.0/24, RFC 2544) as its default route (pasta copies the host's addresses and routes
# and needs one), as a throwaway user made for the run (useradd -r, removed at the end): no
# link, address or firewall rule of the machine is touched and no packet leaves it. rrun runs
# in a private mount namespace where /dev/net/tun is mode 0666, as udev makes it (a machine
# without udev has the kernel's 0600, which the helpers cannot open as a user).
# iperf3 in the Alpine container is the host's own (Debian's, glibc), run through the host's
# dynamic loader from a read-only bind of /usr: the same server binary for both helpers.
#
# Usage (root, from the project root after `cargo build --release`):
#   bench/rootless-net.sh [RUNS [SECS]]     default 7 rounds of 10 s (at least 3 rounds)
# Env: RBOX_BIN  folder holding rrun and rbuild (default: target/release)
# Needs: iperf3 passt slirp4netns python3 util-linux passwd (Debian packages). Run it on a
# quiet machine: throughput is CPU-bound, and another load moves it.
set -euo pipefail

RUNS=${1:-7}
SECS=${2:-10}
[ "$RUNS" -ge 3 ] || { echo "rootless-net.sh: use at least 3 rounds" >&2; exit 2; }
[ "$SECS" -ge 1 ] || { echo "rootless-net.sh: SECS is at least 1" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "rootless-net.sh: needs root (netns, a throwaway user)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${RBOX_BIN:-$HERE/target/release}" && pwd)
TGZ=$HERE/../shared/fixtures/alpine/alpine-minirootfs-3.15.11-x86_64.tar.gz
LIBDIR=/usr/lib/x86_64-linux-gnu
LOADER=$LIBDIR/ld-linux-x86-64.so.2
for t in ip nsenter unshare setpriv useradd userdel iperf3 pasta slirp4netns python3; do
  command -v $t >/dev/null || { echo "rootless-net.sh: $t is missing (apt-get install iperf3 passt slirp4netns python3 util-linux passwd)" >&2; exit 2; }
done
[ -x "$BIN/rrun" ] && [ -x "$BIN/rbuild" ] || { echo "rootless-net.sh: build first (no rrun/rbuild in $BIN)" >&2; exit 2; }
[ -f "$TGZ" ] || { echo "rootless-net.sh: fixture $TGZ is missing" >&2; exit 2; }
[ -x "$LOADER" ] || { echo "rootless-net.sh: $LOADER is missing (not a Debian amd64 host?)" >&2; exit 2; }

TAG=rbrn$$
H=${TAG}h
I=${TAG}i
U=${TAG}u
W=$(mktemp -d /tmp/rbox-rootless-net-bench.XXXXXX)
USER_MADE=
cleanup() {
  set +e
  if [ -n "$USER_MADE" ]; then
    for n in "${TAG}pasta" "${TAG}slirp"; do as_user "$BIN/rrun" rm -f "$n" >/dev/null 2>&1; done
    userdel "$U" 2>/dev/null
  fi
  ip netns del "$H" 2>/dev/null
  ip netns del "$I" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

# The user's commands: private /dev/net/tun (0666), inside H, as the throwaway user.
WRAP='set -e
d=$(mktemp -d)
mount -t tmpfs -o mode=755 tun "$d"
mknod -m 666 "$d/tun" c 10 200
mount --bind "$d/tun" /dev/net/tun
umount -l "$d"
rmdir "$d"
exec nsenter --net="/run/netns/$H" setpriv --reuid="$UID_" --regid="$GID_" --clear-groups -- "$@"'
as_user() {
  H=$H UID_=$UID_ GID_=$GID_ RBOX_ROOT=$W/store HOME=/nonexistent \
    unshare -m -- sh -c "$WRAP" wrap "$@"
}
inh() { nsenter --net="/run/netns/$H" "$@"; }

# H ("the host", 198.18.0.2) and I (198.18.0.1, its default route).
ip netns add "$H"
ip netns add "$I"
ip -n "$H" link add up0 type veth peer name wan0 netns "$I"
ip -n "$H" addr add 198.18.0.2/24 dev up0
ip -n "$I" addr add 198.18.0.1/24 dev wan0
for ns in "$H" "$I"; do ip -n "$ns" link set lo up; done
ip -n "$H" link set up0 up
ip -n "$I" link set wan0 up
ip -n "$H" route add default via 198.18.0.1

useradd -r -M -N -s /bin/false "$U"
USER_MADE=1
UID_=$(id -u "$U")
GID_=$(id -g "$U")
mkdir "$W/store"
cp "$TGZ" "$W/alpine.tar.gz"
chown -R "$UID_:$GID_" "$W"
L=$(as_user "$BIN/rbuild" layer add "$W/alpine.tar.gz")
IMG=$(as_user "$BIN/rbuild" image create "$L")

# One container per helper, an iperf3 server behind -p (host ports 15201 and 15202).
start() { # NAME MODE HOSTPORT
  as_user "$BIN/rrun" -d --name "$1" --net "$2" -p "$3:5201" -v /usr:/hostusr:ro --image "$IMG" -- \
    /hostusr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path /hostusr/lib/x86_64-linux-gnu \
    /hostusr/bin/iperf3 -s -p 5201 >/dev/null
  local i
  for i in $(seq 100); do
    inh python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$3" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "rootless-net.sh: the iperf3 server behind --net $2 does not answer" >&2
  exit 1
}
start "${TAG}pasta" pasta 15201
start "${TAG}slirp" slirp4netns 15202

# gbps ADDR PORT: one client run, received Gbit/s.
gbps() {
  inh iperf3 -c "$1" -p "$2" -t "$SECS" -J |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)'
}
for r in $(seq "$RUNS"); do
  for addr in 127.0.0.1 198.18.0.2; do
    gbps "$addr" 15201 >>"$W/pasta-$addr.txt"
    gbps "$addr" 15202 >>"$W/slirp-$addr.txt"
  done
  echo "round $r/$RUNS done" >&2
done

echo "rootless published-port throughput, iperf3 host -> container, $RUNS rounds of $SECS s, Gbit/s: median (min-max)"
python3 - "$W" <<'PY'
import statistics, sys
w = sys.argv[1]
def stats(name):
    v = sorted(float(x) for x in open(f"{w}/{name}.txt") if x.strip())
    return statistics.median(v), v[0], v[-1]
for addr, what in (("127.0.0.1", "host loopback"), ("198.18.0.2", "host address")):
    p, s = stats(f"pasta-{addr}"), stats(f"slirp-{addr}")
    print(f"{what + ' (' + addr + ')':28} pasta {p[0]:7.2f} ({p[1]:.2f}-{p[2]:.2f})   "
          f"slirp4netns {s[0]:7.2f} ({s[1]:.2f}-{s[2]:.2f})   pasta/slirp4netns {p[0] / s[0]:.2f}x")
PY
