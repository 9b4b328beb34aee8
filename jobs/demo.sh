#!/bin/bash
# demo.sh: the built-in demo. Makes a synthetic flower-like corpus, then runs
# the main job on it under mpirun with 2 ranks.
# Usage: jobs/demo.sh [WORKDIR]   (default: ./demo)
# Environment: BNECK (binary, default ./bneck), DEMO_RANKS (default 2),
#              DEMO_CLASSES (default 5), DEMO_PER_CLASS (default 60).
set -euo pipefail
work=${1:-demo}
bneck=${BNECK:-./bneck}
ranks=${DEMO_RANKS:-2}
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mkdir -p "$work"
if [ ! -d "$work/corpus" ]; then
    "$bneck" mkcorpus "$work/corpus" --classes "${DEMO_CLASSES:-5}" --per-class "${DEMO_PER_CLASS:-60}" --seed 1
fi
echo "== bneck corpus on $ranks ranks: classes, split, and a decode of every image"
mpirun --oversubscribe -n "$ranks" "$bneck" corpus --images "$work/corpus" --decode
