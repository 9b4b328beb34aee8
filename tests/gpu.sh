#!/bin/bash
# gpu.sh: the cuda backend against the CPU, on a machine with a GPU.
# Skips (77) where the build has no cuda backend or no GPU is visible.
#   1. bneck features on 8 images (corrupt files among them) at batches 1, 3
#      and 8 (a last partial batch): within 1e-4 relative L2 of the CPU's;
#   2. extract on 2 ranks sharing one GPU (--ranks-per-gpu 2), and on 3 ranks
#      of which one has the GPU and two run on the CPU: the same images
#      done and failed as a CPU run, features within 1e-4;
#   3. --device gpu takes the GPU, -v says which rank has it, and the
#      timing row of a GPU rank carries the GPU's compute and copy times;
#   4. with nvJPEG: extract --decoder nvjpeg (corrupt files fall back to the
#      CPU decoder and fail as there) against the CPU's rows;
#   5. tf32, fp16 and bf16 against the CPU's fp32: loose bounds (a broken
#      conversion is off by about 1, a right one by 1e-3 to 1e-2); the
#      measured distances are printed.
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$BNECK" --build-info > /dev/null 2>&1 || fail "bneck --build-info failed"
info=$("$BNECK" --build-info)
grep -qE '^  cuda +built' <<< "$info" || { echo "SKIP: this build has no cuda backend"; exit 77; }
ngpus=$(sed -n 's/^  GPUs visible \.* \([0-9]*\).*/\1/p' <<< "$info")
[ "${ngpus:-0}" -gt 0 ] || { echo "SKIP: no GPU visible ($(grep 'GPUs visible' <<< "$info"))"; exit 77; }
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing for $PY"; exit 77; }
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}  # one GPU: the mixes below need exactly one
MPIRUN=${MPIEXEC:-mpirun --oversubscribe}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

bn_mkweights "$tmp/w.h5" --seed 3 -q
"$BNECK" mkcorpus "$tmp/c" --classes 3 --per-class 6 --seed 9 -q
echo "not a jpeg" > "$tmp/c/daisy/zz_bad.jpg"
: > "$tmp/c/roses/zz_empty.jpg"
mapfile -t imgs < <(find "$tmp/c" -name '*.jpg' | sort | head -n 8)

compare() {  # a.npy b.npy what
    "$PY" - "$1" "$2" "$3" <<'PY' || fail "$3"
import sys, numpy as np
a, b, what = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64), sys.argv[3]
ok = np.isfinite(a).all(axis=1)
assert (ok == np.isfinite(b).all(axis=1)).all(), "different images failed"
err = np.linalg.norm(a[ok] - b[ok], axis=1) / np.linalg.norm(a[ok], axis=1)
print("%s: max rel L2 %.2e over %d images" % (what, err.max(), ok.sum()))
sys.exit(0 if err.max() <= 1e-4 else 1)
PY
}
set +e
"$BNECK" features --weights "$tmp/w.h5" --backend cpu --batch 8 --out "$tmp/cpu.npy" "${imgs[@]}" 2> /dev/null
set -e
for b in 1 3 8; do
    set +e
    "$BNECK" features --weights "$tmp/w.h5" --backend cuda --batch $b --out "$tmp/gpu$b.npy" "${imgs[@]}" 2> "$tmp/err"
    rc=$?
    set -e
    [ "$rc" -le 1 ] || { cat "$tmp/err"; fail "cuda features at batch $b: exit $rc"; }
    compare "$tmp/cpu.npy" "$tmp/gpu$b.npy" "cuda at batch $b against the CPU"
done

