#!/bin/bash
# torch_ref.sh: bneck's bottleneck features agree with an independent reference,
# torchvision's inception_v3 run in double precision and patched to the Keras
# semantics (tests/torch_ref.py), to a relative L2 error of 1e-4 per image.
#
# It writes a random weights file (bneck mkweights) and a small corpus of mixed
# sizes and formats, then runs "bneck features" three times, each with
# --dump-input so the reference sees exactly bneck's network input:
#   default backend (cpu), keras preprocessing, batch 4 (6 images: a partial batch)
#   --backend gemm, batch 5
#   --preprocess tf2015, batch 6
# The two keras runs must dump byte-identical inputs (preprocessing does not
# depend on the backend); the tf2015 input must differ from them. torch_ref.py
# also proves the comparison can fail: without its average-pool patch the error
# must be far above the tolerance.
# Needs: $BNECK (absolute path of the binary); $PYTHON3 (default /usr/bin/python3)
# with numpy, h5py, torch and torchvision, else the test is skipped (77).
# The harness may run this with sh (SH_LOG_COMPILER = $(SHELL)): re-run under bash.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
set -eu
export LC_ALL=C

: "${BNECK:?set BNECK to the absolute path of the bneck binary}"
PY=${PYTHON3:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
[ -f "$HERE/torch_ref.py" ] || HERE=${SRCDIR:-.}/tests
[ -f "$HERE/torch_ref.py" ] || { echo "FAIL: cannot find torch_ref.py beside $0 or in \$SRCDIR/tests"; exit 1; }
[ -x "$PY" ] || { echo "SKIP: no python3 at $PY"; exit 77; }
"$PY" -c 'import numpy, h5py, torch, torchvision' 2> /dev/null ||
    { echo "SKIP: $PY cannot import numpy, h5py, torch and torchvision"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/bneck-torchref.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# Run a bneck command; on failure show its output and fail.
run() {
    local rc=0
    "$BNECK" "$@" > "$T/log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$T/log" >&2; fail "bneck $* exited $rc"; }
}

run mkweights "$T/w.h5" --seed 11 -q
ok "weights"

# 6 images: tiny (upscaled), odd-sized, portrait, landscape, 299x299; 2 PNG, 4 JPEG
# (with this seed; the test itself only needs the 6 images).
run mkcorpus "$T/c" --classes 2 --per-class 3 --seed 7 --png-share 0.3 \
    --sizes 500x333,333x500,64x48,17x23,299x299,320x240 -q
mapfile -t imgs < <(find "$T/c" -type f | sort)
[ "${#imgs[@]}" = 6 ] || fail "corpus has ${#imgs[@]} images, expected 6"
echo "images: $(for f in "${imgs[@]}"; do printf '%s ' "${f#"$T/c/"}"; done)"

run features --weights "$T/w.h5" --batch 4 --out "$T/f_cpu.npy" --dump-input "$T/in_cpu.npy" -q "${imgs[@]}"
run features --weights "$T/w.h5" --backend gemm --batch 5 --out "$T/f_gemm.npy" \
    --dump-input "$T/in_gemm.npy" -q "${imgs[@]}"
run features --weights "$T/w.h5" --preprocess tf2015 --batch 6 --out "$T/f_tf.npy" \
    --dump-input "$T/in_tf.npy" -q "${imgs[@]}"
ok "features: cpu, gemm, tf2015"

cmp -s "$T/in_cpu.npy" "$T/in_gemm.npy" || fail "the cpu and gemm backends dumped different inputs"
if cmp -s "$T/in_cpu.npy" "$T/in_tf.npy"; then fail "keras and tf2015 preprocessing gave the same input"; fi
ok "dumped inputs: backend-independent, preprocessing-dependent"

rc=0
"$PY" "$HERE/torch_ref.py" "$T/w.h5" \
    --case cpu "$T/in_cpu.npy" "$T/f_cpu.npy" \
    --case gemm "$T/in_gemm.npy" "$T/f_gemm.npy" \
    --case cpu-tf2015 "$T/in_tf.npy" "$T/f_tf.npy" || rc=$?
case $rc in
    0) ;;
    77) echo "SKIP: torch reference unavailable"; exit 77 ;;
    *) fail "torch_ref.py exited $rc" ;;
esac
echo "PASS: torch_ref"
