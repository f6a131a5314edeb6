#!/usr/bin/env bash
# bench/layer_add.sh — `rbuild layer add` of a generated >= 1 GiB (uncompressed) gzip layer,
# side by side with the same work done by `gzip -dc F | tee >(sha256sum) | tar -x`.
#
# Run as root from the project root after `cargo build --release`:
#   bench/layer_add.sh            generate the layer in /tmp (once), time both, clean up
# Env: RBOX_BIN=DIR            folder holding rbuild (default target/release)
#      BENCH_SIZE_MIB=N        uncompressed size to generate (default 1100)
#      BENCH_KEEP=1            keep the generated tarball in /tmp for the next run
#      BENCH_RUNS=N            timed runs of each side (default 3); the MEDIAN is reported
# Prints both wall times per run (each run times rbuild, then the pipeline, on the same file
# from the page cache), the ratio (pipeline / rbuild: > 1 means rbuild is faster) and rbuild's
# peak RSS (from /usr/bin/time -v). Timings move with the machine's load: compare within a run;
# the summary gives each side's median over the runs (not the best run) and their ratio.
# Not a test: nothing here asserts.
set -euo pipefail

BIN=$(cd "${RBOX_BIN:-target/release}" && pwd)
RBUILD=$BIN/rbuild
[ -x "$RBUILD" ] || { echo "layer_add.sh: $RBUILD missing: cargo build --release first" >&2; exit 2; }
SIZE_MIB=${BENCH_SIZE_MIB:-1100}
RUNS=${BENCH_RUNS:-3}
TGZ=/tmp/rbox-bench-layer-${SIZE_MIB}m.tar.gz
W=$(mktemp -d /tmp/rbox-bench.XXXXXX)
cleanup() {
  rm -rf "$W"
  [ "${BENCH_KEEP:-}" = 1 ] || rm -f "$TGZ"
}
trap cleanup EXIT

if [ ! -s "$TGZ" ]; then
  echo "generating $TGZ (${SIZE_MIB} MiB uncompressed: many files, mixed sizes, half compressible)..." >&2
  python3 - "$W/src" "$SIZE_MIB" <<'PY'
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2]) << 20
rng = random.Random(42)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(4000)]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])
made, i = 0, 0
while made < total:
    d = os.path.join(root, "usr", "lib%02d" % (i % 40), "pkg%03d" % (i % 700))
    os.makedirs(d, exist_ok=True)
    r = rng.random()  # ~80% small, ~18% medium, ~2% large: about 11k files per GiB
    if r < 0.80:
        size = rng.randint(0, 8 << 10)
    elif r < 0.98:
        size = rng.randint(8 << 10, 128 << 10)
    else:
        size = rng.randint(128 << 10, 8 << 20)
    size = min(size, total - made)
    data = os.urandom(size) if rng.random() < 0.5 else text(size)
    p = os.path.join(d, "f%06d%s" % (i, rng.choice([".so", ".py", ".txt", ".bin", ""])))
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, rng.choice([0o644, 0o755, 0o600, 0o4755]))
    if i % 97 == 0:
        os.symlink(os.path.basename(p), p + ".link")
    made += size
    i += 1
print(f"{i} files, {made >> 20} MiB", file=sys.stderr)
PY
  tar --numeric-owner -C "$W/src" -cf - . | gzip -6 >"$TGZ"
  rm -rf "$W/src"
fi

UNCOMP=$(gzip -dc "$TGZ" | wc -c)
echo "layer: $TGZ, $(( $(stat -c %s "$TGZ") >> 20 )) MiB compressed, $(( UNCOMP >> 20 )) MiB uncompressed"
cat "$TGZ" >/dev/null # both sides start with the file in the page cache

# prints "SECONDS PEAK_RSS_KIB" of a command run under /usr/bin/time -v
timed() {
  /usr/bin/time -v -o "$W/time" "$@" >"$W/out" 2>"$W/err" || { cat "$W/err" >&2; return 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$W/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time")
  echo "$wall $rss"
}

times_r=() times_p=() rss_r=
# the median of numbers given as arguments (mean of the middle two for an even count)
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
for run in $(seq "$RUNS"); do
  rm -rf "$W/store" "$W/x"; mkdir -p "$W/x"; sync
  read -r t rss < <(timed "$RBUILD" --root "$W/store" layer add "$TGZ")
  echo "run $run: rbuild layer add   ${t}s  peak RSS $((rss / 1024)) MiB  -> $(cat "$W/out")"
  times_r+=("$t")
  if [ -z "$rss_r" ] || [ "$rss" -gt "$rss_r" ]; then rss_r=$rss; fi
  rm -rf "$W/store"; sync
  tr=$t
  read -r t _ < <(timed bash -c 'gzip -dc "$1" | tee >(sha256sum >"$2/sum") | tar -x -C "$2/x"; wait' _ "$TGZ" "$W")
  echo "run $run: gzip|tee|tar pipeline ${t}s  -> sha256:$(cut -d' ' -f1 "$W/sum" 2>/dev/null)  (this run's ratio $(awk "BEGIN{printf \"%.2f\", $t / $tr}")x)"
  times_p+=("$t")
  rm -rf "$W/x"
done

med_r=$(median "${times_r[@]}")
med_p=$(median "${times_p[@]}")
echo "median rbuild layer add:        ${med_r}s  (runs: ${times_r[*]})"
echo "median gzip -dc | tee | tar -x: ${med_p}s  (runs: ${times_p[*]})"
echo "ratio of medians (pipeline / rbuild): $(awk "BEGIN{printf \"%.2f\", $med_p / $med_r}")x over $RUNS run(s)"
echo "rbuild peak RSS:              $((rss_r / 1024)) MiB (goal < 64 MiB)"
