#!/bin/bash
# bench/extract.sh: the whole extract job against the engine alone.
# On a generated corpus of flower_photos sizes (3,670 images by default, the
# size of flower_photos), runs `bneck extract` with 1 rank x 2 threads and
# 2 ranks x 1 thread, and in the same run measures the engine alone
# (`bneck benchmark`) at the same thread counts. The difference is what
# decoding, writing and work distribution cost. Target: at most 5%.
#
# Usage: bench/extract.sh [IMAGES]   env: BNECK (default ./bneck), BENCH_DIR (default bench/out),
#        ENGINE_SECONDS (default 120), BATCH (default 8), ONLY_2X1=1 (skip the 1-rank run),
#        PRECISION (default fp32), CALIBRATION (int8: the calibration file; default: one made
#        by bneck calibrate on the corpus's first 32 images)
#        TIMELINE_CHECK=R: instead, R interleaved rounds of the 2-rank extract with the
#        throughput timeline on and off (BNECK_TIMELINE=0), to show what sampling costs
set -euo pipefail
n=${1:-3670}
bneck=${BNECK:-./bneck}
out=${BENCH_DIR:-bench/out}
per=$(( (n + 4) / 5 ))
corpus="$out/corpus-$per"
mkdir -p "$out"
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -d "$corpus" ] || "$bneck" mkcorpus "$corpus" --classes 5 --per-class "$per" --quality 90 --seed 7 -q
[ -f "$out/weights.h5" ] || "$bneck" mkweights "$out/weights.h5" -q
total=$(find "$corpus" -type f | wc -l)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores); corpus $corpus: $total images"
batch=${BATCH:-8}
prec=(--precision "${PRECISION:-fp32}")
if [ "${PRECISION:-fp32}" = int8 ]; then
    cal=${CALIBRATION:-$out/extract-cal.h5}
    [ -f "$cal" ] || "$bneck" calibrate --weights "$out/weights.h5" --images "$corpus" --count 32 --out "$cal" -q
    prec+=(--calibration "$cal")
fi
echo "precision ${PRECISION:-fp32}"

# The engine alone runs long enough to be under the same sustained load as the
# job (short runs enjoy higher clocks): ENGINE_SECONDS, default 120.
engine() {  # threads: images/s of the engine alone, one process
    "$bneck" benchmark --weights "$out/weights.h5" "${prec[@]}" --batch "$batch" --threads "$1" --seconds "${ENGINE_SECONDS:-120}" -q |
        sed -n 's/^images\/s: //p'
}
if [ -z "${TIMELINE_CHECK:-}" ]; then
e_1x2=$( [ "${ONLY_2X1:-0}" = 1 ] && echo 0 || engine 2 )
# Two single-thread engines side by side, as two ranks would run.
engine 1 > "$out/e1a" & engine 1 > "$out/e1b"; wait
e_2x1=$(awk '{s += $1} END {print s}' "$out/e1a" "$out/e1b")
fi

run() {  # ranks threads
    rm -f "$out/features.h5"
    local t0 t1
    t0=$(date +%s.%N)
    mpirun --oversubscribe --bind-to none -n "$1" "$bneck" extract --images "$corpus" --weights "$out/weights.h5" \
        --out "$out/features.h5" "${prec[@]}" --batch "$batch" --threads "$2" --progress none > "$out/extract-$1x$2.log" 2>&1
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
if [ -n "${TIMELINE_CHECK:-}" ]; then
    # The timeline costs one comparison per batch and a sample every few
    # seconds; on and off alternate so that drifting clocks hit both alike.
    best_on=1e9 best_off=1e9 sum_on=0 sum_off=0
    for r in $(seq "$TIMELINE_CHECK"); do
        on=$(run 2 1); off=$(BNECK_TIMELINE=0 run 2 1)
        echo "round $r: timeline on $on s, off $off s"
        best_on=$(awk -v a="$best_on" -v b="$on" 'BEGIN { print (b < a ? b : a) }')
        best_off=$(awk -v a="$best_off" -v b="$off" 'BEGIN { print (b < a ? b : a) }')
        sum_on=$(awk -v a="$sum_on" -v b="$on" 'BEGIN { print a + b }')
        sum_off=$(awk -v a="$sum_off" -v b="$off" 'BEGIN { print a + b }')
    done
    awk -v bo="$best_on" -v bf="$best_off" -v so="$sum_on" -v sf="$sum_off" -v n="$TIMELINE_CHECK" 'BEGIN {
        printf "timeline on/off: best %.2f / %.2f s (%+.1f%%), mean %.2f / %.2f s (%+.1f%%)\n",
               bo, bf, 100 * (bo / bf - 1), so / n, sf / n, 100 * (so / sf - 1) }'
    exit 0
fi
w_1x2=$( [ "${ONLY_2X1:-0}" = 1 ] && echo 0 || run 1 2 )
w_2x1=$(run 2 1)
report() {  # label wall engine_ips
    awk -v l="$1" -v w="$2" -v e="$3" -v n="$total" 'BEGIN {
        ips = n / w; printf "%-22s %8.1f s  %7.2f images/s  engine alone %6.2f images/s  overhead %5.1f%%\n", l, w, ips, e, 100 * (1 - ips / e) }'
}
echo
[ "${ONLY_2X1:-0}" = 1 ] || report "1 rank x 2 threads" "$w_1x2" "$e_1x2"
report "2 ranks x 1 thread" "$w_2x1" "$e_2x1"
echo "(wall time includes MPI start-up, reading the weights and creating the file)"
echo "per-rank table of the 2-rank run:"
sed -n '/^rank /,/^wall time/p' "$out/extract-2x1.log"
echo "for reference: retrain.py took 402 s for 3,670 flower images (bottlenecks + 500 steps) on a 32-vCPU droplet"
