#!/bin/bash
# cost.sh: bneck benchmark --json and bneck cost (docs/cost.md).
#  - benchmark --json on tiny weights, with and without --images of a tiny
#    corpus: the file has every field of format bneck-benchmark version 1,
#    the printed "images/s: X" line is still there, the temporary features
#    file is gone, --precisions all skips int8 without a calibration with a
#    note, and a named precision this build cannot run is refused;
#  - cost on two files written here with known rates and prices: every
#    number of the table equals the hand-computed one, the fastest and the
#    cheapest rows are named, --price overrides a file's price, --machine
#    adds a reported row, --precision and --images work;
#  - a machine without a price: no cost ("-"), a note, exit status 0;
#  - refusals with exit status 1 and the file's name: not JSON, a missing
#    file, another format, version 2, no machine name;
#  - --svg: valid XML whose <title> and <desc> hold the title and axis
#    labels; --png: a PNG; --html: one page with the table and the figure.
if [ -z "${BASH_VERSION:-}" ]; then exec /bin/bash "$0" "$@"; fi
set -euo pipefail
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
export LC_ALL=C
: "${BNECK:?set BNECK to the absolute path of the bneck binary}"
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import json' 2>/dev/null || { echo "SKIP: $PY missing"; exit 77; }
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=$(mktemp -d "${TMPDIR:-/tmp}/bneck-cost.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
TO="timeout 300"

bn_mkweights "$T/w.h5" --seed 3 -q
"$BNECK" mkcorpus "$T/c" --classes 2 --per-class 3 --seed 9 -q

# ---------------------------------------------------------------- benchmark --json
# The engine alone: the printed lines as before, and the file.
$TO "$BNECK" benchmark --weights "$T/w.h5" --batch 2 --threads 1 --seconds 0.2 --json "$T/e.json" \
    > "$T/e.out" 2> "$T/e.err" || fail "benchmark --json: $(cat "$T/e.err")"
grep -q '^images/s: [0-9.]*$' "$T/e.out" || fail "no 'images/s: X' line: $(cat "$T/e.out")"
"$PY" - "$T/e.json" 0 <<'PY' || fail "benchmark file without --images"
import json, sys
d = json.load(open(sys.argv[1]))
want_extract = int(sys.argv[2])
assert d["format"] == "bneck-benchmark" and d["version"] == 1, d
assert d["created_by"].startswith("bneck "), d["created_by"]
assert len(d["date"]) == 20 and d["date"].endswith("Z") and d["date"][10] == "T", d["date"]
m = d["machine"]
for k, t in [("name", str), ("host", str), ("cpu", str), ("cores", int), ("threads", int), ("gpus", list),
             ("memory_gib", (int, float))]:
    assert isinstance(m[k], t), (k, m)
assert m["cores"] >= 1 and m["threads"] == 1 and m["memory_gib"] > 0, m
assert "price_per_node_hour" not in d, d
assert len(d["engine"]) == 1, d["engine"]
e = d["engine"][0]
assert e["device"] in ("cpu", "gpu") and e["precision"] == "fp32" and e["batch"] == 2 and e["threads"] == 1, e
assert isinstance(e["backend"], str) and e["backend"] != "cpu", e
for k in ("seconds", "images_per_s", "gflops", "peak_rss_mib"):
    assert e[k] > 0, (k, e)
assert len(d["extract"]) == want_extract, d["extract"]
PY
[ ! -e "$T/e.json.partial" ] || fail "e.json.partial left behind"
ok "benchmark --json: the engine alone"

# With a corpus: every field of the extract entry, the name and the price,
# and the temporary features file removed.
$TO "$BNECK" benchmark --weights "$T/w.h5" --batch 2 --threads 1 --seconds 0.2 --images "$T/c" --json "$T/x.json" \
    --name 'tiny "box"' --price-per-node-hour 0.952 > "$T/x.out" 2> "$T/x.err" ||
    fail "benchmark --images: $(cat "$T/x.err")"
grep -q '^images/s: [0-9.]*$' "$T/x.out" || fail "no 'images/s: X' line with --images"
grep -q '^extract images/s: [0-9.]*$' "$T/x.out" || fail "no 'extract images/s: X' line: $(cat "$T/x.out")"
"$PY" - "$T/x.json" "$T/c" <<'PY' || fail "benchmark file with --images"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["machine"]["name"] == 'tiny "box"', d["machine"]
assert d["price_per_node_hour"] == 0.952, d
assert [e["precision"] for e in d["engine"]] == ["fp32"], d["engine"]
assert len(d["extract"]) == 1, d["extract"]
x = d["extract"][0]
assert x["precision"] == "fp32" and x["device"] in ("cpu", "gpu") and x["corpus"] == sys.argv[2], x
assert x["images"] == 6 and x["ranks"] == 1 and x["wall_s"] > 0, x
assert abs(x["images_per_s"] - x["images"] / x["wall_s"]) <= 1e-3 * x["images_per_s"], x
PY
ls "$T" | grep -q 'extract-' && fail "temporary features file left behind: $(ls "$T")"
ok "benchmark --json --images: extract end to end recorded, temporary file removed"

# --precisions all: int8 without a calibration is skipped with a note; what
# ran is in the file. A precision named and not runnable here is refused.
$TO "$BNECK" benchmark --weights "$T/w.h5" --batch 1 --threads 1 --seconds 0.1 --precisions all --json "$T/all.json" \
    > "$T/all.out" 2> "$T/all.err" || fail "--precisions all: $(cat "$T/all.err")"
grep -q "int8 skipped: it needs --calibration" "$T/all.err" || fail "no note for int8: $(cat "$T/all.err")"
"$PY" - "$T/all.json" "$T/all.out" <<'PY' || fail "--precisions all file"
import json, sys
d = json.load(open(sys.argv[1]))
ran = [e["precision"] for e in d["engine"]]
assert "fp32" in ran and "int8" not in ran and len(set(ran)) == len(ran), ran
lines = [l for l in open(sys.argv[2]) if l.startswith("images/s: ")]
assert len(lines) == len(ran), (lines, ran)
PY
set +e
"$BNECK" benchmark --weights "$T/w.h5" --precisions fp32,int8 --seconds 0.1 > /dev/null 2> "$T/u.err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "int8 needs --calibration" "$T/u.err" || fail "--precisions fp32,int8 without a calibration: $rc $(cat "$T/u.err")"
set +e
"$BNECK" benchmark --weights "$T/w.h5" --images "$T/c" --seconds 0.1 > /dev/null 2> "$T/u.err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q -- "give --json OUT.json" "$T/u.err" || fail "--images without --json: $rc $(cat "$T/u.err")"
ok "--precisions all skips int8 with a note; refusals"

# ---------------------------------------------------------------- cost
# Two machines with known rates and prices: A at 10 images/s (extract; its
# engine figure 12 is not used) and 0.952 per node-hour, B at 25 images/s
# (engine only) and 0.900.
cat > "$T/a.json" <<'EOF'
{"format": "bneck-benchmark", "version": 1, "created_by": "hand", "date": "2026-12-02T00:00:00Z",
 "machine": {"name": "mA", "host": "a", "cpu": "x", "cores": 2, "threads": 2, "gpus": [], "memory_gib": 8},
 "price_per_node_hour": 0.952,
 "engine": [{"device": "cpu", "backend": "dnnl", "precision": "fp32", "batch": 16, "threads": 2, "seconds": 5,
             "images_per_s": 12, "gflops": 274, "peak_rss_mib": 300}],
 "extract": [{"device": "cpu", "precision": "fp32", "corpus": "c", "images": 100, "ranks": 1, "wall_s": 10,
              "images_per_s": 10}]}
EOF
cat > "$T/b.json" <<'EOF'
{"format": "bneck-benchmark", "version": 1, "created_by": "hand", "date": "2026-12-02T00:00:00Z",
 "machine": {"name": "mB", "host": "b", "cpu": "y", "cores": 4, "threads": 4, "gpus": [], "memory_gib": 16},
 "price_per_node_hour": 0.5,
 "engine": [{"device": "cpu", "backend": "dnnl", "precision": "fp32", "batch": 16, "threads": 4, "seconds": 5,
             "images_per_s": 25, "gflops": 571, "peak_rss_mib": 300}],
 "extract": []}
EOF
# check_rows OUT SPEC: every row of the table in OUT equals SPEC, a JSON list
# of [machine, precision, source, rate, price or null], for N images
# (CHECK_N, default 3670).
check_rows() {
    "$PY" - "$1" "$2" "${CHECK_N:-3670}" <<'PY'
import json, re, sys
out, spec, n = open(sys.argv[1]).read().splitlines(), json.loads(sys.argv[2]), int(sys.argv[3])
head = re.split(r"  +", out[0].strip())
want_head = ["machine", "precision", "source", "images/s", "time for {:,}".format(n), "price/node-hour",
             "cost for {:,}".format(n), "cost per 1,000", "images per $"]
assert head == want_head, head
rows = [re.split(r"  +", l.strip()) for l in out[1:1 + len(spec)]]
def close(got, want):
    if want is None:
        return got == "-"
    return abs(float(got) - want) <= 5e-4 * abs(want)
for row, (mach, prec, src, rate, price) in zip(rows, spec):
    assert row[:3] == [mach, prec, src], (row, mach)
    assert close(row[3], rate), ("rate", row)
    assert row[4].endswith(" s") and close(row[4][:-2], n / rate), ("time", row)
    assert close(row[5], price), ("price", row)
    assert close(row[6], None if price is None else n / rate / 3600 * price), ("cost", row)
    assert close(row[7], None if price is None else 1000 / rate / 3600 * price), ("per 1000", row)
    assert close(row[8], None if price is None else rate * 3600 / price), ("images per $", row)
assert len(rows) == len(spec) and out[1 + len(spec)].startswith("fastest: "), out
PY
}
"$BNECK" cost "$T/a.json" "$T/b.json" --price mB=0.900 > "$T/c1.out" || fail "cost: exit $?"
cat "$T/c1.out"
check_rows "$T/c1.out" '[["mA","fp32","measured extract",10,0.952],["mB","fp32","measured engine",25,0.9]]' ||
    fail "cost table"
# Hand-computed: 3670 images at 10 images/s take 367 s and cost
# 0.952 * 367 / 3600 = 0.09705; at 25 images/s 146.8 s and 0.9 * 146.8 / 3600 = 0.0367.
grep -q '^mA .* 367\.0 s .* 0\.09705 ' "$T/c1.out" || fail "A: 367.0 s, cost 0.09705"
grep -q '^mB .* 146\.8 s .* 0\.03670 .* 0\.01000 .* 100000$' "$T/c1.out" || fail "B: 146.8 s, 0.03670, 0.01000, 100000"
grep -q '^fastest: mB, fp32 (measured engine): 25\.00 images/s' "$T/c1.out" || fail "fastest line"
grep -q '^cheapest per image: mB, fp32 (measured engine): 0\.01000 per 1,000 images' "$T/c1.out" || fail "cheapest line"
ok "cost: the table's numbers, fastest and cheapest"

# The file's price when no --price; --machine adds a reported row; --images N.
"$BNECK" cost "$T/a.json" "$T/b.json" --machine 'pub=400' --price pub=4 --images 1000 > "$T/c2.out" || fail "cost 2"
CHECK_N=1000 check_rows "$T/c2.out" \
    '[["mA","fp32","measured extract",10,0.952],["mB","fp32","measured engine",25,0.5],["pub","-","reported",400,4]]' ||
    fail "cost with --machine and --images: $(cat "$T/c2.out")"
grep -q '^fastest: pub (reported): 400\.0 images/s' "$T/c2.out" || fail "fastest with --machine: $(cat "$T/c2.out")"
# --precision keeps one precision; none matching is an error.
"$BNECK" cost "$T/a.json" --precision fp32 > /dev/null || fail "--precision fp32"
set +e
"$BNECK" cost "$T/a.json" --precision int8 > /dev/null 2> "$T/p.err"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "no file has a measurement in int8" "$T/p.err" || fail "--precision int8: $rc $(cat "$T/p.err")"
ok "cost: --machine, --images, --precision"

# A machine without any price: shown without a cost, a note, exit 0.
"$PY" -c "import json; d = json.load(open('$T/b.json')); del d['price_per_node_hour']; json.dump(d, open('$T/np.json', 'w'))"
"$BNECK" cost "$T/np.json" > "$T/np.out" || fail "cost without a price must exit 0"
check_rows "$T/np.out" '[["mB","fp32","measured engine",25,null]]' || fail "table without a price: $(cat "$T/np.out")"
grep -q "^note: mB has no price" "$T/np.out" || fail "no note for a machine without a price"
grep -q "^cheapest per image: no machine has a price" "$T/np.out" || fail "cheapest line without prices"
ok "cost: a machine without a price"

# Refusals: exit status 1, the file's name and the reason on one line.
refused() {  # FILE MESSAGE
    local rc=0
    "$BNECK" cost "$1" > /dev/null 2> "$T/r.err" || rc=$?
    [ "$rc" = 1 ] || fail "$(basename "$1"): exit $rc, expected 1: $(cat "$T/r.err")"
    grep -F -- "$1" "$T/r.err" | grep -q -F -- "$2" || fail "$(basename "$1"): expected '$2' with the file name: $(cat "$T/r.err")"
    ok "refused $(basename "$1"): $2"
}
echo "hello" > "$T/text.json"
refused "$T/text.json" "cannot read it as JSON"
refused "$T/missing.json" "No such file or directory"
echo '{"format": "bneck-features", "version": 1}' > "$T/other.json"
refused "$T/other.json" "its format is 'bneck-features', not 'bneck-benchmark'"
"$PY" -c "import json; d = json.load(open('$T/a.json')); d['version'] = 2; json.dump(d, open('$T/v2.json', 'w'))"
refused "$T/v2.json" "version 2 is newer than this bneck reads (1)"
"$PY" -c "import json; d = json.load(open('$T/a.json')); del d['machine']['name']; json.dump(d, open('$T/noname.json', 'w'))"
refused "$T/noname.json" "'machine' has no 'name'"
echo '[1, 2]' > "$T/array.json"
refused "$T/array.json" "the top level is not a JSON object"
set +e
"$BNECK" cost "$T/a.json" --price nobody=1 > /dev/null 2> "$T/u.err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "no machine is named 'nobody'" "$T/u.err" || fail "--price for an unknown machine: $rc $(cat "$T/u.err")"

# ---------------------------------------------------------------- figures and page
"$BNECK" cost "$T/a.json" "$T/b.json" --svg "$T/figs/svg" --png "$T/figs/png" --html "$T/page.html" > "$T/f.out" ||
    fail "cost --svg --png --html: $(cat "$T/f.out")"
[ -s "$T/figs/svg/cost.svg" ] && [ -s "$T/figs/png/cost.png" ] && [ -s "$T/page.html" ] || fail "figure files missing"
if command -v xmllint > /dev/null; then
    xmllint --noout "$T/figs/svg/cost.svg" || fail "cost.svg is not valid XML"
else
    "$PY" -c "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])" "$T/figs/svg/cost.svg" || fail "cost.svg is not valid XML"
fi
"$PY" - "$T/figs/svg/cost.svg" "$T/figs/png/cost.png" "$T/page.html" <<'PY' || fail "figure contents"
import base64, re, sys, xml.dom.minidom as minidom
svg = minidom.parse(sys.argv[1])
def text(tag):
    return " ".join(n.firstChild.data for n in svg.getElementsByTagName(tag) if n.firstChild)
title, desc = text("title"), text("desc")
assert "cost" in title and "1,000 images" in title, title
for want in ("images/s", "cost per 1,000 images", "mA fp32 (extract)", "mB fp32 (engine)"):
    assert want in desc, (want, desc)
assert open(sys.argv[2], "rb").read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG"
page = open(sys.argv[3]).read()
assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "<style>" in page, page[:200]
assert "<td>mA</td>" in page and "<td>mB</td>" in page and "0.09705" in page, "table rows"
m = re.search(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page)
assert m, "no inline figure"
inline = base64.b64decode(m.group(1)).decode()
minidom.parseString(inline)
assert "<title>" in inline and "images/s" in inline
assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page, "the page links out"
PY
ok "cost --svg, --png, --html"

# Under mpirun with a corpus, every rank extracts and none is left waiting.
if [ -n "${MPIEXEC:-}" ] || command -v mpirun > /dev/null; then
    mpi="${MPIEXEC:-mpirun --oversubscribe} --bind-to none"
    $TO $mpi -n 2 "$BNECK" benchmark --weights "$T/w.h5" --batch 2 --threads 1 --seconds 0.1 --images "$T/c" \
        --json "$T/m.json" -q > "$T/m.out" 2>&1 || fail "benchmark --images at 2 ranks: $(cat "$T/m.out")"
    "$PY" -c "import json, sys; x = json.load(open(sys.argv[1]))['extract']; assert len(x) == 1 and x[0]['ranks'] == 2 and x[0]['images'] == 6, x" \
        "$T/m.json" || fail "2-rank extract entry"
    ok "benchmark --images at 2 ranks"
fi
echo "cost: all checks passed"
