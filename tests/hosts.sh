#!/bin/bash
# hosts.sh: bneck across 2 and 3 test hosts joined by plain TCP (network
# namespaces on a bridge, tests/hosts/hostnet; Open MPI through the rsh agent
# tests/hosts/rsh), one rank per host. Each of extract, train, classify of a
# corpus and retrain must give, byte for byte, what it gives at 1 rank. Prints
# each rank's idle share of its wall time in the extract.
#
# Skips (77) where network namespaces cannot be made (not root, no iproute2)
# and where mpirun is not Open MPI (the rsh agent is Open MPI's mechanism).
# The engine is `gemm` (BNECK_HOSTS_BACKEND overrides): the test is about the
# transport, and it must stay short on two busy cores.
set -euo pipefail
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing for $PY"; exit 77; }
MPIRUN_BIN=${MPIRUN_BIN:-mpirun}
"$MPIRUN_BIN" --version 2>&1 | grep -qiE "Open MPI|OpenRTE|open-mpi" || { echo "SKIP: $MPIRUN_BIN is not Open MPI"; exit 77; }
HN=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/hosts
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

tmp=$(mktemp -d)
nets=()
cleanup() {
    local d
    for d in "${nets[@]}"; do "$HN/hostnet" down "$d" || echo "hosts.sh: could not remove the hosts of $d" >&2; done
    rm -rf "$tmp"
}
trap cleanup EXIT
for n in 2 3; do
    nets+=("$tmp/net$n")
    rc=0; "$HN/hostnet" up "$n" "$tmp/net$n" || rc=$?
    [ $rc = 77 ] && { echo "SKIP: network namespaces cannot be made here"; exit 77; }
    [ $rc = 0 ] || fail "hostnet up $n failed (exit $rc)"
done

backend=${BNECK_HOSTS_BACKEND:-gemm}
limit=${BNECK_HOSTS_TIMEOUT:-600}           # seconds per command: a hung job must not hang make check
eng=(--backend "$backend" --threads 1)
bn_mkweights "$tmp/w.h5" --seed 3 --calib-images 2 -q
# 12 images in 6 work units of 2: more units than ranks.
# The split hashes the path as given (as retrain.py does), so the corpus is
# named relative to $tmp: "cc" puts 1 or 2 training images in every class.
cd "$tmp"
"$BNECK" mkcorpus cc --classes 4 --per-class 3 --seed 6 --sizes 160x120,120x160 -q
"$BNECK" mkcorpus new --classes 4 --per-class 2 --seed 7 --sizes 160x120 -q
pct=(--validation-percentage 25 --testing-percentage 25)
batch=2 nimg=12

# run NAME LAUNCHER...: the four commands, outputs in $tmp/NAME
run() {
    local name=$1 d=$tmp/$1; shift
    mkdir -p "$d"
    step() {  # label command...
        local label=$1 t=$SECONDS; shift
        if ! timeout "$limit" "$@" > "$d/$label.log" 2>&1; then
            cat "$d/$label.log"; fail "$name: $label failed (or ran past ${limit}s)"
        fi
        echo "=== $name: $label ($((SECONDS - t)) s)"
    }
    step extract "$@" "$BNECK" extract --images cc --weights "$tmp/w.h5" --out "$d/f.h5" "${eng[@]}" \
        --batch $batch "${pct[@]}" --progress log -v
    # Train and classify read the 1-rank files, so each compares one command.
    step train "$@" "$BNECK" train --features "$tmp/one/f.h5" --out "$d/cls.h5" --steps 100 --eval-interval 20
    step classify "$@" "$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/one/cls.h5" --images new \
        --out "$d/predictions.csv" "${eng[@]}" --batch $batch --progress log
    step retrain "$@" "$BNECK" retrain --image_dir cc --weights "$tmp/w.h5" --bottleneck_dir "$d/bn" \
        --output_graph "$d/rt.h5" --output_labels "$d/rt.txt" --how_many_training_steps 200 --eval_step_interval 50 \
        --testing_percentage 25 --validation_percentage 25 "${eng[@]}"
}

t0=$SECONDS
run one "$MPIRUN_BIN" -n 1
run h2 "$HN/mpirun-hosts" "$tmp/net2" 1
run h3 "$HN/mpirun-hosts" "$tmp/net3" 1
echo "=== runs took $((SECONDS - t0)) s"

