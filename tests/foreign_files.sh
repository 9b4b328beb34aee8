#!/bin/bash
# foreign_files.sh: features and classifier files that bneck did not write,
# or that a newer bneck wrote. Every reader (train, report, join, classify,
# and extract resuming into --out) must either refuse the file with exit 1
# and a message naming it and the reason, or (a file another tool wrote in
# the layout of docs/format.md) read it. extract must leave a refused --out
# byte for byte as it was, and at 2 ranks no rank may be left waiting.
#
# Needs: $BNECK; $PYTHON3 (default /usr/bin/python3) with h5py and numpy
# (Debian python3-h5py); skips (77) without them.
set -u
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import h5py, numpy' 2>/dev/null || { echo "SKIP: $PY has no h5py or numpy"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
two="${MPIEXEC:-mpirun --oversubscribe} -n 2"
cd "$tmp" || fail "cd $tmp"

expect() {  # status pattern command...: run, check the exit status and that stderr matches
    local want=$1 pat=$2; shift 2
    timeout 120 "$@" > out 2> err
    local rc=$?
    [ $rc = "$want" ] || { cat out err; fail "exit $rc, want $want: $*"; }
    grep -qE -- "$pat" err || { cat err; fail "message /$pat/ missing: $*"; }
    echo "ok ($want): $(grep -E -- "$pat" err | head -1)"
}
ok() {  # command...: must succeed
    timeout 120 "$@" > out 2> err
    local rc=$?
    [ $rc = 0 ] || { cat out err; fail "exit $rc: $*"; }
    echo "ok (0): $*" | sed "s|$BNECK|bneck|"
}
# extract_refuses FILE PATTERN: resuming into a copy of FILE is refused, and
# the copy is unchanged.
extract_refuses() {
    cp "$1" "x-$1"
    local before; before=$(sha256sum < "x-$1")
    expect 1 "$2" $two "$BNECK" extract --images corpus --weights w.h5 --out "x-$1" --batch 4 -q
    [ "$(sha256sum < "x-$1")" = "$before" ] || fail "extract changed the refused file x-$1"
}

bn_mkweights w.h5 --seed 1 -q 2> /dev/null || fail "mkweights"
"$BNECK" mkcorpus corpus --classes 2 --per-class 4 -q > /dev/null 2>&1 || fail "mkcorpus"
"$BNECK" mkfeatures f.h5 --rows 200 --classes 3 -q || fail "mkfeatures"
"$BNECK" train --features f.h5 --out c.h5 --steps 20 -q > /dev/null 2>&1 || fail "train on f.h5"

# The foreign and future files, made with h5py.
"$PY" - <<'EOF' || fail "making the files with h5py"
import shutil
import h5py
import numpy as np

def copy_with(src, dst, **attrs):
    shutil.copy(src, dst)
    with h5py.File(dst, 'a') as f:
        for k, v in attrs.items():
            f.attrs[k] = v

# Another tool's embeddings (no format attribute), and a Keras model file.
with h5py.File('other.h5', 'w') as f:
    f['embeddings'] = np.zeros((10, 2048), np.float32)
    f['labels'] = np.arange(10)
    f.attrs['created_by'] = 'some other tool'
with h5py.File('keras.h5', 'w') as f:
    f.attrs['keras_version'] = '2.15.0'
    f.attrs['backend'] = 'tensorflow'
    f['model_weights/dense/dense/kernel:0'] = np.zeros((2048, 5), np.float32)
# A newer format version, and attributes of the wrong kind.
copy_with('f.h5', 'v2.h5', version=np.int32(2))
copy_with('c.h5', 'cv2.h5', version=np.int32(2))
copy_with('f.h5', 'fint.h5', format=np.int64(7))
copy_with('c.h5', 'cint.h5', format=np.int64(7))
copy_with('c.h5', 'cvstr.h5', version='1')
# The same format attribute as h5py writes it (variable-length), and a
# version-1 file with attributes and datasets this bneck does not know.
copy_with('f.h5', 'fvlen.h5', format='bneck-features')
copy_with('c.h5', 'cvlen.h5', format='bneck-classifier')
copy_with('f.h5', 'extras.h5', future_note='added by a later version', future_level=np.int64(3))
with h5py.File('extras.h5', 'a') as f:
    f['future/table'] = np.arange(5)

