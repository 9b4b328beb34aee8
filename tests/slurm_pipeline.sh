#!/bin/bash
# slurm_pipeline.sh: slurm/pipeline.sbatch, submitted unchanged to a private
# one-node Slurm cluster (tests/slurm/cluster) with 2 tasks: the features
# and the classifier must equal a direct one-rank run's, the predictions CSV
# must cover the corpus; slurm/retrain.sbatch, alongside, must write its
# classifier and labels; the launcher must be srun --mpi=pmix for this Open
# MPI build, and every slurm/*.sbatch must carry the same launcher block.
set -euo pipefail
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
. "$SRCDIR/tests/slurm/lib.sh"

# The launcher block is copied into each script: the copies must agree.
block() { sed -n '/^# >>> bneck launcher/,/^# <<< bneck launcher/p' "$1"; }
ref_block=$(block "$SRCDIR/slurm/extract.sbatch")
[ -n "$ref_block" ] || fail "slurm/extract.sbatch has no launcher block"
for s in "$SRCDIR"/slurm/*.sbatch; do
    [ "$(block "$s")" = "$ref_block" ] || fail "$s: its launcher block differs from slurm/extract.sbatch's"
done

bn_mkweights "$tmp/w.h5" --seed 4 -q
# A launcher that starts nothing yet says 0 must not lead on to train.
rc=0
BNECK_LAUNCHER=true bash "$SRCDIR/slurm/pipeline.sbatch" "$tmp/none" "$tmp/w.h5" "$tmp/nolaunch" > "$tmp/nolaunch.out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "launcher (true) did not start bneck" "$tmp/nolaunch.out" \
    || { cat "$tmp/nolaunch.out"; fail "pipeline.sbatch after a launcher that ran nothing: status $rc"; }
c=$(mk_split_corpus c 3 3) || fail "no corpus with train, validation and test images"
"$BNECK" mkcorpus "$tmp/new" --classes 3 --per-class 1 --seed 6 -q  # to classify
opts=(--backend gemm --threads 1 --batch 2)
train=(--steps 40 --eval-interval 20 --seed 1)

id=$(cd "$tmp" && BNECK_TRAIN_OPTS="${train[*]}" BNECK_CLASSIFY="$tmp/new" BNECK_CLASSIFY_OPTS="${opts[*]}" \
    sbatch --parsable --nodes=1 --ntasks=2 --cpus-per-task=1 --time=10 --output="$tmp/pipeline.log" \
    "$SRCDIR/slurm/pipeline.sbatch" "$c" "$tmp/w.h5" "$tmp/work" "${opts[@]}")
[ -n "$id" ] || fail "sbatch gave no job id"
# retrain.sbatch alongside, one task: retrain.py's flags after WORK_DIR.
rid=$(cd "$tmp" && sbatch --parsable --ntasks=1 --cpus-per-task=1 --time=10 --output="$tmp/retrain.log" \
    "$SRCDIR/slurm/retrain.sbatch" "$c" "$tmp/w.h5" "$tmp/rt" --how_many_training_steps 20 \
    --backend gemm --threads 1)
[ -n "$rid" ] || fail "sbatch gave no job id for retrain.sbatch"
wait_job "$id" COMPLETED 240
wait_job "$rid" COMPLETED 240
for f in rt/bottleneck/features.h5 rt/classifier.h5 rt/labels.txt; do
    [ -s "$tmp/$f" ] || fail "retrain.sbatch wrote no $f"
done
[ "$(wc -l < "$tmp/rt/labels.txt")" = 3 ] || fail "retrain.sbatch: labels.txt has not 3 classes"
grep -q "launcher: srun --mpi=pmix" "$tmp/pipeline.log" || fail "the launcher was not srun --mpi=pmix"
grep -q "tasks; launcher" "$tmp/pipeline.log" && grep -q "^bneck: job $id (restart 0) on .*, 2 tasks" "$tmp/pipeline.log" \
    || fail "the job did not run with 2 tasks"
[ "$(job_field "$id" ExitCode)" = 0:0 ] || fail "exit code $(job_field "$id" ExitCode)"

# The same work directly, one rank.
"$BNECK" extract --images "$c" --weights "$tmp/w.h5" --out "$tmp/ref.h5" "${opts[@]}" --progress none -q \
    > "$tmp/ref.log" 2>&1 || fail "direct extract"
"$BNECK" train --features "$tmp/ref.h5" --out "$tmp/ref-classifier.h5" "${train[@]}" -q > "$tmp/reftrain.log" 2>&1 \
    || fail "direct train"
"$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/ref-classifier.h5" --images "$tmp/new" \
    --features "$tmp/ref-new.h5" --out "$tmp/ref-predictions.csv" "${opts[@]}" -q > "$tmp/refclassify.log" 2>&1 \
    || fail "direct classify"
cmp "$tmp/ref-predictions.csv" "$tmp/work/predictions.csv" || fail "the job's predictions differ from a direct run's"
"$PY" - "$tmp" <<'PY' || fail "the job's files differ from a direct run's"
import sys, csv, h5py, numpy as np
t = sys.argv[1]
a, b = h5py.File(t + "/ref.h5", "r"), h5py.File(t + "/work/features.h5", "r")
assert int(b.attrs["complete"]) == 1, "features file not complete"
sa, sb = a["status"][()], b["status"][()]
assert len(sa) == 9 and (sa == 1).all() and (sa == sb).all(), (sa, sb)
assert a["features"][()].tobytes() == b["features"][()].tobytes(), "feature rows differ"
assert len(b["timing/run_%d" % (int(b.attrs["runs"]) - 1)]) == 2, "the job's run had not 2 ranks"
ca, cb = h5py.File(t + "/ref-classifier.h5", "r"), h5py.File(t + "/work/classifier.h5", "r")
names = []
# The run record (group "run") holds times, which differ from run to run.
ca.visit(lambda n: names.append(n) if isinstance(ca[n], h5py.Dataset) and not n.startswith("run/") else None)
assert names, "reference classifier has no datasets"
for n in names:
    assert n in cb, "classifier lacks " + n
    assert ca[n][()].tobytes() == cb[n][()].tobytes(), "classifier dataset %s differs" % n
rows = list(csv.reader(open(t + "/work/predictions.csv")))
body = [r for r in rows if r and not r[0].startswith("path")]
assert len(body) == 3 and all("/new/" in r[0] for r in body), "predictions: %s" % body
print("pipeline job == direct run: 9 feature rows, %d classifier datasets; 3 predictions" % len(names))
PY
echo "slurm pipeline: job $id completed; files equal a direct run's"
