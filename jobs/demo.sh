#!/bin/bash
# demo.sh: the built-in demo, the whole pipeline. Makes a synthetic
# flower-like corpus and a random (BN-calibrated) weights file, checks the
# corpus, runs the main job, bneck extract, under mpirun with 2 ranks, trains
# the final layer on the features (bneck train, 2 ranks), classifies an
# image with the result, and writes the report of what the runs did and
# cost: WORKDIR/report.html, with its figures in WORKDIR/figures.
# Usage: jobs/demo.sh [WORKDIR]   (default: ./demo)
# Environment: BNECK (binary, default ./bneck), DEMO_RANKS (default 2),
#              DEMO_CLASSES (default 5), DEMO_PER_CLASS (default 60),
#              MPIEXEC (launcher, default "mpirun --oversubscribe"; for an
#              MPICH build "mpiexec.mpich"), DEMO_PRICE (price of the node per
#              hour, for the cost; default 0.952, the 2017 droplet's list price).
set -euo pipefail
work=${1:-demo}
bneck=${BNECK:-./bneck}
ranks=${DEMO_RANKS:-2}
price=${DEMO_PRICE:-0.952}
mpiexec=${MPIEXEC:-mpirun --oversubscribe}
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mkdir -p "$work"
if [ ! -d "$work/corpus" ]; then
    "$bneck" mkcorpus "$work/corpus" --classes "${DEMO_CLASSES:-5}" --per-class "${DEMO_PER_CLASS:-60}" --seed 1
fi
[ -f "$work/weights.h5" ] || "$bneck" mkweights "$work/weights.h5"
echo "== bneck corpus on $ranks ranks: classes, split, and a decode of every image"
$mpiexec -n "$ranks" "$bneck" corpus --images "$work/corpus" --decode
echo
echo "== bneck extract on $ranks ranks: Inception v3 features into $work/features.h5"
$mpiexec --bind-to none -n "$ranks" "$bneck" extract --images "$work/corpus" --weights "$work/weights.h5" \
    --out "$work/features.h5" --price-per-node-hour "$price"
echo
echo "== bneck train on $ranks ranks: the final layer on those features (retrain.py's defaults, 4000 steps)"
$mpiexec --bind-to none -n "$ranks" "$bneck" train --features "$work/features.h5" \
    --out "$work/classifier.h5" --eval-interval 500 --price-per-node-hour "$price"
echo
echo "== bneck classify: the top classes of one image with the new classifier"
"$bneck" classify --weights "$work/weights.h5" --classifier "$work/classifier.h5" "$work/corpus/daisy/daisy_0000.jpg"
echo
echo "== bneck report: what the runs did and cost, as a page with figures"
"$bneck" report "$work/features.h5" "$work/classifier.h5" --html "$work/report.html" --svg "$work/figures"
echo
echo "open $work/report.html in a browser to see the report"
