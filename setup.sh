#!/usr/bin/env bash
# setup.sh: on a fresh Debian 12 machine, as root, from the project root:
#   installs what rbox needs (Debian packages), builds the release binaries, gives root's
#   remapped containers an `rbox` range in /etc/subuid and /etc/subgid, lets users open
#   /dev/net/tun (rootless user-mode networks) as udev would, imports the Alpine
#   minirootfs fixture into the store, starts netd (container networking) and runs the main
#   job: a command in a container on the default bridge.
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "setup: run as root (sudo ./setup.sh)"; exit 2; }
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first"; exit 2; }

bash .ci/deps.sh
cargo build --release
BIN=target/release
FIX=../shared/fixtures/alpine
TGZ=$FIX/alpine-minirootfs-3.20.3-x86_64.tar.gz
SUM=$(awk '/3.20.3/ {print $1}' "$FIX/SHA256SUMS")

echo "--- give root's remapped containers their own host ids (an rbox entry in /etc/subuid and /etc/subgid beyond every user's range)"
bash tools/rbox-subids

echo "--- let users open /dev/net/tun (rootless --net pasta and --net slirp4netns), as udev's default rule does"
# A machine without udev keeps the kernel's mode 0600, which neither helper can open as a user.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then chmod 0666 /dev/net/tun; fi

echo "--- import Alpine 3.20.3 (checksum verified) and make an image"
LAYER=$("$BIN/rbuild" layer add "$TGZ" --sha256 "$SUM")
IMAGE=$("$BIN/rbuild" image create "$LAYER" --tag alpine:3.20 --cmd /bin/sh)
echo "layer $LAYER"
echo "image $IMAGE (alpine:3.20)"

echo "--- start netd (container networking: the default bridge, NAT, published ports)"
# As a systemd service where systemd runs; else in the background, its log in
# /var/log/rbox-netd.log and its pid in /run/rbox/netd.pid. Either way a netd started by an
# earlier run is replaced by the one just built.
install -m 755 "$BIN/netd" /usr/local/sbin/netd
mkdir -p /run/rbox
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  install -m 644 netd/rbox-netd.service /etc/systemd/system/rbox-netd.service
  systemctl daemon-reload
  systemctl enable rbox-netd.service >/dev/null 2>&1 || true
  systemctl restart rbox-netd.service
  echo "netd runs as the systemd service rbox-netd (journalctl -u rbox-netd)"
else
  if [ -f /run/rbox/netd.pid ] && kill -0 "$(cat /run/rbox/netd.pid)" 2>/dev/null; then
    kill "$(cat /run/rbox/netd.pid)"
    for _ in $(seq 50); do kill -0 "$(cat /run/rbox/netd.pid)" 2>/dev/null || break; sleep 0.1; done
  fi
  nohup /usr/local/sbin/netd --socket /run/rbox/netd.sock --state-dir /var/lib/rbox/netd \
    >>/var/log/rbox-netd.log 2>&1 </dev/null &
  echo $! >/run/rbox/netd.pid
  echo "netd runs in the background (pid $(cat /run/rbox/netd.pid), log /var/log/rbox-netd.log)"
fi
for _ in $(seq 100); do [ -S /run/rbox/netd.sock ] && break; sleep 0.1; done
[ -S /run/rbox/netd.sock ] || { echo "setup: netd did not start; see its log"; exit 1; }

echo "--- run it: own namespaces, overlay root, rinit as PID 1, container root unprivileged on the host, on the default bridge"
"$BIN/rrun" --image alpine:3.20 -- sh -c \
  'echo hello-world; echo "hostname: $(hostname)"; echo "alpine $(cat /etc/alpine-release)"; id; ps; ip -o -4 addr show dev eth0 | awk "{print \"eth0:\", \$4}"'
echo "--- done. Try: $BIN/rrun -it --image alpine:3.20"
