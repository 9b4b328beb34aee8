#!/bin/bash
# settings_json.sh: the settings attribute of features and classifier files is
# valid JSON whatever the paths hold. The corpus folder, the manifest, the
# weights and the outputs are named with a double quote, a backslash, a tab, a
# newline, control characters, UTF-8 and a byte that is not UTF-8; a features
# file and its classifier sit under a path of over 2 KB, written and read
# through MPI-IO. The stored settings
# must parse and give those paths back exactly (the non-UTF-8 byte as U+FFFD).
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import h5py' 2>/dev/null || { echo "SKIP: h5py missing for $PY"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
odd=$(printf 'a"b\\c\td\ne\001f\037g\xc3\xa9h\xff')
mkdir -p "$tmp/$odd"
bn_mkweights "$tmp/$odd/w.h5" --seed 2 -q
"$BNECK" mkcorpus "$tmp/$odd/c" --classes 2 --per-class 6 --seed 3 -q
run() {  # LOGNAME CMD...: run it, show its log and fail when it fails
    local name=$1; shift
    "$@" > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; fail "$name"; }
}
# Over 2 KB of path (10 folders of 230 bytes) for a features file and its
# classifier (Open MPI's MPI-IO once overflowed a 256-byte buffer there).
long="$tmp/$odd"
for k in 0 1 2 3 4 5 6 7 8 9; do long="$long/$(printf "%0230d" "$k")"; done
mkdir -p "$long"
# The corpus is named relative to $tmp: the split hashes the path as given,
# so it is then the same on every run (train needs validation and test images).
cd "$tmp"
run extract "$BNECK" extract --images "$odd/c" --weights "$tmp/$odd/w.h5" --out "$long/f.h5" --backend gemm \
    --batch 2 --threads 1 --progress none --validation-percentage 25 --testing-percentage 20 -q
# The manifest form: the manifest's own path goes into the settings.
(cd "$tmp/$odd/c" && find . -name '*.jpg' -o -name '*.png' | sort | sed 's|^\./\([^/]*\)/.*|&\t\1|') > "$tmp/$odd/m.tsv"
run manifest "$BNECK" extract --manifest "$tmp/$odd/m.tsv" --weights "$tmp/$odd/w.h5" --out "$tmp/$odd/fm.h5" --backend gemm \
    --batch 2 --threads 1 --progress none -q
# Train at 2 ranks under $MPIEXEC, so that both MPIs' MPI-IO open the long path.
run train ${MPIEXEC:-mpirun --oversubscribe} -n 2 "$BNECK" train --features "$long/f.h5" --out "$long/cl.h5" --steps 20 -q
"$PY" - "$tmp/$odd" "$long" <<'PYEOF' || fail "a settings attribute is not valid JSON or lost a path"
import h5py, json, os, sys
d, long = sys.argv[1], sys.argv[2]
def settings(path):
    with h5py.File(path, "r") as f:
        raw = f.attrs["settings"]
    raw = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    return json.loads(raw.decode("utf-8"))  # strict: the text must be UTF-8
def shown(path):  # a path as the settings show it: bytes outside UTF-8 become U+FFFD
    return os.fsencode(path).decode("utf-8", "replace")
s = settings(long + "/f.h5")
assert s["image_dir"] == shown(os.path.basename(d) + "/c"), (s["image_dir"], d)
assert s["weights"] == shown(d + "/w.h5"), s["weights"]
assert "\ufffd" in s["weights"] and "\x01" in s["weights"] and "\x1f" in s["weights"], repr(s["weights"])
assert s["batch"] == 2 and s["ranks"] == 1, s
assert s["validation_percentage"] == 25 and s["testing_percentage"] == 20, s
m = settings(d + "/fm.h5")
assert m["manifest"] == shown(d + "/m.tsv") and "image_dir" not in m, m
c = settings(long + "/cl.h5")
assert len(long) > 2048 and c["features"] == shown(long + "/f.h5"), (len(c["features"]), len(long))
assert c["steps"] == 20 and c["ranks"] == 2 and c["feature_dtype"] == "float32", c
print("settings: valid JSON, paths intact:", repr(s["image_dir"]), "and a", len(c["features"]), "character path")
PYEOF
echo "settings_json: all checks passed"
