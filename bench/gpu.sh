#!/bin/bash
# bench/gpu.sh: the cuda backend on one GPU, against this machine's CPU.
#
# Measures, in one run, on one weights file ("bneck mkweights"):
#   (a) the forward pass alone: "bneck benchmark --backend cuda" for each
#       precision of PRECISIONS (fp32 tf32 fp16 bf16) at each batch of
#       BATCHES (64 128 256): images/s end to end (copies included) and
#       the network alone, as the GPU's CUDA events timed it;
#   (b) the CPU of the same machine: "bneck benchmark --backend cpu" at
#       batch 16 on every core (the peer, in the same run);
#   (c) extract end to end on a generated corpus of flower_photos sizes
#       (IMAGES, default 3670: flower_photos' count), 1 rank on the GPU at the
#       best fp16 batch, with --decode-threads the cores left, decoding on
#       the CPU and (where built) with nvJPEG: images/s and
#       the rank's timing row (read, decode, forward, of it GPU and copy
#       time, write, idle), which says where the time goes;
#   (d) how far tf32, fp16 and bf16 features are from fp32 (relative L2 on
#       64 images of the corpus);
#   (e) the test accuracy of a classifier retrained (bneck train, 2000
#       steps, seed 1) on each precision's features of the whole corpus.
# Prints a table and the issue's targets (fp16 >= 10,000 images/s, fp32 >=
# 3,000 images/s for the network; extract fp16 >= 5,000 images/s), each
# "met" or "NOT met". Needs a GPU (exits 77 without one).
#
# Usage: bench/gpu.sh   env: BNECK (default ./bneck), BENCH_DIR (default bench/out-gpu),
#        PRECISIONS, BATCHES, IMAGES, SECONDS_EACH (default 2), PYTHON3 (default /usr/bin/python3)
set -euo pipefail
bneck=${BNECK:-./bneck}
out=${BENCH_DIR:-bench/out-gpu}
precs=(${PRECISIONS:-fp32 tf32 fp16 bf16})
batches=(${BATCHES:-64 128 256})
n=${IMAGES:-3670}
secs=${SECONDS_EACH:-2}
PY=${PYTHON3:-/usr/bin/python3}
mkdir -p "$out"
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
info=$("$bneck" --build-info)
ngpus=$(sed -n 's/^  GPUs visible \.* \([0-9]*\).*/\1/p' <<< "$info")
[ "${ngpus:-0}" -gt 0 ] || { echo "gpu.sh: no GPU visible ($(grep 'GPUs visible' <<< "$info"))"; exit 77; }
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader -i 0 2>/dev/null || echo "GPU 0")
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores); $gpu"
grep -E "CUDA/cuDNN|GPUs visible" <<< "$info"
[ -f "$out/weights.h5" ] || "$bneck" mkweights "$out/weights.h5" -q

# (a) the forward pass alone
declare -A e2e dev
printf "\n%-6s %6s %16s %22s %12s\n" precision batch "images/s (all)" "images/s (network)" "copy %"
for p in "${precs[@]}"; do
    for b in "${batches[@]}"; do
        log=$out/bench-$p-$b.log
        if ! "$bneck" benchmark --weights "$out/weights.h5" --backend cuda --precision "$p" --batch "$b" \
            --seconds "$secs" > "$log" 2>&1; then
            printf "%-6s %6s   failed: %s\n" "$p" "$b" "$(tail -n 1 "$log")"
            continue
        fi
        a=$(sed -n 's/^images\/s: //p' "$log")
        d=$(sed -n 's/^images\/s on the device (network alone): //p' "$log")
        c=$(sed -n 's/^device copy s: [0-9.]* (\([0-9.]*\)%.*/\1/p' "$log")
        e2e[$p,$b]=$a dev[$p,$b]=$d
        printf "%-6s %6s %16s %22s %12s\n" "$p" "$b" "$a" "$d" "$c"
    done
done
best() {  # precision: the batch with the most network images/s, and that rate
    local p=$1 b bb=0 v=0
    for b in "${batches[@]}"; do
        [ -n "${dev[$p,$b]:-}" ] || continue
        if awk -v x="${dev[$p,$b]}" -v y="$v" 'BEGIN { exit !(x > y) }'; then bb=$b v=${dev[$p,$b]}; fi
    done
    echo "$bb $v"
}

# (b) the CPU peer
cpu=$("$bneck" benchmark --weights "$out/weights.h5" --backend cpu --batch 16 --threads "$(nproc)" --seconds 10 -q |
    sed -n 's/^images\/s: //p')
echo "CPU peer: bneck cpu backend, batch 16, $(nproc) threads: $cpu images/s"

