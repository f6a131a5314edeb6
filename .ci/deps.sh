#!/usr/bin/env bash
# Installs, from Debian's packages, what rbox and its tests need on a fresh Debian 12 machine.
# Used by ../setup.sh and by .ci/run. Needs root. Safe to run again.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "deps: needs root (apt-get)"; exit 2; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  ca-certificates gcc libc6-dev pkg-config make \
  iproute2 nftables uidmap util-linux passwd procps psmisc \
  netcat-openbsd python3 tar gzip zstd xz-utils bzip2 file \
  tini catatonit \
  libseccomp-dev golang-github-containers-common \
  podman skopeo umoci runc docker-registry apache2-utils openssl \
  jq ruby vagrant \
  crun conmon \
  passt slirp4netns
