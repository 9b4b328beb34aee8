#!/bin/bash
# mkcorpus.sh: "bneck mkcorpus" writes the promised layout, sizes, formats and
# manifest, is byte-reproducible from its seed, and rejects bad command lines
# (exit 2) and non-empty output folders (exit 1).
# Needs: $BNECK (absolute path of the binary); $PYTHON3 (default /usr/bin/python3,
# standard library only) for reading image headers.
# The harness may run this with sh (SH_LOG_COMPILER = $(SHELL)): re-run under bash.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
set -eu
export LC_ALL=C

: "${BNECK:?set BNECK to the absolute path of the bneck binary}"
PY=${PYTHON3:-/usr/bin/python3}
[ -x "$PY" ] || { echo "SKIP: no python3 at $PY to read image headers"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/bneck-mkcorpus.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# A header reader: prints "path format width height detail" per file, where
# detail is "sofN/ncN/sampHV" for JPEG (SOF marker number, components, luma
# sampling factors) and "depth/colortype/interlace" for PNG.
cat > "$T/hdr.py" <<'EOF'
import struct, sys

def info(path):
    b = open(path, 'rb').read()
    if b[:8] == b'\x89PNG\r\n\x1a\n' and b[12:16] == b'IHDR':
        w, h, depth, ctype, _, _, il = struct.unpack('>IIBBBBB', b[16:29])
        return 'png', w, h, '%d/%d/%d' % (depth, ctype, il)
    if b[:2] == b'\xff\xd8':
        i = 2
        while i + 4 <= len(b) and b[i] == 0xFF:
            m = b[i + 1]
            seglen = struct.unpack('>H', b[i + 2:i + 4])[0]
            if m in (0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB):
                h, w = struct.unpack('>HH', b[i + 5:i + 9])
                nc = b[i + 9]
                return 'jpeg', w, h, 'sof%d/nc%d/samp%02x' % (m - 0xC0, nc, b[i + 11])
            i += 2 + seglen
        return 'badjpeg', 0, 0, '-'
    return 'unknown', 0, 0, '-'

for p in sys.argv[1:]:
    print(p, *info(p))
EOF
hdr() { "$PY" "$T/hdr.py" "$@"; }

# Run mkcorpus expecting exit status $1; the rest are its arguments. Output in $T/out.
expect_rc() {
    local want=$1 rc=0
    shift
    "$BNECK" mkcorpus "$@" > "$T/out" 2>&1 || rc=$?
    [ "$rc" = "$want" ] || { cat "$T/out" >&2; fail "mkcorpus $* exited $rc, expected $want"; }
}

# ---------------------------------------------------------------- layout
expect_rc 0 "$T/a" --classes 3 --per-class 7 --seed 5
grep -qF "mkcorpus: wrote 21 images in 3 classes to $T/a (" "$T/out" || { cat "$T/out"; fail "summary line"; }
[ "$(ls "$T/a" | tr '\n' ' ')" = "daisy dandelion roses " ] || fail "class folders: $(ls "$T/a")"
for c in daisy dandelion roses; do
    n=$(ls "$T/a/$c" | grep -c "^${c}_[0-9][0-9][0-9][0-9]\.jpg\$" || true)
    [ "$n" = 7 ] || fail "class $c has $n well-named .jpg files, expected 7: $(ls "$T/a/$c")"
    [ "$(ls "$T/a/$c" | wc -l)" = 7 ] || fail "class $c has extra files"
done
[ -f "$T/a/roses/roses_0000.jpg" ] && [ -f "$T/a/roses/roses_0006.jpg" ] || fail "numbering"
ok "layout: 3 classes x 7 images"

expect_rc 0 "$T/c7" --classes 7 --per-class 1
[ "$(ls "$T/c7" | sort | tr '\n' ' ')" = "class_05 class_06 daisy dandelion roses sunflowers tulips " ] ||
    fail "class names for 7 classes: $(ls "$T/c7")"
[ -f "$T/c7/class_06/class_06_0000.jpg" ] || fail "class_06 file name"
ok "class names beyond the first five"

# An existing empty folder is fine; nested missing parents are created.
mkdir "$T/empty"
expect_rc 0 "$T/empty" --classes 2 --per-class 1
expect_rc 0 "$T/deep/er/out" --classes 2 --per-class 1
[ -f "$T/deep/er/out/dandelion/dandelion_0000.jpg" ] || fail "mkdir -p of the output folder"
ok "empty and nested output folders"

# ---------------------------------------------------------------- determinism
expect_rc 0 "$T/b" --classes 3 --per-class 7 --seed 5
diff -r -q "$T/a" "$T/b" > /dev/null || fail "same seed gave different files"
expect_rc 0 "$T/d" --classes 3 --per-class 7 --seed 6
same=0
for f in "$T"/a/*/*; do
    rel=${f#"$T/a/"}
    [ -f "$T/d/$rel" ] || fail "seed 6 lacks $rel"
    if cmp -s "$f" "$T/d/$rel"; then same=$((same + 1)); fi
done
[ "$same" = 0 ] || fail "$same files identical across seeds 5 and 6"
# Images within one corpus differ too (no duplicates).
dups=$(md5sum "$T"/a/*/* | awk '{print $1}' | sort | uniq -d | wc -l)
[ "$dups" = 0 ] || fail "$dups duplicate images in one corpus"
# PNG output is reproducible as well.
expect_rc 0 "$T/p1" --classes 2 --per-class 4 --png-share 0.5 --seed 3
expect_rc 0 "$T/p2" --classes 2 --per-class 4 --png-share 0.5 --seed 3
diff -r -q "$T/p1" "$T/p2" > /dev/null || fail "same seed gave different files (with PNGs)"
ok "byte-identical for one seed, different for another, no duplicates"

