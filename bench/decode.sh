#!/bin/bash
# bench/decode.sh: decode + resize throughput, per core, on a generated corpus
# of flower_photos-like images (mostly 500x333 and 320x240, JPEG q=90), with
# a peer measured in the same run: Pillow (decode, bilinear resize to 299x299,
# normalise with numpy), the usual Keras-side input pipeline.
#
# Usage: bench/decode.sh [IMAGES]    (default 3670, the size of flower_photos)
# Environment: BNECK (binary, default ./bneck), BENCH_DIR (default bench/out).
set -euo pipefail
n=${1:-3670}
bneck=${BNECK:-./bneck}
out=${BENCH_DIR:-bench/out}
per=$(( (n + 4) / 5 ))
corpus="$out/corpus-$per"
mkdir -p "$out"
[ -d "$corpus" ] || "$bneck" mkcorpus "$corpus" --classes 5 --per-class "$per" --quality 90 --seed 7 -q
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores)"
echo "corpus: $corpus, $(find "$corpus" -type f | wc -l) images, $(du -sh "$corpus" | cut -f1)"

best_run() {  # $1 = dct mode; best of 3 runs (the first also warms the page cache)
    best=0
    for i in 1 2 3; do
        r=$("$bneck" corpus --images "$corpus" --decode --dct "$1" -q | sed -n 's/^decode throughput: \([0-9.]*\) images\/s per rank.*/\1/p')
        best=$(awk -v a="$best" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
    done
    echo "$best"
}
acc=$(best_run accurate)
fast=$(best_run fast)
echo "bneck decode+resize+normalise, 1 core, accurate IDCT: $acc images/s"
echo "bneck decode+resize+normalise, 1 core, fast IDCT:     $fast images/s"

peer=$(/usr/bin/python3 - "$corpus" <<'PY' 2>/dev/null || echo "n/a"
import sys, os, time
try:
    from PIL import Image
    import numpy as np
except ImportError:
    print("n/a"); sys.exit(0)
files = [os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in sorted(fs)]
best = 0
for _ in range(2):
    t = time.perf_counter()
    for f in files:
        with Image.open(f) as im:
            x = np.asarray(im.convert("RGB").resize((299, 299), Image.BILINEAR), dtype=np.float32)
            x = x / 127.5 - 1.0
    best = max(best, len(files) / (time.perf_counter() - t))
print("%.1f" % best)
PY
)
echo "peer: Pillow decode + bilinear resize + numpy normalise, 1 core: $peer images/s"
if [ "$peer" != "n/a" ]; then
    awk -v a="$acc" -v p="$peer" 'BEGIN { printf "ratio bneck/Pillow: %.2fx\n", a / p }'
fi
awk -v a="$acc" 'BEGIN { printf "target 1500 images/s per core: %s\n", (a >= 1500) ? "met" : "NOT met" }'
