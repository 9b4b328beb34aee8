#!/bin/bash
# classify.sh: `bneck classify`, both modes, and the classifier file.
#  - images on the command line: the output format (path, then
#    "label (score = 0.12345)" lines, top 5 capped at the class count, scores
#    descending), the scores equal softmax(x W + b) computed with numpy from
#    `bneck features`, a bad image is reported and gives exit status 1;
#  - a classifier written by h5py from docs/classify.md is read and scored
#    the same way;
#  - refusals: other weights (both hashes shown), another --preprocess, the
#    features file given as the classifier;
#  - a corpus at 2 ranks: one CSV row per image in features-file order, equal
#    byte for byte to the 1-rank CSV; scores equal numpy's from the features;
#    the accuracy on test rows equals train's test accuracy and confusion
#    matrix (when `bneck train` works); a rerun reuses the features file; a
#    manifest with a bad image and a comma in a path gives a quoted path, a
#    'failed' row with empty cells, a warning and exit status 0.
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing"; exit 77; }
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"  # relative image paths: the split hashes the path as given, so it must not depend on mktemp
mpi="${MPIEXEC:-mpirun --oversubscribe} --bind-to none"
T="timeout 300"

bn_mkweights "$tmp/w.h5" --seed 5 -q
"$BNECK" mkcorpus "$tmp/c" --classes 3 --per-class 12 --seed 4 -q
$T "$BNECK" extract --images c --weights "$tmp/w.h5" --out "$tmp/f.h5" --threads 1 --progress none -q \
    > "$tmp/extract.log" 2>&1 || { cat "$tmp/extract.log"; fail "extract"; }

# A classifier written with h5py straight from docs/classify.md (random
# weights large enough to give varied scores).
"$PY" - "$tmp/w.h5" "$tmp/h5py.h5" <<'PY' || fail "writing a classifier with h5py"
import sys, hashlib, h5py, numpy as np
sha = hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()
rng = np.random.default_rng(1)
C, dim = 3, 2048
with h5py.File(sys.argv[2], "w") as f:
    for k, v in [("format", "bneck-classifier"), ("weights_sha256", sha), ("preprocess", "keras"),
                 ("dct", "accurate"), ("corpus_sha256", "0" * 64), ("features_file", "f.h5"),
                 ("settings", "{}"), ("created_by", "h5py")]:
        f.attrs[k] = np.bytes_(v)
    f.attrs["version"] = np.int32(1)
    f.attrs["n_classes"] = np.int32(C)
    f.attrs["dim"] = np.int32(dim)
    f.attrs["test_accuracy"] = np.float64("nan")
    for k in ("test_n", "train_n", "excluded_n"):
        f.attrs[k] = np.int64(0)
    f["W"] = rng.normal(0, 0.05, (dim, C))
    f["b"] = np.array([0.1, -0.2, 0.05])
    f["label_names"] = np.array([b"daisy", b"dandelion", b"roses"])
    f["history"] = np.zeros(0, dtype=[("step", "<i8"), ("train_accuracy", "<f8"), ("cross_entropy", "<f8"),
                                       ("validation_accuracy", "<f8"), ("validation_n", "<i8")])
    f["confusion"] = np.zeros((C, C), dtype="<i8")
PY

# The classifier from bneck train, when it works; else the h5py one.
trained=0
if $T "$BNECK" train --features "$tmp/f.h5" --out "$tmp/cl.h5" --steps 50 -q > "$tmp/train.log" 2>&1; then
    trained=1
else
    echo "note: bneck train did not work here; using the h5py classifier only"
    cat "$tmp/train.log"
    cp "$tmp/h5py.h5" "$tmp/cl.h5"
fi

# ---- images on the command line
imgs=("$tmp/c/daisy/daisy_0000.jpg" "$tmp/c/dandelion/dandelion_0003.jpg" "$tmp/c/roses/roses_0005.jpg"
      "$tmp/c/roses/roses_0011.jpg")
