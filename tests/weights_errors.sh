#!/bin/bash
# weights_errors.sh: the weights reader's answer to damaged and differently
# named Keras files. A good file comes from `bneck mkweights OUT.h5 --seed N`
# (written by io/weights.c in the Keras layout); h5py then damages or rebuilds
# copies of it, and `bneck features --weights W.h5 IMAGE` must either fail
# (exit 1) with the specific message on stderr, or load the file and give
# the same features as the original.
#
# Features are compared as bneck features' stdout with the weights path and
# any 64-hex-digit string (the weights' SHA-256, which differs between
# renamed copies) blanked out.
#
# Needs: $BNECK (absolute path of the binary); $PYTHON3 (default
# /usr/bin/python3) with h5py and numpy (Debian python3-h5py).
# The harness may run this with sh (SH_LOG_COMPILER = $(SHELL)): re-run under bash.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
set -eu
export LC_ALL=C

: "${BNECK:?set BNECK to the absolute path of the bneck binary}"
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import h5py, numpy' 2>/dev/null || { echo "SKIP: $PY lacks h5py or numpy (Debian: python3-h5py)"; exit 77; }
for cmd in mkweights features; do
    if "$BNECK" "$cmd" --help 2>&1 | grep -q "unknown command"; then
        echo "SKIP: this bneck has no '$cmd' command"
        exit 77
    fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/bneck-weights.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# ---------------------------------------------------------------- inputs
"$BNECK" mkweights "$T/good.h5" --seed 7 > "$T/mk.out" 2>&1 || { cat "$T/mk.out" >&2; fail "mkweights"; }
[ -s "$T/good.h5" ] || fail "mkweights wrote no file"
"$BNECK" mkcorpus "$T/img" --classes 2 --per-class 1 --seed 3 > "$T/mc.out" 2>&1 ||
    { cat "$T/mc.out" >&2; fail "mkcorpus"; }
IMG=$(find "$T/img" -type f | sort | head -n 1)
[ -n "$IMG" ] || fail "mkcorpus wrote no image"

# features W OUT: run bneck features on IMG with weights W; status in $RC,
# stdout (normalised) in OUT, stderr in OUT.err. The engine is pinned to the
# portable GEMM one: this test is about loading weights, and needs the same
# engine in every run for the outputs to be comparable.
features() {
    RC=0
    "$BNECK" features --backend gemm --weights "$1" "$IMG" > "$2.raw" 2> "$2.err" || RC=$?
    local esc
    esc=$(printf '%s' "$1" | sed 's/[][\.*^$/]/\\&/g')
    sed -e "s/$esc/WEIGHTS/g" -e 's/[0-9a-f]\{64\}/SHA256/g' "$2.raw" > "$2"
}

# Each case's file (about 88 MB) is removed once checked.
# expect_error W MESSAGE: features with W exits 1 and stderr contains MESSAGE.
expect_error() {
    features "$1" "$T/out"
    [ "$RC" = 1 ] || { cat "$T/out.err" >&2; fail "$(basename "$1"): exit $RC, expected 1"; }
    grep -qF -- "$2" "$T/out.err" || { cat "$T/out.err" >&2; fail "$(basename "$1"): stderr lacks: $2"; }
    ok "$(basename "$1"): $2"
    rm -f "$1"
}

# expect_differs W: features with W succeed but differ from the good file's
# (the comparison above can tell a misordered model apart).
expect_differs() {
    features "$1" "$T/out"
    [ "$RC" = 0 ] || { cat "$T/out.err" >&2; fail "$(basename "$1"): exit $RC, expected 0"; }
    ! cmp -s "$T/out" "$T/ref" || fail "$(basename "$1"): features equal the good file's; expected a difference"
    ok "$(basename "$1") loads, different features"
    rm -f "$1"
}

# expect_same W: features with W succeed and equal those of the good file.
expect_same() {
    features "$1" "$T/out"
    [ "$RC" = 0 ] || { cat "$T/out.err" >&2; fail "$(basename "$1"): exit $RC, expected 0"; }
    cmp -s "$T/out" "$T/ref" || { diff "$T/ref" "$T/out" | head -n 20 >&2; fail "$(basename "$1"): features differ from the good file's"; }
    ok "$(basename "$1") loads, same features"
    rm -f "$1"
}

features "$T/good.h5" "$T/ref"
[ "$RC" = 0 ] || { cat "$T/ref.err" >&2; fail "good file: exit $RC"; }
[ -s "$T/ref" ] || fail "good file: no features printed"
ok "good file loads"