# ---------------------------------------------------------------- sizes and formats
hdr "$T"/a/*/* > "$T/h.txt"
awk '$2 != "jpeg" || $5 != "sof0/nc3/samp22" { bad++; print "  " $0 } END { exit bad > 0 }' "$T/h.txt" ||
    fail "not all images are baseline 4:2:0 colour JPEG (above)"
ok "baseline 4:2:0 JPEG"

expect_rc 0 "$T/s" --classes 2 --per-class 12 --sizes 64x48,30x50
hdr "$T"/s/*/* > "$T/h.txt"
awk '{ n[$3 "x" $4]++ } END { for (s in n) if (s != "64x48" && s != "30x50") { print "  unexpected " s; bad = 1 }
     if (!n["64x48"] || !n["30x50"]) { print "  a listed size never occurs"; bad = 1 } exit bad }' "$T/h.txt" ||
    fail "--sizes 64x48,30x50"
ok "explicit --sizes"

expect_rc 0 "$T/f" --classes 2 --per-class 50
hdr "$T"/f/*/* > "$T/h.txt"
awk '{ n[$3 "x" $4]++; t++ }
     END {
       split("500x333 333x500 320x240 500x375 240x320 400x300", ok)
       for (i in ok) allowed[ok[i]] = 1
       for (s in n) if (!(s in allowed)) { print "  unexpected size " s; bad = 1 }
       # about 55% 500x333, 10% 333x500, 25% 320x240 of 100 images
       if (n["500x333"] < 40 || n["500x333"] > 70) { print "  500x333: " n["500x333"] "/" t; bad = 1 }
       if (n["320x240"] < 13 || n["320x240"] > 38) { print "  320x240: " n["320x240"] "/" t; bad = 1 }
       if (n["333x500"] < 3 || n["333x500"] > 20) { print "  333x500: " n["333x500"] "/" t; bad = 1 }
       exit bad }' "$T/h.txt" || fail "--sizes flowers mix"
ok "flowers size mix"

# Quality changes the bytes: a low quality gives a much smaller corpus.
expect_rc 0 "$T/q20" --classes 2 --per-class 5 --quality 20
expect_rc 0 "$T/q95" --classes 2 --per-class 5 --quality 95
s20=$(cat "$T"/q20/*/* | wc -c)
s95=$(cat "$T"/q95/*/* | wc -c)
[ "$s20" -lt $((s95 / 2)) ] || fail "quality 20 ($s20 bytes) not much smaller than 95 ($s95 bytes)"
ok "--quality ($s20 < $s95 bytes)"

expect_rc 0 "$T/pn" --classes 2 --per-class 6 --png-share 1
[ "$(ls "$T"/pn/*/*.png | wc -l)" = 12 ] || fail "--png-share 1 should give 12 .png files"
hdr "$T"/pn/*/* > "$T/h.txt"
awk '$2 != "png" || $5 != "8/2/0" { bad++; print "  " $0 } END { exit bad > 0 }' "$T/h.txt" ||
    fail "--png-share 1 files are not 8-bit RGB PNG"
expect_rc 0 "$T/pm" --classes 3 --per-class 10 --png-share 0.5
np=$(ls "$T"/pm/*/*.png 2> /dev/null | wc -l)
nj=$(ls "$T"/pm/*/*.jpg 2> /dev/null | wc -l)
[ "$np" -ge 5 ] && [ "$nj" -ge 5 ] && [ $((np + nj)) = 30 ] || fail "--png-share 0.5 gave $np png, $nj jpg"
hdr "$T"/pm/*/* > "$T/h.txt"
awk '{ ext = $1; sub(/.*\./, "", ext) } (ext == "png") != ($2 == "png") { bad++; print "  " $0 }
     END { exit bad > 0 }' "$T/h.txt" || fail "file extension does not match the format"
ok "--png-share ($np png, $nj jpg of 30)"

# ---------------------------------------------------------------- manifest
expect_rc 0 "$T/m" --classes 2 --per-class 3 --manifest "$T/m.tsv"
[ "$(wc -l < "$T/m.tsv")" = 6 ] || fail "manifest has $(wc -l < "$T/m.tsv") lines, expected 6"
printf 'm/daisy/daisy_0000.jpg\tdaisy\n' > "$T/want"
head -n 1 "$T/m.tsv" | cmp -s - "$T/want" || fail "first manifest line: $(head -n 1 "$T/m.tsv")"
while IFS=$'\t' read -r path label; do
    [ -f "$T/$path" ] || fail "manifest path $path does not exist relative to the manifest"
    folder=${path%/*}
    [ "${folder##*/}" = "$label" ] || fail "label $label does not match folder of $path"
done < "$T/m.tsv"
(cd "$T" && ls m/*/* | sort) > "$T/files"
cut -f1 "$T/m.tsv" | sort | cmp -s - "$T/files" || fail "manifest paths are not exactly the images"
ok "manifest with relative paths"

mkdir "$T/elsewhere"
expect_rc 0 "$T/m2" --classes 2 --per-class 2 --png-share 1 --manifest "$T/elsewhere/list.tsv"
while IFS=$'\t' read -r path label; do
    case $path in /*) ;; *) fail "manifest outside the corpus should hold absolute paths: $path" ;; esac
    [ -f "$path" ] || fail "manifest path $path does not exist"
    case $path in *.png) ;; *) fail "png share 1 but manifest lists $path" ;; esac
done < "$T/elsewhere/list.tsv"
[ "$(wc -l < "$T/elsewhere/list.tsv")" = 4 ] || fail "absolute manifest line count"
ok "manifest with absolute paths"

expect_rc 1 "$T/m3" --classes 2 --per-class 1 --manifest "$T/no/such/dir/list.tsv"
ok "manifest in a missing folder refused"

# ---------------------------------------------------------------- bad command lines
i=0
while IFS= read -r args; do
    i=$((i + 1))
    eval "set -- $args"
    expect_rc 2 "$@"
    [ ! -e "$T/bad" ] || fail "mkcorpus $args exited 2 but created $T/bad"
done <<EOF
"$T/bad" --classes 1
"$T/bad" --classes 1001
"$T/bad" --classes 3x
"$T/bad" --per-class 0
"$T/bad" --per-class 1000001
"$T/bad" --quality 0
"$T/bad" --quality 101
"$T/bad" --png-share 1.5
"$T/bad" --png-share -0.1
"$T/bad" --png-share x
"$T/bad" --seed -1
"$T/bad" --seed 1.5
"$T/bad" --sizes 0x5
"$T/bad" --sizes 5x
"$T/bad" --sizes abc
"$T/bad" --sizes 64x48,
"$T/bad" --sizes 20000x10
"$T/bad" --sizes ''
"$T/bad" --bogus 1
"$T/bad" --classes
--classes 3
"$T/bad" "$T/bad2"
'' --classes 2
EOF
ok "$i bad command lines exit 2 and create nothing"

# ---------------------------------------------------------------- refusals
mkdir "$T/full"
touch "$T/full/keep.txt"
expect_rc 1 "$T/full" --classes 2 --per-class 1
grep -q "not empty" "$T/out" || { cat "$T/out"; fail "no clear error for a non-empty folder"; }
[ "$(ls "$T/full")" = keep.txt ] || fail "mkcorpus wrote into a non-empty folder"
touch "$T/afile"
expect_rc 1 "$T/afile" --classes 2 --per-class 1
grep -q "not a folder" "$T/out" || { cat "$T/out"; fail "no clear error when OUT_DIR is a file"; }
ok "non-empty folder and file refused with exit 1"

rc=0
"$BNECK" mkcorpus --help > "$T/help" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "--help exited $rc"
grep -q -- "--png-share" "$T/help" || fail "--help does not list --png-share"
ok "--help"

echo "PASS: mkcorpus"