# The extract's timing table, one row per rank: idle share, and no rank left
# without work when there are more work units than ranks.
for r in 2 3; do
    log=$tmp/h$r/extract.log
    grep -q "^rank .*done .*failed .*read s .*decode s .*forward s .*write s .*idle s .*wall s .*images/s" "$log" ||
        { cat "$log"; fail "h$r: no timing table in the extract's output"; }
    rows=$(grep -E '^ +[0-9]+ +[0-9]+ +[0-9]+ ' "$log")
    [ "$(echo "$rows" | wc -l)" = "$r" ] || { cat "$log"; fail "h$r: the timing table has not $r rank rows"; }
    units=$(( (nimg + batch - 1) / batch ))
    echo "$rows" | awk -v r="$r" -v units="$units" '
        { printf "%d hosts: rank %d did %d images, idle %.2f s of %.2f s wall (%.1f%%)\n", r, $1, $2, $8, $9, ($9 > 0 ? 100 * $8 / $9 : 0)
          if ($2 + $3 == 0 && units > r) bad = bad " " $1 }
        END { if (bad != "") { print "ranks without work:" bad; exit 1 } }' ||
        fail "h$r: a rank did no image although there are $units work units for $r ranks"
done

# Each host is a node of its own: every rank is node-local rank 0 of 1
# (MPI_Comm_split_type), which is what maps ranks to a node's GPUs.
for r in 2 3; do
    n=$(grep -c "device: CPU (--device auto; node-local rank 0 of 1;" "$tmp/h$r/extract.log" || true)
    [ "$n" = "$r" ] || { grep "device:" "$tmp/h$r/extract.log"; fail "h$r: $n of $r ranks see themselves alone on their node"; }
done

"$PY" - "$tmp" <<'PY' || fail "results differ from the 1-rank run"
import sys, h5py, numpy as np
tmp = sys.argv[1]

def same_features(a, b, what):
    A, B = h5py.File(a, "r"), h5py.File(b, "r")
    for k in ("format", "version", "weights_sha256", "preprocess", "dct", "corpus_sha256", "n_images",
              "n_classes", "complete", "runs"):
        assert A.attrs[k] == B.attrs[k], f"{what}: attribute {k}: {A.attrs[k]!r} vs {B.attrs[k]!r}"
    assert int(B.attrs["complete"]) == 1, f"{what}: not complete"
    st = A["status"][()]
    assert (st == 1).all(), f"{what}: 1-rank run left images not done: {st}"
    for k in ("status", "error_code", "error_reason", "label", "split", "path_offsets", "path_bytes",
              "label_names"):
        x, y = A[k][()], B[k][()]
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), f"{what}: dataset {k} differs"
    done = st == 1
    x, y = A["features"][()][done], B["features"][()][done]
    assert x.tobytes() == y.tobytes(), f"{what}: features differ in {(x != y).any(axis=1).sum()} rows"
    assert len(A["timing/run_0"]) == 1, f"{what}: 1-rank timing table"
    return int(done.sum())

def same_classifier(a, b, what):
    A, B = h5py.File(a, "r"), h5py.File(b, "r")
    for k in ("W", "b", "history", "confusion", "label_names"):
        x, y = A[k][()], B[k][()]
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), f"{what}: {k} differs"
    assert A["confusion"][()].sum() > 0, f"{what}: empty confusion matrix"

def same_bytes(a, b, what):
    x, y = open(a, "rb").read(), open(b, "rb").read()
    assert x, f"{what}: {a} is empty"
    assert x == y, f"{what}: {a} and {b} differ"

for h in ("h2", "h3"):
    n = same_features(f"{tmp}/one/f.h5", f"{tmp}/{h}/f.h5", f"{h} extract")
    assert len(h5py.File(f"{tmp}/{h}/f.h5", "r")["timing/run_0"]) == int(h[1:]), f"{h}: timing table rows"
    same_classifier(f"{tmp}/one/cls.h5", f"{tmp}/{h}/cls.h5", f"{h} train")
    same_bytes(f"{tmp}/one/predictions.csv", f"{tmp}/{h}/predictions.csv", f"{h} classify")
    same_features(f"{tmp}/one/predictions.csv.features.h5", f"{tmp}/{h}/predictions.csv.features.h5", f"{h} classify features")
    same_features(f"{tmp}/one/bn/features.h5", f"{tmp}/{h}/bn/features.h5", f"{h} retrain features")
    same_classifier(f"{tmp}/one/rt.h5", f"{tmp}/{h}/rt.h5", f"{h} retrain")
    same_bytes(f"{tmp}/one/rt.txt", f"{tmp}/{h}/rt.txt", f"{h} retrain labels")
    print(f"{h}: extract ({n} images), train, classify, retrain equal the 1-rank run byte for byte")
rows = open(f"{tmp}/one/predictions.csv").read().splitlines()
assert len(rows) == 1 + 8, f"predictions.csv has {len(rows)} lines"
PY
echo "PASS"