# ---------------------------------------------------------------- h5py edits
# edit.py CASE SRC DST: DST is SRC damaged or rebuilt as CASE says.
cat > "$T/edit.py" <<'EOF'
import re, shutil, sys
import h5py, numpy as np

case, src, dst = sys.argv[1:4]

def names(attr):
    return [x.decode() if isinstance(x, bytes) else str(x) for x in attr]

def strings(lst, vlen):
    """An attribute value for a list of names: numpy 'S' (fixed length, as
    Keras writes) or variable-length UTF-8 strings."""
    if vlen:
        return np.array(lst, dtype=h5py.string_dtype('utf-8'))
    return np.array([n.encode() for n in lst])

def rebuild(rename, dtype=None, reorder=None, extra=False, vlen=False, sub=None):
    """Write dst in the Keras layout from src, with every layer renamed by
    rename(name), datasets cast to dtype, layer_names reordered by reorder,
    (extra) a with-top style dense layer added that must be ignored, and
    (vlen) the name lists stored as variable-length strings, all below group
    sub when given (model.save() keeps the weights in /model_weights)."""
    with h5py.File(src, 'r') as f, h5py.File(dst, 'w') as out:
        g = out.create_group(sub) if sub else out
        layers = names(f.attrs['layer_names'])
        new = [rename(n) for n in layers]
        order = list(range(len(layers)))
        if reorder:
            order = reorder(order)
        out_names = [new[i] for i in order]
        if extra:
            out_names += ['avg_pool', 'predictions']
        g.attrs['layer_names'] = strings(out_names, vlen)
        g.attrs['backend'] = f.attrs['backend']
        g.attrs['keras_version'] = f.attrs['keras_version']
        for old, nn in zip(layers, new):
            grp = g.create_group(nn)
            wn = names(f[old].attrs['weight_names'])
            nwn = [nn + w[len(old):] for w in wn]
            grp.attrs['weight_names'] = strings(nwn, vlen) if nwn else np.array([])
            for w, v in zip(wn, nwn):
                data = f[old][w][()]
                grp.create_dataset(v, data=data.astype(dtype) if dtype else data)
        if extra:
            g.create_group('avg_pool').attrs['weight_names'] = np.array([])
            d = g.create_group('predictions')
            d.attrs['weight_names'] = np.array([b'predictions/kernel:0', b'predictions/bias:0'])
            d.create_dataset('predictions/kernel:0', data=np.ones((2048, 10), np.float32))
            d.create_dataset('predictions/bias:0', data=np.zeros((10,), np.float32))

def renumber(fn):
    """Rename conv2d_N, batch_normalization_N, activation_N by N -> fn(N)."""
    def r(name):
        m = re.fullmatch(r'(conv2d|batch_normalization|activation)_(\d+)', name)
        if not m:
            return name
        k = fn(int(m.group(2)))
        return m.group(1) if k == 0 else '%s_%d' % (m.group(1), k)
    return r

def replace(path, data):
    with h5py.File(dst, 'r+') as f:
        del f[path]
        f.create_dataset(path, data=data)

if case in ('tfkeras', 'from95', 'float64', 'shuffled', 'unnumbered', 'vlen', 'fullmodel', 'swapped', 'int32'):
    if case == 'tfkeras':          # tf.keras: conv2d, conv2d_1, ..., conv2d_93
        rebuild(renumber(lambda n: n - 1))
    elif case == 'from95':         # a model built twice: conv2d_95 ... conv2d_188
        rebuild(renumber(lambda n: n + 94), extra=True)
    elif case == 'float64':
        rebuild(lambda n: n, dtype=np.float64)
    elif case == 'shuffled':       # numbered, listed in reverse: order by number
        rebuild(lambda n: n, reorder=lambda o: o[::-1])
    elif case == 'unnumbered':     # no usable numbers: file order
        rebuild(lambda n: re.sub(r'^(conv2d|batch_normalization)_(\d+)$', r'\1_n\2x', n))
    elif case == 'vlen':           # h5py variable-length strings for the names
        rebuild(lambda n: n, vlen=True)
    elif case == 'fullmodel':      # a whole-model file: weights under /model_weights
        rebuild(lambda n: n, sub='model_weights')
    elif case == 'swapped':        # conv2d_6 <-> conv2d_9 (both 1x1x192x64): loads, other features
        sw = {'conv2d_6': 'conv2d_9', 'conv2d_9': 'conv2d_6'}
        rebuild(lambda n: sw.get(n, n))
    elif case == 'int32':
        rebuild(lambda n: n)
        with h5py.File(dst, 'r+') as f:
            p = 'batch_normalization_3/batch_normalization_3/moving_mean:0'
            v = f[p][()]
            del f[p]
            f.create_dataset(p, data=v.astype(np.int32))
    sys.exit(0)

