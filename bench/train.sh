#!/bin/bash
# train.sh: how fast "bneck train" retrains the final layer.
#  1. flower_photos' size: 3,670 rows, 5 classes, retrain.py's defaults
#     (4000 steps, batch 100, evaluation every 10 steps), on 1 and 2 ranks,
#     against the same loop in PyTorch (bench/train_torch.py) in the same
#     run, at 1 and 2 threads (its faster time is the peer).
#  2. A million rows and 100 classes (BENCH_TRAIN_BIG_ROWS, default 1000000;
#     0 skips it): the time to load and to train, and the allreduce share.
# Everything is synthetic (bneck mkfeatures): the speed of training does not
# depend on where the features came from.
# Usage: BNECK=./bneck bench/train.sh [WORKDIR]
set -euo pipefail
bneck=${BNECK:-./bneck}
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
PY=${PYTHON3:-/usr/bin/python3}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mpi() { local n=$1; shift; mpirun --bind-to none -n "$n" "$@"; }
field() { sed -n "s/^$1 *\([0-9.]*\).*/\1/p" | head -1; }

echo "== machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "== 1. 3,670 rows, 5 classes, 4000 steps"
mpi 2 "$bneck" mkfeatures "$work/flowers.h5" --rows 3670 --classes 5 --noise 20 --seed 1 --force -q
best=()
for n in 1 2; do
    t=1e9
    for rep in 1 2 3; do
        out=$(mpi $n "$bneck" train --features "$work/flowers.h5" --out "$work/c$n.h5")
        w=$(echo "$out" | sed -n 's/^wall time: \([0-9.]*\) s.*/\1/p')
        share=$(echo "$out" | sed -n 's/^allreduce share of the training steps: \([0-9.]*\)%.*/\1/p')
        acc=$(echo "$out" | sed -n 's/^Final test accuracy = \(.*\)$/\1/p')
        echo "bneck train, $n rank(s), run $rep: $w s (allreduce $share% of the steps), test accuracy $acc"
        t=$(awk -v a="$t" -v b="$w" 'BEGIN { print (b < a) ? b : a }')
    done
    best[$n]=$t
done
cmp <("$PY" -c "import h5py,sys; sys.stdout.buffer.write(h5py.File('$work/c1.h5','r')['W'][()].tobytes())") \
    <("$PY" -c "import h5py,sys; sys.stdout.buffer.write(h5py.File('$work/c2.h5','r')['W'][()].tobytes())") \
    && echo "classifier of 1 and 2 ranks: bitwise equal" || echo "classifier of 1 and 2 ranks: DIFFERENT"
peer=1e9
if "$PY" -c 'import torch, h5py' 2>/dev/null; then
    for th in 1 2; do
        line=$("$PY" "$here/train_torch.py" "$work/flowers.h5" 4000 $th)
        echo "PyTorch, $th thread(s): $line"
        t=$(echo "$line" | sed -n 's/.*total \([0-9.]*\) s.*/\1/p')
        peer=$(awk -v a="$peer" -v b="$t" 'BEGIN { print (b < a) ? b : a }')
    done
    awk -v b1="${best[1]}" -v b2="${best[2]}" -v p="$peer" 'BEGIN {
        printf "best: bneck 1 rank %.3f s, 2 ranks %.3f s; PyTorch %.3f s; speedup over PyTorch: %.1fx (1 rank), %.1fx (2 ranks)\n",
            b1, b2, p, p / b1, p / b2 }'
else
    echo "PyTorch or h5py missing: no peer"
fi

big=${BENCH_TRAIN_BIG_ROWS:-1000000}
if [ "$big" -gt 0 ]; then
    echo "== 2. $big rows, 100 classes, 4000 steps, 2 ranks"
    t0=$(date +%s.%N)
    mpi 2 "$bneck" mkfeatures "$work/big.h5" --rows "$big" --classes 100 --noise 20 --seed 2 --force -q
    t1=$(date +%s.%N)
    ls -l "$work/big.h5" | awk -v t="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" '{ printf "mkfeatures: %.2f GB written in %.1f s\n", $5 / 1e9, t }'
    mpi 2 "$bneck" train --features "$work/big.h5" --out "$work/big_c.h5" | grep -v "^Step "
    rm -f "$work/big.h5"
fi
