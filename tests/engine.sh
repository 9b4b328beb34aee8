#!/bin/bash
# engine.sh: the fast backends against the reference. On one random,
# BN-calibrated model and 8 photo-like images, every backend at batch sizes
# 1, 3 and 8 must match the ref backend (double accumulation) to a relative
# L2 error <= 1e-4 per feature vector. Also checks the output formats of
# `bneck features`.
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing for $PY"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

bn_mkweights "$tmp/w.h5" --seed 3 -q
"$BNECK" mkcorpus "$tmp/c" --classes 4 --per-class 2 --seed 9 -q
mapfile -t imgs < <(find "$tmp/c" -name '*.jpg' | sort)
[ "${#imgs[@]}" = 8 ] || fail "expected 8 images, got ${#imgs[@]}"

"$BNECK" features --weights "$tmp/w.h5" --backend ref --batch 8 --out "$tmp/ref.npy" "${imgs[@]}"
backends=$("$BNECK" features --help | sed -n 's/.*--backend \([a-z|]*\).*/\1/p' | tr '|' ' ')
tested=0
for b in $backends; do
    case $b in ref|cpu|cuda) continue ;; esac  # cpu is an alias of dnnl or gemm; cuda: tests/gpu.sh
    for n in 1 3 8; do
        "$BNECK" features --weights "$tmp/w.h5" --backend "$b" --batch "$n" --threads 2 --out "$tmp/$b-$n.npy" "${imgs[@]}"
        "$PY" - "$tmp/ref.npy" "$tmp/$b-$n.npy" "$b batch $n" <<'PY' || fail "$b at batch $n differs from ref"
import sys, numpy as np
ref, got, what = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64), sys.argv[3]
assert ref.shape == got.shape == (8, 2048), (ref.shape, got.shape)
assert np.isfinite(got).all(), "non-finite features"
err = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
print("%-14s max rel L2 %.2e  (per image: %s)" % (what, err.max(), " ".join("%.1e" % e for e in err)))
# The features must carry information: images differ from each other.
spread = np.linalg.norm(ref - ref.mean(0), axis=1).mean() / np.linalg.norm(ref, axis=1).mean()
assert spread > 0.05, "features barely vary between images (%.3f)" % spread
sys.exit(0 if err.max() <= 1e-4 else 1)
PY
        tested=$((tested + 1))
    done
done
[ "$tested" -ge 3 ] || fail "only $tested backend/batch combinations tested"

# Output formats: text (path, tab, 2048 values) and .h5 (features + paths).
"$BNECK" features --weights "$tmp/w.h5" --batch 3 "${imgs[0]}" "${imgs[1]}" > "$tmp/out.txt"
[ "$(wc -l < "$tmp/out.txt")" = 2 ] || fail "text output line count"
[ "$(head -n1 "$tmp/out.txt" | cut -f1)" = "${imgs[0]}" ] || fail "text output path"
[ "$(head -n1 "$tmp/out.txt" | cut -f2 | wc -w)" = 2048 ] || fail "text output width"
"$BNECK" features --weights "$tmp/w.h5" --out "$tmp/f.h5" "${imgs[@]:0:3}"
"$PY" - "$tmp/f.h5" "$tmp/ref.npy" "${imgs[2]}" <<'PY' || fail ".h5 output"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    x = f["features"][()]
    paths = [p.decode() if isinstance(p, bytes) else p for p in f["paths"][()]]
    assert f.attrs["format"] in ("bneck-features", b"bneck-features")
    assert len(f.attrs["weights_sha256"]) == 64
ref = np.load(sys.argv[2])[:3]
assert x.shape == (3, 2048) and paths[2] == sys.argv[3], (x.shape, paths)
assert (np.linalg.norm(x - ref, axis=1) / np.linalg.norm(ref, axis=1)).max() <= 1e-4
PY

