#!/bin/bash
# extract_faults.sh: what extract does when something goes wrong on one rank.
#  - An MPI that grants less than MPI_THREAD_MULTIPLE: a job of several ranks
#    stops at once with the level named; one rank needs no thread and runs.
#  - A rank whose writes fail (a full disk, injected by BNECK_FAULT_WRITE):
#    every rank stops after its batch (none hangs), the exit status is 1, the
#    failing rank is named, no row is marked done without its features, and
#    a rerun completes the same file as an uninterrupted run.
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing"; exit 77; }
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
launch="${MPIRUN_BIN:-mpirun} --oversubscribe -n"

bn_mkweights "$tmp/w.h5" --seed 2 -q
"$BNECK" mkcorpus "$tmp/c" --classes 3 --per-class 6 --seed 3 -q
ex() { "$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" --batch 2 --threads 1 --progress none "$@"; }
ex --out "$tmp/ref.h5" -q > "$tmp/ref.log" 2>&1 || { cat "$tmp/ref.log"; fail "reference extract"; }

# 1. Thread level.
set +e
BNECK_MPI_THREADS=funneled timeout 120 $launch 2 "$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" --threads 1 \
    --out "$tmp/t.h5" > "$tmp/t.log" 2>&1
rc=$?
set -e
cat "$tmp/t.log"
[ "$rc" = 1 ] || fail "a job of 2 ranks without MPI_THREAD_MULTIPLE exited $rc, not 1"
grep -q "granted MPI_THREAD_FUNNELED, but sharing work across 2 ranks needs MPI_THREAD_MULTIPLE" "$tmp/t.log" \
    || fail "no message naming the thread level"
[ ! -e "$tmp/t.h5" ] || fail "the refused job left $tmp/t.h5 behind"
BNECK_MPI_THREADS=funneled ex --out "$tmp/t1.h5" -q > "$tmp/t1.log" 2>&1 || { cat "$tmp/t1.log"; fail "1 rank needs no thread"; }

# 2. Rank 1's second write fails, and every later one.
set +e
BNECK_FAULT_WRITE=1:2 timeout 300 $launch 3 "$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" --batch 2 \
    --threads 1 --progress none --out "$tmp/f.h5" > "$tmp/f.log" 2>&1
rc=$?
set -e
cat "$tmp/f.log"
[ "$rc" != 124 ] || fail "a rank hung after rank 1's write failed"
[ "$rc" = 1 ] || fail "exit status $rc after a failed write, not 1"
grep -q "fault injected by BNECK_FAULT_WRITE" "$tmp/f.log" || fail "the failing rank did not report its error"
grep -q "rank 1 could not write its rows" "$tmp/f.log" || fail "rank 0 did not name the failing rank"
grep -q "is INCOMPLETE" "$tmp/f.log" || fail "the file was not reported incomplete"
"$PY" - "$tmp/ref.h5" "$tmp/f.h5" "$tmp/f.log" <<'PY' || fail "rows after the failed write"
import sys, re, h5py
ref, got = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
st = got["status"][()]
done = st == 1
assert 0 < done.sum() < len(st), "expected some rows done and some pending: %s" % st
assert ((st == 1) | (st == 0)).all(), st
assert got["features"][()][done].tobytes() == ref["features"][()][done].tobytes(), "a done row without its features"
assert int(got.attrs["complete"]) == 0
# The counts printed are the rows really written.
m = re.search(r"features: (\d+) done, (\d+) failed in this run", open(sys.argv[3]).read())
assert m and int(m.group(1)) == done.sum(), (m and m.group(0), done.sum())
t = got["timing/run_0"][()]
assert t["done"].sum() == done.sum(), (t["done"], done.sum())
PY
# The rerun resumes and completes the same file.
$launch 2 "$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" --batch 2 --threads 1 --progress none -q \
    --out "$tmp/f.h5" > "$tmp/r.log" 2>&1 || { cat "$tmp/r.log"; fail "the rerun failed"; }
"$PY" - "$tmp/ref.h5" "$tmp/f.h5" <<'PY' || fail "resumed file differs from the reference"
import sys, h5py
ref, got = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert (got["status"][()] == 1).all()
assert got["features"][()].tobytes() == ref["features"][()].tobytes()
assert int(got.attrs["complete"]) == 1
PY
# 3. Rank 1's engine fails at its second batch (a GPU error, injected by
# BNECK_FAULT_ENGINE): every rank stops after its batch, the run exits with
# the resume status (75), the failing rank is named, the rows written before
# are exact, and a rerun completes the same file.
set +e
BNECK_FAULT_ENGINE=1:2 timeout 300 $launch 3 "$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" --batch 2 \
    --threads 1 --progress none --out "$tmp/g.h5" > "$tmp/g.log" 2>&1
rc=$?
set -e
cat "$tmp/g.log"
[ "$rc" != 124 ] || fail "a rank hung after rank 1's engine failed"
[ "$rc" = 75 ] || fail "exit status $rc after an engine failure, not 75 (resume)"
grep -q "engine failed: fault injected by BNECK_FAULT_ENGINE" "$tmp/g.log" || fail "the failing rank did not report its error"
grep -q "the engine of rank 1 failed" "$tmp/g.log" || fail "rank 0 did not name the failing rank"
grep -q "is INCOMPLETE" "$tmp/g.log" || fail "the file was not reported incomplete"
"$PY" - "$tmp/ref.h5" "$tmp/g.h5" <<'PY' || fail "rows after the engine failure"
import sys, h5py
ref, got = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
st = got["status"][()]
done = st == 1
assert 0 < done.sum() < len(st), "expected some rows done and some pending: %s" % st
assert ((st == 1) | (st == 0)).all(), st
assert got["features"][()][done].tobytes() == ref["features"][()][done].tobytes(), "a done row without its features"
PY
$launch 2 "$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" --batch 2 --threads 1 --progress none -q \
    --out "$tmp/g.h5" > "$tmp/r2.log" 2>&1 || { cat "$tmp/r2.log"; fail "the rerun after the engine failure failed"; }
"$PY" - "$tmp/ref.h5" "$tmp/g.h5" <<'PY' || fail "resumed file differs from the reference"
import sys, h5py
ref, got = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert (got["status"][()] == 1).all()
assert got["features"][()].tobytes() == ref["features"][()].tobytes()
PY
echo "extract_faults.sh: OK"
