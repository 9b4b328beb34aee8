#!/bin/bash
# faults.sh: faults on one machine that extract and train must survive
# (docs/reliability.md). Each check must end within a bounded time: a hang
# (timeout's 124) is a failure.
#  1. SIGKILL of ONE rank mid-extract (rank 1 of 2, rank 0 - the dispatcher -
#     of 3): the job ends non-zero, the output says how to resume, the same
#     command resumes, and the file equals an uninterrupted run's (statuses and
#     feature rows byte for byte); the rerun does exactly the images left (none
#     lost, none done twice).
#  2. A second run on a file that a first is writing (with and without
#     HDF5_USE_FILE_LOCKING=FALSE) is refused with a message saying why; the
#     first (held with SIGSTOP meanwhile, then let go) completes and equals an
#     uninterrupted run.
#  3. A damaged features file (truncated to half; a block of random bytes, or
#     of zeros, in the feature rows; a damaged superblock) is refused by extract
#     (resume) and by train, with a message that says what to do; the refused
#     file is left as it was.
#  4. SIGKILL of `bneck train` (1 rank; one rank of 2) at about step 200 of
#     4000: no classifier file is left that classify would take; rerunning
#     gives, byte for byte, the classifier of an uninterrupted run with the
#     same seed. A classifier cut in half is refused by classify.
# The full disk is in tests/faults_disk.sh, hosts lost in tests/hosts_faults.sh.
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing"; exit 77; }
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'pkill -9 -f "$tmp/" 2>/dev/null || true; rm -rf "$tmp"' EXIT
mpi=${MPIEXEC:-mpirun --oversubscribe}
limit=${BNECK_FAULTS_TIMEOUT:-180}   # seconds for any one command: past it, a hang
bound=${BNECK_FAULTS_BOUND:-30}      # seconds from a kill to the end of the job

cd "$tmp"
bn_mkweights w.h5 --seed 8 -q
# 24 images; the split hashes the path as given, so the corpus is named
# relative to $tmp ("c"): 25% validation and 25% test leave rows in each.
"$BNECK" mkcorpus c --classes 2 --per-class 12 --seed 2 -q
ex() {  # np out [extra args]: the extract every check runs
    local np=$1 out=$2; shift 2
    timeout "$limit" $mpi -n "$np" "$BNECK" extract --images c --weights w.h5 --out "$out" --backend gemm --batch 2 \
        --threads 1 --progress none --validation-percentage 25 --testing-percentage 25 "$@"
}
ex 2 ref.h5 -q > ref.log 2>&1 || { cat ref.log; fail "reference extract"; }

same() {  # a b: b complete, statuses equal and feature rows equal byte for byte
    "$PY" - "$1" "$2" <<'PY'
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
sa, sb = a["status"][()], b["status"][()]
assert (sa == 1).all(), "the reference has rows not done: %s" % sa
assert (sa == sb).all(), "statuses differ: %s vs %s" % (sa, sb)
assert a["features"][()].tobytes() == b["features"][()].tobytes(), "feature rows differ"
assert int(b.attrs["complete"]) == 1, "not marked complete"
PY
}
ndone() { "$PY" -c "import h5py,sys; print(int((h5py.File(sys.argv[1],'r')['status'][()]==1).sum()))" "$1" 2>/dev/null || echo 0; }
wait_rows() {  # file k: until k rows are done (30 s at most; one Python polling, so that it sees them soon)
    "$PY" - "$1" "$2" <<'PY'
import sys, time, h5py
path, k, t_end = sys.argv[1], int(sys.argv[2]), time.time() + 30
while time.time() < t_end:
    try:
        with h5py.File(path, "r") as f:
            if int((f["status"][()] == 1).sum()) >= k:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.02)
