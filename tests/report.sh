#!/bin/bash
# report.sh: what runs record about their cost, and `bneck report`.
#  - extract at 2 ranks with --price-per-node-hour and train with a price:
#    the features file's run record (nodes, cores, core-seconds, node-hours,
#    cost, cost per 1,000 images, images per dollar) is consistent with its
#    own wall time and price, worked again here in Python; each rank's host
#    and device are in the timing table; the timeline has samples of every
#    rank, rising, ending at the rank's counts; the classifier has its run;
#  - the text report: summary, timing table, cost as recorded, failed images
#    counted by reason, --failed lists every bad file with its reason;
#  - --svg: each figure valid XML (xmllint) with its title and axis labels;
#    --png: PNG files; --html: one page with no external reference that
#    headless Chromium loads and draws (the screenshot is not blank: it has
#    colours from the figures), skipped (77) where Chromium is missing;
#  - a run without a price: a report without a cost, exit 0; --price-per-node-hour
#    given to the report prices it;
#  - a features file from before runs were recorded (run record, timeline and
#    the new timing columns removed with h5py): the report still works and
#    says what is missing;
#  - readable at scale: a timing table of 64 ranks with timelines and a
#    classifier of 100 classes draw, with valid SVG;
#  - a joined file reports its join run, and with its shards their extracts;
#  - refusals: a file that is not HDF5, an HDF5 file of another tool, a
#    missing file: exit 1, the file named.
set -eu
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import numpy, h5py' 2>/dev/null || { echo "SKIP: numpy/h5py missing"; exit 77; }
command -v xmllint >/dev/null || { echo "SKIP: xmllint missing (apt-get install libxml2-utils)"; exit 77; }
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"  # relative image paths: the split hashes the path as given, so it must not depend on mktemp
mpi="${MPIEXEC:-mpirun --oversubscribe} --bind-to none"
T="timeout 300"

