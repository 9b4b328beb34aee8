#!/bin/bash
# corpus_dir.sh: `bneck corpus --images DIR` follows retrain.py's folder rules
# (docs/corpus.md): class folders and their order, the label rule, which files
# are taken or rejected and why, warnings, errors, and split keys joined like
# os.path.join. Image files are empty: scanning does not decode.
set -eu

: "${BNECK:?set BNECK to the absolute path of the bneck binary}"
PYTHON3=${PYTHON3:-/usr/bin/python3}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: corpus_dir: $*" >&2
    exit 1
}

# images DIR N [PREFIX]: N empty files PREFIX01.jpg ... in DIR
images() {
    mkdir -p "$1"
    local i
    for i in $(seq -w 1 "$2"); do : >"$1/${3:-img}$i.jpg"; done
}

# ------------------------------------------------------------ a valid corpus
D="$tmp/flowers"
images "$D/Roses" 14 r
: >"$D/Roses/upper.JPG"
: >"$D/Roses/upper2.JPEG"
: >"$D/Roses/long.jpeg"
: >"$D/Roses/pic.png"
: >"$D/Roses/PIC2.PNG"
: >"$D/Roses/with space 1.jpg"
: >"$D/Roses/çà été.jpg"
: >"$D/Roses/x.Jpg"                 # rejected: extension case
: >"$D/Roses/notes.txt"             # rejected: extension
: >"$D/Roses/.hidden.jpg"           # rejected: hidden
images "$D/Roses/sub" 3 nested      # rejected: nested folder, its images not taken
images "$D/sun_Flowers" 25 s
images "$D/tulips_nohash_set" 20 t  # _nohash_ in the folder: every image hashes alike
images "$D/Été-2019" 5 e            # UTF-8 folder, fewer than 20 images: a warning
images "$D/.git" 30 g               # hidden folder: not a class
images "$tmp/elsewhere/daisy" 20 d
ln -s "$tmp/elsewhere/daisy" "$D/daisy" # a class through a symbolic link
echo "some license" >"$D/LICENSE.txt"   # files in DIR are ignored silently
: >"$D/stray.jpg"
ln -s LICENSE.txt "$D/stray-link.jpg"   # a link to a file is not a class either
ln -s nowhere "$D/stray-broken"         # nor is a broken link

# Expected classes, in byte order of the folder name (uppercase sorts first).
cat >"$tmp/classes.want" <<'T'
Roses	roses	21
daisy	daisy	20
sun_Flowers	sun flowers	25
tulips_nohash_set	tulips nohash set	20
Été-2019	 t 2019	5
T