# A bad image among good ones: reported, NaN row, exit status 1, others intact.
echo "not an image" > "$tmp/bad.jpg"
set +e
"$BNECK" features --weights "$tmp/w.h5" --out "$tmp/mixed.npy" "${imgs[0]}" "$tmp/bad.jpg" "${imgs[1]}" 2> "$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "a bad image must give exit status 1, got $rc"
grep -q "bad.jpg: not-an-image" "$tmp/err" || fail "bad image not named: $(cat "$tmp/err")"
"$PY" - "$tmp/mixed.npy" "$tmp/ref.npy" <<'PY' || fail "rows around a bad image"
import sys, numpy as np
x, ref = np.load(sys.argv[1]), np.load(sys.argv[2])
assert np.isnan(x[1]).all() and np.isfinite(x[[0, 2]]).all()
assert (np.linalg.norm(x[[0, 2]] - ref[:2], axis=1) / np.linalg.norm(ref[:2], axis=1)).max() <= 1e-4
PY
# --streams: two copies of the engine on 2 threads give the same bits as one
# (the cpu backend; with gemm, the only one without oneDNN, it is refused).
cpu=$("$BNECK" --build-info | awk '$1 == "dnnl" && $2 == "built" { print "dnnl" }')
if [ "$cpu" = dnnl ]; then
    "$BNECK" features --weights "$tmp/w.h5" --batch 7 --threads 2 --streams 1 --out "$tmp/s1.npy" "${imgs[@]}"
    "$BNECK" features --weights "$tmp/w.h5" --batch 7 --threads 2 --streams 2 --out "$tmp/s2.npy" "${imgs[@]}"
    cmp -s "$tmp/s1.npy" "$tmp/s2.npy" || fail "--streams 2 changed the features"
fi
set +e
"$BNECK" features --weights "$tmp/w.h5" --threads 2 --streams 3 "${imgs[0]}" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q -- "--streams 3 is more than the 2 threads" "$tmp/err" ||
    fail "--streams 3 on 2 threads: want a usage error, got $rc: $(cat "$tmp/err")"
set +e
"$BNECK" features --weights "$tmp/w.h5" --backend gemm --threads 2 --streams 2 "${imgs[0]}" "${imgs[1]}" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ "$rc" != 0 ] && grep -q "backend 'gemm' runs one stream" "$tmp/err" ||
    fail "gemm with --streams 2: want a refusal, got $rc: $(cat "$tmp/err")"
# --device in a lone process (features, benchmark): auto runs on the CPU
# where there is no GPU and says so under -v; gpu is refused with the reason.
"$BNECK" features --weights "$tmp/w.h5" --device auto -v --out "$tmp/auto.npy" "${imgs[0]}" 2> "$tmp/err" ||
    fail "features --device auto: $(cat "$tmp/err")"
if ! grep -qE '^  GPUs visible \.* [1-9]' <("$BNECK" --build-info); then
    grep -q "device: CPU (--device auto; node-local rank 0 of 1; 0 usable GPUs" "$tmp/err" ||
        fail "features -v did not say it runs on the CPU: $(cat "$tmp/err")"
    cuda=$(grep -cE '^  cuda +built' <("$BNECK" --build-info) || true)
    for cmd in features benchmark; do
        set +e
        if [ "$cmd" = features ]; then
            "$BNECK" features --weights "$tmp/w.h5" --device gpu "${imgs[0]}" > /dev/null 2> "$tmp/err"; rc=$?
        else
            "$BNECK" benchmark --weights "$tmp/w.h5" --device gpu --batch 1 --seconds 0.1 > /dev/null 2> "$tmp/err"; rc=$?
        fi
        set -e
        if [ "$cuda" = 0 ]; then
            [ "$rc" = 2 ] && grep -q -- "--device gpu: this build has no GPU backend" "$tmp/err" ||
                fail "$cmd --device gpu without a GPU backend: want usage error 2, got $rc: $(cat "$tmp/err")"
        else
            [ "$rc" = 1 ] && grep -q -- "--device gpu: this node has no usable GPU" "$tmp/err" ||
                fail "$cmd --device gpu without a GPU: want a refusal with the reason, got $rc: $(cat "$tmp/err")"
        fi
    done
    # tf32 and fp16 run only on the GPU backend: refused on the CPU, with why.
    set +e
    "$BNECK" features --weights "$tmp/w.h5" --precision fp16 "${imgs[0]}" > /dev/null 2> "$tmp/err"; rc=$?
    set -e
    if [ "$cuda" = 0 ]; then
        [ "$rc" = 2 ] && grep -q -- "--precision fp16 runs on a GPU, and this build has no GPU backend" "$tmp/err" ||
            fail "fp16 without a GPU backend: want usage error 2, got $rc: $(cat "$tmp/err")"
    else
        [ "$rc" = 1 ] && grep -q -- "--precision fp16 runs on a GPU, and node-local rank 0 of 1 has none" "$tmp/err" ||
            fail "fp16 without a GPU: want a refusal naming the rank, got $rc: $(cat "$tmp/err")"
        set +e
        "$BNECK" features --weights "$tmp/w.h5" --precision tf32 --device cpu "${imgs[0]}" > /dev/null 2> "$tmp/err"; rc=$?
        set -e
        [ "$rc" = 2 ] && grep -q -- "--precision tf32 runs only on a GPU (the cuda backend), and --device cpu" "$tmp/err" ||
            fail "tf32 with --device cpu: want usage error 2, got $rc: $(cat "$tmp/err")"
    fi
fi
echo "engine: all checks passed"
