#!/bin/bash
# precision.sh: the precision (and for int8 the calibration file's SHA-256)
# is part of the identity of features files and classifiers.
#  - extract records precision "fp32" and calibration_sha256 ""; a resume of
#    a file that holds another precision (or calibration) is refused before
#    any work, naming the file, both precisions and the way out; the file is
#    left as it was;
#  - a file from before the attribute (none) resumes, trains and classifies
#    as fp32;
#  - train records the precision and calibration of its features file in the
#    classifier; classify takes the precision from it, refuses an explicit
#    --precision other than its, --calibration for a non-int8 classifier,
#    and for an int8 one a missing --calibration or one with another SHA-256;
#  - join refuses shards of different precisions; retrain and run refuse to
#    resume a features file of another precision.
# Files of another precision are made by editing the attribute with h5py, so
# the checks do not depend on which precisions this build's backends offer.
# Where a backend lists bf16, a real --precision bf16 resume of an fp32 file
# is refused before the engine is made, and a run the engine refuses leaves
# no file; where bneck calibrate exists and an int8 engine runs, real int8
# files and classifiers are checked too (each says so when it cannot run).
set -euo pipefail
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing"; exit 77; }
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
T="timeout 300"
cd "$tmp"

bn_mkweights w.h5 --seed 6 -q
"$BNECK" mkcorpus c --classes 2 --per-class 10 --seed 3 -q
extract() {  # out [extra args]
    local out=$1; shift
    $T "$BNECK" extract --images c --weights w.h5 --out "$out" --threads 1 --progress none \
        --validation-percentage 25 --testing-percentage 25 "$@"
}
attrs() {  # file: precision and calibration_sha256 ('-' when absent)
    "$PY" - "$1" <<'PY'
import sys, h5py
a = h5py.File(sys.argv[1], "r").attrs
print(*[a[k].decode() if k in a else "-" for k in ("precision", "calibration_sha256")], sep="|")
PY
}
set_prec() {  # file precision calibration_sha256 ('-': delete both)
    "$PY" - "$@" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    for k in ("precision", "calibration_sha256"):
        if k in f.attrs:
            del f.attrs[k]
    if sys.argv[2] != "-":
        f.attrs["precision"] = np.bytes_(sys.argv[2])
        f.attrs["calibration_sha256"] = np.bytes_(sys.argv[3])
PY
}
fingerprint() {  # what a refused resume must leave alone
    "$PY" -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); print(f.attrs['settings'].decode(), int(f.attrs['runs']), \
f.attrs['precision'].decode() if 'precision' in f.attrs else '-')" "$1"
}
refused() {  # what log want_rc substrings...: the run exited want_rc and the log has every substring
    local what=$1 log=$2 want=$3 rc=$4; shift 4
    [ "$rc" = "$want" ] || { cat "$log"; fail "$what: exit status $rc, want $want"; }
    for s in "$@"; do grep -qF -- "$s" "$log" || { cat "$log"; fail "$what: message lacks '$s'"; }; done
    echo "refused as expected ($what): $(grep -m1 error "$log")"
}

# 1. A new file records fp32 and no calibration; the start line says fp32.
extract f.h5 > x.log 2>&1 || { cat x.log; fail "extract"; }
grep -q "extracting 20 images .*fp32) into f.h5" x.log || { cat x.log; fail "start line without the precision"; }
[ "$(attrs f.h5)" = "fp32|" ] || fail "f.h5 records '$(attrs f.h5)', want 'fp32|'"
"$PY" -c "import h5py,json,sys; s=json.loads(h5py.File(sys.argv[1],'r').attrs['settings']); \
assert s['precision'] == 'fp32' and s['calibration'] == '', s" f.h5 || fail "settings lack the precision"

# 2. A file holding bf16 features: the default (fp32) resume is refused
#    before any work, and the file is unchanged.
cp f.h5 b.h5
set_prec b.h5 bf16 ""
before=$(fingerprint b.h5)
set +e; extract b.h5 > r.log 2>&1; rc=$?; set -e
refused "fp32 resume of bf16" r.log 1 "$rc" "b.h5 holds bf16 features" "asks for --precision fp32" \
    "--precision bf16" "new --out"
