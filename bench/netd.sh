#!/usr/bin/env bash
# bench/netd.sh — netd side by side with the CNI bridge + portmap plugins, in one run:
#   1. attach latency (median, p99) with 1, 100 and 500 containers attached, each attach
#      publishing one TCP port: `netd-client attach` against CNI `bridge` ADD + `portmap` ADD
#      (Debian's containernetworking-plugins, /usr/lib/cni), both one process per call;
#   2. nftables rule count with 1 and 500 published ports (netd's table; CNI's rules in the
#      iptables-nft nat table);
#   3. `rrun run --rm alpine true` on the default bridge against `--net none` and against
#      `podman run --rm --network bridge` (only once rrun speaks to netd);
#   4. published-port throughput with iperf3, host -> container through DNAT against the
#      container's address directly;
#   5. time to remove 100 attached containers (netd detach against CNI DEL).
# Everything runs inside a throwaway "host" netns (with its own netd instance, table and bridge
# prefix), so neither the host's links nor its ruleset are touched. Medians of several runs,
# with the spread (min-max) beside them.
#
# Usage (root, from the project root after `cargo build --release`):
#   bench/netd.sh [PROBES]       PROBES attaches timed at each level (default 21, at least 11)
# Env: RBOX_BIN  folder holding netd, netd-client and rrun (default: target/release)
#      BENCH_SKIP_PODMAN=1  leave podman out
#      BENCH_SKIP_ATTACH=1  leave out 1, 2 and 5 (the 500-container part, ~10 minutes here)
# Needs: containernetworking-plugins iperf3 hyperfine podman iptables python3 (Debian packages).
set -euo pipefail

PROBES=${1:-21}
[ "$PROBES" -ge 11 ] || { echo "netd.sh: use at least 11 probes" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "netd.sh: needs root (netns, nftables)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${RBOX_BIN:-$HERE/target/release}" && pwd)
CNI=/usr/lib/cni
for t in ip nft nsenter iperf3 python3 iptables; do command -v $t >/dev/null || { echo "netd.sh: $t is missing" >&2; exit 2; }; done
[ -x "$CNI/bridge" ] && [ -x "$CNI/portmap" ] && [ -x "$CNI/host-local" ] || { echo "netd.sh: apt-get install containernetworking-plugins" >&2; exit 2; }
[ -x "$BIN/netd" ] && [ -x "$BIN/netd-client" ] || { echo "netd.sh: build first (no netd/netd-client in $BIN)" >&2; exit 2; }

TAG=rbnb$$
H=${TAG}h
O=${TAG}o
W=$(mktemp -d /tmp/rbox-netd-bench.XXXXXX)
SOCK=$W/netd.sock
TABLE=$TAG
NS_LIST=$W/netns
: >"$NS_LIST"
NETD_PID=
cleanup() {
  set +e
  [ -f "$W/iperf.pid" ] && kill "$(cat "$W/iperf.pid")" 2>/dev/null
  [ -n "$NETD_PID" ] && kill "$NETD_PID" 2>/dev/null && wait "$NETD_PID" 2>/dev/null
  nsenter --net="/run/netns/$H" "$BIN/netd" down --socket "$SOCK" --state-dir "$W/state" --config "$W/netd.toml" >/dev/null 2>&1
  while read -r ns; do ip netns del "$ns" 2>/dev/null; done <"$NS_LIST"
  ip netns del "$O" 2>/dev/null
  ip netns del "$H" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

# nsenter, not `ip netns exec`: that one also makes a mount namespace with its own /sys, where
# rrun finds no cgroup hierarchy. nsenter execs the command, so $! of `inh ... &` is its pid.
inh() { nsenter --net="/run/netns/$H" "$@"; }
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
# stats FILE: "median MED ms, p99 P99 ms (min-max MIN-MAX)" of a file of microseconds
stats() {
  python3 - "$1" <<'PY'
import sys, statistics
v = sorted(int(x) / 1000 for x in open(sys.argv[1]) if x.strip())
p99 = v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))]
print(f"{statistics.median(v):.2f} {p99:.2f} {v[0]:.2f} {v[-1]:.2f}")
PY
}

