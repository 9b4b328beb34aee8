#!/bin/bash
# keras_ref.sh: bneck's fp32 bottleneck features agree with Keras' own predict
# on a weights file that Keras itself wrote, to a relative L2 error of 1e-4 per
# image (tests/keras/keras_ref.py).
#
# Steps, all in a mktemp dir:
#   1. bneck mkweights (random, sane parameters);
#   2. bench/keras_weights.py copies them into tf_keras' InceptionV3 and writes
#      the file with model.save_weights: layer_names in topological order, the
#      first conv named conv2d (no suffix), as in the published file;
#   3. a 5-image corpus of mixed sizes (with this seed: 500x333, 333x500, 64x48
#      and 17x23 JPEGs and a 17x23 PNG: upscaled, portrait and landscape);
#   4. bneck features on the Keras-written file with the ref, gemm and default
#      (cpu) backends at batch sizes 5, 3 and 4 (partial batches), each with
#      --dump-input; the three dumped inputs must be byte-identical, and the cpu
#      features must equal those from the mkweights file it was made from;
#   5. keras_ref.py: Keras loads the file with load_weights and predicts, in
#      float32 and float64, on the dumped input; every case must be within 1e-4
#      of both, and a twin with two same-shaped kernels swapped must not be.
# Needs: $BNECK (absolute path of the binary); BNECK_KERAS_PYTHON, a Python that
# imports tf_keras and h5py (PyPI tf-keras and tensorflow-cpu, e.g. in a
# virtual environment). Unset, or without tf_keras: skipped (77).
# The harness may run this with sh (SH_LOG_COMPILER = $(SHELL)): re-run under bash.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

: "${BNECK:?set BNECK to the absolute path of the bneck binary}"
HERE=$(cd "$(dirname "$0")" && pwd)
[ -f "$HERE/keras/keras_ref.py" ] || HERE=${SRCDIR:-.}/tests
[ -f "$HERE/keras/keras_ref.py" ] || { echo "FAIL: cannot find keras/keras_ref.py beside $0 or in \$SRCDIR/tests"; exit 1; }
MKW=$HERE/../bench/keras_weights.py
[ -f "$MKW" ] || { echo "FAIL: cannot find $MKW"; exit 1; }
PY=${BNECK_KERAS_PYTHON:-}
[ -n "$PY" ] || { echo "SKIP: set BNECK_KERAS_PYTHON to a Python with tf_keras (PyPI tf-keras, tensorflow-cpu)"; exit 77; }
[ -x "$PY" ] || { echo "SKIP: BNECK_KERAS_PYTHON=$PY is not an executable"; exit 77; }
TF_CPP_MIN_LOG_LEVEL=3 "$PY" -c 'import numpy, h5py, tf_keras' > /dev/null 2>&1 ||
    { echo "SKIP: $PY cannot import numpy, h5py and tf_keras"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/bneck-kerasref.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
run() {
    local rc=0
    "$BNECK" "$@" > "$T/log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$T/log" >&2; fail "bneck $* exited $rc"; }
}
# Run one of the Python scripts, keeping TensorFlow's start-up chatter out of the log.
py() {
    local rc=0
    TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES= "$PY" "$@" > "$T/pylog" 2>&1 || rc=$?
    grep -v -e 'cuda' -e 'absl::InitializeLog' -e 'oneDNN custom operations' -e 'cpu_feature_guard' \
        -e 'rebuild TensorFlow' -e 'TF_ENABLE_ONEDNN_OPTS' "$T/pylog" || true
    return "$rc"
}

run mkweights "$T/w.h5" --seed 5 -q
rc=0; py "$MKW" "$T/w.h5" "$T/k.h5" || rc=$?
case $rc in 0) ;; 77) echo "SKIP: keras_weights.py cannot run"; exit 77 ;; *) fail "keras_weights.py exited $rc" ;; esac
ok "a weights file written by Keras' save_weights"

run mkcorpus "$T/c" --classes 5 --per-class 1 --seed 9 --png-share 0.2 \
    --sizes 500x333,333x500,64x48,17x23,320x240 -q
mapfile -t imgs < <(find "$T/c" -type f | sort)
[ "${#imgs[@]}" = 5 ] || fail "corpus has ${#imgs[@]} images, expected 5"
echo "images: $(for f in "${imgs[@]}"; do printf '%s ' "${f#"$T/c/"}"; done)"

run features --weights "$T/k.h5" --backend ref --batch 5 --out "$T/f_ref.npy" --dump-input "$T/in_ref.npy" -q "${imgs[@]}"
run features --weights "$T/k.h5" --backend gemm --batch 3 --out "$T/f_gemm.npy" --dump-input "$T/in_gemm.npy" -q "${imgs[@]}"
run features --weights "$T/k.h5" --batch 4 --out "$T/f_cpu.npy" --dump-input "$T/in_cpu.npy" -q "${imgs[@]}"
run features --weights "$T/w.h5" --batch 4 --out "$T/f_cpu_w.npy" -q "${imgs[@]}"
ok "features on the Keras-written file: ref, gemm, cpu"
cmp -s "$T/in_ref.npy" "$T/in_gemm.npy" && cmp -s "$T/in_ref.npy" "$T/in_cpu.npy" ||
    fail "the backends dumped different inputs"
cmp -s "$T/f_cpu.npy" "$T/f_cpu_w.npy" ||
    fail "the Keras-written file gives other features than the mkweights file it was filled from"
ok "same input for every backend; the Keras-written file gives the mkweights file's features"

rc=0
py "$HERE/keras/keras_ref.py" "$T/k.h5" \
    --case ref "$T/in_ref.npy" "$T/f_ref.npy" \
    --case gemm "$T/in_gemm.npy" "$T/f_gemm.npy" \
    --case cpu "$T/in_cpu.npy" "$T/f_cpu.npy" || rc=$?
case $rc in
    0) ;;
    77) echo "SKIP: the Keras reference cannot run"; exit 77 ;;
    *) fail "keras_ref.py exited $rc" ;;
esac
echo "PASS: keras_ref"
