# tests/slurm/lib.sh: sourced by tests/slurm_*.sh. Brings up a private
# Slurm cluster (tests/slurm/cluster) in a fresh temporary folder $tmp and
# takes it down, and the folder away, when the test exits.
# Provides: fail, job_field ID FIELD, wait_job ID STATE SECONDS, show_logs.
fail() { echo "FAIL: $*" >&2; show_logs >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing"; exit 77; }
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cluster=$SRCDIR/tests/slurm/cluster
tmp=$(mktemp -d)
chmod 0755 "$tmp"  # munged wants every folder above its socket searchable by all
trap '"$cluster" down "$tmp/slurm" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
rc=0
"$cluster" up "$tmp/slurm" || rc=$?
[ "$rc" = 0 ] || exit "$rc"   # 77: no root or no Slurm; 1: it would not start (logs printed)
# shellcheck disable=SC1091
. "$tmp/slurm/env"
export HDF5_USE_FILE_LOCKING=FALSE  # we read feature files while jobs write them

# job_field ID FIELD: one field of `scontrol show job` (JobState, Restarts, ...).
job_field() {
    scontrol --oneliner show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
# wait_job ID STATE SECONDS: until the job reaches STATE; fail if it ends in
# another final state or the time runs out.
wait_job() {
    local id=$1 want=$2 i s=
    for i in $(seq 1 $(($3 * 2))); do
        s=$(job_field "$id" JobState)
        if [ "$s" = "$want" ]; then
            echo "slurm job $id $(job_field "$id" JobName): $s, RunTime $(job_field "$id" RunTime), restarts $(job_field "$id" Restarts), exit $(job_field "$id" ExitCode)"
            return 0
        fi
        case $s in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE)
            fail "job $id is $s (waited for $want)" ;;
        esac
        sleep 0.5
    done
    fail "job $id still ${s:-unknown} after $3 s (waited for $want)"
}
show_logs() {
    local f
    for f in "$tmp"/*.log; do
        [ -f "$f" ] || continue
        echo "----- $f -----"; tail -n 30 "$f"
    done
    [ -f "$tmp/slurm/log/slurmctld.log" ] && { echo "----- slurmctld.log -----"; tail -n 15 "$tmp/slurm/log/slurmctld.log"; }
    [ -f "$tmp/slurm/log/slurmd.log" ] && { echo "----- slurmd.log -----"; tail -n 25 "$tmp/slurm/log/slurmd.log"; }
    return 0
}
# mk_split_corpus NAME CLASSES PER_CLASS: a synthetic corpus whose split
# (SHA-1 of each path, so it depends on the random $tmp) has validation and
# test images, and training images in every class (class-balanced training
# draws from each): the first $tmp/NAME-K that has. Prints its path.
mk_split_corpus() {
    local k dir
    for k in $(seq 1 30); do
        dir=$tmp/$1-$k
        "$BNECK" mkcorpus "$dir" --classes "$2" --per-class "$3" --seed "$k" -q || return 1
        if "$BNECK" corpus --images "$dir" 2>/dev/null |
            awk '$1 ~ /^[0-9]+$/ { if ($5 == 0) bare = 1; t += $5; v += $6; s += $7 }
                 END { exit !(!bare && t > 0 && v > 0 && s > 0) }'; then
            echo "$dir"
            return 0
        fi
        rm -rf "$dir"
    done
    return 1
}