# The bench's host: an uplink to an "outside" netns (198.18.0.0/15, RFC 2544), loopback up.
ip netns add "$H"
ip netns add "$O"
ip -n "$H" link set lo up
ip -n "$O" link set lo up
ip -n "$H" link add up0 type veth peer name wan0 netns "$O"
ip -n "$H" addr add 198.18.0.1/24 dev up0
ip -n "$O" addr add 198.18.0.2/24 dev wan0
ip -n "$H" link set up0 up
ip -n "$O" link set wan0 up
ip -n "$H" route add default via 198.18.0.2
HOSTIP=198.18.0.1

cat >"$W/netd.toml" <<EOF
table = "$TABLE"
bridge_prefix = "rbnb"
default_subnet = "10.201.0.0/16"
pool = "10.202.0.0/16"
dns = ["198.18.0.2"]
EOF
nsenter --net="/run/netns/$H" "$BIN/netd" --socket "$SOCK" --state-dir "$W/state" --config "$W/netd.toml" 2>"$W/netd.log" &
NETD_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { echo "netd.sh: netd did not start:" >&2; cat "$W/netd.log" >&2; exit 1; }

newns() { ip netns add "$1"; echo "$1" >>"$NS_LIST"; ip -n "$1" link set lo up; }
cid() { printf '%064x' "$1"; }

# ---- netd: attach / detach one container (netns N), publishing host port P -> 80
netd_attach() { "$BIN/netd-client" "$SOCK" attach "/run/netns/$1" bridge "$(cid "$2")" "c$2" "port=tcp/$3/80" >/dev/null; }
netd_detach() { "$BIN/netd-client" "$SOCK" detach "$(cid "$2")" >/dev/null; }

