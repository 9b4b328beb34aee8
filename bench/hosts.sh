#!/bin/bash
# bench/hosts.sh: extract across 2 and 3 test hosts joined by plain TCP
# (network namespaces, tests/hosts/), one rank of one thread per host, on a
# balanced corpus (every image the same size), against 1 rank on the same
# machine in the same run. Prints each rank's idle share of its wall time:
# the issue's target is at most 5% for a remote rank.
#
#   BNECK=./bneck bench/hosts.sh [IMAGES_PER_CLASS]     (3 classes; default 40)
#
# The "hosts" share this machine's cores, so ranks compete for them: run it on
# an otherwise idle machine, with at least as many cores as hosts for figures
# that mean something.
set -euo pipefail
BNECK=${BNECK:-./bneck}
BNECK=$(cd "$(dirname "$BNECK")" && pwd)/$(basename "$BNECK")
here=$(cd "$(dirname "$0")/.." && pwd)
HN=$here/tests/hosts
per=${1:-40}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
nets=()
cleanup() { for d in "${nets[@]}"; do "$HN/hostnet" down "$d" || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
for n in 2 3; do
    nets+=("$tmp/net$n")
    "$HN/hostnet" up "$n" "$tmp/net$n" || { echo "bench/hosts.sh: cannot make test hosts (root and iproute2 needed)"; exit 1; }
done
cd "$tmp"
"$BNECK" mkweights w.h5 --seed 1 -q
"$BNECK" mkcorpus c --classes 3 --per-class "$per" --seed 2 --sizes 320x240 -q
grep -m1 "model name" /proc/cpuinfo | sed 's/^.*: /cpu: /'
echo "cores: $(nproc); images: $((3 * per)) of 320x240, batch 4, 1 engine thread per rank"

run() {  # name launcher...: extract, then print the per-rank idle shares
    local name=$1; shift
    "$@" "$BNECK" extract --images c --weights w.h5 --out "$name.h5" --threads 1 --batch 4 --progress none \
        > "$name.log" 2>&1 || { cat "$name.log"; echo "bench/hosts.sh: $name failed"; exit 1; }
    awk -v name="$name" '
        /^rank +done/ { t = 1; next }
        t && /^ +[0-9]+ / { printf "%-8s rank %s: %4d images, wall %6.2f s, idle %5.2f s = %4.1f%%\n", name, $1, $2, $9, $8, 100 * $8 / $9 }
        /^wall time:/ { print name ": " $0; t = 0 }' "$name.log"
}
run one ${MPIRUN_BIN:-mpirun} -n 1
run hosts2 "$HN/mpirun-hosts" "$tmp/net2" 1
run hosts3 "$HN/mpirun-hosts" "$tmp/net3" 1
/usr/bin/python3 - <<'PY'
import h5py
a = h5py.File("one.h5", "r")
for n in ("hosts2", "hosts3"):
    b = h5py.File(n + ".h5", "r")
    same = a["features"][()].tobytes() == b["features"][()].tobytes() and (a["status"][()] == b["status"][()]).all()
    print("%s: features %s the 1-rank run's" % (n, "byte-identical to" if same else "DIFFERENT from"))
PY