# check_run DIRARG: run bneck corpus --images DIRARG (from $tmp) and check
# everything against the tree above; DIRARG is how the user typed the folder.
check_run() {
    local dirarg=$1
    shift
    local out="$tmp/list.tsv"
    rm -f "$out"
    if ! (cd "$tmp" && "$BNECK" corpus --images "$dirarg" --list "$out" "$@") \
        >"$tmp/stdout" 2>"$tmp/stderr"; then
        cat "$tmp/stderr" >&2
        fail "bneck corpus --images '$dirarg' failed"
    fi
    "$PYTHON3" - "$dirarg" "$tmp/classes.want" "$out" "$tmp/stdout" "$@" <<'PY' || fail "checks of --images '$dirarg' failed (see above)"
import hashlib, os, re, sys
dirarg, classes_want, listing, stdout = sys.argv[1:5]
opts = sys.argv[5:]
val = float(opts[opts.index("--validation-percentage") + 1]) if "--validation-percentage" in opts else 10.0
test = float(opts[opts.index("--testing-percentage") + 1]) if "--testing-percentage" in opts else 10.0
M = 2**27 - 1
errors = []

def split(key):
    hash_name = re.sub(r'_nohash_.*$', '', key)
    p = (int(hashlib.sha1(hash_name.encode("utf-8")).hexdigest(), 16) % (M + 1)) * (100.0 / M)
    return "validation" if p < val else "test" if p < (test + val) else "train"

def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read().split("\n")

classes = [l.split("\t") for l in read(classes_want) if l]
rows = [r for r in read(listing) if r]
if rows[0] != "path\tlabel\tsplit\tkey":
    errors.append("list header is %r" % rows[0])
rows = [r.split("\t") for r in rows[1:]]

# Expected images: what retrain.py's glob would return, as os.path.join builds it.
exts = (".jpg", ".jpeg", ".JPG", ".JPEG", ".png", ".PNG")
want = []
for folder, label, n in classes:
    cdir = os.path.join(dirarg, folder)
    real = os.path.join(os.environ["TMPROOT"], cdir)  # cdir as seen from $TMPROOT
    files = sorted((f for f in os.listdir(real)
                    if not f.startswith(".") and f.endswith(exts) and os.path.isfile(os.path.join(real, f))),
                   key=lambda s: s.encode())
    if len(files) != int(n):
        errors.append("test setup: %s has %d images, expected %s" % (cdir, len(files), n))
    for f in files:
        key = os.path.join(cdir, f)
        want.append([key, label, split(key), key])
if rows != want:
    errors.append("--list differs from retrain.py's view (%d rows, expected %d)" % (len(rows), len(want)))
    for i, (g, w) in enumerate(zip(rows, want)):
        if g != w:
            errors.append("first difference at row %d: got %r, expected %r" % (i + 1, g, w))
            break
    extra = [r for r in rows if r not in want][:3]
    if extra:
        errors.append("unexpected rows, e.g. %r" % extra)

# _nohash_ in a folder name: the whole class hashes as the folder prefix.
tul = {r[2] for r in rows if "/tulips_nohash_set/" in r[0]}
if len(tul) != 1:
    errors.append("tulips_nohash_set images got different splits %r" % tul)

# Summary on stdout.
out = read(stdout)
counts = {s: sum(1 for w in want if w[2] == s) for s in ("train", "validation", "test")}
expect_lines = ["classes: %d" % len(classes),
                "images: %d (train %d, validation %d, test %d)" % (len(want), counts["train"], counts["validation"], counts["test"]),
                "rejected: 4"]
for e in expect_lines:
    if not any(l.startswith(e) for l in out):
        errors.append("stdout has no line starting %r" % e)
try:
    h = next(i for i, l in enumerate(out) if l.startswith("class") and not l.startswith("classes:"))
    for k, (folder, label, n) in enumerate(classes):
        pat = r"\s*%d\s+%s(\s|$)" % (k, re.escape(label.strip()))
        if not re.match(pat, out[h + 1 + k]):
            errors.append("class table row %d is %r, expected index %d and label %r" % (k, out[h + 1 + k], k, label))
except (StopIteration, IndexError):
    errors.append("no class table (a line starting 'class' then one row per class)")

def section(title):
    if title not in out:
        return []
    i = out.index(title) + 1
    lines = []
    while i < len(out) and out[i].startswith("  "):
        lines.append(out[i][2:])
        i += 1
    return lines

rej = section("rejected files:")
rdir = os.path.join(dirarg, "Roses")
for name, reason in [("x.Jpg", "extension is not one of jpg, jpeg, JPG, JPEG, png, PNG"),
                     ("notes.txt", "extension is not one of"),
                     (".hidden.jpg", "hidden file"),
                     ("sub", "nested folder")]:
    p = os.path.join(rdir, name)
    if not any(l.startswith(p + ": ") and reason in l for l in rej):
        errors.append("no rejected line '%s: ...%s...' in %r" % (p, reason, rej))
if len(rej) != 4:
    errors.append("expected 4 rejected files, listed %r" % rej)
if any("LICENSE" in l or "stray" in l or ".git" in l for l in out):
    errors.append("files in DIR or hidden folders must be ignored silently: %r" % [l for l in out if "LICENSE" in l or "stray" in l or ".git" in l])
warn = section("warnings:")
if not any("Été-2019" in w and "5" in w for w in warn):
    errors.append("no warning about Été-2019 having 5 images: %r" % warn)
if any(f in w for w in warn for f in ("Roses", "daisy", "sun_Flowers", "tulips")):
    errors.append("warning about a class with >= 20 images: %r" % warn)

if errors:
    print("FAIL: --images %r %s" % (dirarg, " ".join(opts)))
    for e in errors:
        print("  " + e)
    sys.exit(1)
print("ok: --images %r %s: %d images, keys and splits as retrain.py" % (dirarg, " ".join(opts), len(want)))
PY
}