# ---- CNI: bridge + portmap, as a runtime chains them (the bridge's result is portmap's prevResult)
cat >"$W/bridge.json" <<EOF
{"cniVersion":"1.0.0","name":"${TAG}cni","type":"bridge","bridge":"rbnbcni0","isGateway":true,
 "ipMasq":true,"hairpinMode":true,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.203.0.0/16"}]],"dataDir":"$W/cni-ipam"}}
EOF
cni() { # cni CMD PLUGIN NETNS ID STDIN
  CNI_COMMAND=$1 CNI_CONTAINERID=$(cid "$4") CNI_NETNS=/run/netns/$3 CNI_IFNAME=eth0 CNI_PATH=$CNI \
    "$CNI/$2" <<<"$5"
}
portmap_conf() { # portmap_conf HOSTPORT PREVRESULT
  printf '{"cniVersion":"1.0.0","name":"%scni","type":"portmap","capabilities":{"portMappings":true},"runtimeConfig":{"portMappings":[{"hostPort":%s,"containerPort":80,"protocol":"tcp"}]},"prevResult":%s}' "$TAG" "$1" "$2"
}
cni_attach() { local r; r=$(cni ADD bridge "$1" "$2" "$(cat "$W/bridge.json")") && cni ADD portmap "$1" "$2" "$(portmap_conf "$3" "$r")" >/dev/null; }
cni_detach() { cni DEL portmap "$1" "$2" "$(portmap_conf "$3" '{"cniVersion":"1.0.0"}')" >/dev/null; cni DEL bridge "$1" "$2" "$(cat "$W/bridge.json")" >/dev/null; }
export -f cni portmap_conf cni_attach cni_detach cid
export CNI W TAG

nft_rules() { # nft_rules FAMILY TABLE: rules in that table of the bench host
  inh nft -j list table "$1" "$2" 2>/dev/null | python3 -c 'import json,sys; print(sum("rule" in o for o in json.load(sys.stdin)["nftables"]))' || echo 0
}

# ---- 1, 2, 5: attach latency at 1/100/500 attached, rule counts, removal of 100
run_side() { # run_side netd|cni  -> files $W/SIDE.L.txt, rule counts, removal time
  local side=$1 attach=${1}_attach detach=${1}_detach base i n=0 level p
  base=$([ "$side" = netd ] && echo 0 || echo 100000)
  for level in 1 100 500; do
    while [ $n -lt $level ]; do
      n=$((n + 1)); newns "${TAG}${side:0:1}$n"
      inh bash -c "$(declare -f "$attach" netd_attach); SOCK=$SOCK BIN=$BIN; $attach ${TAG}${side:0:1}$n $((base + n)) $((20000 + n))"
      if [ $n = 1 ]; then
        if [ "$side" = netd ]; then echo "$(nft_rules inet "$TABLE")" >"$W/$side.rules1"; else echo "$(nft_rules ip nat)" >"$W/$side.rules1"; fi
      fi
    done
    # PROBES timed attaches of one more container (detached again) at this level.
    : >"$W/$side.$level.txt"
    for p in $(seq "$PROBES"); do
      local ns=${TAG}${side:0:1}p$level$p
      newns "$ns"
      inh bash -c "SOCK=$SOCK BIN=$BIN; $(declare -f "$attach" "$detach" netd_attach netd_detach now_us)
        t0=\$(now_us); $attach $ns $((base + 90000 + p)) $((30000 + p)); t1=\$(now_us)
        echo \$((t1 - t0)) >>$W/$side.$level.txt
        $detach $ns $((base + 90000 + p)) $((30000 + p))"
      ip netns del "$ns"
    done
  done
  if [ "$side" = netd ]; then nft_rules inet "$TABLE" >"$W/$side.rules500"; else nft_rules ip nat >"$W/$side.rules500"; fi
  # Remove 100 of them, one after the other, as `rrun rm` would.
  local t0 t1
  t0=$(now_us)
  inh bash -c "SOCK=$SOCK BIN=$BIN; $(declare -f "$detach" netd_detach)
    for i in \$(seq 401 500); do $detach ${TAG}${side:0:1}\$i \$(( $base + i )) \$((20000 + i)); done"
  t1=$(now_us)
  echo $((t1 - t0)) >"$W/$side.rm100"
}

if [ "${BENCH_SKIP_ATTACH:-}" != 1 ]; then
echo "netd.sh: attaching 500 containers through netd, then through CNI bridge+portmap (probes: $PROBES per level)" >&2
run_side netd
run_side cni

printf '\n%-44s %-30s %-30s %s\n' "attach latency, ms (median / p99 (min-max))" netd "CNI bridge+portmap" "netd/CNI"
for level in 1 100 500; do
  read -r nm np nmin nmax <<<"$(stats "$W/netd.$level.txt")"
  read -r cm cp cmin cmax <<<"$(stats "$W/cni.$level.txt")"
  printf '%-44s %-30s %-30s %s\n' "  with $level attached" "$nm / $np ($nmin-$nmax)" "$cm / $cp ($cmin-$cmax)" \
    "$(python3 -c "print(f'{$nm/$cm:.3f}x')")"
done
printf '%-44s %-30s %-30s\n' "nft rules with 1 published port" "$(cat "$W/netd.rules1")" "$(cat "$W/cni.rules1") (ip nat)"
printf '%-44s %-30s %-30s\n' "nft rules with 500 published ports" "$(cat "$W/netd.rules500")" "$(cat "$W/cni.rules500") (ip nat)"
printf '%-44s %-30s %-30s %s\n' "remove 100 attached containers, ms" \
  "$(python3 -c "print($(cat "$W/netd.rm100")/1000)")" "$(python3 -c "print($(cat "$W/cni.rm100")/1000)")" \
  "$(python3 -c "print(f'{$(cat "$W/netd.rm100")/$(cat "$W/cni.rm100"):.3f}x')")"
echo "goals: attach median under 10 ms at 500 attached and at most 0.2x CNI; rule count constant" >&2
fi

# ---- 4: iperf3 through DNAT against the container's address
newns "${TAG}perf"
inh "$BIN/netd-client" "$SOCK" attach "/run/netns/${TAG}perf" bridge "$(cid 777777)" perf "port=tcp/15201/5201" >"$W/perf.json"
CIP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ipv4"]["addr"])' "$W/perf.json" 2>/dev/null ||
  python3 -c 'import json,sys,re; print(re.search(r"10\.201\.\d+\.\d+", open(sys.argv[1]).read()).group(0))' "$W/perf.json")