shutil.copyfile(src, dst)
damage_at = None
with h5py.File(dst, 'r+') as f:
    if case == 'nodataset':
        del f['batch_normalization_5/batch_normalization_5/moving_variance:0']
    elif case == 'nogroup':
        del f['conv2d_7']
    elif case == 'shape':
        p = 'conv2d_11/conv2d_11/kernel:0'
        v = f[p][()]
        del f[p]
        f.create_dataset(p, data=v[:, :, :, :64])
    elif case == 'nan':
        f['conv2d_30/conv2d_30/kernel:0'][0, 0, 0, 5] = np.nan
    elif case == 'inf':
        f['batch_normalization_40/batch_normalization_40/beta:0'][3] = np.inf
    elif case == 'negvar':
        f['batch_normalization_94/batch_normalization_94/moving_variance:0'][7] = -1.0
    elif case == 'conv93':
        ln = [n for n in names(f.attrs['layer_names']) if n != 'conv2d_94']
        f.attrs['layer_names'] = np.array([n.encode() for n in ln])
        del f['conv2d_94']
    elif case == 'checksum':       # a checksummed dataset whose stored bytes were damaged
        p = 'conv2d_40/conv2d_40/kernel:0'
        v = f[p][()]
        del f[p]
        d = f.create_dataset(p, data=v, chunks=v.shape, fletcher32=True)
        f.flush()
        damage_at = d.id.get_chunk_info(0).byte_offset + 100
    else:
        sys.exit('unknown case ' + case)
if damage_at is not None:
    with open(dst, 'r+b') as fp:
        fp.seek(damage_at)
        b = fp.read(1)
        fp.seek(damage_at)
        fp.write(bytes([b[0] ^ 0xFF]))
EOF
edit() { "$PY" "$T/edit.py" "$1" "$T/good.h5" "$T/$1.h5" || fail "edit.py $1"; }

# ---------------------------------------------------------------- not HDF5
echo "this is not HDF5" > "$T/text.h5"
expect_error "$T/text.h5" "$T/text.h5: not an HDF5 file"
: > "$T/empty.h5"
expect_error "$T/empty.h5" "$T/empty.h5: not an HDF5 file"
head -c $(( $(stat -c %s "$T/good.h5") / 2 )) "$T/good.h5" > "$T/half.h5"
expect_error "$T/half.h5" "$T/half.h5: cannot open as HDF5 (truncated or damaged?)"
expect_error "$T/absent.h5" "$T/absent.h5: cannot open: No such file or directory"
# Random bytes (seeded, so every run sees the same): a whole file of them,
# the good superblock followed by noise, and 2 MB of noise in the middle of
# the good file (where the parameters of the middle layers lie).
"$PY" - "$T/good.h5" "$T" <<'EOF' || fail "writing the random-byte files"
import random, sys
src, d = sys.argv[1:3]
r = random.Random(5)
good = open(src, 'rb').read()
open(d + '/random.h5', 'wb').write(r.randbytes(100000))
open(d + '/noise.h5', 'wb').write(good[:2048] + r.randbytes(len(good) - 2048))
open(d + '/middle.h5', 'wb').write(good[:4000000] + r.randbytes(2000000) + good[6000000:])
EOF
expect_error "$T/random.h5" "$T/random.h5: not an HDF5 file"
expect_error "$T/noise.h5" "$T/noise.h5: cannot open as HDF5 (truncated or damaged?)"
expect_error "$T/middle.h5" "(truncated or damaged file?)"
# A file found by fuzzing on which HDF5 1.10.8 itself crashes (SIGSEGV in
# H5HG_read, a damaged global heap): bneck cannot catch that, but it must
# not die silently. Either HDF5 refuses it (exit 1), or the crash guard
# names the file as it dies. Sanitizer builds keep their own report (the
# guard is off there), so they skip this case.
if [ "${BNECK_SANITIZERS:-0}" != 1 ]; then
    crash=$(dirname "$0")/fuzz/hdf5-crashes/weights-global-heap-segv.h5
    [ -f "$crash" ] || fail "$crash is missing"
    cp "$crash" "$T/heap.h5"
    features "$T/heap.h5" "$T/out"
    case $RC in
        1) grep -qF "$T/heap.h5: " "$T/out.err" || { cat "$T/out.err" >&2; fail "heap.h5: exit 1 without naming the file"; } ;;
        139 | 135) grep -qF "$T/heap.h5: the HDF5 library crashed reading this weights file" "$T/out.err" ||
            { cat "$T/out.err" >&2; fail "heap.h5: a crash without the guard's message"; } ;;
        *) cat "$T/out.err" >&2; fail "heap.h5: exit $RC, expected 1, or 139 with the guard's message" ;;
    esac
    ok "heap.h5 (exit $RC): $(grep -m1 'error' "$T/out.err")"
    # One on which HDF5 1.10.8 loops (minutes, inside H5Aread): the read's
    # time limit (BNECK_READ_TIMEOUT) ends it with exit 1 and a message.
    loop=$(dirname "$0")/fuzz/hdf5-crashes/weights-global-heap-loop.h5
    [ -f "$loop" ] || fail "$loop is missing"
    cp "$loop" "$T/loop.h5"
    # Bounded from outside too: a guard that never fires ends as 124.
    RC=0
    BNECK_READ_TIMEOUT=3 timeout 60 "$BNECK" features --backend gemm --weights "$T/loop.h5" "$IMG" > "$T/out" 2> "$T/out.err" || RC=$?
    [ "$RC" = 1 ] && grep -qF "$T/loop.h5: " "$T/out.err" || { cat "$T/out.err" >&2; fail "loop.h5: exit $RC, expected 1 naming the file"; }
    # HDF5 1.10.8 loops here, and then the message is the guard's; a later
    # HDF5 may refuse the file at once with a message of its own.
    if h5dump --version 2>/dev/null | grep -q ' 1\.10\.'; then
        grep -qF "$T/loop.h5: reading this weights file took over 3 s" "$T/out.err" || { cat "$T/out.err" >&2; fail "loop.h5: HDF5 1.10 loops on it, but the guard's message is missing"; }
    fi
    ok "loop.h5 (exit $RC): $(grep -m1 'error' "$T/out.err")"
