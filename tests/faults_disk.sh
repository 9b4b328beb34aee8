#!/bin/bash
# faults_disk.sh: a full output disk, on a small tmpfs that the test mounts
# (skipped, 77, where mounting is not permitted: not root, or no
# CAP_SYS_ADMIN in a container).
#  - A file system too small for the file: extract stops at once with exit 1
#    and an error naming the file and the space it needs; nothing is left
#    behind; no hang.
#  - A resume with too little space left (a filler file): the same error,
#    and the file is kept as it was.
#  - Once space is freed (the file system grown, the filler deleted), the
#    same command completes, and the file equals an uninterrupted run's.
# The features file is sparse (datasets allocated in the file, not on disk);
# bneck reserves its disk space (fallocate) at create and at resume, so a
# full disk is found then, not in the middle of the run or while closing.
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: mounting a tmpfs needs root"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
mnt=$tmp/disk
mkdir "$mnt"
cleanup() {
    pkill -9 -f "$tmp/" 2>/dev/null || true
    mountpoint -q "$mnt" && umount "$mnt"
    rm -rf "$tmp"
}
trap cleanup EXIT
err=$(mount -t tmpfs -o size=1m bneck-faults "$mnt" 2>&1) || { echo "SKIP: cannot mount a tmpfs here: $err"; exit 77; }
mpi=${MPIEXEC:-mpirun --oversubscribe}
limit=${BNECK_FAULTS_TIMEOUT:-180}

cd "$tmp"
bn_mkweights w.h5 --seed 8 -q
"$BNECK" mkcorpus c --classes 2 --per-class 12 --seed 2 -q
ex() {  # out [extra args], 2 ranks
    local out=$1; shift
    timeout "$limit" $mpi -n 2 "$BNECK" extract --images c --weights w.h5 --out "$out" --backend gemm --batch 2 \
        --threads 1 --progress none "$@"
}
ex ref.h5 -q > ref.log 2>&1 || { cat ref.log; fail "reference extract"; }
same() {
    "$PY" - "$1" "$2" <<'PY'
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert (a["status"][()] == 1).all() and (a["status"][()] == b["status"][()]).all(), "statuses differ"
assert a["features"][()].tobytes() == b["features"][()].tobytes(), "feature rows differ"
assert int(b.attrs["complete"]) == 1, "not marked complete"
PY
}

# 1. Too small for the file (24 images: 192 KiB of features, plus room for
# closing): refused at create.
out=$mnt/f.h5
set +e
ex "$out" > small.log 2>&1
rc=$?
set -e
cat small.log
[ "$rc" != 124 ] || fail "a full disk hung the run"
[ "$rc" = 1 ] || fail "a full disk: exit $rc, not 1"
grep -q "$out: no room for it on its file system (No space left on device): 24 images need [0-9.]* MiB" small.log ||
    fail "a full disk: no error naming the file and the space it needs"
[ -z "$(ls -A "$mnt")" ] || fail "the refused run left $(ls -A "$mnt") behind"
echo "full disk at create: exit 1: $(grep -o "error: .*" small.log)"

# 2. A file partly done (a clean stop by SIGTERM), then the disk filled.
mount -o remount,size=8m "$mnt"
ex "$out" > part.log 2>&1 &
job=$!
"$PY" - "$out" <<'PY' || true   # until 2 rows are done (30 s at most)
import sys, time, h5py
t_end = time.time() + 30
while time.time() < t_end:
    try:
        with h5py.File(sys.argv[1], "r") as f:
            if int((f["status"][()] == 1).sum()) >= 2:
                break
    except Exception:
        pass
    time.sleep(0.02)
PY
pkill -TERM -f "^$BNECK extract --images c --weights w.h5 --out $out" || true
set +e
wait "$job"
rc=$?
set -e
[ "$rc" = 75 ] || { cat part.log; fail "SIGTERM: exit $rc, not 75"; }
free_k=$(df -k --output=avail "$mnt" | tail -1)
dd if=/dev/zero of="$mnt/filler" bs=1k count=$((free_k - 64)) 2> /dev/null || true
cp "$out" before.h5
set +e
ex "$out" > full.log 2>&1
rc=$?
set -e
cat full.log
[ "$rc" != 124 ] || fail "resume on a full disk hung"
[ "$rc" = 1 ] || fail "resume on a full disk: exit $rc, not 1"
grep -q "$out: no room for it on its file system" full.log || fail "resume on a full disk: no error naming the file"
cmp -s "$out" before.h5 || fail "the refused resume changed the file"
echo "full disk at resume: exit 1: $(grep -o "error: .*" full.log)"

# 3. Space freed: the same command completes the file.
rm "$mnt/filler"
ex "$out" > done.log 2>&1 || { cat done.log; fail "the rerun after freeing space failed"; }
grep -q "resuming $out" done.log || fail "the rerun did not resume"
same ref.h5 "$out" || fail "the file completed after a full disk differs from an uninterrupted run"
[ ! -e "$out.lock" ] || fail "$out.lock left behind"
echo "faults_disk.sh: OK"