[ "$(fingerprint b.h5)" = "$before" ] || fail "a refused resume changed b.h5"
# The same for an int8 file, and for another calibration.
cp f.h5 i.h5
cal=$(sha256sum w.h5 | cut -c1-64)
set_prec i.h5 int8 "$cal"
set +e; extract i.h5 > r.log 2>&1; rc=$?; set -e
refused "fp32 resume of int8" r.log 1 "$rc" "i.h5 holds int8 features" "--precision int8 and its --calibration"
# A real --precision bf16 on the fp32 file: where a built backend lists
# bf16, the refusal comes from the file, before the engine is made (so also
# on a CPU the engine would refuse), and the file is unchanged.
before=$(fingerprint f.h5)
set +e; extract f.h5 --precision bf16 > r.log 2>&1; rc=$?; set -e
if grep -q "no backend of this build offers bf16" r.log; then
    echo "note: no backend of this build offers bf16; the real bf16 resume is not checked"
else
    refused "real bf16 resume of fp32" r.log 1 "$rc" "f.h5 holds fp32 features" "asks for --precision bf16"
    grep -q "cannot create the" r.log && { cat r.log; fail "bf16 resume: the engine was made before the refusal"; }
    [ "$(fingerprint f.h5)" = "$before" ] || fail "a refused bf16 resume changed f.h5"
fi
# A new bf16 file, where some backend runs bf16 on this CPU, records it.
# Where the engine refuses, the file the run just made is removed, so that
# a rerun with other options is not refused by it.
made=""
for b in cpu gemm; do
    if extract bf.h5 --precision bf16 --backend "$b" -q > bf.log 2>&1; then made=$b; break; fi
    [ ! -e bf.h5 ] || { cat bf.log; fail "a bf16 run the engine refused ($b) left bf.h5 behind"; }
done
if [ -n "$made" ]; then
    [ "$(attrs bf.h5)" = "bf16|" ] || fail "bf.h5 ($made) records '$(attrs bf.h5)', want 'bf16|'"
else
    echo "note: no backend runs bf16 on this machine ($(grep -m1 . bf.log)); a new bf16 file is not checked"
fi

# 3. A file from before the attribute: resumes, trains and classifies as fp32.
cp f.h5 old.h5
set_prec old.h5 -
[ "$(attrs old.h5)" = "-|-" ] || fail "old.h5 still has the attributes"
extract old.h5 > r.log 2>&1 || { cat r.log; fail "resume of a file without the precision attribute"; }
grep -q "resuming old.h5: 20 of 20 images done, 0 to go (fp32)" r.log || { cat r.log; fail "old.h5 not resumed"; }
$T "$BNECK" train --features old.h5 --out cl_old.h5 --steps 30 > t.log 2>&1 || { cat t.log; fail "train on old.h5"; }
grep -q "training on old.h5 (fp32 features)" t.log || { cat t.log; fail "train start line"; }
[ "$(attrs cl_old.h5)" = "fp32|" ] || fail "cl_old.h5 records '$(attrs cl_old.h5)', want 'fp32|'"
img=c/daisy/daisy_0000.jpg
[ -f "$img" ] || img=$(find c -name '*.jpg' | sort | head -1)
$T "$BNECK" classify --weights w.h5 --classifier cl_old.h5 "$img" > p0.txt 2> p0.err || { cat p0.err; fail "classify"; }
$T "$BNECK" classify --weights w.h5 --classifier cl_old.h5 --precision fp32 "$img" > p1.txt 2> p1.err \
    || { cat p1.err; fail "classify --precision fp32"; }
cmp -s p0.txt p1.txt || fail "classify with and without --precision fp32 differ"
# A classifier from before the attribute (deleted) is fp32 too.
cp cl_old.h5 cl_older.h5
set_prec cl_older.h5 -
$T "$BNECK" classify --weights w.h5 --classifier cl_older.h5 --precision fp32 "$img" > p2.txt 2> p2.err \
    || { cat p2.err; fail "classify with a classifier without the precision attribute"; }
cmp -s p0.txt p2.txt || fail "a classifier without the attribute scores differently"

# 4. classify refusals, before any image is decoded.
set +e; "$BNECK" classify --weights w.h5 --classifier cl_old.h5 --precision bf16 "$img" > /dev/null 2> r.log; rc=$?; set -e
refused "explicit bf16 on an fp32 classifier" r.log 1 "$rc" "--precision bf16 differs from the classifier's 'fp32'" \
    "leave --precision out"
set +e; "$BNECK" classify --weights w.h5 --classifier cl_old.h5 --precision int8 --calibration w.h5 "$img" \
    > /dev/null 2> r.log; rc=$?; set -e
