#!/bin/bash
# resume.sh: crash safety and clean stops of `bneck extract`.
#  - SIGKILL of every process at several moments, then the same command
#    again: the file must equal an uninterrupted run's (statuses, and feature
#    rows byte for byte);
#  - SIGTERM: every rank finishes its batch, the file is left consistent and
#    marked incomplete, the exit status is 75; rerunning completes it;
#  - an output path that cannot be written: a clear error, no hang.
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing"; exit 77; }
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'pkill -9 -f "$tmp/" 2>/dev/null || true; rm -rf "$tmp"' EXIT
mpi=${MPIEXEC:-mpirun --oversubscribe}

bn_mkweights "$tmp/w.h5" --seed 8 -q
"$BNECK" mkcorpus "$tmp/c" --classes 2 --per-class 30 --seed 2 -q
extract() {  # np out [extra args]
    local np=$1 out=$2; shift 2
    $mpi -n "$np" "$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" --out "$out" \
        --batch 2 --threads 1 --progress none "$@"
}
extract 2 "$tmp/ref.h5" -q > /dev/null 2>&1 || fail "reference run"

same() {  # a b: statuses equal and feature rows equal byte for byte
    "$PY" - "$1" "$2" <<'PY'
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
sa, sb = a["status"][()], b["status"][()]
assert (sa == sb).all(), "statuses differ: %s vs %s" % (sa, sb)
m = sa == 1
assert a["features"][()][m].tobytes() == b["features"][()][m].tobytes(), "feature rows differ"
assert int(b.attrs["complete"]) == 1
PY
}

# SIGKILL at several moments (start-up, early, middle, late), then resume.
for delay in 0.3 1.2 2.0 2.8; do
    out="$tmp/kill-$delay.h5"
    extract 2 "$out" -q > "$tmp/kill.log" 2>&1 &
    pid=$!
    sleep "$delay"
    pkill -9 -f "extract --images $tmp/c --weights $tmp/w.h5 --out $out" || true
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    before=$("$PY" -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); print(int((f['status'][()]==1).sum()))" "$out" 2>/dev/null || echo none)
    extract 3 "$out" > "$tmp/resume.log" 2>&1 || { cat "$tmp/resume.log"; fail "resume after SIGKILL at ${delay}s"; }
    same "$tmp/ref.h5" "$out" || fail "resumed file differs (SIGKILL at ${delay}s)"
    echo "SIGKILL after ${delay}s: $before rows were done; resumed to an identical file"
done

# SIGTERM and SIGUSR1 (what Slurm sends): a clean stop with exit status 75,
# then a resume.
for sig in TERM USR1; do
out="$tmp/$sig.h5"
extract 2 "$out" > "$tmp/term.log" 2>&1 &
pid=$!
for i in $(seq 1 100); do  # wait until some rows are done
    n=$("$PY" -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); print(int((f['status'][()]==1).sum()))" "$out" 2>/dev/null || echo 0)
    [ "$n" -ge 2 ] && break
    sleep 0.1
done
# Signal the ranks themselves (as Slurm does), not the launcher.
pkill -"$sig" -f "^$BNECK extract --images $tmp/c --weights $tmp/w.h5 --out $out" || true
set +e
wait "$pid"
rc=$?
set -e
cat "$tmp/term.log"
[ "$rc" = 75 ] || fail "SIG$sig: exit status $rc, want 75"
grep -q "INCOMPLETE" "$tmp/term.log" || fail "SIG$sig: not reported as incomplete"
"$PY" -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); assert int(f.attrs['complete'])==0; assert (f['status'][()]==0).any()" "$out" \
    || fail "SIG$sig: file not marked incomplete with pending rows"
extract 1 "$out" > "$tmp/term2.log" 2>&1 || { cat "$tmp/term2.log"; fail "resume after SIG$sig"; }
grep -q "resuming" "$tmp/term2.log" || fail "the rerun did not resume"
same "$tmp/ref.h5" "$out" || fail "file after SIG$sig and resume differs"
echo "SIG$sig: clean stop with status 75, resumed to an identical file"
done

# An output that cannot be written: clear error, exit 1, no hang.
set +e
timeout 120 $mpi -n 3 "$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" \
    --out "$tmp/no/such/dir/f.h5" > "$tmp/nw.log" 2>&1
rc=$?
set -e
[ "$rc" != 124 ] || fail "unwritable output: hung"
[ "$rc" = 1 ] || { cat "$tmp/nw.log"; fail "unwritable output: exit $rc, want 1"; }
grep -q "no/such/dir/f.h5" "$tmp/nw.log" || fail "unwritable output: path not named: $(cat "$tmp/nw.log")"
echo "resume: all checks passed"
exit 0