sys.exit(1)
PY
}
rank_pid() {  # pattern rank: the PID of that MPI rank among the processes matching pattern
    local p r
    for p in $(pgrep -f "$1"); do
        r=$(tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | sed -n 's/^\(OMPI_COMM_WORLD_RANK\|PMI_RANK\)=//p' | head -1)
        [ "$r" = "$2" ] && { echo "$p"; return 0; }
    done
    return 1
}
done_in_run() { sed -n 's/^features: \([0-9]*\) done, \([0-9]*\) failed in this run.*/\1 \2/p' "$1" | tail -1; }

# ---------------------------------------------------------------- 1
for spec in 2:1 3:0; do
    np=${spec%:*} victim=${spec#*:} out=kill$np.h5
    ex "$np" "$out" > "kill$np.log" 2>&1 &
    job=$!
    wait_rows "$out" 2 || { cat "kill$np.log"; fail "$np ranks: no rows written within 30 s"; }
    pid=$(rank_pid "^$BNECK extract --images c --weights w.h5 --out $out" "$victim") ||
        fail "$np ranks: rank $victim not found"
    kill -9 "$pid"
    t0=$SECONDS
    set +e
    wait "$job"
    rc=$?
    set -e
    took=$((SECONDS - t0))
    cat "kill$np.log"
    [ "$rc" != 124 ] || fail "$np ranks: the job hung after rank $victim was killed"
    [ "$rc" != 0 ] || fail "$np ranks: exit status 0 after rank $victim was killed"
    [ "$took" -le "$bound" ] || fail "$np ranks: the job took ${took}s to end after the kill (bound ${bound}s)"
    # Said at the start (all an MPI that SIGKILLs the other ranks, as MPICH's
    # hydra does, lets through), and by the ranks that get SIGTERM (Open MPI).
    grep -q "into $out (if the job stops, the same command resumes it)" "kill$np.log" ||
        fail "$np ranks: no word on how to resume at the start"
    if [ "${BN_MPI_FAMILY:-openmpi}" = openmpi ]; then
        grep -q "signal received: stopping; the rows written so far are kept in $out: rerun the same command to resume" \
            "kill$np.log" || fail "$np ranks: the ranks left did not say how to resume"
    fi
    before=$(ndone "$out")
    [ "$before" -lt 24 ] || fail "$np ranks: the run finished before the kill"
    ex "$np" "$out" > "resume$np.log" 2>&1 || { cat "resume$np.log"; fail "$np ranks: the rerun failed"; }
    grep -q "resuming $out: $before of 24 images done" "resume$np.log" || { cat "resume$np.log"; fail "$np ranks: not resumed"; }
    [ "$(done_in_run "resume$np.log")" = "$((24 - before)) 0" ] ||
        fail "$np ranks: the rerun did '$(done_in_run "resume$np.log")' images, not the $((24 - before)) left"
    same ref.h5 "$out" || fail "$np ranks: the resumed file differs from an uninterrupted run"
    echo "1. rank $victim of $np killed with $before of 24 rows done: exit $rc after ${took}s; resumed the $((24 - before)) left; identical file"
done

# ---------------------------------------------------------------- 2
# The first run on 1 rank, held still with SIGSTOP once it has written rows
# (so that it is still running, holding its lock, however slow the second
# runs are to start on a loaded machine); both second runs at once; then
# SIGCONT, and the first must finish unharmed.
ex 1 busy.h5 > first.log 2>&1 &
job=$!
wait_rows busy.h5 2 || { cat first.log; fail "the first run wrote no rows within 30 s"; }
first=$(rank_pid "^$BNECK extract --images c --weights w.h5 --out busy.h5" 0) || fail "the first run's rank not found"
kill -STOP "$first"
trap 'kill -9 "$first" 2>/dev/null || true; pkill -9 -f "$tmp/" 2>/dev/null || true; rm -rf "$tmp"' EXIT
second() {  # name [env...]: a second run on busy.h5, its log in name.log, its exit status in name.rc
    local name=$1; shift
    set +e
    env "$@" timeout "$limit" $mpi -n 1 "$BNECK" extract --images c --weights w.h5 --out busy.h5 --backend gemm \
        --batch 2 --threads 1 --progress none --validation-percentage 25 --testing-percentage 25 > "$name.log" 2>&1
    echo $? > "$name.rc"
    set -e
}
second plain & p1=$!
second nolock HDF5_USE_FILE_LOCKING=FALSE & p2=$!
wait $p1 $p2
kill -0 "$job" 2> /dev/null || fail "the first run ended before the second ones were refused: the check proves nothing"
kill -CONT "$first"
for name in plain nolock; do
    cat "$name.log"
    [ "$(cat "$name.rc")" = 1 ] || fail "a second run on busy.h5 ($name) exited $(cat "$name.rc"), not 1"
    grep -q "busy.h5 is being written by another bneck run (pid [0-9]* on .* holds the lock busy.h5.lock)" "$name.log" ||
        fail "the second run ($name) was not refused for the lock"
done
wait "$job" || { cat first.log; fail "the first run failed after a second one was refused"; }
[ "$(done_in_run first.log)" = "24 0" ] || fail "the first run did '$(done_in_run first.log)' images, not 24"
same ref.h5 busy.h5 || fail "the first run's file differs from an uninterrupted run"
[ ! -e busy.h5.lock ] || fail "busy.h5.lock left behind by a run that ended"
echo "2. a second run on a busy file (also with HDF5_USE_FILE_LOCKING=FALSE) refused with exit 1; the first unharmed"

# ---------------------------------------------------------------- 3
size=$(stat -c %s ref.h5)
foff=$("$PY" -c "import h5py,sys; print(h5py.File(sys.argv[1],'r')['features'].id.get_offset())" ref.h5)
cp ref.h5 cut.h5; truncate -s $((size / 2)) cut.h5
cp ref.h5 noise.h5; dd if=/dev/urandom of=noise.h5 bs=4096 count=1 seek=$(( (foff + 8192 * 12) / 4096 )) conv=notrunc 2> /dev/null
cp ref.h5 zero.h5; dd if=/dev/zero of=zero.h5 bs=8192 count=2 seek=$(( (foff + 8192 * 8) / 8192 )) conv=notrunc 2> /dev/null
cp ref.h5 meta.h5; printf 'bneck-faults-test-bytes!' | dd of=meta.h5 bs=1 seek=12 conv=notrunc 2> /dev/null  # the superblock
for spec in "cut:truncated" "noise:features are negative or not finite" "zero:features are all zero" "meta:damaged"; do
    f=${spec%%:*}.h5 want=${spec#*:}
    cp "$f" "$f.before"
    set +e
    ex 2 "$f" > "$f.log" 2>&1
    rc=$?
    set -e
    cat "$f.log"
    [ "$rc" = 1 ] || fail "resume into $f exited $rc, not 1"
    grep -q "$f: .*$want" "$f.log" || fail "resume into $f: no message '$want' naming the file"
    grep -q "remove it and run again, or use another --out" "$f.log" || fail "resume into $f: no word on what to do"
    cmp -s "$f" "$f.before" || fail "the refused $f was changed"
    [ ! -e "$f.lock" ] || fail "$f.lock left behind by a refused run"
    echo "3. extract refuses $f: $(grep -o "error: .*" "$f.log" | head -1)"
done
for spec in "cut:truncated file" "noise:holds a negative feature" "zero:holds only zeros" "meta:checksum"; do
    f=${spec%%:*}.h5 want=${spec#*:}
    set +e
    timeout "$limit" $mpi -n 2 "$BNECK" train --features "$f" --out "cls-$f" --steps 20 > "train-$f.log" 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] || { cat "train-$f.log"; fail "train on $f exited $rc, not 1"; }
    grep -q "$f.*$want" "train-$f.log" || { cat "train-$f.log"; fail "train on $f: no message '$want' naming the file"; }
    [ ! -e "cls-$f" ] || fail "train on $f wrote a classifier"
    echo "3. train refuses $f: $(grep -o "error: .*" "train-$f.log" | head -1)"
done

# ---------------------------------------------------------------- 4
"$BNECK" mkfeatures mf.h5 --rows 600 --classes 3 --seed 3 -q
tr_() {  # np out: 4000 steps, seed 1, a log line every 10 steps (the kill waits for step 200)
    timeout "$limit" $mpi -n "$1" "$BNECK" train --features mf.h5 --out "$2" --steps 4000 --seed 1
}
tr_ 1 tref.h5 > tref.log 2>&1 || { cat tref.log; fail "reference train"; }
same_cls() {  # a b: equal classifiers, the run/timing record aside
    "$PY" - "$1" "$2" <<'PY'
import sys, h5py
A, B = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for k in ("W", "b", "history", "confusion", "label_names"):
    x, y = A[k][()], B[k][()]
    assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), f"{k} differs"
PY
}
for np in 1 2; do
    out=tk$np.h5
    tr_ "$np" "$out" > "tk$np.log" 2>&1 &
    job=$!
    pid=
    for i in $(seq 1 100); do   # the rank that will be killed: the last one
        pid=$(rank_pid "^$BNECK train --features mf.h5 --out $out" $((np - 1))) && break
        sleep 0.05
    done
    [ -n "$pid" ] || fail "train at $np rank(s): rank $((np - 1)) not found"
    for i in $(seq 1 600); do   # mid-run: once step 200 of 4000 is logged
        grep -q "^Step 2[0-9][0-9]: " "tk$np.log" && break
        sleep 0.05
    done
    grep -q "^Step 2[0-9][0-9]: " "tk$np.log" || { cat "tk$np.log"; fail "train at $np rank(s): no step 200 within 30 s"; }
    kill -0 "$pid" 2> /dev/null || fail "train at $np rank(s) ended before it could be killed"
    grep -q "^Step 3999: " "tk$np.log" && fail "train at $np rank(s) reached its last step before it could be killed"
    kill -9 "$pid"
    t0=$SECONDS
    set +e
    wait "$job"
    rc=$?
    set -e
    took=$((SECONDS - t0))
    [ "$rc" != 124 ] || fail "train at $np rank(s): the job hung after the kill"
    [ "$rc" != 0 ] || fail "train at $np rank(s): exit 0 after the kill"
    [ "$took" -le "$bound" ] || fail "train at $np rank(s): ${took}s from the kill to the end"
    [ ! -e "$out" ] || fail "train at $np rank(s) killed mid-run left a classifier file $out"
    set +e
    timeout "$limit" "$BNECK" classify --weights w.h5 --classifier "$out" --images c --out "p$np.csv" --backend gemm \
        > "cl$np.log" 2>&1
    crc=$?
    set -e
    [ "$crc" = 1 ] && grep -q "$out: cannot open the classifier" "cl$np.log" ||
        { cat "cl$np.log"; fail "classify after a killed train: exit $crc"; }
    tr_ "$np" "$out" > "tr$np.log" 2>&1 || { cat "tr$np.log"; fail "train rerun at $np rank(s)"; }
    same_cls tref.h5 "$out" || fail "train at $np rank(s), killed then rerun, differs from an uninterrupted run"
    echo "4. train at $np rank(s) killed (exit $rc after ${took}s): no classifier left; the rerun equals an uninterrupted run"
done
cp tref.h5 tcut.h5
truncate -s $(($(stat -c %s tcut.h5) / 2)) tcut.h5
set +e
timeout "$limit" "$BNECK" classify --weights w.h5 --classifier tcut.h5 --images c --out pc.csv --backend gemm > clc.log 2>&1
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "tcut.h5: cannot open the classifier (a damaged HDF5 file" clc.log ||
    { cat clc.log; fail "classify with a classifier cut in half: exit $rc"; }
[ ! -e pc.csv ] || fail "classify with a damaged classifier wrote predictions"
echo "4. classify refuses a classifier cut in half: $(grep -o "error: .*" clc.log | head -1)"
echo "faults.sh: OK"