# A features file another tool wrote from docs/format.md alone: h5py's
# default types (variable-length strings, int64), no timing tables, no
# settings beyond '{}'. Features are non-negative, as every network's are.
rng = np.random.default_rng(1)
n, c = 300, 3
lab = np.arange(n) % c
centers = np.abs(rng.normal(size=(c, 2048)))
with h5py.File('tool.h5', 'w') as f:
    a = f.attrs
    a['format'] = 'bneck-features'
    a['version'] = 1
    a['weights_sha256'] = '0' * 64
    a['preprocess'] = 'keras'
    a['dct'] = 'accurate'
    a['corpus_sha256'] = '1' * 64
    a['n_images'] = n
    a['n_classes'] = c
    a['settings'] = '{}'
    a['complete'] = 1
    a['created_by'] = 'another tool 0.1'
    a['runs'] = 0
    f['features'] = np.abs(centers[lab] + 0.3 * rng.normal(size=(n, 2048))).astype(np.float32)
    f['status'] = np.ones(n, np.uint8)
    f['error_code'] = np.zeros(n, np.uint8)
    f['error_reason'] = np.zeros(n, 'S160')
    f['label'] = lab.astype(np.int32)
    f['split'] = np.array([0 if i % 10 < 8 else 1 if i % 10 == 8 else 2 for i in range(n)], np.uint8)
    paths = [('img/c%d/%04d.jpg' % (l, i)).encode() for i, l in enumerate(lab)]
    off = np.zeros(n + 1, np.uint64)
    off[1:] = np.cumsum([len(p) for p in paths])
    f['path_offsets'] = off
    f['path_bytes'] = np.frombuffer(b''.join(paths), np.uint8)
    f['label_names'] = np.array([b'alpha', b'beta', b'gamma'])
# The same, but claiming runs it has no timing tables for.
copy_with('tool.h5', 'toolruns.h5', runs=np.int64(2))

# Shapes that claim more than the file stores (a damaged dataspace, or a
# dataset created and never written): refused before any allocation.
def rewrite(src, dst, name, make):
    shutil.copy(src, dst)
    with h5py.File(dst, 'a') as f:
        del f[name]
        make(f)
h = h5py.File('c.h5', 'r')['history'][...]
rewrite('c.h5', 'chist_huge.h5', 'history', lambda f: f.create_dataset('history', shape=(10**12,), dtype=h.dtype, chunks=(1000,)))
rewrite('f.h5', 'fstatus_huge.h5', 'status', lambda f: f.create_dataset('status', shape=(10**12,), dtype='u1', chunks=(4096,)))
with h5py.File('fstatus_huge.h5', 'a') as f:
    f.attrs['n_images'] = np.int64(10**12)
# History tables whose fields have other types: float32 steps convert; text
# steps cannot.
other = [('train_accuracy', 'f8'), ('cross_entropy', 'f8'), ('validation_accuracy', 'f8'), ('validation_n', 'i8')]
def history_as(dst, step_type):
    def make(f):
        a = np.zeros(h.shape, np.dtype([('step', step_type)] + other))
        for n in a.dtype.names[1:]:
            a[n] = h[n]
        if step_type != 'S8':
            a['step'] = h['step']
        f['history'] = a
    rewrite('c.h5', dst, 'history', make)
history_as('chist_f32.h5', 'f4')
history_as('chist_text.h5', 'S8')
EOF

# ---------------------------------------------------------------- refused as features
expect 1 "other.h5: not a bneck features file \(format attribute missing\)" "$BNECK" train --features other.h5 --out o.h5
expect 1 "other.h5: not a bneck features file" $two "$BNECK" train --features other.h5 --out o.h5
expect 1 "keras.h5: not a bneck features file \(format attribute missing\)" "$BNECK" train --features keras.h5 --out o.h5
expect 1 "v2.h5: features file version 2 is not supported \(this bneck reads version 1\); use the bneck that wrote it" \
    $two "$BNECK" train --features v2.h5 --out o.h5
expect 1 "fint.h5: not a bneck features file \(format attribute not a single text value\)" "$BNECK" train --features fint.h5 --out o.h5
expect 1 "c.h5: is a classifier .*not a features file" "$BNECK" join --out j.h5 c.h5
expect 1 "other.h5: not a bneck features file" "$BNECK" join --out j.h5 other.h5
expect 1 "v2.h5: features file version 2 is not supported" "$BNECK" join --out j.h5 v2.h5
[ ! -e j.h5 ] || fail "join left j.h5 behind"
expect 1 "other.h5: not a bneck features or classifier file \(an HDF5 file whose 'format' attribute is missing\)" "$BNECK" report other.h5
expect 1 "fint.h5: not a bneck features or classifier file \(an HDF5 file whose 'format' attribute is not a single text value\)" "$BNECK" report fint.h5
expect 1 "v2.h5: features file version 2 is not supported" "$BNECK" report v2.h5
expect 1 "toolruns.h5: group 'timing' is missing but attribute 'runs' says 2 runs: the file is damaged" "$BNECK" report toolruns.h5
echo "plain text" > text.h5
expect 1 "text.h5: not a bneck features or classifier file \(not an HDF5 file\)" "$BNECK" report text.h5
head -c 3000 f.h5 > cut.h5
expect 1 "cut.h5: not a bneck features or classifier file \(cannot open as HDF5 \(truncated or damaged\?\)\)" "$BNECK" report cut.h5

