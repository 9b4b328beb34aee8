#!/bin/bash
# bench/feature_dtype.sh: what float16 feature storage costs in accuracy, and
# what it saves in space. On a generated corpus (IMAGES images in 5 classes),
# one 2-rank extract stores float32 rows and one float16 rows; then train
# runs on each file with the same seeds (SEEDS, retrain.py's 4000 steps), and
# the two classifiers are compared: test accuracy, final cross entropy and
# validation accuracy, the largest weight difference, and how often they
# predict the same class on the test images (from the float32 features).
#
# Usage: bench/feature_dtype.sh [IMAGES]   env: BNECK (default ./bneck), BENCH_DIR (default bench/out),
#        SEEDS (default "1 2 3"), STEPS (default 4000), WEIGHTS (default: bneck mkweights, seed 1)
set -euo pipefail
n=${1:-500}
bneck=${BNECK:-./bneck}
out=${BENCH_DIR:-bench/out}
seeds=${SEEDS:-1 2 3}
steps=${STEPS:-4000}
PY=${PYTHON3:-/usr/bin/python3}
mkdir -p "$out"
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
w=${WEIGHTS:-$out/weights.h5}
[ -f "$w" ] || "$bneck" mkweights "$w" -q
per=$(( (n + 4) / 5 ))
corpus="$out/dtype-corpus-$per"
[ -d "$corpus" ] || "$bneck" mkcorpus "$corpus" --classes 5 --per-class "$per" --seed 11 -q
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores); corpus $corpus: $((per * 5)) images; weights $w"
for d in float32 float16; do
    rm -f "$out/dtype-$d.h5"
    t0=$(date +%s.%N)
    mpirun --oversubscribe -n 2 "$bneck" extract --images "$corpus" --weights "$w" --out "$out/dtype-$d.h5" --threads 1 \
        --batch 8 --feature-dtype "$d" --progress none -q > "$out/dtype-$d.log" 2>&1 || { cat "$out/dtype-$d.log"; exit 1; }
    echo "extract $d: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
    for s in $seeds; do
        "$bneck" train --features "$out/dtype-$d.h5" --out "$out/dtype-cl-$d-$s.h5" --steps "$steps" --seed "$s" -q \
            > "$out/dtype-train-$d-$s.log" 2>&1 || { cat "$out/dtype-train-$d-$s.log"; exit 1; }
    done
done
"$PY" - "$out" $seeds <<'PYEOF'
import h5py, numpy as np, sys
out, seeds = sys.argv[1], sys.argv[2:]
f32, f16 = h5py.File(out + "/dtype-float32.h5", "r"), h5py.File(out + "/dtype-float16.h5", "r")
s32, s16 = f32["features"].id.get_storage_size(), f16["features"].id.get_storage_size()
import os
print("features dataset: float32 %.1f MB, float16 %.1f MB (%.2fx); whole file %.1f MB against %.1f MB" %
      (s32 / 1e6, s16 / 1e6, s32 / s16, os.path.getsize(out + "/dtype-float32.h5") / 1e6, os.path.getsize(out + "/dtype-float16.h5") / 1e6))
done = f32["status"][:] == 1
x32 = f32["features"][:][done].astype(np.float64)
x16 = f16["features"][:][done].astype(np.float64)
print("feature rows: relative L2 difference %.2e, largest absolute difference %.2e (largest value %.2f)" %
      (np.linalg.norm(x16 - x32) / np.linalg.norm(x32), np.abs(x16 - x32).max(), np.abs(x32).max()))
test = (f32["split"][:] == 2) & done
xt = f32["features"][:][test].astype(np.float64)
yt = f32["label"][:][test]
print("%-6s %-8s %10s %10s %12s" % ("seed", "dtype", "test acc", "val acc", "cross ent."))
acc = {"float32": [], "float16": []}
agree = []
for s in seeds:
    preds = {}
    for d in ("float32", "float16"):
        with h5py.File("%s/dtype-cl-%s-%s.h5" % (out, d, s), "r") as c:
            h = c["history"][:]
            names = h.dtype.names
            last = h[-1]
            va = last["validation_accuracy"] if names and "validation_accuracy" in names else float("nan")
            ce = last["cross_entropy"] if names and "cross_entropy" in names else float("nan")
            acc[d].append(float(c.attrs["test_accuracy"]))
            W, b = c["W"][:].astype(np.float64), c["b"][:].astype(np.float64)
            logits = xt @ W + b if W.shape[0] == xt.shape[1] else xt @ W.T + b
            preds[d] = (W, logits.argmax(1))
            print("%-6s %-8s %9.2f%% %9.2f%% %12.5f" % (s, d, 100 * acc[d][-1], 100 * va, ce))
    agree.append(float((preds["float32"][1] == preds["float16"][1]).mean()))
    print("       weights: largest difference %.2e; same test prediction for %.2f%% of %d images" %
          (np.abs(preds["float32"][0] - preds["float16"][0]).max(), 100 * agree[-1], len(yt)))
m32, m16 = np.mean(acc["float32"]), np.mean(acc["float16"])
print("mean test accuracy: float32 %.2f%%, float16 %.2f%% (difference %+.2f points); predictions agree on %.2f%%" %
      (100 * m32, 100 * m16, 100 * (m16 - m32), 100 * np.mean(agree)))
PYEOF