"$BNECK" features --weights "$tmp/w.h5" --threads 1 --out "$tmp/x.npy" "${imgs[@]}"
check_out() {  # log classifier ntop: the printed blocks against numpy
    "$PY" - "$1" "$2" "$tmp/x.npy" "$3" "${imgs[@]}" <<'PY'
import sys, re, h5py, numpy as np
log, clf, xnpy, ntop, paths = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
with h5py.File(clf, "r") as f:
    W, b = f["W"][()], f["b"][()]
    names = [s.decode() for s in f["label_names"][()]]
x = np.load(xnpy).astype(np.float64)
z = x @ W + b
p = np.exp(z - z.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
blocks = open(log).read().split("\n\n")
assert len(blocks) == len(paths), "%d blocks for %d images" % (len(blocks), len(paths))
line_re = re.compile(r"^[a-z0-9 _]+ \(score = [0-9]\.[0-9]{5}\)$")
for i, (blk, path) in enumerate(zip(blocks, paths)):
    lines = blk.strip("\n").split("\n")
    assert lines[0] == path, (lines[0], path)
    assert len(lines) == 1 + ntop, "image %d: %d score lines, want %d" % (i, len(lines) - 1, ntop)
    scores = []
    for ln in lines[1:]:
        assert line_re.match(ln), "bad line: %r" % ln
        lab, s = ln.rsplit(" (score = ", 1)
        s = float(s[:-1])
        scores.append(s)
        assert abs(s - p[i, names.index(lab)]) <= 1e-5, (path, lab, s, p[i, names.index(lab)])
    assert scores == sorted(scores, reverse=True), scores
    assert sum(scores) <= 1 + 1e-5 * ntop, scores
    assert abs(scores[0] - p[i].max()) <= 1e-5, "top-1 is not the largest probability"
print("checked %d images against numpy" % len(paths))
PY
}
for clf in cl h5py; do
    "$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/$clf.h5" --threads 1 "${imgs[@]}" > "$tmp/one.log" \
        2> "$tmp/one.err" || { cat "$tmp/one.err"; fail "classify ($clf)"; }
    check_out "$tmp/one.log" "$tmp/$clf.h5" 3 || { cat "$tmp/one.log"; fail "output of classify ($clf)"; }
done
"$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/cl.h5" --top 2 --batch 3 --threads 1 "${imgs[@]}" \
    > "$tmp/two.log" 2>&1 || fail "classify --top 2"
check_out "$tmp/two.log" "$tmp/cl.h5" 2 || { cat "$tmp/two.log"; fail "--top 2"; }

# A bad image among good ones: reported on stderr, the others printed, exit 1.
echo "not a picture" > "$tmp/bad.jpg"
set +e
"$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/cl.h5" --threads 1 "${imgs[0]}" "$tmp/bad.jpg" "${imgs[1]}" \
    > "$tmp/bad.out" 2> "$tmp/bad.err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "a bad image: exit $rc, want 1"
grep -q "^$tmp/bad.jpg: error: " "$tmp/bad.err" || fail "bad image not reported: $(cat "$tmp/bad.err")"
[ "$(grep -c "^$tmp/" "$tmp/bad.out")" = 2 ] || fail "the good images were not all classified: $(cat "$tmp/bad.out")"

# ---- refusals
refused() {  # what pattern command...: exit 1 and a message matching pattern
    local what=$1 pat=$2; shift 2
    set +e
    $T "$@" > "$tmp/ref.log" 2>&1
    local rc=$?
    set -e
    [ "$rc" = 1 ] || { cat "$tmp/ref.log"; fail "$what: exit $rc, want 1"; }
    grep -q -- "$pat" "$tmp/ref.log" || fail "$what: message lacks '$pat': $(cat "$tmp/ref.log")"
}
bn_mkweights "$tmp/w2.h5" --seed 6 -q
sha1=$("$PY" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$tmp/w.h5")
sha2=$("$PY" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$tmp/w2.h5")
refused "other weights" "$sha2" "$BNECK" classify --weights "$tmp/w2.h5" --classifier "$tmp/cl.h5" "${imgs[0]}"
grep -q "$sha1" "$tmp/ref.log" || fail "other weights: the classifier's hash is not shown"
grep -q "other weights" "$tmp/ref.log" || fail "other weights: reason not given"
refused "other weights, corpus mode" "$sha2" $mpi -n 2 "$BNECK" classify --weights "$tmp/w2.h5" \
    --classifier "$tmp/cl.h5" --images c --out "$tmp/never.csv"
[ ! -e "$tmp/never.csv" ] && [ ! -e "$tmp/never.csv.features.h5" ] || fail "a refused run left files"
refused "other preprocess" "preprocess" "$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/cl.h5" \
    --preprocess tf2015 "${imgs[0]}"
refused "features file as classifier" "did you pass the features file" "$BNECK" classify --weights "$tmp/w.h5" \
    --classifier "$tmp/f.h5" "${imgs[0]}"
refused "missing classifier" "$tmp/none.h5" "$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/none.h5" \
    "${imgs[0]}"
set +e
"$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/cl.h5" --images c > /dev/null 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || fail "corpus mode without --out: exit $rc, want 2"

# ---- a corpus
# 1 rank, reusing the features file made above (10/10 split): nothing is extracted.
$T $mpi -n 1 "$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/cl.h5" --images c \
    --out "$tmp/p1.csv" --features "$tmp/f.h5" --threads 1 --progress none > "$tmp/p1.log" 2>&1 \
    || { cat "$tmp/p1.log"; fail "corpus mode, 1 rank"; }
grep -q "^features: 0 done, 0 failed" "$tmp/p1.log" || fail "the existing features file was not reused: $(cat "$tmp/p1.log")"
# 2 ranks, a new features file (the default name).
$T $mpi -n 2 "$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/cl.h5" --images c \
    --out "$tmp/p2.csv" --threads 1 --batch 4 --progress none > "$tmp/p2.log" 2>&1 \
    || { cat "$tmp/p2.log"; fail "corpus mode, 2 ranks"; }
cat "$tmp/p2.log"
[ -f "$tmp/p2.csv.features.h5" ] || fail "default features file not kept"
[ ! -e "$tmp/p2.csv.partial" ] || fail "p2.csv.partial left"
cmp "$tmp/p1.csv" "$tmp/p2.csv" || fail "the 2-rank CSV differs from the 1-rank CSV"
grep -q "^classified 36 images, 0 failed" "$tmp/p2.log" || fail "no summary"
"$PY" - "$tmp/p2.csv" "$tmp/p2.csv.features.h5" "$tmp/cl.h5" "$tmp/p2.log" "$trained" "$tmp/f.h5" <<'PY' || fail "CSV contents"
import sys, csv, re, h5py, numpy as np
out, feats, clf, log, trained, f0 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
rows = list(csv.reader(open(out, newline="")))
assert rows[0] == ["path", "true_label", "status", "label_1", "score_1", "label_2", "score_2", "label_3", "score_3"], rows[0]
rows = rows[1:]
with h5py.File(feats, "r") as f:
    off, raw = f["path_offsets"][()], f["path_bytes"][()].tobytes()
    paths = [raw[off[i]:off[i + 1]].decode() for i in range(len(off) - 1)]
    X = f["features"][()].astype(np.float64)
    y = f["label"][()]
    fnames = [s.decode() for s in f["label_names"][()]]
with h5py.File(clf, "r") as f:
    W, b = f["W"][()], f["b"][()]
    names = [s.decode() for s in f["label_names"][()]]
    test_acc, test_n, conf = float(f.attrs["test_accuracy"]), int(f.attrs["test_n"]), f["confusion"][()]
assert [r[0] for r in rows] == paths, "CSV rows are not in features-file order"
z = X @ W + b
p = np.exp(z - z.max(axis=1, keepdims=True)); p /= p.sum(axis=1, keepdims=True)
right = 0
for i, r in enumerate(rows):
    assert r[1] == fnames[y[i]] and r[2] == "ok", r
    labs, sc = r[3::2], [float(s) for s in r[4::2]]
    assert sc == sorted(sc, reverse=True)
    for l, s in zip(labs, sc):
        assert abs(s - p[i, names.index(l)]) <= 1e-5, (r, p[i])
    right += labs[0] == fnames[y[i]]
m = re.search(r"accuracy on labelled images: ([0-9.]+)% \(N=36", open(log).read())
assert m and abs(float(m.group(1)) - 100.0 * right / 36) < 0.051, (m and m.group(0), right)
if trained:
    # train's test accuracy and confusion matrix, from the same features.
    split = h5py.File(f0, "r")["split"][()]
    rows0 = list(csv.reader(open(out.replace("p2.csv", "p1.csv"), newline="")))[1:]
    t = [i for i in range(len(split)) if split[i] == 2]
    cm = np.zeros_like(conf)
    for i in t:
        cm[names.index(rows0[i][1]), names.index(rows0[i][3])] += 1
    assert len(t) == test_n, (len(t), test_n)
    assert (cm == conf).all(), (cm, conf)
    if test_n:
        assert abs(np.trace(cm) / test_n - test_acc) < 1e-12, (np.trace(cm) / test_n, test_acc)
    print("test rows: %d, accuracy %.3f, the same as train's" % (test_n, test_acc))
print("CSV: %d rows checked against numpy" % len(rows))
PY

# A rerun resumes the features file: nothing extracted, the same CSV.
cp "$tmp/p2.csv" "$tmp/p2.first"
$T $mpi -n 2 "$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/cl.h5" --images c \
    --out "$tmp/p2.csv" --threads 1 --batch 4 --progress none > "$tmp/p2b.log" 2>&1 \
    || { cat "$tmp/p2b.log"; fail "rerun"; }
grep -q "resuming" "$tmp/p2b.log" && grep -q "^features: 0 done, 0 failed" "$tmp/p2b.log" \
    || fail "the rerun did not reuse the features file: $(cat "$tmp/p2b.log")"
cmp "$tmp/p2.first" "$tmp/p2.csv" || fail "the rerun wrote another CSV"

# A manifest with a bad image and a comma in a path.
mkdir -p "$tmp/m"
cp "${imgs[0]}" "$tmp/m/a,b.jpg"
cp "${imgs[1]}" "$tmp/m/two.jpg"
cp "${imgs[2]}" "$tmp/m/three.jpg"
cp "$tmp/bad.jpg" "$tmp/m/bad.jpg"
printf 'a,b.jpg\tdaisy\nbad.jpg\tdaisy\ntwo.jpg\tdandelion\nthree.jpg\troses\n' > "$tmp/m/list.tsv"
$T $mpi -n 2 "$BNECK" classify --weights "$tmp/w.h5" --classifier "$tmp/cl.h5" --manifest "$tmp/m/list.tsv" \
    --out "$tmp/m.csv" --top 2 --threads 1 --progress none > "$tmp/m.log" 2>&1 || { cat "$tmp/m.log"; fail "manifest"; }
grep -q "^classified 3 images, 1 failed" "$tmp/m.log" || fail "manifest summary: $(cat "$tmp/m.log")"
grep -q "could not be decoded" "$tmp/m.log" || fail "no warning for the bad image"
grep -q '^"[^"]*/a,b.jpg",daisy,ok,' "$tmp/m.csv" || fail "path with a comma not quoted: $(cat "$tmp/m.csv")"
grep -q '/bad.jpg,daisy,failed,,,,$' "$tmp/m.csv" || fail "failed row: $(cat "$tmp/m.csv")"
[ "$(wc -l < "$tmp/m.csv")" = 5 ] || fail "manifest CSV: $(cat "$tmp/m.csv")"
echo "classify: all checks passed"
exit 0