export TMPROOT="$tmp"
check_run flowers                    # keys "flowers/Roses/r01.jpg"
check_run flowers/                   # os.path.join: the same keys
check_run ./flowers                  # "./flowers/Roses/..." hashes differently
check_run "$tmp/flowers"             # absolute
check_run flowers --validation-percentage 15 --testing-percentage 5
check_run flowers --validation-percentage 0 --testing-percentage 30

# Trailing slash or not: identical lists.
(cd "$tmp" && "$BNECK" corpus --images flowers --list "$tmp/a.tsv" >/dev/null)
(cd "$tmp" && "$BNECK" corpus --images flowers/ --list "$tmp/b.tsv" >/dev/null)
cmp -s "$tmp/a.tsv" "$tmp/b.tsv" || fail "'flowers' and 'flowers/' give different lists"
grep -q "^flowers/Roses/r01.jpg	roses	" "$tmp/a.tsv" || fail "key of r01.jpg is not 'flowers/Roses/r01.jpg'"
echo "ok: trailing slash"

# ------------------------------------------------------------ errors
# expect_error WHAT DIR PATTERN...: exit status 1, stderr matching each pattern.
expect_error() {
    local what=$1 dir=$2
    shift 2
    local rc=0
    "$BNECK" corpus --images "$dir" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
    [ "$rc" -eq 1 ] || { cat "$tmp/stderr" >&2; fail "$what: exit status $rc, expected 1"; }
    local pat
    for pat in "$@"; do
        grep -qiF -- "$pat" "$tmp/stderr" || {
            cat "$tmp/stderr" >&2
            fail "$what: error message does not contain '$pat'"
        }
    done
    echo "ok: $what"
}

E="$tmp/err_empty"
images "$E/cats" 20
mkdir -p "$E/emptyclass"
expect_error "empty class folder" "$E" "emptyclass" "no images"

E="$tmp/err_noimages"
images "$E/cats" 20
mkdir -p "$E/textonly"
: >"$E/textonly/readme.txt"
: >"$E/textonly/y.Jpg"
expect_error "class folder without jpg/jpeg/png" "$E" "textonly" "no images"

E="$tmp/err_single"
images "$E/onlydogs" 30
expect_error "single class" "$E" "onlydogs" "only one class"

E="$tmp/err_none"
mkdir -p "$E/.hiddenclass"
: >"$E/a.jpg"
: >"$E/b.jpg"
: >"$E/.hiddenclass/c.jpg"
expect_error "no class folders" "$E" "$E" "no class folders"

E="$tmp/err_dup"
images "$E/Big-Dogs" 20
images "$E/big_dogs" 20
images "$E/cats" 20
expect_error "two folders, one label" "$E" "Big-Dogs" "big_dogs"

expect_error "nonexistent folder" "$tmp/no such dir" "$tmp/no such dir" "No such file or directory"
expect_error "a file instead of a folder" "$D/LICENSE.txt" "$D/LICENSE.txt" "Not a directory"

# A class below 20 images is a warning, not an error.
W="$tmp/small"
images "$W/aa" 3
images "$W/bb" 19
images "$W/cc" 20
"$BNECK" corpus --images "$W" >"$tmp/stdout" 2>"$tmp/stderr" || fail "classes below 20 images must not fail"
grep -q "^classes: 3" "$tmp/stdout" || fail "small: expected 'classes: 3'"
sed -n '/^warnings:/,$p' "$tmp/stdout" >"$tmp/warn"
grep -F "$W/aa" "$tmp/warn" | grep -q "3 image" || fail "small: no warning for $W/aa (3 images)"
grep -F "$W/bb" "$tmp/warn" | grep -q "19 image" || fail "small: no warning for $W/bb (19 images)"
! grep -qF "$W/cc" "$tmp/warn" || fail "small: warning for $W/cc, which has 20 images"
echo "ok: fewer than 20 images warns"

# ------------------------------------------------------------ command line
rc=0
"$BNECK" corpus >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "bneck corpus without --images/--manifest: exit $rc, expected 2"
rc=0
"$BNECK" corpus --images "$D" --no-such-option >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "unknown option: exit $rc, expected 2"
echo "ok: command line errors"

echo "ok: corpus_dir"