# (c) extract end to end, fp16 at its best batch
per=$(( (n + 4) / 5 ))
corpus=$out/corpus-$per
[ -d "$corpus" ] || "$bneck" mkcorpus "$corpus" --classes 5 --per-class "$per" --quality 90 --seed 7 -q
total=$(find "$corpus" -type f | wc -l)
read -r fb _ <<< "$(best fp16)"
[ "$fb" != 0 ] || fb=128
decoders=(cpu)
grep -qE '^  nvJPEG \.* yes' <<< "$info" && decoders+=(nvjpeg)
ext=0
for dcd in "${decoders[@]}"; do
    rm -f "$out/features.h5"
    t0=$(date +%s.%N)
    mpirun --oversubscribe --bind-to none -n 1 "$bneck" extract --images "$corpus" --weights "$out/weights.h5" \
        --out "$out/features.h5" --device gpu --precision fp16 --batch "$fb" --decode-threads "$(( $(nproc) - 1 ))" \
        --decoder "$dcd" --progress none -v > "$out/extract-$dcd.log" 2>&1 ||
        { tail -n 20 "$out/extract-$dcd.log"; echo "extract --decoder $dcd failed"; continue; }
    t1=$(date +%s.%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    e=$(awk -v w="$wall" -v n="$total" 'BEGIN { printf "%.1f", n / w }')
    awk -v e="$e" -v x="$ext" 'BEGIN { exit !(e > x) }' && ext=$e
    echo
    echo "extract: $total images, fp16, batch $fb, 1 rank on GPU 0, $(( $(nproc) - 1 )) decode threads, --decoder $dcd: $wall s, $e images/s"
    grep "JPEGs decoded by nvJPEG" "$out/extract-$dcd.log" || true
    sed -n '/^rank /,/^wall time/p' "$out/extract-$dcd.log"
done

# (d) fidelity of each precision against fp32
mapfile -t imgs < <(find "$corpus" -name '*.jpg' | sort | head -n 64)
for p in "${precs[@]}"; do
    "$bneck" features --weights "$out/weights.h5" --backend cuda --precision "$p" --batch 64 \
        --out "$out/f-$p.npy" "${imgs[@]}" 2> "$out/f-$p.err" || true
done
echo
"$PY" - "$out" "${precs[@]}" <<'PY' || true
import sys, os, numpy as np
d, precs = sys.argv[1], sys.argv[2:]
ref = np.load(os.path.join(d, "f-fp32.npy")).astype(np.float64)
for p in precs:
    f = os.path.join(d, "f-%s.npy" % p)
    if not os.path.exists(f):
        print("%-5s no features" % p); continue
    x = np.load(f).astype(np.float64)
    e = np.linalg.norm(x - ref, axis=1) / np.linalg.norm(ref, axis=1)
    cos = (x * ref).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(ref, axis=1)
    print("%-5s against fp32 on %d images: rel L2 mean %.2e, max %.2e; cosine min %.6f" % (p, len(x), e.mean(), e.max(), cos.min()))
PY

# (e) test accuracy of a classifier retrained on each precision's features
# of the whole corpus (bneck train, 2000 steps, seed 1, same split)
echo
for p in "${precs[@]}"; do
    rm -f "$out/acc-$p.h5"
    if mpirun --oversubscribe --bind-to none -n 1 "$bneck" extract --images "$corpus" --weights "$out/weights.h5" \
        --out "$out/acc-$p.h5" --device gpu --precision "$p" --batch "${fb:-128}" --progress none -q > "$out/acc-$p.log" 2>&1 &&
        "$bneck" train --features "$out/acc-$p.h5" --out "$out/acc-$p-classifier.h5" --steps 2000 --seed 1 -q \
            > "$out/train-$p.log" 2>&1; then
        echo "$p: $(grep 'Final test accuracy' "$out/train-$p.log")"
    else
        echo "$p: failed ($(tail -n 1 "$out/acc-$p.log" "$out/train-$p.log" 2>/dev/null | tail -n 1))"
    fi
done

# Targets
echo
target() {  # what value goal
    awk -v w="$1" -v v="$2" -v g="$3" 'BEGIN { printf "%-44s %10.1f  target >= %6d: %s\n", w, v, g, (v >= g) ? "met" : "NOT met" }'
}
read -r b16 v16 <<< "$(best fp16)"
read -r b32 v32 <<< "$(best fp32)"
target "forward pass alone, fp16, batch $b16 (images/s)" "$v16" 10000
target "forward pass alone, fp32, batch $b32 (images/s)" "$v32" 3000
target "extract end to end, fp16 (images/s)" "$ext" 5000
awk -v g="$v32" -v c="$cpu" 'BEGIN { if (c > 0) printf "GPU fp32 network over this machine'"'"'s CPU: %.1fx\n", g / c }'
