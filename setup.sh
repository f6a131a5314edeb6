#!/usr/bin/env bash
# setup.sh: on a fresh Debian 12 machine, as root, from the project root:
#   installs what rbox needs (Debian packages), builds the release binaries, imports the Alpine
#   minirootfs fixture into the store, and runs the main job: a command in a container.
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

echo "--- import Alpine 3.20.3 (checksum verified) and make an image"
LAYER=$("$BIN/rbuild" layer add "$TGZ" --sha256 "$SUM")
IMAGE=$("$BIN/rbuild" image create "$LAYER" --tag alpine:3.20 --cmd /bin/sh)
echo "layer $LAYER"
echo "image $IMAGE (alpine:3.20)"

echo "--- run it: own namespaces, overlay root, rinit as PID 1, container root unprivileged on the host"
"$BIN/rrun" --net none --image alpine:3.20 -- sh -c \
  'echo hello-world; echo "hostname: $(hostname)"; echo "alpine $(cat /etc/alpine-release)"; id; ps'
echo "--- done. Try: $BIN/rrun -it --net none --image alpine:3.20"
