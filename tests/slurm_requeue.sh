#!/bin/bash
# slurm_requeue.sh: slurm/extract.sbatch, submitted unchanged, is signalled
# mid-run the way --signal=B:USR1@SECS does it (scancel --signal=USR1
# --batch: to the batch shell only). The script must pass the signal to the
# ranks, bneck must stop with status 75, the job must requeue itself and the
# second run, the same command, must resume and complete: the final file
# equals an uninterrupted run's, its timing tables show 2 runs, and no image
# was done twice.
set -euo pipefail
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
. "$SRCDIR/tests/slurm/lib.sh"

bn_mkweights "$tmp/w.h5" --seed 6 -q
"$BNECK" mkcorpus "$tmp/c" --classes 2 --per-class 4 --seed 7 -q
opts=(--backend gemm --threads 1 --batch 1)
"$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" --out "$tmp/ref.h5" "${opts[@]}" --progress none -q \
    > "$tmp/ref.log" 2>&1 || fail "direct extract"

id=$(cd "$tmp" && sbatch --parsable --ntasks=1 --cpus-per-task=1 --time=10 --output="$tmp/extract.log" \
    "$SRCDIR/slurm/extract.sbatch" "$tmp/c" "$tmp/w.h5" "$tmp/out.h5" "${opts[@]}")
[ -n "$id" ] || fail "sbatch gave no job id"
wait_job "$id" RUNNING 60
done_rows() {
    "$PY" -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r"); print(int((f["status"][()] == 1).sum()))' \
        "$tmp/out.h5" 2>/dev/null || echo 0
}
n=0
for i in $(seq 1 240); do  # until some rows, not all, are done
    n=$(done_rows)
    [ "$n" -ge 1 ] && break
    [ "$(job_field "$id" JobState)" = RUNNING ] || fail "job $id ended before it could be signalled"
    sleep 0.5
done
[ "$n" -ge 1 ] || fail "no row done after 120 s"
[ "$n" -lt 8 ] || fail "all rows were done before the signal: make the extraction slower"
scancel --signal=USR1 --batch "$id" || fail "scancel --signal=USR1 --batch $id"
echo "signalled job $id with $n of 8 rows done"

# The job requeues itself (Restarts=1). Slurm holds a requeued job back for
# a while (BeginTime); let it start now.
for i in $(seq 1 120); do
    [ "$(job_field "$id" Restarts)" = 1 ] && break
    case $(job_field "$id" JobState) in COMPLETED|FAILED|CANCELLED|TIMEOUT) fail "job $id ended instead of requeueing" ;; esac
    sleep 0.5
done
[ "$(job_field "$id" Restarts)" = 1 ] || fail "job $id was not requeued within 60 s"
grep -q "status 75); requeueing job $id" "$tmp/extract.log" || fail "the script did not requeue on status 75"
wait_job "$id" PENDING 60
echo "requeued: $(job_field "$id" JobState), reason $(job_field "$id" Reason); starting it now"
# slurmd refuses a credential made in the same second as the revocation of
# the job's previous one ("Job credential revoked"; Slurm's own hold-off
# after a requeue avoids this): start it a moment later.
sleep 2
scontrol update JobId="$id" StartTime=now || fail "scontrol update StartTime=now"
wait_job "$id" COMPLETED 240
[ "$(job_field "$id" Restarts)" = 1 ] || fail "job $id ran $(job_field "$id" Restarts) restarts, not 1"
grep -q "^bneck: job $id (restart 1)" "$tmp/extract.log" || fail "no second run in the log"

"$PY" - "$tmp/ref.h5" "$tmp/out.h5" <<'PY' || fail "the requeued job's file differs from an uninterrupted run's"
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert int(b.attrs["complete"]) == 1, "not complete"
sa, sb = a["status"][()], b["status"][()]
assert (sa == 1).all() and (sa == sb).all(), (sa, sb)
assert a["features"][()].tobytes() == b["features"][()].tobytes(), "feature rows differ"
runs = int(b.attrs["runs"])
assert runs >= 2, "runs = %d: the stopped run left no timing table" % runs
done = [int(b["timing/run_%d" % k][()]["done"].sum()) for k in range(runs)]
assert sum(done) == len(sb), "images done per run %s: not each exactly once" % done
assert done[0] >= 1 and done[-1] >= 1, done
print("requeued job == uninterrupted run; images done per run: %s" % done)
PY
echo "slurm requeue: job $id stopped on SIGUSR1, requeued itself and resumed to an identical file"
