#!/bin/bash
# retrain.sh: "bneck retrain" with a retrain.py command line runs extract and
# train end to end at 2 ranks; every retrain.py flag reaches its setting;
# flags that cannot matter are accepted with a note, distortions refused; a
# rerun reuses the features file and repeats the classifier bit for bit.
#
# Accuracy: the corpus is synthetic (bneck mkcorpus, 5 classes) and the
# weights random (bneck mkweights), yet the classes differ in colour, shape
# and texture, so a classifier on random features separates them. Measured
# on the development machine (AMD EPYC, 2 cores), test accuracy:
#  - 100% on three 5x60 corpora (seeds 1-3), training seeds 0-2, defaults;
#  - 89.3-96.4% on a 5x40 corpus (seed 2, 15/15 split, 28 test images),
#    training seeds 0-4, with the defaults and with this test's settings.
# Chance is 20%. The test asserts at least 75%: far above chance, and about
# three more wrong test images than the worst run measured. The run is
# deterministic (relative paths, so the split does not depend on the
# temporary folder's name).
set -u
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
two="${MPIEXEC:-mpirun --oversubscribe} --bind-to none -n 2"

cd "$tmp" || fail "cd"
bn_mkweights "$tmp/w.h5" -q || fail "mkweights"
"$BNECK" mkcorpus c --classes 5 --per-class 40 --seed 2 -q || fail "mkcorpus"
# An old retrain.py command line, "python retrain.py" replaced and --weights added.
cmd=($two "$BNECK" retrain --image_dir=c --weights "$tmp/w.h5" --bottleneck_dir "$tmp/bn"
     --output_graph "$tmp/out.h5" --output_labels "$tmp/labels.txt" --how_many_training_steps 1000
     --learning_rate=0.02 --testing_percentage 15 --validation_percentage=15 --eval_step_interval 100
     --train_batch_size 50 --validation_batch_size=-1 --test_batch_size -1 --print_misclassified_test_images
     --summaries_dir /tmp/retrain_logs --model_dir=/tmp/imagenet --flip_left_right=False --random_crop 0
     --architecture inception_v3 --tfhub_module https://tfhub.dev/google/imagenet/inception_v3/feature_vector/3)
timeout 600 "${cmd[@]}" > "$tmp/out" 2> "$tmp/err" || { cat "$tmp/out" "$tmp/err"; fail "retrain failed"; }
cat "$tmp/out"
[ "$(grep -c "note: --summaries_dir is accepted and ignored" "$tmp/err")" = 1 ] || { cat "$tmp/err"; fail "note for --summaries_dir (once)"; }
grep -q "note: --model_dir is accepted and ignored" "$tmp/err" || fail "note for --model_dir"
grep -q "^load imbalance" "$tmp/out" || fail "no extract timing table"
[ "$(grep -cE '^Step [0-9]+: Train accuracy' "$tmp/out")" = 11 ] || fail "want 11 evaluations (0, 100, ..., 900, 999)"
grep -q "^=== MISCLASSIFIED TEST IMAGES ===$" "$tmp/out" || fail "misclassified list"
[ -f "$tmp/bn/features.h5" ] || fail "features file not in --bottleneck_dir"

"$PY" - "$tmp" <<'PY' || fail "settings or accuracy"
import sys, re, json, h5py, numpy as np
tmp = sys.argv[1]
F = h5py.File(tmp + "/bn/features.h5", "r")
C = h5py.File(tmp + "/out.h5", "r")
s = lambda v: v.decode() if isinstance(v, bytes) else str(v)
fs, cs = json.loads(s(F.attrs["settings"])), json.loads(s(C.attrs["settings"]))
assert fs["validation_percentage"] == 15 and fs["testing_percentage"] == 15, fs
assert (cs["steps"], cs["learning_rate"], cs["batch"], cs["eval_interval"], cs["validation_batch"], cs["test_batch"]) \
    == (1000, 0.02, 50, 100, -1, -1), cs
st, sp = F["status"][()], F["split"][()]
nval, ntest = int(((st == 1) & (sp == 1)).sum()), int(((st == 1) & (sp == 2)).sum())
out = open(tmp + "/out").read()
vals = re.findall(r"^Step \d+: Validation accuracy = [0-9.]+% \(N=(\d+)\)$", out, re.M)
assert len(vals) == 11 and all(int(v) == nval for v in vals), (vals, nval)
m = re.search(r"^Final test accuracy = ([0-9.]+)% \(N=(\d+)\)$", out, re.M)
acc, n = float(m.group(1)), int(m.group(2))
assert n == ntest, (n, ntest)
assert acc >= 75.0, f"test accuracy {acc}% is not well above chance (20%)"
names = [s(x) for x in F["label_names"][()]]
assert open(tmp + "/labels.txt").read().split("\n")[:-1] == names
print(f"ok: test accuracy {acc}% (N={n}), validation N={nval}")
PY

# A rerun resumes the features file (nothing left to extract) and trains the same classifier.
cp "$tmp/out.h5" "$tmp/first.h5"
timeout 600 "${cmd[@]}" > "$tmp/out2" 2> "$tmp/err2" || { cat "$tmp/out2" "$tmp/err2"; fail "rerun failed"; }
grep -q "resuming .*200 of 200 images done, 0 to go" "$tmp/err2" || { cat "$tmp/err2"; fail "rerun did not reuse the features"; }
"$PY" -c "
import sys, h5py
a, b = h5py.File('$tmp/first.h5', 'r'), h5py.File('$tmp/out.h5', 'r')
assert all(a[k][()].tobytes() == b[k][()].tobytes() for k in ('W', 'b', 'history', 'confusion'))
" || fail "the rerun trained another classifier"

# Refused: distortions and other models; missing --weights; unknown flags.
refuse() {  # pattern args...
    local pat=$1; shift
    "$BNECK" retrain --image_dir "$tmp/c" "$@" > "$tmp/o" 2> "$tmp/e"
    local rc=$?
    [ $rc = 2 ] || { cat "$tmp/o" "$tmp/e"; fail "exit $rc, want 2: $*"; }
    grep -qE -- "$pat" "$tmp/e" || { cat "$tmp/e"; fail "message /$pat/ missing: $*"; }
    echo "refused: $(head -1 "$tmp/e")"
}
refuse "--random_crop=10 is not supported: image distortions" --weights "$tmp/w.h5" --random_crop 10
refuse "--flip_left_right=True is not supported" --weights "$tmp/w.h5" --flip_left_right
refuse "--architecture=mobilenet_1.0_224 is not supported: bneck runs Inception v3 only" --weights "$tmp/w.h5" --architecture=mobilenet_1.0_224
refuse "--tfhub_module=https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/3 is not supported" \
    --weights "$tmp/w.h5" --tfhub_module https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/3
refuse "--weights FILE is required" --how_many_training_steps 10
refuse "--learning_rate must be above 0" --weights "$tmp/w.h5" --learning_rate 0
refuse "--bottleneck_dir expects a value, got an empty string" --weights "$tmp/w.h5" --bottleneck_dir ""
refuse "unknown option '--no_such_flag'" --weights "$tmp/w.h5" --no_such_flag 3
echo "retrain ok"
