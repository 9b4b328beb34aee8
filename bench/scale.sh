#!/bin/bash
# bench/scale.sh: start-up time and memory per rank of `bneck extract` on a
# huge manifest. The manifest names N images (10,000,000 by default) in 10
# classes whose files do not exist: each fails at once, with its reason
# recorded, so the run exercises the bookkeeping (listing, split, the
# features file's layout, the to-do list, work sharing, failed rows) and not
# the network.
#
# Measured, on 2 ranks:
#  - start-up: from launch (mpirun) to the first unit handed out, read from
#    rank 0's "start-up:" line (its unix time); target <= 30 s;
#  - peak RSS of each rank (/usr/bin/time), and the same for a 1,000-line
#    manifest with the same weights, engine and batch; the difference is what
#    the corpus costs beyond the engine: target <= 100 MB on ranks other
#    than 0; rank 0's (it holds the whole listing) is reported.
# The run is stopped cleanly (SIGTERM: every rank finishes its unit) after
# RUN_SECONDS of work (default 0: run to the end); the rows with a result
# and the time the work took are reported.
#
# Usage: bench/scale.sh [N]   env: BNECK (default ./bneck), BENCH_DIR (default bench/out),
#        BATCH (default 64), RUN_SECONDS (default 0), MPIRUN (default mpirun),
#        FEATURE_DTYPE (float32 or float16; default: bneck's)
set -euo pipefail
n=${1:-10000000}
bneck=$(readlink -f "${BNECK:-./bneck}")
out=${BENCH_DIR:-bench/out}
batch=${BATCH:-64}
run_s=${RUN_SECONDS:-0}
mpirun=${MPIRUN:-mpirun}
dtype=${FEATURE_DTYPE:-}
mkdir -p "$out"
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -f "$out/weights.h5" ] || "$bneck" mkweights "$out/weights.h5" -q
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB); $("$mpirun" --version 2>&1 | head -1)"

manifest() {  # N FILE: N lines "path<TAB>label" of files that do not exist
    [ -f "$2" ] && [ "$(wc -l < "$2")" = "$1" ] && return 0
    awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "/nonexistent/bneck-scale/c%02d/img%09d.jpg\tclass%02d\n", i % 10, i, i % 10 }' > "$2"
}

# run N TAG: one 2-rank extract of the N-line manifest; sets startup_s,
# rss0_mb, rss1_mb, rows (rows with a result when it stopped), work_s.
run() {
    local m="$out/scale-$1.tsv" f="$out/scale-$1.h5" log="$out/scale-$1.log"
    manifest "$1" "$m"
    rm -f "$f"
    local t0; t0=$(date +%s.%N)
    set +e
    "$mpirun" --oversubscribe -n 2 sh -c 'exec /usr/bin/time -f "bench-rss rank=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-?}} %M" "$@"' sh \
        "$bneck" extract --manifest "$m" --weights "$out/weights.h5" --out "$f" --batch "$batch" --threads 1 \
        ${dtype:+--feature-dtype "$dtype"} --progress none -v > "$log" 2>&1 &
    local pid=$!
    # Wait for the start-up line, then let it work RUN_SECONDS, then stop it.
    while kill -0 "$pid" 2>/dev/null && ! grep -q "start-up: the first unit" "$log"; do sleep 0.2; done
    if [ "$run_s" != 0 ] && kill -0 "$pid" 2>/dev/null; then
        local waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "$run_s" ]; do sleep 1; waited=$((waited + 1)); done
        pkill -TERM -f "^$bneck extract --manifest $m" 2>/dev/null || true
    fi
    wait "$pid"
    local rc=$?
    set -e
    case $rc in 0|75) ;; *) cat "$log"; echo "bench: the extract of $1 lines exited $rc" >&2; exit 1 ;; esac
    local tu; tu=$(sed -n 's/.*start-up: .*(unix time \([0-9.]*\)).*/\1/p' "$log" | head -1)
    [ -n "$tu" ] || { cat "$log"; echo "bench: no start-up line" >&2; exit 1; }
    startup_s=$(awk -v a="$t0" -v b="$tu" 'BEGIN { printf "%.2f", b - a }')
    rss0_mb=$(awk '/^bench-rss rank=0 / { printf "%.1f", $3 / 1024 }' "$log")
    rss1_mb=$(awk '/^bench-rss rank=1 / { printf "%.1f", $3 / 1024 }' "$log")
    rows=$(sed -n 's/^features: \([0-9]*\) done, \([0-9]*\) failed.*/\1 \2/p' "$log" | awk '{ print $1 + $2 }')
    work_s=$(awk '/^ *all / { print $(NF-1) }' "$log" | head -1)
    fsize=$(du -k --apparent-size "$f" | awk '{ printf "%.1f", $1 / 1048576 }')
    fdisk=$(du -k "$f" | awk '{ printf "%.2f", $1 / 1048576 }')
}

run 1000
b0=$rss0_mb b1=$rss1_mb bs=$startup_s
echo "baseline, 1,000 lines: start-up ${bs} s; peak RSS rank 0 ${b0} MB, rank 1 ${b1} MB"
run "$n"
echo "$n lines: start-up ${startup_s} s (launch to the first unit handed out); peak RSS rank 0 ${rss0_mb} MB, rank 1 ${rss1_mb} MB"
echo "  rows with a result when stopped: ${rows:-?} after about ${run_s} s of work; file ${fsize} GiB apparent, ${fdisk} GiB on disk"
awk -v s="$startup_s" -v r0="$rss0_mb" -v r1="$rss1_mb" -v b0="$b0" -v b1="$b1" -v n="$n" 'BEGIN {
    d0 = r0 - b0; d1 = r1 - b1
    printf "beyond the engine (minus the 1,000-line run): rank 0 %.1f MB (%.0f bytes per image), rank 1 %.1f MB\n", d0, d0 * 1048576 / n, d1
    printf "target start-up <= 30 s: %s (%.2f s)\n", (s <= 30 ? "met" : "NOT met"), s
    printf "target rank 1 beyond the engine <= 100 MB: %s (%.1f MB)\n", (d1 <= 100 ? "met" : "NOT met"), d1
}'