refused "explicit int8 on an fp32 classifier" r.log 1 "$rc" "--precision int8 differs from the classifier's 'fp32'"
set +e; "$BNECK" classify --weights w.h5 --classifier cl_old.h5 --calibration w.h5 "$img" > /dev/null 2> r.log; rc=$?; set -e
refused "--calibration on an fp32 classifier" r.log 1 "$rc" "--calibration w.h5 is for int8" "fp32 features"
# A bf16 classifier (trained on b.h5): an explicit fp32 is refused, in both modes.
$T "$BNECK" train --features b.h5 --out cl_b.h5 --steps 30 -q > /dev/null 2>&1 || fail "train on b.h5"
[ "$(attrs cl_b.h5)" = "bf16|" ] || fail "cl_b.h5 records '$(attrs cl_b.h5)', want 'bf16|'"
set +e; "$BNECK" classify --weights w.h5 --classifier cl_b.h5 --precision fp32 "$img" > /dev/null 2> r.log; rc=$?; set -e
refused "explicit fp32 on a bf16 classifier" r.log 1 "$rc" "--precision fp32 differs from the classifier's 'bf16'"
set +e; $T "$BNECK" classify --weights w.h5 --classifier cl_b.h5 --precision fp32 --images c --out p.csv \
    --progress none > /dev/null 2> r.log; rc=$?; set -e
refused "corpus mode: explicit fp32 on a bf16 classifier" r.log 1 "$rc" "differs from the classifier's 'bf16'"
[ ! -e p.csv ] && [ ! -e p.csv.features.h5 ] || fail "a refused corpus classify left files"
# An int8 classifier: --calibration is required, and must be the recorded file.
$T "$BNECK" train --features i.h5 --out cl_i.h5 --steps 30 -q > /dev/null 2>&1 || fail "train on i.h5"
[ "$(attrs cl_i.h5)" = "int8|$cal" ] || fail "cl_i.h5 records '$(attrs cl_i.h5)', want 'int8|$cal'"
set +e; "$BNECK" classify --weights w.h5 --classifier cl_i.h5 "$img" > /dev/null 2> r.log; rc=$?; set -e
refused "int8 classifier without --calibration" r.log 1 "$rc" "trained on int8 features" "$cal" "--calibration CAL.h5"
other=$(sha256sum "$img" | cut -c1-64)
set +e; "$BNECK" classify --weights w.h5 --classifier cl_i.h5 --calibration "$img" "$img" > /dev/null 2> r.log; rc=$?; set -e
refused "int8 classifier with another calibration" r.log 1 "$rc" "has sha256 $other" "calibration file of sha256 $cal"
set +e; "$BNECK" classify --weights w.h5 --classifier cl_i.h5 --precision fp32 --calibration w.h5 "$img" \
    > /dev/null 2> r.log; rc=$?; set -e
refused "explicit fp32 on an int8 classifier" r.log 1 "$rc" "--precision fp32 differs from the classifier's 'int8'"
# A features file whose precision is not the classifier's is refused by
# the extract classify runs (corpus mode, --features reused).
set +e; $T "$BNECK" classify --weights w.h5 --classifier cl_old.h5 --images c --out q.csv --features b.h5 \
    --progress none > /dev/null 2> r.log; rc=$?; set -e
refused "corpus mode: bf16 features file for an fp32 classifier" r.log 1 "$rc" "b.h5 holds bf16 features"
[ ! -e q.csv ] || fail "a refused corpus classify wrote q.csv"

