#!/bin/bash
# settings_json.sh: the settings attribute of a features file is valid JSON
# whatever the paths hold. The corpus folder, the weights and the output are
# named with a double quote, a backslash, a tab, a newline and UTF-8; the
# stored settings must parse and give those paths back exactly.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import h5py' 2>/dev/null || { echo "SKIP: h5py missing for $PY"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
odd=$(printf 'a"b\\c\td\ne\xc3\xa9')
mkdir -p "$tmp/$odd"
"$BNECK" mkweights "$tmp/$odd/w.h5" --seed 2 -q
"$BNECK" mkcorpus "$tmp/$odd/c" --classes 2 --per-class 2 --seed 3 -q
"$BNECK" extract --images "$tmp/$odd/c" --weights "$tmp/$odd/w.h5" --out "$tmp/$odd/f.h5" --backend gemm \
    --batch 2 --threads 1 --progress none -q > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "extract"; }
"$PY" - "$tmp/$odd" <<'PYEOF' || fail "the settings attribute is not valid JSON or lost a path"
import h5py, json, sys
d = sys.argv[1]
with h5py.File(d + "/f.h5", "r") as f:
    raw = f.attrs["settings"]
    raw = raw.decode() if isinstance(raw, bytes) else raw
s = json.loads(raw)
assert s["image_dir"] == d + "/c", (s["image_dir"], d)
assert s["weights"] == d + "/w.h5", s["weights"]
assert s["batch"] == 2 and s["ranks"] == 1, s
print("settings: valid JSON, paths intact:", repr(s["image_dir"]))
PYEOF
echo "settings_json: all checks passed"
