#!/bin/bash
# feature_dtype.sh: extract --feature-dtype float16.
#  - the file records feature_dtype float16 and its features dataset is
#    2-byte IEEE floats (h5py reads float16), so the dataset is half as big;
#  - every row equals the float32 run's row rounded to float16 (NumPy's
#    rounding), at 1 and at 3 ranks;
#  - resuming a float16 file with float32 (and the reverse) is refused with
#    a message naming both dtypes, and the file is untouched;
#  - train reads it (the classifier records the features' dtype in its
#    settings) and classify of its test images works; two float16 shards
#    join into a float16 file, and a float16 shard does not join a float32 one.
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing for $PY"; exit 77; }
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"  # relative image paths: the split hashes the path as given, so it must not depend on mktemp
launch="${MPIRUN_BIN:-mpirun} --oversubscribe -n"
bn_mkweights "$tmp/w.h5" --seed 2 -q
"$BNECK" mkcorpus "$tmp/c" --classes 3 --per-class 7 --seed 3 -q
ex() { "$BNECK" extract --images c --validation-percentage 25 --testing-percentage 25 --weights "$tmp/w.h5" --backend gemm --batch 4 --threads 1 --progress none -q "$@"; }
ex --out "$tmp/f32.h5" > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "float32 extract"; }
ex --out "$tmp/f16.h5" --feature-dtype float16 > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "float16 extract"; }
timeout 300 $launch 3 "$BNECK" extract --images c --validation-percentage 25 --testing-percentage 25 --weights "$tmp/w.h5" --backend gemm --batch 4 --threads 1 \
    --progress none -q --out "$tmp/f16r3.h5" --feature-dtype float16 > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "float16 extract, 3 ranks"; }
"$PY" - "$tmp" <<'PYEOF' || fail "float16 file"
import h5py, numpy as np, sys
t = sys.argv[1]
with h5py.File(t + "/f32.h5", "r") as a, h5py.File(t + "/f16.h5", "r") as b, h5py.File(t + "/f16r3.h5", "r") as c:
    assert a.attrs["feature_dtype"] in (b"float32", "float32"), a.attrs["feature_dtype"]
    for f in (b, c):
        assert f.attrs["feature_dtype"] in (b"float16", "float16"), f.attrs["feature_dtype"]
        assert f["features"].dtype == np.float16, f["features"].dtype
        assert f["features"].id.get_storage_size() * 2 == a["features"].id.get_storage_size()
        assert (f["status"][:] == a["status"][:]).all()
    done = a["status"][:] == 1
    assert done.sum() == 21, done.sum()
    x = a["features"][:][done]
    want = x.astype(np.float16)
    for f in (b, c):
        got = f["features"][:][done]
        assert got.tobytes() == want.tobytes(), np.abs(got.astype(np.float32) - want.astype(np.float32)).max()
    rel = np.linalg.norm(want.astype(np.float32) - x) / np.linalg.norm(x)
    print("float16 rows equal float32 rows rounded; relative L2 difference %.2e" % rel)
PYEOF
# Resume with the other dtype: refused, file untouched.
sum=$(md5sum < "$tmp/f16.h5")
set +e
ex --out "$tmp/f16.h5" > "$tmp/log" 2>&1; rc=$?
set -e
[ "$rc" != 0 ] || fail "resuming a float16 file as float32 was accepted"
grep -q "holds float16 features, but this run asks for float32" "$tmp/log" || { cat "$tmp/log"; fail "no message naming both dtypes"; }
[ "$(md5sum < "$tmp/f16.h5")" = "$sum" ] || fail "the refused resume changed the file"
set +e
ex --out "$tmp/f32.h5" --feature-dtype float16 > "$tmp/log" 2>&1; rc=$?
set -e
[ "$rc" != 0 ] && grep -q "holds float32 features, but this run asks for float16" "$tmp/log" || { cat "$tmp/log"; fail "float32 file resumed as float16"; }
# The same dtype resumes (nothing to do).
ex --out "$tmp/f16.h5" --feature-dtype float16 > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "resume float16"; }
# Train and classify.
"$BNECK" train --features "$tmp/f16.h5" --out "$tmp/cl.h5" --steps 50 -q > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "train on float16"; }
"$PY" -c "
import h5py, json
with h5py.File('$tmp/cl.h5','r') as f:
    s = f.attrs['settings']; s = json.loads(s.decode() if isinstance(s, bytes) else s)
assert s['feature_dtype'] == 'float16', s
" || fail "the classifier's settings do not record the features' dtype"
"$BNECK" classify --classifier "$tmp/cl.h5" --weights "$tmp/w.h5" --backend gemm --threads 1 "$tmp/c/$(ls "$tmp/c" | head -1)"/* \
    > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "classify with a classifier trained on float16"; }
# Shards: two float16 shards join; a float16 and a float32 shard do not.
for k in 0 1; do ex --shard $k/2 --out "$tmp/s$k.h5" --feature-dtype float16 > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "shard $k"; }; done
ex --shard 1/2 --out "$tmp/s1-32.h5" > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "float32 shard"; }
"$BNECK" join --out "$tmp/j.h5" "$tmp/s0.h5" "$tmp/s1.h5" -q > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "join float16 shards"; }
"$PY" -c "
import h5py, numpy as np, sys
with h5py.File('$tmp/j.h5','r') as j, h5py.File('$tmp/f16.h5','r') as f:
    assert j['features'].dtype == np.float16 and j.attrs['feature_dtype'] in (b'float16','float16')
    assert j['features'][:].tobytes() == f['features'][:].tobytes()
" || fail "the joined float16 file differs from the whole-corpus float16 file"
set +e
"$BNECK" join --out "$tmp/j2.h5" "$tmp/s0.h5" "$tmp/s1-32.h5" -q > "$tmp/log" 2>&1; rc=$?
set -e
[ "$rc" != 0 ] && grep -q "holds float32 features but .* holds float16\|holds float16 features but .* holds float32" "$tmp/log" || { cat "$tmp/log"; fail "a float32 shard joined float16 ones"; }
echo "feature_dtype: all checks passed"