# 4b. Real int8, where this build has bneck calibrate and an int8 engine runs
#     here: the calibration file's SHA-256 is recorded, a resume with another
#     calibration is refused, and classify needs the very file.
if "$BNECK" calibrate --help > /dev/null 2>&1; then
    if $T "$BNECK" calibrate --weights w.h5 --images c --count 4 --out cal4.h5 > cal.log 2>&1 &&
        $T "$BNECK" calibrate --weights w.h5 --images c --count 6 --out cal6.h5 >> cal.log 2>&1 &&
        ! cmp -s cal4.h5 cal6.h5; then
        s4=$(sha256sum cal4.h5 | cut -c1-64)
        s6=$(sha256sum cal6.h5 | cut -c1-64)
        if extract q8.h5 --precision int8 --calibration cal4.h5 -q > q8.log 2>&1; then
            [ "$(attrs q8.h5)" = "int8|$s4" ] || fail "q8.h5 records '$(attrs q8.h5)', want 'int8|$s4'"
            set +e; extract q8.h5 --precision int8 --calibration cal6.h5 > r.log 2>&1; rc=$?; set -e
            refused "int8 resume with another calibration" r.log 1 "$rc" "q8.h5 holds int8 features" "$s4" "$s6"
            set +e; extract q8.h5 > r.log 2>&1; rc=$?; set -e
            refused "fp32 resume of real int8" r.log 1 "$rc" "q8.h5 holds int8 features" "asks for --precision fp32"
            extract q8.h5 --precision int8 --calibration cal4.h5 > r.log 2>&1 || { cat r.log; fail "int8 resume"; }
            grep -q "resuming q8.h5: 20 of 20 images done, 0 to go (int8)" r.log || { cat r.log; fail "int8 not resumed"; }
            $T "$BNECK" train --features q8.h5 --out cl_q8.h5 --steps 30 -q > /dev/null 2>&1 || fail "train on q8.h5"
            [ "$(attrs cl_q8.h5)" = "int8|$s4" ] || fail "cl_q8.h5 records '$(attrs cl_q8.h5)', want 'int8|$s4'"
            set +e; "$BNECK" classify --weights w.h5 --classifier cl_q8.h5 --calibration cal6.h5 "$img" > /dev/null 2> r.log
            rc=$?; set -e
            refused "int8 classify with the other calibration" r.log 1 "$rc" "has sha256 $s6" "$s4"
            $T "$BNECK" classify --weights w.h5 --classifier cl_q8.h5 --calibration cal4.h5 "$img" > p8.txt 2> p8.err \
                || { cat p8.err; fail "int8 classify with its calibration"; }
            [ "$(head -1 p8.txt)" = "$img" ] || { cat p8.txt; fail "int8 classify output"; }
        else
            [ ! -e q8.h5 ] || { cat q8.log; fail "an int8 run that failed left q8.h5 behind"; }
            echo "note: no int8 engine here ($(grep -m1 error q8.log)); real int8 is not checked"
        fi
    else
        echo "note: bneck calibrate did not make two different files ($(grep -m1 . cal.log)); real int8 is not checked"
    fi
else
    echo "note: this build has no bneck calibrate; real int8 is not checked"
fi

# 5. join: shards of different precisions are refused.
extract s0.h5 --shard 0/2 -q > /dev/null 2>&1 || fail "shard 0"
extract s1.h5 --shard 1/2 -q > /dev/null 2>&1 || fail "shard 1"
set_prec s1.h5 bf16 ""
set +e; $T "$BNECK" join --out j.h5 s0.h5 s1.h5 > /dev/null 2> r.log; rc=$?; set -e
refused "join fp32 and bf16 shards" r.log 1 "$rc" "s0.h5 holds fp32 features" "s1.h5 holds bf16 features" "cannot be mixed"
set_prec s1.h5 fp32 ""
$T "$BNECK" join --out j.h5 s0.h5 s1.h5 -q > /dev/null 2> r.log || { cat r.log; fail "join"; }
[ "$(attrs j.h5)" = "fp32|" ] || fail "j.h5 records '$(attrs j.h5)', want 'fp32|'"

# 6. retrain and run resume through extract, so they refuse too.
mkdir bn
cp b.h5 bn/features.h5
set +e; $T "$BNECK" retrain --image_dir c --weights w.h5 --bottleneck_dir bn --output_graph rt.h5 \
    --how_many_training_steps 10 --testing_percentage 25 --validation_percentage 25 --threads 1 > r.log 2>&1; rc=$?; set -e
refused "retrain on a bf16 bottleneck file" r.log 1 "$rc" "holds bf16 features" "--precision fp32"
[ ! -e rt.h5 ] || fail "a refused retrain wrote a classifier"
cat > j.ini <<'INI'
[job]
stages = extract, train
weights = w.h5
progress = none
[corpus]
images = c
validation-percentage = 25
testing-percentage = 25
[outputs]
features = b.h5
classifier = cl_job.h5
[engine]
threads = 1
INI
set +e; $T "$BNECK" run j.ini -q > r.log 2>&1; rc=$?; set -e
refused "run on a bf16 features file" r.log 1 "$rc" "holds bf16 features"
[ ! -e cl_job.h5 ] || fail "a refused job trained"
set +e; $T "$BNECK" run j.ini --set engine.precision=bf16 --set outputs.features=f.h5 -q > r.log 2>&1; rc=$?; set -e
[ "$rc" != 0 ] || fail "run: engine.precision=bf16 on an fp32 file was accepted"
grep -qE "holds fp32 features|offers bf16" r.log || { cat r.log; fail "run: engine.precision did not reach extract"; }
echo "precision: all checks passed"
