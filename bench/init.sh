#!/usr/bin/env bash
# bench/init.sh — rinit side by side with Debian's tini-static and catatonit, in one run:
# binary size, peak RSS as PID 1, and the time to reap 10,000 orphans.
#
# Run as root from the project root after `cargo build --release`:
#   bench/init.sh
# Env: RBOX_BIN=DIR        folder holding rinit (default target/release)
#      BENCH_ORPHANS=N     orphans per run (default 10000)
#      BENCH_RUNS=N        timed runs per init, interleaved, medians reported (default 7)
#
# Workloads, the same for every init, run as `unshare --pid --fork --mount --mount-proc INIT --
# storm MODE N` by a static C program built here with gcc -static. It forks N children that
# each fork a grandchild and exit, so N orphans land on PID 1, then waits until PID 1 has no
# child but itself (/proc/1/task/1/children lists zombies until they are reaped).
#   churn  the orphans exit at once and are reaped while the forking goes on; reported: the
#          wall time of the whole run (start, 2N forks, reaping, shutdown) and PID 1's CPU
#          time (/proc/1/schedstat) spent on it.
#   burst  the orphans stay parked on a pipe until all N exist, then exit together; reported:
#          the time from opening the pipe until PID 1 had reaped all N, PID 1's CPU time, and
#          its VmHWM (peak RSS) at the end, with N zombies having passed through it at once.
# Medians over the runs; runs are interleaved across the inits, each round starting with the
# next one, so that load drifts evenly.
# Ratios are rinit / other: below 1 means rinit is smaller, leaner or faster.
# Not a test: nothing here asserts.
set -euo pipefail

BIN=$(cd "${RBOX_BIN:-target/release}" && pwd)
N=${BENCH_ORPHANS:-10000}
RUNS=${BENCH_RUNS:-7}
declare -A INIT=([rinit]=$BIN/rinit [tini-static]=/usr/bin/tini-static [catatonit]=/usr/bin/catatonit)
NAMES=(rinit tini-static catatonit)
[ "$(id -u)" = 0 ] || { echo "init.sh: needs root (unshare --pid --mount)" >&2; exit 2; }
for n in "${NAMES[@]}"; do
  [ -x "${INIT[$n]}" ] || { echo "init.sh: ${INIT[$n]} missing (cargo build --release; apt-get install tini catatonit)" >&2; exit 2; }
done
command -v gcc >/dev/null || { echo "init.sh: gcc missing (apt-get install gcc libc6-dev)" >&2; exit 2; }

W=$(mktemp -d /tmp/rbox-bench-init.XXXXXX)
trap 'rm -rf "$W"' EXIT
cat >"$W/storm.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static ssize_t slurp(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n >= 0) buf[n] = 0;
    return n;
}

static char buf[1 << 20];
static char me[32];

/* wait until PID 1 has no child but us (zombies are listed until reaped) */
static void wait_reaped(void) {
    for (;;) {
        if (slurp("/proc/1/task/1/children", buf, sizeof buf) >= 0 && strcmp(buf, me) == 0) return;
        usleep(500);
    }
}

/* n orphans: each middle child forks a grandchild and exits, so the grandchild is re-parented
   to PID 1 before waitpid() returns. churn: the grandchildren exit at once, and PID 1 reaps
   them while we go on forking. burst: they stay parked on a pipe until all n exist, then
   exit together, and PID 1 has n zombies to reap at once. */