fi

# ---------------------------------------------------------------- damaged
edit nodataset
expect_error "$T/nodataset.h5" "batch_normalization_5 (conv5): weight_names lists batch_normalization_5/moving_variance:0 but dataset /batch_normalization_5/batch_normalization_5/moving_variance:0 is missing"
edit nogroup
expect_error "$T/nogroup.h5" "$T/nogroup.h5: layer_names lists 'conv2d_7' but the file has no group /conv2d_7"
edit shape
expect_error "$T/shape.h5" "$T/shape.h5: conv2d_11 (mixed0/branch3x3dbl_3): kernel shape 3x3x96x64, expected 3x3x96x96"
edit nan
expect_error "$T/nan.h5" "conv2d_30 (mixed3/branch3x3dbl_3): dataset conv2d_30/kernel:0 contains NaN (element 5)"
edit inf
expect_error "$T/inf.h5" "batch_normalization_40 (mixed4/branch_pool): dataset batch_normalization_40/beta:0 contains Inf (element 3)"
edit negvar
expect_error "$T/negvar.h5" "batch_normalization_94 (mixed10/branch_pool): dataset batch_normalization_94/moving_variance:0 has a negative variance (-1 at channel 7)"
edit conv93
expect_error "$T/conv93.h5" "$T/conv93.h5: expected 94 convolutions, found 93"
edit checksum
expect_error "$T/checksum.h5" "$T/checksum.h5: conv2d_40 (mixed4/branch_pool): cannot read dataset /conv2d_40/conv2d_40/kernel:0 (truncated or damaged file?)"
edit int32
expect_error "$T/int32.h5" "batch_normalization_3 (conv3): dataset batch_normalization_3/moving_mean:0 has type integer of 4 bytes; expected float32 or float64"

# ---------------------------------------------------------------- loads
edit tfkeras
expect_same "$T/tfkeras.h5"
edit from95
expect_same "$T/from95.h5"
edit float64
expect_same "$T/float64.h5"
edit shuffled
expect_same "$T/shuffled.h5"
edit unnumbered
expect_same "$T/unnumbered.h5"
edit vlen
expect_same "$T/vlen.h5"
edit fullmodel
expect_same "$T/fullmodel.h5"
edit swapped
expect_differs "$T/swapped.h5"

echo "weights_errors: all passed"
