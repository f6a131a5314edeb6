#!/usr/bin/env bash
# Checks the Vagrantfile without a VM: `ruby -c` (syntax), then `vagrant validate
# --ignore-provider` (Vagrant's own check of every setting; no provider is installed here) in
# a network namespace of its own, so that Vagrant cannot reach out (version or box checks).
# Both come from Debian's packages (.ci/deps.sh: ruby, vagrant). Run from the project root.
set -euo pipefail
cd "$(dirname "$0")/.."
ruby -c Vagrantfile
command -v vagrant >/dev/null || { echo "vagrant-check: vagrant is not installed (.ci/deps.sh installs it)"; exit 1; }
T=$(mktemp -d /tmp/vagrant-check.XXXXXX)
trap 'rm -rf "$T"' EXIT
cp Vagrantfile "$T/"
mkdir -p "$T/home"
cd "$T"
unshare --net env VAGRANT_HOME="$T/home/.vagrant.d" HOME="$T/home" VAGRANT_CHECKPOINT_DISABLE=1 \
  VAGRANT_BOX_UPDATE_CHECK_DISABLE=1 vagrant validate --ignore-provider
