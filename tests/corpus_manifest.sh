#!/bin/bash
# corpus_manifest.sh: `bneck corpus --manifest FILE` (docs/corpus.md): line
# syntax (LF/CRLF, comments, blank lines), errors naming file:line, duplicate
# and conflicting lines, labels taken as written, class and image order, and
# the path column (resolved against the manifest's folder) versus the key
# column (exactly as written; what the split hashes).
set -eu

: "${BNECK:?set BNECK to the absolute path of the bneck binary}"
PYTHON3=${PYTHON3:-/usr/bin/python3}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: corpus_manifest: $*" >&2
    exit 1
}

# ------------------------------------------------------------ a valid manifest
mkdir -p "$tmp/sub/dir"
M="$tmp/sub/dir/m.tsv"
# Line numbers matter below: line 8 duplicates line 3.
printf '%s\r\n' \
    '# a comment, then a blank line and a line of spaces' \
    '' \
    'imgs/b.jpg	Sun Flowers' \
    '   ' \
    '/abs/path/z.png	roses' \
    'imgs/a b_nohash_1.jpg	Sun Flowers' \
    './imgs/c.jpg	été' \
    'imgs/b.jpg	Sun Flowers' \
    'imgs/a b_nohash_2.jpg	Sun Flowers' \
    'rel/d.jpeg	roses' \
    '#imgs/commented.jpg	roses' >"$M"
printf 'imgs/e.jpg\troses\n' >>"$M"   # LF and CRLF mixed, last line without CR

# run_ok MANIFEST_ARG WANT_PREFIX: run from $tmp, check list and summary.
# WANT_PREFIX is the folder relative paths must be joined to ("" for none).
run_ok() {
    local marg=$1 prefix=$2
    rm -f "$tmp/list.tsv"
    (cd "$tmp" && "$BNECK" corpus --manifest "$marg" --list "$tmp/list.tsv") \
        >"$tmp/stdout" 2>"$tmp/stderr" || { cat "$tmp/stderr" >&2; fail "--manifest $marg failed"; }
    "$PYTHON3" - "$tmp/list.tsv" "$tmp/stdout" "$prefix" "$marg" <<'PY' || fail "checks of --manifest $marg failed (see above)"
import hashlib, re, sys
listing, stdout, prefix, marg = sys.argv[1:5]
M = 2**27 - 1
def split(key):
    h = re.sub(r'_nohash_.*$', '', key)
    p = (int(hashlib.sha1(h.encode()).hexdigest(), 16) % (M + 1)) * (100.0 / M)
    return "validation" if p < 10 else "test" if p < (10 + 10) else "train"
def path(key):
    if key.startswith("/") or not prefix:
        return key
    return prefix + "/" + key
# Classes by label in byte order: "Sun Flowers" < "roses" < "été".
keys = [("Sun Flowers", ["imgs/a b_nohash_1.jpg", "imgs/a b_nohash_2.jpg", "imgs/b.jpg"]),
        ("roses", ["/abs/path/z.png", "rel/d.jpeg", "imgs/e.jpg"]),
        ("été", ["./imgs/c.jpg"])]
want = []
for label, ks in keys:
    rows = [[path(k), label, split(k), k] for k in ks]
    rows.sort(key=lambda r: r[0].encode())   # within a class: by path to open
    want += rows
with open(listing, encoding="utf-8", newline="") as f:
    got = [l.split("\t") for l in f.read().split("\n") if l]
errors = []
if got[0] != ["path", "label", "split", "key"]:
    errors.append("header %r" % got[0])
got = got[1:]
if got != want:
    errors.append("--list rows differ:")
    errors += ["  got      %r" % g for g in got]
    errors += ["  expected %r" % w for w in want]
if any("\r" in c for r in got for c in r):
    errors.append("a carriage return leaked into the list")
with open(stdout, encoding="utf-8") as f:
    out = f.read().splitlines()
counts = {s: sum(1 for w in want if w[2] == s) for s in ("train", "validation", "test")}
for e in ("classes: 3",
          "images: 7 (train %d, validation %d, test %d)" % (counts["train"], counts["validation"], counts["test"]),
          "rejected: 0"):
    if not any(l.startswith(e) for l in out):
        errors.append("stdout has no line starting %r" % e)
h = [i for i, l in enumerate(out) if l.startswith("class") and not l.startswith("classes:")]
if not h:
    errors.append("no class table header")
else:
    for k, (label, _) in enumerate(keys):
        row = out[h[0] + 1 + k] if h[0] + 1 + k < len(out) else ""
        if not re.match(r"\s*%d\s+%s(\s|$)" % (k, re.escape(label)), row):
            errors.append("class row %d is %r, expected label %r" % (k, row, label))
warn = [l for l in out if "duplicate" in l]
if not any("m.tsv:8: duplicate of line 3" in l for l in warn):
    errors.append("no warning 'm.tsv:8: duplicate of line 3' (got %r)" % warn)
if errors:
    print("FAIL: --manifest %s" % marg)
    print("\n".join("  " + e for e in errors))
    sys.exit(1)
print("ok: --manifest %s" % marg)
PY
}

