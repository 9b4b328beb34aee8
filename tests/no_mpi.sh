#!/bin/bash
# no_mpi.sh: commands that need no MPI must not start it, so that they answer
# at once on any machine (an MPI singleton start can take many seconds where
# the host name does not resolve). With Open MPI, OMPI_MCA_pml=bogus makes
# every MPI_Init fail: a command that still works never started MPI.
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
bn_mkweights w.h5 --seed 1 -q
"$BNECK" mkcorpus c --classes 2 --per-class 10 --seed 2 -q
# The control: a command that does start MPI fails under the setting.
if OMPI_MCA_pml=bogus timeout 120 "$BNECK" corpus --images c > ctl.log 2>&1; then
    echo "SKIP: OMPI_MCA_pml=bogus does not stop MPI_Init here (not Open MPI)"; exit 77
fi
# A classifier to classify with (these commands do use MPI).
"$BNECK" extract --images c --weights w.h5 --out f.h5 --threads 1 --validation-percentage 30 \
    --testing-percentage 30 --progress none -q > x.log 2>&1 || { cat x.log; fail "extract"; }
"$BNECK" train --features f.h5 --out cls.h5 --steps 20 -q > t.log 2>&1 || { cat t.log; fail "train"; }

nompi() {  # name cmd...: the command succeeds without MPI
    local name=$1; shift
    OMPI_MCA_pml=bogus timeout 120 "$@" > "$name.log" 2>&1 || { cat "$name.log"; fail "$name needed MPI: $*"; }
}
nompi help "$BNECK" --help
nompi version "$BNECK" --version
nompi buildinfo "$BNECK" --build-info
for cmd in extract train classify retrain corpus mkcorpus mkweights mkfeatures features benchmark join calibrate; do
    nompi "help-$cmd" "$BNECK" "$cmd" --help
    grep -q "^Options:" "help-$cmd.log" || fail "$cmd --help printed no options"
done
nompi mkcorpus "$BNECK" mkcorpus c2 --classes 2 --per-class 2 -q
nompi mkweights "$BNECK" mkweights w2.h5 --seed 3 -q
nompi features "$BNECK" features --weights w.h5 --threads 1 c/*/*_0001.jpg
[ "$(wc -l < features.log)" = 2 ] || { cat features.log; fail "features printed no row per image"; }
nompi calibrate "$BNECK" calibrate --weights w.h5 --images c --count 1 --threads 1 --out cal.h5
grep -q "calibrate: wrote cal.h5" calibrate.log || { cat calibrate.log; fail "calibrate wrote no file"; }
nompi classify "$BNECK" classify --weights w.h5 --classifier cls.h5 --threads 1 c/*/*_0002.jpg
grep -q "score = " classify.log || { cat classify.log; fail "classify printed no scores"; }
# Usage errors answer at once too.
set +e
OMPI_MCA_pml=bogus timeout 60 "$BNECK" extract --bogus-option > usage.log 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || { cat usage.log; fail "a bad option gave exit $rc, not 2"; }
echo "no_mpi.sh: OK"
