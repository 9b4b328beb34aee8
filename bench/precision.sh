#!/bin/bash
# bench/precision.sh: what each precision costs and what it gives, end to end.
#
# On a generated flower_photos-like corpus (3,670 images by default):
#   1. calibrate int8 on the first 32 images (bneck calibrate, its default method);
#   2. extract the whole corpus at fp32, bf16 and int8 with 2 ranks x 1 thread,
#      timing each run (a precision this CPU refuses is reported as refused);
#   3. compare each precision's features with fp32's, image by image:
#      relative L2 error (mean, median, worst) and cosine similarity;
#   4. train a classifier on each features file (same seed, same steps) and
#      report the test accuracy against fp32's;
#   5. bf16 numerics even where the CPU refuses bf16: the gemm backend's exact
#      emulation, on the first EMU_IMAGES images, against gemm fp32.
#
# Usage: bench/precision.sh [IMAGES]
# Environment: BNECK (default ./bneck), BENCH_DIR (default bench/out),
#   PRECISIONS (default "fp32 bf16 int8"), BATCH (default 8), STEPS (training
#   steps, default 4000), EMU_IMAGES (default 64), METHOD (calibration method,
#   default: calibrate's own), WEIGHTS (a weights file; default: bneck mkweights).
set -euo pipefail
export LC_ALL=C
bneck=${BNECK:-./bneck}
out=${BENCH_DIR:-bench/out}
n=${1:-3670}
batch=${BATCH:-8}
steps=${STEPS:-4000}
emu=${EMU_IMAGES:-64}
precisions=${PRECISIONS:-"fp32 bf16 int8"}
py=${PYTHON3:-/usr/bin/python3}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
per=$(( (n + 4) / 5 ))
corpus="$out/corpus-$per"
[ -d "$corpus" ] || "$bneck" mkcorpus "$corpus" --classes 5 --per-class "$per" --quality 90 --seed 7 -q
weights=${WEIGHTS:-$out/weights.h5}
[ -f "$weights" ] || "$bneck" mkweights "$weights" -q
total=$(find "$corpus" -type f | wc -l)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(grep -o -w 'avx512f\|avx512_bf16\|avx512_vnni\|avx_vnni\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "corpus $corpus: $total images; weights $weights; batch $batch; 2 ranks x 1 thread"

cal="$out/precision-cal.h5"
"$bneck" calibrate --weights "$weights" --images "$corpus" --count 32 --out "$cal" ${METHOD:+--method "$METHOD"} -q

declare -A wall acc state
for p in $precisions; do
    f="$out/precision-$p.h5"
    rm -f "$f"
    extra=()
    [ "$p" = int8 ] && extra=(--calibration "$cal")
    t0=$(date +%s.%N)
    if mpirun --oversubscribe --bind-to none -n 2 "$bneck" extract --images "$corpus" --weights "$weights" --out "$f" \
        --batch "$batch" --threads 1 --precision "$p" "${extra[@]}" --progress none > "$out/precision-$p.log" 2>&1; then
        t1=$(date +%s.%N)
        wall[$p]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
        state[$p]=ok
        "$bneck" train --features "$f" --out "$out/precision-$p-clf.h5" --steps "$steps" --seed 1 -q > "$out/precision-$p-train.log" 2>&1
        acc[$p]=$(sed -n 's/^Final test accuracy = \([0-9.]*\)%.*/\1/p' "$out/precision-$p-train.log")
    else
        state[$p]="refused: $(grep -m1 -i 'error' "$out/precision-$p.log" | sed 's/.*error: //' | cut -c1-150)"
    fi
done

echo
printf "%-6s %9s %10s %14s %12s %12s %12s %10s\n" precision "wall s" "images/s" "test acc %" "relL2 mean" "relL2 med" "relL2 max" "cos min"
for p in $precisions; do
    if [ "${state[$p]}" != ok ]; then printf "%-6s %s\n" "$p" "${state[$p]}"; continue; fi
    if [ "$p" = fp32 ] || [ "${state[fp32]:-}" != ok ]; then fid="- - - -"; else
        fid=$("$py" - "$out/precision-fp32.h5" "$out/precision-$p.h5" <<'EOF'
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1], "r")["features"][...].astype(np.float64)
b = h5py.File(sys.argv[2], "r")["features"][...].astype(np.float64)
ok = np.isfinite(a).all(1) & np.isfinite(b).all(1) & (np.linalg.norm(a, axis=1) > 0)
a, b = a[ok], b[ok]
rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
print("%.4g %.4g %.4g %.5f" % (rel.mean(), np.median(rel), rel.max(), cos.min()))
EOF
)
    fi
    read -r m md mx cm <<< "$fid"
    awk -v p="$p" -v w="${wall[$p]}" -v n="$total" -v a="${acc[$p]:-?}" -v m="$m" -v md="$md" -v mx="$mx" -v cm="$cm" \
        'BEGIN { printf "%-9s %9.1f %10.2f %14s %12s %12s %12s %10s\n", p, w, n / w, a, m, md, mx, cm }'
done
[ "${state[fp32]:-}" = ok ] && [ "${state[int8]:-}" = ok ] &&
    awk -v a="${acc[fp32]}" -v b="${acc[int8]}" 'BEGIN { printf "int8 test accuracy minus fp32: %+.1f points\n", b - a }'

# bf16 numerics by emulation (gemm), on the first images of the corpus.
mapfile -t imgs < <(find "$corpus" -type f | sort | head -n "$emu")
"$bneck" features --weights "$weights" --backend gemm --precision fp32 --batch "$batch" --threads 2 --out "$out/emu-fp32.npy" "${imgs[@]}" -q
for p in bf16 int8; do
    extra=()
    [ "$p" = int8 ] && extra=(--calibration "$cal")
    "$bneck" features --weights "$weights" --backend gemm --precision "$p" "${extra[@]}" --batch "$batch" --threads 2 \
        --out "$out/emu-$p.npy" "${imgs[@]}" -q
    "$py" - "$out/emu-fp32.npy" "$out/emu-$p.npy" "$p" "${#imgs[@]}" <<'EOF'
import sys, numpy as np
a = np.load(sys.argv[1]).astype(np.float64); b = np.load(sys.argv[2]).astype(np.float64)
rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
print("gemm emulation of %s on %s images: relative L2 mean %.4g, max %.4g; cosine min %.5f" % (sys.argv[3], sys.argv[4], rel.mean(), rel.max(), cos.min()))
EOF
done
echo "for reference: retrain.py took 402 s for 3,670 flower images (bottlenecks + 500 steps) on a 32-vCPU droplet"