run_ok sub/dir/m.tsv sub/dir          # relative: paths open from the manifest's folder
run_ok "$M" "$tmp/sub/dir"            # absolute manifest path
run_ok ./sub/dir/m.tsv ./sub/dir
(cd "$tmp/sub/dir" && "$BNECK" corpus --manifest m.tsv --list "$tmp/list2.tsv" >/dev/null) ||
    fail "--manifest m.tsv (no folder) failed"
grep -q "^imgs/b.jpg	Sun Flowers	[a-z]*	imgs/b.jpg$" "$tmp/list2.tsv" ||
    fail "manifest without a folder part: path should equal the key ('imgs/b.jpg')"
echo "ok: --manifest m.tsv"

# ------------------------------------------------------------ errors
# expect_error WHAT MANIFEST PATTERN...: exit 1, stderr contains each pattern.
expect_error() {
    local what=$1 m=$2
    shift 2
    local rc=0
    "$BNECK" corpus --manifest "$m" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
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

B="$tmp/bad.tsv"
printf '# header\na.jpg\tx\n\nb.jpg x\nc.jpg\ty\n' >"$B"
expect_error "line without a TAB" "$B" "bad.tsv:4"
printf 'a.jpg\tx\r\n\tx\r\nc.jpg\ty\r\n' >"$B"
expect_error "empty path" "$B" "bad.tsv:2" "empty path"
printf 'a.jpg\tx\nb.jpg\ty\nc.jpg\t\n' >"$B"
expect_error "empty label" "$B" "bad.tsv:3" "empty label"
printf 'a.jpg\tx\nb.jpg\ty\nc.jpg\ty\textra\n' >"$B"
expect_error "more than one TAB" "$B" "bad.tsv:3"
printf 'a.jpg\tx\nb.jpg\ty\n# c\na.jpg\ty\n' >"$B"
expect_error "the same path with two labels" "$B" "bad.tsv:4" "line 1"
printf 'a.jpg\tx\nb.jpg\tx\n' >"$B"
expect_error "one label" "$B" "bad.tsv" "at least 2"
printf '# only a comment\n\n' >"$B"
expect_error "no images" "$B" "bad.tsv"
expect_error "nonexistent manifest" "$tmp/missing manifest.tsv" "$tmp/missing manifest.tsv" "No such file or directory"

# A label is used as written: "cats" and "Cats" are two classes, no folder rule.
printf 'a.jpg\tcats\nb.jpg\tCats\n' >"$B"
"$BNECK" corpus --manifest "$B" --list "$tmp/l.tsv" >"$tmp/stdout" 2>"$tmp/stderr" || fail "'cats' and 'Cats' must be two classes"
grep -q "^classes: 2" "$tmp/stdout" || fail "'cats' and 'Cats': expected 'classes: 2'"
[ "$(cut -f2 "$tmp/l.tsv" | tail -n +2 | tr '\n' ,)" = "Cats,cats," ] || fail "labels not kept as written / not in byte order"
echo "ok: labels as written"

# ------------------------------------------------------------ edge cases
E="$tmp/edge"
mkdir -p "$E"
# Labels with quotes, apostrophes, UTF-8 and inner/outer spaces are taken
# byte for byte; a UTF-8 byte-order mark before the first path is dropped;
# CRLF line ends, and no newline after the last line.
printf '\xef\xbb\xbfa.jpg\t"quoted" label\r\nb.jpg\tit'"'"'s\r\nc.jpg\t  spaced out  \r\nd.jpg\tÉté 日本\r\ne.jpg\tit'"'"'s' >"$E/m.tsv"
"$BNECK" corpus --manifest "$E/m.tsv" --list "$E/l.tsv" >"$tmp/stdout" 2>"$tmp/stderr" ||
    { cat "$tmp/stderr" >&2; fail "edge-case labels"; }
"$PYTHON3" - "$E" "$E/l.tsv" <<'PY' || fail "edge-case labels: listing"
import sys
E, listing = sys.argv[1:3]
rows = [l.split("\t") for l in open(listing, encoding="utf-8", newline="").read().split("\n")[1:] if l]
got = sorted((r[0], r[1], r[3]) for r in rows)
want = sorted((E + "/" + k, lab, k) for k, lab in [("a.jpg", '"quoted" label'), ("b.jpg", "it's"),
              ("c.jpg", "  spaced out  "), ("d.jpg", "Été 日本"), ("e.jpg", "it's")])
if got != want:
    print("got  %r\nwant %r" % (got, want)); sys.exit(1)
PY
grep -q "^classes: 4" "$tmp/stdout" || fail "edge-case labels: expected 4 classes"
echo "ok: odd labels, BOM, CRLF, no final newline"

# A 100 KB path and a 100 KB label: read whole (there is no line buffer), never
# cut; the path cannot be opened, and decoding says why.
"$PYTHON3" - "$E/long.tsv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("long/" + "x" * 100000 + ".jpg\tshort\n")
    f.write("b.jpg\t" + "L" * 100000 + "\n")
PY
"$BNECK" corpus --manifest "$E/long.tsv" --list "$E/long.list" --decode >"$tmp/stdout" 2>"$tmp/stderr" ||
    { cat "$tmp/stderr" >&2; fail "100 KB line"; }
[ "$(awk -F'\t' 'NR > 1 && $2 == "short" { print length($4) }' "$E/long.list")" = 100009 ] || fail "100 KB path was cut"
[ "$(awk -F'\t' 'NR > 1 && $4 == "b.jpg" { print length($2) }' "$E/long.list")" = 100000 ] || fail "100 KB label was cut"
grep -q "xxxx.jpg: unreadable: cannot open: File name too long" "$tmp/stdout" || fail "100 KB path: no 'File name too long'"
echo "ok: 100 KB lines"

: >"$B"
expect_error "empty manifest (0 bytes)" "$B" "bad.tsv" "lists no images"
printf 'a.jpg\tx\nb\000.jpg\ty\n' >"$B"
expect_error "a NUL byte" "$B" "bad.tsv:2" "NUL byte"
expect_error "a folder as the manifest" "$E" "$E" "Is a directory"

# ------------------------------------------------------------ scale
# 300,000 lines with duplicates must load quickly (no quadratic duplicate check).
"$PYTHON3" - "$tmp/big.tsv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(300000):
        f.write("class%d/img_%07d.jpg\tlabel%d\n" % (i % 50, i, i % 50))
    for i in range(0, 300000, 1000):
        f.write("class%d/img_%07d.jpg\tlabel%d\n" % (i % 50, i, i % 50))
PY
start=$(date +%s)
"$BNECK" corpus --manifest "$tmp/big.tsv" >"$tmp/stdout" 2>"$tmp/stderr" || { cat "$tmp/stderr" >&2; fail "300,000-line manifest failed"; }
secs=$(($(date +%s) - start))
grep -q "^images: 300000 " "$tmp/stdout" || fail "300,000-line manifest: $(grep '^images:' "$tmp/stdout")"
grep -q "^classes: 50" "$tmp/stdout" || fail "300,000-line manifest: expected 50 classes"
[ "$secs" -le 30 ] || fail "300,000-line manifest took ${secs}s (expected a few seconds)"
echo "ok: 300,000 lines in ${secs}s"

echo "ok: corpus_manifest"