# The concat slices written in place through strided descriptors must give
# what the dense copy gives (BNECK_CUDA_DENSE=1): a descriptor cuDNN took
# but wrote as if packed would show here.
BNECK_CUDA_DENSE=1 "$BNECK" features --weights "$tmp/w.h5" --backend cuda --batch 8 --out "$tmp/dense.npy" "${imgs[@]}" 2> /dev/null || true
"$PY" - "$tmp/dense.npy" "$tmp/gpu8.npy" <<'PY' || fail "strided slice writes differ from the dense copy"
import sys, numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
ok = np.isfinite(a).all(axis=1)
err = np.linalg.norm(a[ok] - b[ok], axis=1) / np.linalg.norm(a[ok], axis=1)
print("cuda slices in place against the dense copy: max rel L2 %.2e" % err.max())
sys.exit(0 if err.max() <= 1e-5 else 1)
PY
# --device gpu in a lone process takes GPU 0 and says so.
"$BNECK" features --weights "$tmp/w.h5" --device gpu -v --out "$tmp/dev.npy" "${imgs[@]:0:2}" 2> "$tmp/err" || true
grep -q "device: GPU 0" "$tmp/err" || { cat "$tmp/err"; fail "features --device gpu did not run on GPU 0"; }
for pb in tf32:5e-2 fp16:5e-2 bf16:1e-1; do
    p=${pb%%:*} bound=${pb#*:}
    set +e
    "$BNECK" features --weights "$tmp/w.h5" --backend cuda --precision "$p" --batch 3 --out "$tmp/$p.npy" "${imgs[@]}" 2> "$tmp/err"
    rc=$?
    set -e
    [ "$rc" -le 1 ] || { cat "$tmp/err"; fail "cuda $p features: exit $rc"; }
    "$PY" - "$tmp/cpu.npy" "$tmp/$p.npy" "$p" "$bound" <<'PY' || fail "cuda $p is too far from fp32"
import sys, numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
ok = np.isfinite(a).all(axis=1)
assert (ok == np.isfinite(b).all(axis=1)).all(), "different images failed"
err = np.linalg.norm(a[ok] - b[ok], axis=1) / np.linalg.norm(a[ok], axis=1)
print("cuda %s against the CPU's fp32: max rel L2 %.2e (bound %s)" % (sys.argv[3], err.max(), sys.argv[4]))
sys.exit(0 if err.max() <= float(sys.argv[4]) else 1)
PY
done

extract() {  # out launcher... -- options
    local out=$1; shift
    "$@" "$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" --out "$out" --batch 4 --threads 1 --progress none -v \
        > "$out.log" 2>&1 || { cat "$out.log"; fail "extract into $out failed"; }
}
extract "$tmp/cpu.h5" $MPIRUN -n 1 --device cpu
extract "$tmp/share.h5" $MPIRUN -n 2 --device gpu --ranks-per-gpu 2
[ "$(grep -c 'device: GPU 0' "$tmp/share.h5.log")" = 2 ] || { grep device: "$tmp/share.h5.log"; fail "2 ranks do not share GPU 0"; }
if grep -qE '^  nvJPEG \.* yes' <<< "$info"; then
    # nvJPEG on the GPU rank; the corrupt and empty files fall back to the CPU
    # decoder, which fails them with its reasons, and the unit goes on.
    extract "$tmp/nvj.h5" $MPIRUN -n 1 --device gpu --decoder nvjpeg
    grep -qE "decoder: [1-9][0-9]* JPEGs decoded by nvJPEG" "$tmp/nvj.h5.log" ||
        { cat "$tmp/nvj.h5.log"; fail "nvJPEG decoded nothing"; }
    "$PY" - "$tmp/cpu.h5" "$tmp/nvj.h5" <<'PY' || fail "extract with nvJPEG differs from the CPU's"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert (a["status"][()] == b["status"][()]).all(), "statuses differ"
assert list(a["error_reason"][()]) == list(b["error_reason"][()]), "reasons differ"
done = a["status"][()] == 1
x, y = a["features"][()][done].astype(np.float64), b["features"][()][done].astype(np.float64)
err = np.linalg.norm(x - y, axis=1) / np.linalg.norm(x, axis=1)
print("nvJPEG + GPU resize against libjpeg-turbo: max rel L2 of the features %.2e" % err.max())
assert err.max() <= 5e-2, err.max()
PY
fi
extract "$tmp/mix.h5" $MPIRUN -n 3 --device auto
[ "$(grep -c 'device: GPU 0' "$tmp/mix.h5.log")" = 1 ] && [ "$(grep -c 'device: CPU' "$tmp/mix.h5.log")" = 2 ] ||
    { grep device: "$tmp/mix.h5.log"; fail "want 1 GPU rank and 2 CPU ranks"; }
"$PY" - "$tmp/cpu.h5" "$tmp/share.h5" "$tmp/mix.h5" <<'PY' || fail "extract on the GPU differs from the CPU"
import sys, h5py, numpy as np
ref = h5py.File(sys.argv[1], "r")
for p in sys.argv[2:]:
    f = h5py.File(p, "r")
    assert (f["status"][()] == ref["status"][()]).all(), p + ": statuses differ"
    done = ref["status"][()] == 1
    a, b = ref["features"][()][done].astype(np.float64), f["features"][()][done].astype(np.float64)
    err = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
    print("%s: %d done, %d failed, max rel L2 %.2e" % (p, done.sum(), (~done).sum(), err.max()))
    assert err.max() <= 1e-4, err.max()
    assert (~done).sum() == 2, "the 2 corrupt files must fail"
    t = f["timing/run_0"][()]
    gpu = t["device"] >= 0
    assert gpu.any(), p + ": no rank on a GPU"
    assert (t["gpu_s"][gpu] > 0).all() and (t["copy_s"][gpu] > 0).all(), (t["gpu_s"], t["copy_s"])
    assert (t["gpu_s"][gpu] + t["copy_s"][gpu] <= t["forward_s"][gpu] * 1.05 + 0.05).all(), "GPU time over forward time"
    assert (t["gpu_s"][~gpu] == 0).all(), "a CPU rank with GPU time"
PY
grep -qE "^ +[0-9]+ .* [0-9]+\.[0-9]+ +[0-9]+\.[0-9]+  gpu0$" "$tmp/share.h5.log" ||
    { cat "$tmp/share.h5.log"; fail "the timing table shows no GPU and copy time for the GPU ranks"; }
echo "gpu: all checks passed"