# ---------------------------------------------------------------- extract will not write into them
extract_refuses other.h5 "x-other.h5: not a bneck features file \(an HDF5 file whose 'format' attribute is missing\); use another --out"
extract_refuses keras.h5 "x-keras.h5: not a bneck features file \(an HDF5 file whose 'format' attribute is missing\)"
extract_refuses v2.h5 "x-v2.h5: version 2 of the bneck features format, but this bneck reads version 1"
extract_refuses fint.h5 "x-fint.h5: not a bneck features file \(an HDF5 file whose 'format' attribute is not a single text value\)"
extract_refuses c.h5 "x-c.h5: not a bneck features file \(its format is 'bneck-classifier', not 'bneck-features'\)"

# ---------------------------------------------------------------- refused as classifiers
expect 1 "other.h5: not a bneck classifier: its 'format' attribute is missing \(an HDF5 file from another tool\?\)" \
    "$BNECK" classify --classifier other.h5 --weights w.h5 corpus
expect 1 "keras.h5: not a bneck classifier: its 'format' attribute is missing" \
    $two "$BNECK" classify --classifier keras.h5 --weights w.h5 corpus
expect 1 "cv2.h5: unknown bneck-classifier version 2 \(this bneck reads version 1\); use the bneck that wrote it, or retrain" \
    "$BNECK" classify --classifier cv2.h5 --weights w.h5 corpus
expect 1 "cint.h5: not a bneck classifier: its 'format' attribute is not a single text value" \
    "$BNECK" classify --classifier cint.h5 --weights w.h5 corpus
expect 1 "cvstr.h5: attribute 'version' is not a single integer: the file is damaged" \
    "$BNECK" classify --classifier cvstr.h5 --weights w.h5 corpus
expect 1 "f.h5: not a bneck classifier: format is 'bneck-features'; did you pass the features file\?" \
    "$BNECK" classify --classifier f.h5 --weights w.h5 corpus
expect 1 "cv2.h5: unknown bneck-classifier version 2" "$BNECK" report cv2.h5
expect 1 "cvstr.h5: attribute 'version' is not a single integer" "$BNECK" report cvstr.h5

# ---------------------------------------------------------------- shapes beyond the storage
expect 1 "chist_huge.h5: dataset 'history' stores 0 bytes but its 1000000000000 entries need 40000000000000: the file is truncated or damaged" \
    "$BNECK" classify --classifier chist_huge.h5 --weights w.h5 corpus
expect 1 "chist_huge.h5: dataset 'history' stores 0 bytes" "$BNECK" report chist_huge.h5
expect 1 "fstatus_huge.h5: dataset 'status' stores 0 bytes but its 1000000000000 elements need 1000000000000" \
    $two "$BNECK" train --features fstatus_huge.h5 --out o.h5
expect 1 "fstatus_huge.h5: dataset 'status' stores 0 bytes" "$BNECK" report fstatus_huge.h5
expect 1 "chist_text.h5: cannot read dataset 'history'" "$BNECK" report chist_text.h5
ok "$BNECK" report chist_f32.h5
grep -q "chist_f32.h5: classifier, 3 classes" out || { cat out; fail "report chist_f32.h5: no classifier summary"; }

# ---------------------------------------------------------------- read
# Variable-length format attributes, and unknown additions to version 1.
ok "$BNECK" train --features fvlen.h5 --out o1.h5 --steps 20 -q
ok "$BNECK" report cvlen.h5
grep -q "cvlen.h5: classifier, 3 classes" out || { cat out; fail "report cvlen.h5: no classifier summary"; }
ok $two "$BNECK" train --features extras.h5 --out o2.h5 --steps 20 -q
ok "$BNECK" report extras.h5
# Another tool's file in the documented layout: it trains (the classes are
# far apart, so the test accuracy is 100%), and report reads it and the
# classifier trained on it.
ok $two "$BNECK" train --features tool.h5 --out tc.h5 --steps 100
grep -q "Final test accuracy = 100.0% (N=30)" out || { cat out err; fail "train on tool.h5: want 100% on 30 test images"; }
ok "$BNECK" report tool.h5 tc.h5
grep -q "tool.h5: features file, 300 images in 3 classes" out || { cat out; fail "report tool.h5: no features summary"; }
grep -q "no finished run recorded" out || { cat out; fail "report tool.h5: should say no run is recorded"; }
grep -q "tc.h5: classifier, 3 classes, trained on tool.h5" out || { cat out; fail "report tc.h5: no classifier summary"; }
echo "foreign_files: all passed"