ip netns exec "${TAG}perf" iperf3 -s -D -p 5201 --pidfile "$W/iperf.pid"
sleep 0.3
: >"$W/dnat.txt"; : >"$W/direct.txt"
for r in 1 2 3; do
  inh iperf3 -c "$HOSTIP" -p 15201 -t 4 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)' >>"$W/dnat.txt"
  inh iperf3 -c "$CIP" -p 5201 -t 4 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)' >>"$W/direct.txt"
done
python3 - "$W/dnat.txt" "$W/direct.txt" <<'PY'
import sys, statistics
d = sorted(float(x) for x in open(sys.argv[1])); c = sorted(float(x) for x in open(sys.argv[2]))
md, mc = statistics.median(d), statistics.median(c)
print(f"{'iperf3 host -> container, Gbit/s (3 runs)':44} {f'DNAT {md:.1f} ({d[0]:.1f}-{d[-1]:.1f})':30} {f'direct {mc:.1f} ({c[0]:.1f}-{c[-1]:.1f})':30} {md/mc:.3f}x (goal >= 0.9x)")
PY

# ---- 3: rrun on the bridge against --net none and podman (rrun asks this bench's netd)
TGZ=$HERE/../shared/fixtures/alpine/alpine-minirootfs-3.20.3-x86_64.tar.gz
export RBOX_ROOT=$W/store RBOX_NETD_SOCKET=$SOCK
RRUN_OK=
if [ -x "$BIN/rrun" ] && [ -x "$BIN/rbuild" ] && command -v hyperfine >/dev/null && [ -f "$TGZ" ]; then
  L=$("$BIN/rbuild" layer add "$TGZ")
  "$BIN/rbuild" image create "$L" --tag alpine:bench >/dev/null
  inh "$BIN/rrun" --rm --image alpine:bench true 2>"$W/rrun.err" && RRUN_OK=1
fi
if [ -n "$RRUN_OK" ]; then
  CMDS=("$BIN/rrun --rm --image alpine:bench true" "$BIN/rrun --rm --net none --image alpine:bench true")
  if [ "${BENCH_SKIP_PODMAN:-}" != 1 ] && command -v podman >/dev/null; then
    # Debian's podman defaults exceed this machine's hard limits for nofile/nproc: keep them lower.
    export CONTAINERS_CONF=$W/containers.conf
    printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' >"$CONTAINERS_CONF"
    PODMAN="podman --cgroup-manager=cgroupfs --events-backend file --runtime runc"
    $PODMAN import -q "$TGZ" rbnb-alpine:bench >/dev/null
    CMDS+=("$PODMAN run --rm --network bridge rbnb-alpine:bench true")
  fi
  inh hyperfine -N -w 3 -r 20 --export-json "$W/run.json" "${CMDS[@]}" >/dev/null 2>&1
  python3 - "$W/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
names = ["rrun, default bridge", "rrun --net none", "podman --network bridge"]
m = [x["median"] * 1000 for x in r]
for n, x, v in zip(names, r, m):
    lo, hi = x["min"] * 1000, x["max"] * 1000
    print(f"{'start-to-exit ' + n + ', ms':44} {f'{v:.2f} ({lo:.2f}-{hi:.2f})':30}")
if len(m) == 3:
    print(f"{'  bridge / podman, bridge / none':44} {m[0]/m[2]:.3f}x (goal <= 0.05x and under 25 ms), {m[0]/m[1]:.2f}x")
PY
  [ -n "${PODMAN:-}" ] && $PODMAN rmi -f rbnb-alpine:bench >/dev/null 2>&1 || true
else
  echo "start-to-exit: skipped ($(head -c 300 "$W/rrun.err" 2>/dev/null || echo "needs rrun, rbuild, hyperfine and the Alpine fixture"))"
fi
