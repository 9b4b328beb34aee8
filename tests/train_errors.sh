#!/bin/bash
# train_errors.sh: what "bneck train" cannot train on is refused with a clear
# message naming the file and the reason, exit status 1 (2 for a bad command
# line), and at 2 ranks no rank is left waiting.
set -u
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
two="${MPIEXEC:-mpirun --oversubscribe} -n 2"

expect() {  # status pattern command...: run, check the exit status and that stderr matches
    local want=$1 pat=$2; shift 2
    timeout 120 "$@" > "$tmp/out" 2> "$tmp/err"
    local rc=$?
    [ $rc = "$want" ] || { cat "$tmp/out" "$tmp/err"; fail "exit $rc, want $want: $*"; }
    grep -qE -- "$pat" "$tmp/err" || { cat "$tmp/err"; fail "message /$pat/ missing: $*"; }
    echo "ok ($want): $(grep -E -- "$pat" "$tmp/err" | head -1)"
}
mk() { "$BNECK" mkfeatures "$@" -q || fail "mkfeatures $*"; }

mk "$tmp/one.h5" --rows 50 --classes 1
expect 1 "one.h5: has 1 class; training needs at least 2" "$BNECK" train --features "$tmp/one.h5" --out "$tmp/c.h5"
expect 1 "one.h5: has 1 class; training needs at least 2" $two "$BNECK" train --features "$tmp/one.h5" --out "$tmp/c.h5"
mk "$tmp/noval.h5" --rows 200 --classes 3 --validation-percentage 0
expect 1 "noval.h5: no usable validation images" "$BNECK" train --features "$tmp/noval.h5" --out "$tmp/c.h5"
grep -q "hint: extract with nonzero --validation-percentage" "$tmp/err" || fail "no hint for an empty split"
mk "$tmp/notest.h5" --rows 200 --classes 3 --testing-percentage 0
expect 1 "notest.h5: no usable test images" $two "$BNECK" train --features "$tmp/notest.h5" --out "$tmp/c.h5"
mk "$tmp/pending.h5" --rows 200 --classes 3 --pending-per-mille 1000
expect 1 "pending.h5: no usable training images \(0 done rows.*200 pending\)" "$BNECK" train --features "$tmp/pending.h5" --out "$tmp/c.h5"
grep -q "rerun bneck extract with the same --out to resume" "$tmp/err" || fail "no resume hint for pending rows"
# Three rows per class, 80% held out: class_00 has no training row.
mk "$tmp/sparse.h5" --rows 30 --classes 10 --validation-percentage 40 --testing-percentage 40 --seed 1
expect 1 "sparse.h5: class 'class_00' has no usable training images.*" "$BNECK" train --features "$tmp/sparse.h5" --out "$tmp/c.h5"
grep -q "train with --sampling uniform" "$tmp/err" || fail "no hint to sample uniformly"
"$BNECK" train --features "$tmp/sparse.h5" --out "$tmp/c.h5" --sampling uniform --steps 20 -q > /dev/null 2>&1 \
    || fail "--sampling uniform should train on it"
[ -f "$tmp/c.h5" ] && [ -f "$tmp/c.labels.txt" ] || fail "no classifier or labels file"
# Files that are not features files.
echo "hello" > "$tmp/text.h5"
expect 1 "text.h5: not an HDF5 file" "$BNECK" train --features "$tmp/text.h5" --out "$tmp/d.h5"
expect 1 "missing.h5: cannot read the file" $two "$BNECK" train --features "$tmp/missing.h5" --out "$tmp/d.h5"
expect 1 "c.h5: is a classifier .*not a features file" "$BNECK" train --features "$tmp/c.h5" --out "$tmp/d.h5"
bn_mkweights "$tmp/w.h5" --seed 1 -q 2>/dev/null || fail "mkweights"
expect 1 "w.h5: not a bneck features file \(format attribute missing\)" "$BNECK" train --features "$tmp/w.h5" --out "$tmp/d.h5"
# An output folder that does not exist: nothing is left behind.
expect 1 "nodir/c.h5: cannot write into folder" "$BNECK" train --features "$tmp/sparse.h5" --out "$tmp/nodir/c.h5" --sampling uniform --steps 2 -q
# The classifier or labels may not overwrite the features file.
expect 2 "must differ from each other and from --features" "$BNECK" train --features "$tmp/sparse.h5" --out "$tmp/sparse.h5"
expect 2 "must differ" "$BNECK" train --features "$tmp/sparse.h5" --out "$tmp/e.h5" --labels "$tmp/sparse.h5"
"$BNECK" mkfeatures "$tmp/sparse.h5" --rows 30 -q 2> "$tmp/err" && fail "mkfeatures replaced an existing file"
grep -q "sparse.h5: exists" "$tmp/err" || fail "mkfeatures: no message for an existing file"
# A damaged row count is refused before anything is allocated from it.
PY=${PYTHON3:-/usr/bin/python3}
if "$PY" -c 'import h5py' 2>/dev/null; then
    cp "$tmp/sparse.h5" "$tmp/damaged.h5"
    "$PY" -c "import h5py, numpy as np; h5py.File('$tmp/damaged.h5', 'a').attrs['n_images'] = np.int64(10**13)"
    expect 1 "damaged.h5: attribute n_images \(10000000000000\) does not match dataset 'status'" \
        "$BNECK" train --features "$tmp/damaged.h5" --out "$tmp/f.h5"
fi
# Bad command lines.
expect 2 "validation-batch must be -1" "$BNECK" train --features "$tmp/sparse.h5" --out "$tmp/c.h5" --validation-batch 0
expect 2 "--out FILE is required" "$BNECK" train --features "$tmp/sparse.h5"
expect 2 "sampling" "$BNECK" train --features "$tmp/sparse.h5" --out "$tmp/c.h5" --sampling random
[ -e "$tmp/d.h5" ] && fail "a refused run left $tmp/d.h5"
echo "all refusals ok"
