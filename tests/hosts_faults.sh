#!/bin/bash
# hosts_faults.sh: a host lost in the middle of an extract across test hosts
# (network namespaces on a bridge, tests/hosts/; Open MPI through the rsh
# agent), one rank per host.
#  - 3 hosts, every bneck process of host 3 killed: the job ends non-zero
#    within a bounded time, says how to resume, and a rerun on the 3 hosts
#    completes the file, equal to an uninterrupted run's.
#  - 2 hosts, host 2's link taken down: Open MPI notices through TCP
#    keepalives on its own (oob) connections, set short here
#    (oob_tcp_keepalive_time/intvl/probes; by default the first probe goes
#    out after 300 s idle), and ends the job; no process is left on the lost
#    host; a rerun on one host (no test hosts) completes the file, equal to an
#    uninterrupted run's.
# Skips (77) as tests/hosts.sh does: no network namespaces, or not Open MPI.
set -euo pipefail
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing for $PY"; exit 77; }
MPIRUN_BIN=${MPIRUN_BIN:-mpirun}
"$MPIRUN_BIN" --version 2>&1 | grep -qiE "Open MPI|OpenRTE|open-mpi" || { echo "SKIP: $MPIRUN_BIN is not Open MPI"; exit 77; }
HN=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/hosts
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

tmp=$(mktemp -d)
nets=()
cleanup() {
    local d
    for d in "${nets[@]}"; do "$HN/hostnet" down "$d" || echo "hosts_faults.sh: could not remove the hosts of $d" >&2; done
    rm -rf "$tmp"
}
trap cleanup EXIT
for n in 2 3; do
    nets+=("$tmp/net$n")
    rc=0; "$HN/hostnet" up "$n" "$tmp/net$n" || rc=$?
    [ $rc = 77 ] && { echo "SKIP: network namespaces cannot be made here"; exit 77; }
    [ $rc = 0 ] || fail "hostnet up $n failed (exit $rc)"
done
limit=${BNECK_HOSTS_TIMEOUT:-300}   # seconds for any one command: past it, a hang
bound=${BNECK_FAULTS_BOUND:-40}     # seconds from the fault to the end of the job
keep=(--mca oob_tcp_keepalive_time 2 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 3)

cd "$tmp"
bn_mkweights w.h5 --seed 8 -q
# 60 images: enough that the fault lands mid-run even on a loaded machine
# (with 24, a slow poll of the file on a busy CI machine saw the run end first).
nimg=60
"$BNECK" mkcorpus c --classes 2 --per-class $((nimg / 2)) --seed 2 -q
args=(extract --images c --weights w.h5 --backend gemm --batch 2 --threads 1 --progress none)
timeout "$limit" ${MPIEXEC:-$MPIRUN_BIN --oversubscribe} -n 2 "$BNECK" "${args[@]}" --out ref.h5 -q > ref.log 2>&1 ||
    { cat ref.log; fail "reference extract"; }
same() {
    "$PY" - "$1" "$2" <<'PY'
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert (a["status"][()] == 1).all() and (a["status"][()] == b["status"][()]).all(), "statuses differ"
assert a["features"][()].tobytes() == b["features"][()].tobytes(), "feature rows differ"
assert int(b.attrs["complete"]) == 1, "not marked complete"
PY
}
ndone() { "$PY" -c "import h5py,sys; print(int((h5py.File(sys.argv[1],'r')['status'][()]==1).sum()))" "$1" 2>/dev/null || echo 0; }
wait_rows() {  # file k seconds: until k rows are done (one Python polling, so that it sees them soon)
    "$PY" - "$@" <<'PY'
import sys, time, h5py
path, k, t_end = sys.argv[1], int(sys.argv[2]), time.time() + float(sys.argv[3])
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
host_bneck() {  # net i: PIDs of the bneck processes on host i of net
    local ns p
    ns=$(awk -v h="h$2" '$3 == h { print $2 }' "$1/hostmap")
    for p in $(ip netns pids "$ns" 2>/dev/null); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = bneck ] && echo "$p"
    done
    return 0
}
# fault NAME NET ACTION: start the extract across NET, wait for 2 rows, run
# ACTION (a function), check that the job ends non-zero within the bound.
fault() {
    local name=$1 net=$2 action=$3 out=$1.h5 job rc t0 took i
    timeout "$limit" "$HN/mpirun-hosts" "$net" 1 "${keep[@]}" "$BNECK" "${args[@]}" --out "$out" > "$name.log" 2>&1 &
    job=$!
    wait_rows "$out" 2 30 || true
    at=$(ndone "$out")
    [ "$at" -ge 2 ] || { cat "$name.log"; fail "$name: no rows written within 30 s"; }
    "$action"
    echo "=== $name: fault with $at of $nimg rows done"
    t0=$SECONDS
    set +e
    wait "$job"
    rc=$?
    set -e
    took=$((SECONDS - t0))
    cat "$name.log"
    [ "$rc" != 124 ] || fail "$name: the job hung"
    [ "$rc" != 0 ] || fail "$name: exit status 0"
    [ "$took" -le "$bound" ] || fail "$name: the job took ${took}s to end (bound ${bound}s)"
    grep -q "rerun the same command to resume" "$name.log" || fail "$name: no word on how to resume"
    before=$(ndone "$out")
    [ "$before" -lt "$nimg" ] || fail "$name: the run finished before the fault"
    echo "=== $name: exit $rc, ${took}s after the fault, $before of $nimg rows done"
}

# 1. Host 3's bneck killed.
kill_host3() {
    local p
    p=$(host_bneck "$tmp/net3" 3)
    [ -n "$p" ] || fail "no bneck process on host 3"
    kill -9 $p
}
fault killed "$tmp/net3" kill_host3
timeout "$limit" "$HN/mpirun-hosts" "$tmp/net3" 1 "$BNECK" "${args[@]}" --out killed.h5 > killed2.log 2>&1 ||
    { cat killed2.log; fail "the rerun on 3 hosts failed"; }
grep -q "resuming killed.h5: $before of $nimg" killed2.log || { cat killed2.log; fail "the rerun on 3 hosts did not resume"; }
same ref.h5 killed.h5 || fail "killed host: the resumed file differs from an uninterrupted run"
echo "=== killed host: resumed on 3 hosts to an identical file"

# 2. Host 2's link down.
veth=$(. "$tmp/net2/hostnet.state" && echo $HOSTNET_VETHS | awk '{ print $2 }')
link_down() { ip link set "$veth" down; }
fault linkdown "$tmp/net2" link_down
grep -q "lost communication with a remote daemon" linkdown.log || fail "linkdown: Open MPI did not report the lost host"
for i in $(seq 1 100); do   # the lost host's orted ends its rank once it notices too
    [ -z "$(host_bneck "$tmp/net2" 2)" ] && break
    sleep 0.1
done
[ -z "$(host_bneck "$tmp/net2" 2)" ] || fail "linkdown: bneck still runs on the lost host 10 s after the job ended"
timeout "$limit" ${MPIEXEC:-$MPIRUN_BIN --oversubscribe} -n 2 "$BNECK" "${args[@]}" --out linkdown.h5 > linkdown2.log 2>&1 ||
    { cat linkdown2.log; fail "the rerun on one host failed"; }
grep -q "resuming linkdown.h5: $before of $nimg" linkdown2.log || { cat linkdown2.log; fail "the rerun on one host did not resume"; }
same ref.h5 linkdown.h5 || fail "lost link: the resumed file differs from an uninterrupted run"
echo "=== lost link: resumed on one host to an identical file"
echo "PASS"