int main(int argc, char **argv) {
    int burst = argc > 2 && !strcmp(argv[1], "burst");
    long n = argc > 2 ? atol(argv[2]) : 10000;
    int gate[2];
    if (pipe(gate)) return perror("pipe"), 1;
    snprintf(me, sizeof me, "%d ", getpid());
    for (long i = 0; i < n; i++) {
        pid_t m = fork();
        if (m < 0) { usleep(1000); i--; continue; }
        if (m == 0) {
            if (fork() == 0) {
                char c;
                close(gate[1]);
                if (burst) read(gate[0], &c, 1);
                _exit(0);
            }
            _exit(0);
        }
        waitpid(m, NULL, 0);
    }
    double opened = now();
    close(gate[1]);
    wait_reaped();
    double reaped = now();
    /* PID 1's own CPU time so far (first field of schedstat, ns): what reaping cost it,
       whatever else the machine was doing */
    double cpu_ms = slurp("/proc/1/schedstat", buf, sizeof buf) > 0 ? atof(buf) / 1e6 : -1;
    slurp("/proc/1/status", buf, sizeof buf);
    char *hwm = strstr(buf, "VmHWM:");
    printf("reap_ms=%.2f cpu_ms=%.2f hwm_kb=%ld\n", reaped - opened, cpu_ms, hwm ? atol(hwm + 6) : -1);
    return 0;
}
EOF
gcc -static -O2 -o "$W/storm" "$W/storm.c"

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

declare -A WALL CCPU BURST BCPU HWM
echo "init.sh: $RUNS runs x ${#NAMES[@]} inits x 2 workloads x $N orphans, interleaved..." >&2
# /tmp is bind-mounted onto itself first so that it counts as mounted (rinit keeps it and the
# workload stays visible); the same wrapper runs for every init.
in_ns() {
  unshare --pid --fork --mount --mount-proc --kill-child /bin/sh -c 'mount --bind /tmp /tmp && exec "$@"' sh "$@"
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
for ((r = 1; r <= RUNS; r++)); do
  # Each round starts with the next init, so that no init always runs first.
  order=("${NAMES[@]:r % ${#NAMES[@]}}" "${NAMES[@]:0:r % ${#NAMES[@]}}")
  for n in "${order[@]}"; do
    t0=$(date +%s%N)
    out=$(in_ns "${INIT[$n]}" -- "$W/storm" churn "$N")
    t1=$(date +%s%N)
    WALL[$n]+="$(((t1 - t0) / 1000000)) "
    CCPU[$n]+="$(field cpu_ms <<<"$out") "
    out=$(in_ns "${INIT[$n]}" -- "$W/storm" burst "$N")
    BURST[$n]+="$(field reap_ms <<<"$out") "
    BCPU[$n]+="$(field cpu_ms <<<"$out") "
    HWM[$n]+="$(field hwm_kb <<<"$out") "
  done
done

declare -A SIZE MED
for n in "${NAMES[@]}"; do
  SIZE[$n]=$(stat -c %s "${INIT[$n]}")
  for m in WALL CCPU BURST BCPU HWM; do
    declare -n col=$m
    MED[$n.$m]=$(tr ' ' '\n' <<<"${col[$n]}" | grep . | median)
    unset -n col
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "n/a"}'; }
printf '\n%-12s %9s %9s | %14s %11s | %14s %11s\n' "" "size" "peak RSS" "churn: wall" "init CPU" "burst: wall" "init CPU"
printf '%-12s %9s %9s | %14s %11s | %14s %11s\n' init bytes kB ms ms ms ms
for n in "${NAMES[@]}"; do
  printf '%-12s %9s %9s | %14s %11s | %14s %11s\n' "$n" "${SIZE[$n]}" "${MED[$n.HWM]}" \
    "${MED[$n.WALL]}" "${MED[$n.CCPU]}" "${MED[$n.BURST]}" "${MED[$n.BCPU]}"
done
echo
for o in tini-static catatonit; do
  printf 'rinit / %-11s size %s  peak RSS %s  churn wall %s, CPU %s  burst wall %s, CPU %s\n' "$o" \
    "$(ratio "${SIZE[rinit]}" "${SIZE[$o]}")" "$(ratio "${MED[rinit.HWM]}" "${MED[$o.HWM]}")" \
    "$(ratio "${MED[rinit.WALL]}" "${MED[$o.WALL]}")" "$(ratio "${MED[rinit.CCPU]}" "${MED[$o.CCPU]}")" \
    "$(ratio "${MED[rinit.BURST]}" "${MED[$o.BURST]}")" "$(ratio "${MED[rinit.BCPU]}" "${MED[$o.BCPU]}")"
done
echo "(medians of $RUNS runs; ratios below 1 favour rinit; wall times move with the machine's"
echo " load, PID 1's CPU time much less)"