bn_mkweights "$tmp/w.h5" --seed 3 -q
"$BNECK" mkcorpus "$tmp/c" --classes 3 --per-class 14 --seed 2 -q
printf '' > "$tmp/c/daisy/empty.jpg"
printf 'not an image' > "$tmp/c/roses/text.jpg"
src=$(ls "$tmp"/c/dandelion/*.jpg | head -n 1)
head -c $(($(stat -c %s "$src") / 2)) "$src" > "$tmp/c/dandelion/cut.jpg"
$T $mpi -n 2 "$BNECK" extract --images c --weights "$tmp/w.h5" --out "$tmp/f.h5" --threads 1 --batch 4 \
    --progress none --price-per-node-hour 0.952 > "$tmp/extract.log" 2>&1 || { cat "$tmp/extract.log"; fail "extract"; }
grep -q '^run: .* s wall on 1 node, 2 ranks' "$tmp/extract.log" || fail "extract printed no run line: $(cat "$tmp/extract.log")"
grep -q '^cost: .* at 0.952 per node-hour' "$tmp/extract.log" || fail "extract printed no cost line"
$T $mpi -n 2 "$BNECK" train --features "$tmp/f.h5" --out "$tmp/cl.h5" --steps 60 --price-per-node-hour 0.9 \
    > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; fail "train"; }

"$PY" - "$tmp/f.h5" "$tmp/cl.h5" <<'PY' || fail "the run records"
import sys, math, socket, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
t = f['timing/run_0']; a = t.attrs; rows = t[:]
assert a['stage'] == b'extract' and a['ranks'] == 2 and a['nodes'] == 1, dict(a)
assert a['cores'] == rows['cores'].sum() == 2, (a['cores'], rows['cores'])
assert abs(a['node_hours'] - a['wall_s'] * a['nodes'] / 3600) < 1e-12
assert a['price_per_node_hour'] == 0.952
assert abs(a['cost'] - a['node_hours'] * 0.952) < 1e-12
n = rows['done'].sum() + rows['failed'].sum()
assert a['images'] == n == 45, (a['images'], n)
assert abs(a['cost_per_1000_images'] - a['cost'] * 1000 / n) < 1e-12
assert abs(a['images_per_dollar'] - n / a['cost']) < 1e-6 * n / a['cost']
assert 0 < a['core_seconds'] <= 2 * a['wall_s'] * 1.01, (a['core_seconds'], a['wall_s'])
assert rows['wall_s'].max() <= a['wall_s'] + 1e-6
assert a['run_precision'] == b'fp32'
host = socket.gethostname().encode()
assert all(h == host for h in rows['host']), rows['host']
assert all(d.endswith(b'1 core') for d in rows['device_name']), rows['device_name']
tl = f['timeline/run_0'][:]
for r in range(2):
    s = tl[tl['rank'] == r]
    assert len(s) >= 2 and s['t_s'][0] == 0 and s['done'][0] == 0, s
    assert np.all(np.diff(s['t_s']) > 0) and np.all(np.diff(s['done']) >= 0), s
    assert s['done'][-1] == rows['done'][r] and s['failed'][-1] == rows['failed'][r], (s[-1], rows[r])
c = h5py.File(sys.argv[2], 'r')
ra = c['run'].attrs
assert ra['stage'] == b'train' and ra['ranks'] == 2 and ra['price_per_node_hour'] == 0.9
assert abs(ra['cost'] - ra['wall_s'] * ra['nodes'] / 3600 * 0.9) < 1e-12
assert c['run/rank_times'].shape == (2, 5)
print('records ok: extract cost %.6f, train cost %.8f' % (a['cost'], ra['cost']))
PY

# The text report, with the numbers as recorded.
$T "$BNECK" report "$tmp/f.h5" "$tmp/cl.h5" > "$tmp/r.txt" 2>&1 || { cat "$tmp/r.txt"; fail "report"; }
want=$("$PY" -c "
import h5py; a = h5py.File('$tmp/f.h5', 'r')['timing/run_0'].attrs
print('%.6f' % a['cost'], '%.6f' % a['cost_per_1000_images'], '%.0f' % a['images_per_dollar'])")
set -- $want
grep -q "cost: $1 at 0.952 per node-hour; $2 per 1,000 images; $3 images per dollar" "$tmp/r.txt" ||
    fail "report's cost line is not the recorded one ($want): $(grep cost "$tmp/r.txt")"
for s in '45 images in 3 classes' '42 done, 3 failed, 0 pending' '-- run 0: extract' 'hosts and devices:' \
    'throughput timeline:' 'load imbalance' '== stage times' 'classifier, 3 classes' '-- failed images: 3' \
    'zero-bytes' 'not-an-image' 'truncated' '--failed lists every failed image'; do
    grep -qF -- "$s" "$tmp/r.txt" || fail "report lacks '$s': $(cat "$tmp/r.txt")"
done
grep -qE '^ +1 +[0-9]+ +[0-9]+ +[0-9.]+ ' "$tmp/r.txt" || fail "no timing row for rank 1"
$T "$BNECK" report "$tmp/f.h5" --failed > "$tmp/rf.txt" 2>&1 || fail "report --failed"
for b in daisy/empty.jpg roses/text.jpg dandelion/cut.jpg; do
    grep -qF "c/$b" "$tmp/rf.txt" || fail "--failed does not list $b: $(cat "$tmp/rf.txt")"
done
[ "$(grep -c "^  c/.*	" "$tmp/rf.txt")" = 3 ] || fail "--failed lists other than 3 images"

# Figures and the page.
$T "$BNECK" report "$tmp/f.h5" "$tmp/cl.h5" --svg "$tmp/svg" --png "$tmp/png" --html "$tmp/out/r.html" \
    > "$tmp/r2.txt" 2>&1 && fail "--html into a missing folder worked"
grep -qF "$tmp/out/r.html" "$tmp/r2.txt" || fail "the missing folder is not named: $(cat "$tmp/r2.txt")"
$T "$BNECK" report "$tmp/f.h5" "$tmp/cl.h5" --svg "$tmp/svg" --png "$tmp/png" --html "$tmp/r.html" \
    > "$tmp/r2.txt" 2>&1 || { cat "$tmp/r2.txt"; fail "report --svg --png --html"; }
check_svg() { # file, then strings its title and description must hold
    local f=$1; shift
    [ -s "$f" ] || fail "$f missing"
    xmllint --noout "$f" || fail "$f is not valid XML"
    local text
    text=$(xmllint --xpath "concat(string(/*[local-name()='svg']/*[local-name()='title']), ' | ', string(/*[local-name()='svg']/*[local-name()='desc']))" "$f")
    for s in "$@"; do
        case $text in *"$s"*) ;; *) fail "$f: '$s' not in its title/desc: $text" ;; esac
    done
}
check_svg "$tmp/svg/ranks.svg" 'Time per rank' 'X axis: MPI rank' 'Y axis: seconds' read decode forward write idle
check_svg "$tmp/svg/throughput.svg" 'Throughput' 'X axis: seconds since the rank started' 'Y axis: images per second' 'rank 1' 'all ranks'
check_svg "$tmp/svg/training.svg" 'Training' 'Y axis: accuracy (%)' 'X axis: training step' 'validation accuracy' 'Y axis: cross entropy'
check_svg "$tmp/svg/confusion.svg" 'Confusion matrix' 'X axis: predicted class' 'Y axis: true class' daisy roses
check_svg "$tmp/svg/failures.svg" 'Failed images by reason' 'X axis: images' zero-bytes not-an-image truncated
for p in ranks throughput training confusion failures; do
    [ "$(head -c 4 "$tmp/png/$p.png" | od -An -c | tr -d ' ')" = '211PNG' ] || fail "$p.png is not a PNG"
done
grep -q '<h1>bneck report</h1>' "$tmp/r.html" || fail "the page has no heading"
[ "$(grep -o '<img src="data:image/svg+xml;base64,' "$tmp/r.html" | wc -l)" = 5 ] || fail "the page does not hold 5 figures"
grep -Eq '(src|href)="(http|//|file:)' "$tmp/r.html" && fail "the page refers to something outside itself"
grep -qF 'empty.jpg' "$tmp/r.html" || fail "the page does not list the failed images"

# The page in a real browser.
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$chrome" ]; then
    # Chromium writes dbus and GPU complaints on stderr whatever the page; what
    # counts is that it writes a screenshot of the page with the figures drawn.
    timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,5200 \
        --screenshot="$tmp/shot.png" "file://$tmp/r.html" > "$tmp/chrome.log" 2>&1 ||
        { cat "$tmp/chrome.log"; fail "chromium could not load the page"; }
    grep -iE 'CONSOLE|Failed to load|net::ERR' "$tmp/chrome.log" && fail "the page logged an error"
    "$PY" - "$tmp/shot.png" <<'PY' || fail "the screenshot is blank or unreadable"
import sys, zlib, struct
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat, w = 8, b'', 0
while pos < len(d):
    n, typ = struct.unpack('>I4s', d[pos:pos + 8]); body = d[pos + 8:pos + 8 + n]; pos += 12 + n
    if typ == b'IHDR':
        w, h, depth, ctype, _, _, inter = struct.unpack('>IIBBBBB', body)
        assert depth == 8 and ctype in (2, 6) and inter == 0, (depth, ctype, inter)
    elif typ == b'IDAT':
        idat += body
bpp = 4 if ctype == 6 else 3
raw, stride = zlib.decompress(idat), w * bpp
prev, rows = bytearray(stride), []
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
colours, dark, total = set(), 0, 0
for y in range(0, h, 3):
    r = rows[y]
    for x in range(0, w, 3):
        px = r[x * bpp:x * bpp + 3]; colours.add(px); total += 1
        if sum(px) < 600: dark += 1
# The figures bring the palette's colours, as solid bars and fills: text and
# tables alone have none of them.
assert len(colours) > 40, 'only %d colours' % len(colours)
assert dark > total * 0.01, 'only %d of %d pixels are not white' % (dark, total)
palette = {'forward (green)': (0x59, 0xa1, 0x4f), 'decode (orange)': (0xf2, 0x8e, 0x2b), 'bar blue': (0x4e, 0x79, 0xa7)}
for name, rgb in palette.items():
    hits = 0
    for y in range(0, h, 2):
        r = rows[y]
        for x in range(0, w, 2):
            px = r[x * bpp:x * bpp + 3]
            if all(abs(px[i] - rgb[i]) <= 3 for i in range(3)): hits += 1
    assert hits > 50, 'the %s of the figures is not on the screenshot (%d pixels)' % (name, hits)
print('screenshot %dx%d: %d colours, %.1f%% not white' % (w, h, len(colours), 100 * dark / total))
PY
else
    echo "note: chromium is not installed: the page was not loaded in a browser (apt-get install chromium)"
    chrome_skip=1
fi

# A run without a price: no cost, no error; the report can price it.
$T "$BNECK" extract --images c --weights "$tmp/w.h5" --out "$tmp/g.h5" --threads 1 --batch 8 --progress none \
    > "$tmp/g.log" 2>&1 || { cat "$tmp/g.log"; fail "extract without a price"; }
grep -q 'cost: no price given' "$tmp/g.log" || fail "extract without a price: $(cat "$tmp/g.log")"
$T "$BNECK" report "$tmp/g.h5" > "$tmp/g.txt" 2>&1 || fail "report of an unpriced run: $(cat "$tmp/g.txt")"
grep -q 'cost: no price' "$tmp/g.txt" || fail "unpriced report: $(cat "$tmp/g.txt")"
grep -q '== cost: no run has a price' "$tmp/g.txt" || fail "unpriced total"
$T "$BNECK" report "$tmp/g.h5" --price-per-node-hour 3.6 > "$tmp/g2.txt" 2>&1 || fail "report --price-per-node-hour"
wall=$("$PY" -c "import h5py; print(h5py.File('$tmp/g.h5', 'r')['timing/run_0'].attrs['wall_s'])")
want=$("$PY" -c "print('%.6f' % ($wall / 3600 * 3.6))")
grep -q "cost: $want at 3.6 per node-hour" "$tmp/g2.txt" || fail "priced by the report: want $want: $(grep cost "$tmp/g2.txt")"

# A file from before runs were recorded.
cp "$tmp/g.h5" "$tmp/old.h5"
"$PY" - "$tmp/old.h5" <<'PY' || fail "making an old file"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'r+') as f:
    t = f['timing/run_0'][:]
    keep = ['rank', 'done', 'failed', 'read_s', 'decode_s', 'forward_s', 'write_s', 'idle_s', 'wall_s', 'images_per_s']
    old = np.zeros(len(t), dtype=[(k, t.dtype[k]) for k in keep])
    for k in keep: old[k] = t[k]
    fin = f['timing/run_0'].attrs['finished']
    del f['timing/run_0']; del f['timeline']
    d = f['timing'].create_dataset('run_0', data=old)
    d.attrs['ranks'] = np.int32(len(t)); d.attrs['complete'] = np.int32(1); d.attrs['finished'] = fin
PY
$T "$BNECK" report "$tmp/old.h5" --svg "$tmp/oldsvg" --html "$tmp/old.html" > "$tmp/old.txt" 2>&1 ||
    { cat "$tmp/old.txt"; fail "report of an old file"; }
for s in 'nodes, cores and cost were not recorded' 'hosts and devices: not recorded' \
    'throughput timeline: not recorded' 'cost: no price'; do
    grep -qF "$s" "$tmp/old.txt" || fail "old file: '$s' not said: $(cat "$tmp/old.txt")"
done
[ -f "$tmp/oldsvg/ranks.svg" ] && [ ! -f "$tmp/oldsvg/throughput.svg" ] || fail "old file: figures $(ls "$tmp/oldsvg")"
grep -q 'recorded no throughput timeline' "$tmp/old.html" || fail "the old file's page does not say the timeline is missing"

# Readable at scale: 64 ranks with timelines; 100 classes.
cp "$tmp/g.h5" "$tmp/big.h5"
"$PY" - "$tmp/big.h5" <<'PY' || fail "making a 64-rank table"
import sys, h5py, numpy as np
rng = np.random.default_rng(0)
with h5py.File(sys.argv[1], 'r+') as f:
    t = f['timing/run_0'][:]; attrs = dict(f['timing/run_0'].attrs)
    big = np.zeros(64, dtype=t.dtype)
    big['rank'] = np.arange(64); big['done'] = 1562; big['failed'] = 3
    for k in ['read_s', 'decode_s', 'forward_s', 'write_s', 'idle_s']: big[k] = rng.uniform(1, 50, 64)
    big['wall_s'] = 200; big['device'] = -1; big['cores'] = 2
    big['host'] = [b'node%02d' % (r // 8) for r in range(64)]; big['device_name'] = b'Test CPU, 2 cores'
    del f['timing/run_0']; d = f['timing'].create_dataset('run_0', data=big)
    for k, v in attrs.items(): d.attrs[k] = v
    d.attrs['ranks'] = np.int32(64)
    tl = f['timeline/run_0'][:]; del f['timeline/run_0']
    rows = []
    for r in range(64):
        for i in range(101):
            rows.append((r, 2.0 * i, int(1562 * i / 100), int(3 * i / 100)))
    f['timeline'].create_dataset('run_0', data=np.array(rows, dtype=tl.dtype))
PY
"$BNECK" mkfeatures "$tmp/f100.h5" --classes 100 --rows 3000 -q > /dev/null 2>&1 || fail "mkfeatures of 100 classes"
$T "$BNECK" train --features "$tmp/f100.h5" --out "$tmp/c100.h5" --steps 30 -q > /dev/null 2>&1 || fail "train on 100 classes"
$T "$BNECK" report "$tmp/big.h5" "$tmp/c100.h5" --svg "$tmp/bigsvg" --png "$tmp/bigpng" > "$tmp/big.txt" 2>&1 || { cat "$tmp/big.txt"; fail "report at scale"; }
grep -q 'node07  *Test CPU, 2 cores (8 ranks)' "$tmp/big.txt" || fail "64 ranks on 8 hosts are not grouped: $(grep -A9 'hosts and' "$tmp/big.txt")"
check_svg "$tmp/bigsvg/ranks.svg" 'Time per rank' 'X axis: MPI rank'
check_svg "$tmp/bigsvg/throughput.svg" 'Throughput' 'rank 63' 'all ranks'
check_svg "$tmp/bigsvg/confusion.svg" 'Confusion matrix' 'and 68 more'
if [ -n "${BNECK_REPORT_KEEP:-}" ]; then mkdir -p "$BNECK_REPORT_KEEP" && cp -r "$tmp"/svg "$tmp"/png "$tmp"/bigsvg "$tmp"/bigpng "$tmp"/r.html "$BNECK_REPORT_KEEP"/ && cp "$tmp/shot.png" "$BNECK_REPORT_KEEP"/ 2>/dev/null || true; fi

# A joined file: its one run is the join, which extracts nothing.
for k in 0 1; do
    $T "$BNECK" extract --images c --weights "$tmp/w.h5" --out "$tmp/s$k.h5" --shard $k/2 --threads 1 \
        --batch 8 --progress none -q > /dev/null 2>&1 || fail "extract shard $k"
done
$T "$BNECK" join --out "$tmp/j.h5" "$tmp/s0.h5" "$tmp/s1.h5" -q > /dev/null 2>&1 || fail "join"
$T "$BNECK" report "$tmp/j.h5" "$tmp/s0.h5" "$tmp/s1.h5" > "$tmp/j.txt" 2>&1 || fail "report of a join: $(cat "$tmp/j.txt")"
for s in '-- run 0: join' 'throughput timeline: none (a join run samples none)' 'hosts and devices:'; do
    grep -qF -- "$s" "$tmp/j.txt" || fail "joined file: '$s' not said: $(cat "$tmp/j.txt")"
done
[ "$(grep -c '^  extract ' "$tmp/j.txt")" = 2 ] && [ "$(grep -c '^  join ' "$tmp/j.txt")" = 1 ] ||
    fail "stage times of a join and its shards: $(sed -n '/== stage times/,$p' "$tmp/j.txt")"

# Refusals.
echo 'plain text' > "$tmp/x.h5"
"$BNECK" report "$tmp/x.h5" > "$tmp/e.txt" 2>&1 && fail "a text file was reported"
grep -qF "$tmp/x.h5: not a bneck features or classifier file" "$tmp/e.txt" || fail "text file: $(cat "$tmp/e.txt")"
"$BNECK" report "$tmp/w.h5" > "$tmp/e.txt" 2>&1 && fail "a weights file was reported"
grep -qF "$tmp/w.h5: not a bneck features or classifier file" "$tmp/e.txt" || fail "weights: $(cat "$tmp/e.txt")"
"$BNECK" report "$tmp/missing.h5" > "$tmp/e.txt" 2>&1 && fail "a missing file was reported"
grep -qF "$tmp/missing.h5" "$tmp/e.txt" || fail "missing: $(cat "$tmp/e.txt")"
rc=0; "$BNECK" report > "$tmp/e.txt" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "no file: exit $rc, not a usage error (2)"

[ -n "${chrome_skip:-}" ] && { echo "SKIP: the rest passed; chromium is missing for the browser check"; exit 77; }
echo "PASS: report"
