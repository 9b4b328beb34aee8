#!/bin/bash
# bench/engine.sh: the Inception v3 engine against its peers, in one run.
#
# Measures, on this machine, with THREADS (2) threads each, on one weights file:
#   (a) "bneck benchmark" images/s and peak RSS at every batch size of BATCHES,
#       for each precision of PRECISIONS (fp32 bf16 int8): --precision P, and
#       for int8 --calibration CAL.h5 from "bneck calibrate" on the 32
#       calibration images (c). A precision (or calibrate) that bneck refuses
#       is reported as "refused: <its message>" and the run goes on. Then the
#       gemm backend at fp32's best batch (information);
#   (b) the peers, each at every batch of BATCHES:
#       - OpenVINO (PyPI openvino) f32, bf16 (INFERENCE_PRECISION_HINT bf16)
#         and int8 (NNCF post-training quantization, nncf.quantize, on the 32
#         calibration images), the model converted with openvino.convert_model
#         from the tf_keras model; each reports the precision its convolutions
#         really ran in (a CPU without bf16 support runs the bf16 hint in f32);
#       - TF-Keras (PyPI tensorflow-cpu + tf-keras): the tf_keras model called
#         through a tf.function, tf.config.threading intra-op THREADS, inter-op 1;
#       - PyTorch + torchvision inception_v3 from Debian: eval, torch.no_grad(),
#         torch.set_num_threads, channels_last model and input;
#       OpenVINO runs twice: one stream of THREADS threads on the whole batch
#       (LATENCY), and OV_STREAMS streams (default THREADS; THROUGHPUT, an
#       AsyncInferQueue of that many requests, each on a slice of the batch),
#       as bneck runs a stream per thread by default (--streams); batches that
#       do not split evenly are left out of the streams runs;
#       OpenVINO and TF-Keras run under PEERS_PYTHON (bench/peers.py), a
#       virtual environment set up for the benchmark, never part of the build:
#         python3 -m venv V && V/bin/pip install tensorflow-cpu==2.21.0 \
#             tf-keras==2.21.0 openvino==2026.4.1 nncf==3.4.0
#       Without PEERS_PYTHON (or if it cannot import tf_keras) the script says
#       so and runs the rest; PyTorch runs under PYTHON3 where it imports;
#   (c) the weights: "bneck mkweights --seed 1", copied into tf_keras'
#       InceptionV3 and written by Keras' own save_weights
#       (bench/keras_weights.py): topological layer order, first layer conv2d.
#       Every engine reads that one file (without PEERS_PYTHON: the mkweights
#       file). Calibration: 32 images from "bneck mkcorpus", given to bneck
#       calibrate as a folder and to NNCF as the input bneck computes for them
#       ("bneck features --dump-input", keras preprocessing x/127.5 - 1);
#   (d) the physical peak: per round, bench/peak.c measures the clock with a
#       chain of dependent adds per second of CPU time on THREADS busy threads
#       (/proc/cpuinfo "cpu MHz" is printed beside it, for information only:
#       in a VM it is often a fixed nominal figure), and the AVX2 fp32 FMA and
#       int8 vpmaddubsw throughput per cycle as a check. The peak of a
#       precision is THREADS x ops per cycle x the highest clock measured;
#       ops per cycle come from the CPU flags (report, section "peak"), or
#       PEAK_OPS. One image is 5.71 G multiply-adds = 11.42 G ops at every
#       precision;
#   (e) OpenBLAS SGEMM 2048^3 GFLOP/s (2 threads) once per round, as before:
#       what a good fp32 GEMM reaches here;
#   (f) peak RSS of each measurement, one process per measurement (so each
#       peer's figure includes its runtime: TensorFlow, OpenVINO, torch).
# Everything alternates batch by batch, engine by engine, ROUNDS times over;
# each figure is the best of its rounds (these machines are shared and noisy).
# Throughput is images over a timed window of about SECONDS_PER, after one or
# two warm-up passes, for every engine.
#
# Usage: bench/engine.sh
# Environment: BNECK (binary, default ./bneck), BENCH_DIR (default bench/out),
#   ROUNDS (default 3), SECONDS_PER (seconds per measurement, default 5),
#   BATCHES (default "1 4 8 16 32"), THREADS (default 2),
#   PRECISIONS (bneck's, default "fp32 bf16 int8"), BACKEND (default cpu),
#   PYTHON3 (for PyTorch, default /usr/bin/python3), PEERS_PYTHON (OpenVINO,
#   NNCF and TF-Keras; unset: those peers are skipped),
#   PEAK_OPS (override ops per cycle per core, e.g. "fp32=32 bf16=32 int8=64"),
#   OV_STREAMS (OpenVINO's streams run, default THREADS; 1 = none),
#   BNECK_STREAMS (passed to bneck as --streams; default: bneck's own default).
set -euo pipefail
export LC_ALL=C
bneck=${BNECK:-./bneck}
out=${BENCH_DIR:-bench/out}
rounds=${ROUNDS:-3}
secs=${SECONDS_PER:-5}
batches=${BATCHES:-"1 4 8 16 32"}
threads=${THREADS:-2}
precisions=${PRECISIONS:-"fp32 bf16 int8"}
backend=${BACKEND:-cpu}
py=${PYTHON3:-/usr/bin/python3}
peers_py=${PEERS_PYTHON:-}
ov_streams=${OV_STREAMS:-$threads}
bneck_streams=${BNECK_STREAMS:-}
here=$(cd "$(dirname "$0")" && pwd)
gflop_per_image=11.42
ncal=32
mkdir -p "$out"
out=$(cd "$out" && pwd)
export TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES=

for p in $precisions; do
    case $p in fp32|bf16|int8) ;; *) echo "engine.sh: PRECISIONS: unknown precision '$p'" >&2; exit 2 ;; esac
done

cpu_flags=$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
has_flag() { [[ " $cpu_flags " == *" $1 "* ]]; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores," \
    "family $(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
    "model $(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -n 1);" \
    "$(for f in avx2 fma avx512f avx512_bf16 avx512_vnni avx_vnni amx_bf16 amx_int8; do
        has_flag "$f" && printf '%s ' "$f"; done)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: $threads threads, batches $batches, $rounds rounds, ~${secs} s per measurement," \
    "bneck backend $backend, precisions $precisions"

# Print a log's first meaningful lines as one line (for "refused: ..." and "failed: ...").
why() {
    grep -v -e '^[[:space:]]*$' -e 'cuda' -e 'absl::' -e 'oneDNN custom operations' -e 'cpu_feature_guard' \
        -e 'rebuild TensorFlow' "$1" | head -n 3 | tr '\n' ' ' | sed 's/[[:space:]]*$//' | cut -c1-300
}

# ------------------------------------------------------------------ peers available?
have_peers=0; have_ov=0; have_nncf=0; have_torch=0
if [ -z "$peers_py" ]; then
    echo "peers: PEERS_PYTHON is not set: no OpenVINO or TF-Keras peer (see the header for the venv)"
elif "$peers_py" "$here/peers.py" info > "$out/peers-info.txt" 2>&1; then
    have_peers=1
    grep -q '^have openvino ' "$out/peers-info.txt" && have_ov=1
    grep -q '^have nncf ' "$out/peers-info.txt" && have_nncf=1
    echo "peers ($peers_py): $(sed -n 's/^\(have\|missing\) //p' "$out/peers-info.txt" | cut -c1-60 | paste -sd ';' | sed 's/;/; /g')"
else
    echo "peers: $peers_py cannot import tf_keras: no OpenVINO or TF-Keras peer ($(why "$out/peers-info.txt"))"
fi
if "$py" -c 'import torch, torchvision, h5py' > "$out/torch-check.txt" 2>&1; then
    have_torch=1
else
    echo "peers: $py cannot import torch, torchvision and h5py: no PyTorch peer ($(why "$out/torch-check.txt"))"
fi

# ------------------------------------------------------------------ weights and calibration
src_weights="$out/engine-weights.h5"
[ -s "$src_weights" ] || "$bneck" mkweights "$src_weights" --seed 1 -q
weights=$src_weights
if [ "$have_peers" = 1 ]; then
    kw="$out/engine-keras-weights.h5"
    if [ ! -s "$kw" ] || [ "$kw" -ot "$src_weights" ]; then
        rm -f "$kw"
        "$peers_py" "$here/keras_weights.py" "$src_weights" "$kw" > "$out/keras-weights.log" 2>&1 ||
            { cat "$out/keras-weights.log" >&2; echo "engine.sh: bench/keras_weights.py failed" >&2; exit 1; }
    fi
    weights=$kw
    echo "weights: $weights, written by tf_keras' save_weights (from $src_weights)"
else
    echo "weights: $weights (bneck mkweights; no Keras-written file without PEERS_PYTHON)"
fi

cal_dir="$out/calibration"
if [ ! -d "$cal_dir" ] || [ "$(find "$cal_dir" -type f | wc -l)" != "$ncal" ]; then
    rm -rf "$cal_dir"
    "$bneck" mkcorpus "$cal_dir" --classes 4 --per-class $((ncal / 4)) --seed 2 -q
fi
mapfile -t cal_imgs < <(find "$cal_dir" -type f | sort)

declare -A refused  # engine key -> why it is not measured
bneck_has_precision=0
"$bneck" benchmark --help 2>&1 | grep -q -- '--precision' && bneck_has_precision=1
[ "$bneck_has_precision" = 1 ] ||
    echo "note: this bneck has no --precision option: fp32 runs without it"
cal_h5="$out/calibration.h5"
if [[ " $precisions " == *" int8 "* ]]; then
    rm -f "$cal_h5"
    if ! "$bneck" calibrate --weights "$weights" --images "$cal_dir" --count "$ncal" --out "$cal_h5" \
        > "$out/calibrate.log" 2>&1; then
        refused[bneck-int8]="calibrate: $(why "$out/calibrate.log")"
    fi
fi

if [ "$have_ov" = 1 ]; then
    # NNCF gets the exact network input bneck computes for the calibration images.
    "$bneck" features --weights "$weights" --out "$out/calibration-features.npy" \
        --dump-input "$out/calibration-input.npy" -q "${cal_imgs[@]}" > "$out/calibration-input.log" 2>&1 ||
        { cat "$out/calibration-input.log" >&2; echo "engine.sh: bneck features --dump-input failed" >&2; exit 1; }
    rm -f "$out/ov_f32.xml" "$out/ov_f32.bin" "$out/ov_int8.xml" "$out/ov_int8.bin"
    if "$peers_py" "$here/peers.py" prepare "$weights" "$out/calibration-input.npy" "$out" \
        > "$out/peers-prepare.log" 2>&1; then
        grep -e '^openvino' -e '^nncf' -e '^no nncf' "$out/peers-prepare.log" | sed 's/^/peers: /'
    else
        refused[ov-f32]="prepare: $(why "$out/peers-prepare.log")"
    fi
    [ -s "$out/ov_f32.xml" ] || refused[ov-f32]=${refused[ov-f32]:-"no converted model"}
    [ -z "${refused[ov-f32]:-}" ] || refused[ov-bf16]=${refused[ov-f32]}
    [ -s "$out/ov_int8.xml" ] || refused[ov-int8]=${refused[ov-f32]:-"no NNCF int8 model (nncf missing or failed: $out/peers-prepare.log)"}
    for e in f32 bf16 int8; do [ -z "${refused[ov-$e]:-}" ] || refused[ov-$e-s]=${refused[ov-$e]}; done
fi

# ------------------------------------------------------------------ the engines
# key -> display name, precision class
declare -A name class
keys=()
for p in $precisions; do keys+=("bneck-$p"); name[bneck-$p]="bneck"; class[bneck-$p]=$p; done
if [ "$have_ov" = 1 ]; then
    keys+=(ov-f32 ov-bf16 ov-int8)
    name[ov-f32]="OpenVINO"; class[ov-f32]=fp32
    name[ov-bf16]="OpenVINO"; class[ov-bf16]=bf16
    name[ov-int8]="OpenVINO+NNCF"; class[ov-int8]=int8
    if [ "$ov_streams" -gt 1 ]; then
        keys+=(ov-f32-s ov-bf16-s ov-int8-s)
        name[ov-f32-s]="OpenVINO-${ov_streams}s"; class[ov-f32-s]=fp32
        name[ov-bf16-s]="OpenVINO-${ov_streams}s"; class[ov-bf16-s]=bf16
        name[ov-int8-s]="OV+NNCF-${ov_streams}s"; class[ov-int8-s]=int8
    fi
fi
if [ "$have_peers" = 1 ]; then keys+=(keras); name[keras]="TF-Keras"; class[keras]=fp32; fi
if [ "$have_torch" = 1 ]; then keys+=(torch); name[torch]="PyTorch"; class[torch]=fp32; fi

# ------------------------------------------------------------------ SGEMM peak
cat > "$out/sgemm.c" <<'EOF'
/* SGEMM 2048^3 GFLOP/s, best of 10 after a warm-up, with argv[1] OpenBLAS threads.
   Prints the GFLOP/s, then OpenBLAS' kernel name on stderr. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
void openblas_set_num_threads(int);
char *openblas_get_corename(void);
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
int main(int argc, char **argv) {
    const int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) return 1;
    for (long i = 0; i < (long)n * n; i++) { a[i] = (float)(i % 7) - 3; b[i] = (float)(i % 5) - 2; }
    openblas_set_num_threads(argc > 1 ? atoi(argv[1]) : 2);
    double best = 1e30;
    for (int r = 0; r < 11; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t = now() - t;
        if (r > 0 && t < best) best = t;
    }
    printf("%.1f\n", 2.0 * n * n * n / best / 1e9);
    fprintf(stderr, "%s\n", openblas_get_corename());
    return 0;
}
EOF
sgemm_peak() {
    if [ -x "$out/sgemm" ]; then
        "$out/sgemm" "$threads" 2> "$out/sgemm.core"
    else
        rm -f "$out/sgemm.core"
        OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads "$py" -c '
import time, numpy as np
n = 2048
a = np.random.rand(n, n).astype(np.float32)
b = np.random.rand(n, n).astype(np.float32)
a @ b
best = 1e30
for _ in range(10):
    t = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - t)
print("%.1f" % (2 * n ** 3 / best / 1e9))'
    fi
}
if cc -O2 -o "$out/sgemm" "$out/sgemm.c" -lopenblas 2> "$out/sgemm.log"; then
    sgemm_how="OpenBLAS cblas_sgemm from C, openblas_set_num_threads($threads)"
else
    rm -f "$out/sgemm"
    sgemm_how="numpy float32 matmul (C build failed: see $out/sgemm.log)"
fi

# ------------------------------------------------------------------ physical peak
# Ops per cycle per core, from the CPU flags (or PEAK_OPS), with the reason.
vendor=$(sed -n 's/^vendor_id[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
family=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
declare -A opc opc_why
if has_flag avx512f && ! { [ "$vendor" = AuthenticAMD ] && [ "$family" = 25 ]; }; then
    opc[fp32]=64; opc_why[fp32]="AVX-512: 2 FMA units x 16 lanes x 2 flops (assumes 2 512-bit FMA units)"
elif has_flag avx512f; then
    opc[fp32]=32; opc_why[fp32]="Zen 4 AVX-512: 2 FMA units x 8 lanes (256-bit datapaths) x 2 flops"
elif has_flag avx2 && has_flag fma; then
    opc[fp32]=32; opc_why[fp32]="AVX2: 2 FMA units x 8 lanes x 2 flops"
else
    opc[fp32]=16; opc_why[fp32]="no FMA: 1 add + 1 multiply of 8 lanes (AVX)"
fi
if has_flag avx512_bf16; then
    opc[bf16]=$((2 * opc[fp32])); opc_why[bf16]="AVX512_BF16: vdpbf16ps does 2 bf16 products per fp32 lane on the FMA units = 2x fp32"
else
    opc[bf16]=${opc[fp32]}; opc_why[bf16]="no AVX512_BF16: no bf16 arithmetic; bf16 data is widened to f32 and goes through the FMA units = fp32's peak (bf16 saves memory traffic only)"
fi
has_flag amx_bf16 && opc_why[bf16]="${opc_why[bf16]}; AMX is present and NOT counted"
if has_flag avx512_vnni || has_flag avx_vnni; then
    opc[int8]=$((4 * opc[fp32])); opc_why[int8]="VNNI: vpdpbusd does 4 u8 x s8 products per 32-bit lane in one instruction on the FMA-wide pipes = 4x fp32"
else
    opc[int8]=$((2 * opc[fp32])); opc_why[int8]="no VNNI: vpmaddubsw (u8 x s8 pairs to s16) + vpmaddwd (to s32) + vpaddd = 32 multiply-adds per 256 bits in 3 instructions; the two multiplies share the 2 vector-multiply pipes, so 1 such step per cycle = 32 multiply-adds = 64 ops = 2x fp32 (peak.c measures it)"
fi
for kv in ${PEAK_OPS:-}; do
    k=${kv%%=*}; v=${kv#*=}
    case $k in fp32|bf16|int8) opc[$k]=$v; opc_why[$k]="set by PEAK_OPS" ;;
               *) echo "engine.sh: PEAK_OPS: unknown precision '$k'" >&2; exit 2 ;; esac
done
have_peak=0
if cc -O2 -mavx2 -mfma -pthread -o "$out/peak" "$here/peak.c" 2> "$out/peak-build.log" && "$out/peak" 1 0.01 > /dev/null 2>&1; then
    have_peak=1
else
    echo "note: bench/peak.c did not build or run here (see $out/peak-build.log): /proc/cpuinfo MHz is the clock"
fi
cpuinfo_mhz() { awk -F: '/^cpu MHz/ { s += $2; n++ } END { if (n) printf "%.0f", s / n; else print 0 }' /proc/cpuinfo; }
# -> "clock_mhz fp32_per_cycle int8_per_cycle cpuinfo_mhz" for THREADS busy threads
measure_peak() {
    if [ "$have_peak" = 1 ]; then
        "$out/peak" "$threads" 0.3 > "$out/peak.txt" &
        local pid=$!
        sleep 0.5; local mhz; mhz=$(cpuinfo_mhz)
        wait "$pid" || { echo "engine.sh: bench/peak.c failed" >&2; return 1; }
        awk -v m="$mhz" '{ v[$1] = $2 } END { print v["clock_mhz"], v["fp32_flops_per_cycle"], v["int8_ops_per_cycle"], m }' "$out/peak.txt"
    else
        local mhz; mhz=$(cpuinfo_mhz); echo "$mhz 0 0 $mhz"
    fi
}

# ------------------------------------------------------------------ the PyTorch peer
cat > "$out/peer.py" <<'EOF'
# One PyTorch measurement: torchvision inception_v3 (eval, no_grad, channels_last)
# at batch argv[1] for about argv[2] seconds with argv[3] threads, weights argv[4]
# (a Keras-layout file, Keras-written or from bneck mkweights).
# Prints "images/s X peak RSS MiB Y".
import re, resource, sys, time
import h5py, torch, torchvision
sys.path.insert(0, sys.argv[5])
import torch_ref

def creation_order(path):
    """(conv, bn, kernel, beta, mean, var) x 94 in Keras creation order: by the
    names' numeric suffix, the unnumbered first layer (conv2d) being 0; this
    holds for Keras-written files (topological layer_names) and bneck's."""
    def num(name, base):
        if name == base:
            return 0
        m = re.fullmatch(base + r"_(\d+)", name)
        return int(m.group(1)) if m else None
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
        convs = sorted((num(n, "conv2d"), n) for n in names if num(n, "conv2d") is not None)
        bns = sorted((num(n, "batch_normalization"), n) for n in names
                     if num(n, "batch_normalization") is not None)
        for (_, c), (_, b) in zip(convs, bns):
            yield (c, b, torch_ref._weight(f, c, "kernel:0"), torch_ref._weight(f, b, "beta:0"),
                   torch_ref._weight(f, b, "moving_mean:0"), torch_ref._weight(f, b, "moving_variance:0"))

batch, secs, threads, weights = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
torch_ref.copy_weights(model, creation_order(weights))
model = model.eval().to(memory_format=torch.channels_last)
x = (torch.rand(batch, 3, 299, 299) * 2 - 1).contiguous(memory_format=torch.channels_last)
with torch.no_grad():
    t0 = time.perf_counter()
    for i in range(3):  # warm-up: oneDNN builds its primitives on the first pass
        model(x)
        if i >= 1 or time.perf_counter() - t0 > 2 * secs:
            break
    n, t0 = 0, time.perf_counter()
    while True:
        model(x)
        n += batch
        t = time.perf_counter() - t0
        if t >= secs:
            break
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print("images/s %.3f peak RSS MiB %.0f" % (n / t, rss))
EOF

# ------------------------------------------------------------------ one measurement
declare -A ran ran_detail
# measure KEY BATCH -> "images/s rss" on stdout; 1 (and refused[KEY] set) when it fails.
# Runs in the main shell (not $(...)) so that refused and ran stick: the result goes to $res.
measure() {
    local key=$1 b=$2 log="$out/log-$1.txt" rc=0
    case $key in
        bneck-*)
            local p=${key#bneck-} args=()
            [ "$p" = fp32 ] && [ "$bneck_has_precision" = 0 ] || args+=(--precision "$p")
            [ "$p" != int8 ] || args+=(--calibration "$cal_h5")
            [ -z "$bneck_streams" ] || args+=(--streams "$bneck_streams")
            "$bneck" benchmark --weights "$weights" --backend "$backend" "${args[@]}" --batch "$b" \
                --threads "$threads" --seconds "$secs" > "$log" 2>&1 || rc=$?
            if [ "$rc" != 0 ]; then refused[$key]="$(why "$log")"; return 1; fi
            res=$(awk '/^images\/s:/ { ips = $2 } /^peak RSS MiB:/ { rss = $4 } END { print ips + 0, rss + 0 }' "$log")
            # What bneck says it ran ("benchmark: backend B, precision P, ..."), and its warnings.
            ran[$key]=$(sed -n 's/^benchmark:.*[ ,]precision[: ]*\([a-z0-9]*\).*/\1/p' "$log" | head -n 1)
            ran[$key]=${ran[$key]:-$p}
            ran_detail[$key]="$(sed -n 's/^benchmark:.*\(streams [0-9]*\).*/\1/p' "$log" | head -n 1)"
            ran_detail[$key]="${ran_detail[$key]:-streams ?} $(grep -i 'warning' "$log" | head -n 2 | tr '\n' ' ' | cut -c1-200)" || true ;;
        torch)
            OMP_NUM_THREADS=$threads "$py" "$out/peer.py" "$b" "$secs" "$threads" "$weights" "$here/../tests" \
                > "$log" 2>&1 || rc=$?
            if [ "$rc" != 0 ]; then refused[$key]="failed at batch $b: $(tail -n 2 "$log" | tr '\n' ' ')"; return 1; fi
            res=$(awk '/^images\/s/ { print $2 + 0, $6 + 0 }' "$log")
            ran[$key]=fp32 ;;
        *)
            local engine=$key st=1
            if [[ $key == *-s ]]; then engine=${key%-s}; st=$ov_streams; fi
            "$peers_py" "$here/peers.py" run "$engine" "$b" "$secs" "$threads" "$weights" "$out" $st > "$log" 2>&1 || rc=$?
            if [ "$rc" != 0 ]; then refused[$key]="failed at batch $b: $(tail -n 2 "$log" | tr '\n' ' ')"; return 1; fi
            res=$(awk '/^images\/s/ { print $2 + 0, $6 + 0 }' "$log")
            # The precision the peer really ran, in bneck's names (OpenVINO says f32, u8, ...).
            ran[$key]=$(awk '/^images\/s/ { p = $8; if (p == "f32" || p == "float32") p = "fp32"
                                            else if (p == "u8" || p == "i8") p = "int8"; print p }' "$log")
            ran_detail[$key]=$(sed -n 's/^images\/s .* ran [^ ]* //p' "$log") ;;
    esac
    awk -v r="$res" 'BEGIN { split(r, a, " "); exit !(a[1] > 0) }' ||
        { refused[$key]="no throughput in $log"; return 1; }
}
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }

# ------------------------------------------------------------------ other load
# CPU seconds the whole machine spent busy (from /proc/stat), and those spent by
# this script's children (bash's `times`): the difference over the run is what
# other processes took, a warning sign on a shared machine.
machine_busy() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}
children_cpu() {  # -> variable kids (`times` must run in this shell, not in a $(...) subshell)
    times > "$out/times.txt"
    kids=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); s += p[1] * 60 + p[2] }
                print s }' "$out/times.txt")
}
busy0=$(machine_busy); children_cpu; kids0=$kids; wall0=$(date +%s.%N)

# ------------------------------------------------------------------ measure
declare -A ips rss
sgemm=0; sgs=""; clock=0; clocks=""; cpuinfo=""; fp32_meas=0; int8_meas=0
for r in $(seq "$rounds"); do
    sg=$(sgemm_peak); sgs="$sgs $sg"; sgemm=$(max "$sgemm" "$sg")
    c=0 f=0 i=0 m=0
    read -r c f i m < <(measure_peak) || true
    clocks="$clocks $c"; cpuinfo="$cpuinfo $m"; clock=$(max "$clock" "$c")
    fp32_meas=$(max "$fp32_meas" "$f"); int8_meas=$(max "$int8_meas" "$i")
    for b in $batches; do
        line=""
        for key in "${keys[@]}"; do
            [ -z "${refused[$key]:-}" ] || continue
            [[ $key != ov-*-s ]] || [ $((b % ov_streams)) = 0 ] || continue  # a batch the streams cannot split
            res=""
            measure "$key" "$b" || { echo "  $key: ${refused[$key]}" >&2; continue; }
            read -r x y <<< "$res"
            ips[$key,$b]=$(max "${ips[$key,$b]:-0}" "$x"); rss[$key,$b]=$(max "${rss[$key,$b]:-0}" "$y")
            line="$line $key ${ips[$key,$b]}"
        done
        echo "  round $r batch $b (images/s, best so far):$line" >&2
    done
done

# best KEY -> "batch images/s" (nothing when never measured)
best_of() {
    local b
    for b in $batches; do [ -z "${ips[$1,$b]:-}" ] || echo "$b ${ips[$1,$b]}"; done | sort -k2,2gr | head -n 1
}
declare -A bb bi
for key in "${keys[@]}"; do
    read -r bb[$key] bi[$key] < <(best_of "$key" || true) || true
done

gemm_ips=0
if [ -n "${bi[bneck-fp32]:-}" ]; then
    saved_backend=$backend; backend=gemm
    saved_ran=${ran[bneck-fp32]:-}; saved_detail=${ran_detail[bneck-fp32]:-}
    for r in $(seq "$rounds"); do
        res=""
        measure bneck-fp32 "${bb[bneck-fp32]}" || break
        read -r x y <<< "$res"; gemm_ips=$(max "$gemm_ips" "$x")
    done
    backend=$saved_backend
    unset 'refused[bneck-fp32]'
    ran[bneck-fp32]=$saved_ran; ran_detail[bneck-fp32]=$saved_detail  # the gemm runs' log is information only
fi

children_cpu
other=$(awk -v b0="$busy0" -v b1="$(machine_busy)" -v k0="$kids0" -v k1="$kids" \
    -v w0="$wall0" -v w1="$(date +%s.%N)" -v n="$(nproc)" \
    'BEGIN { o = (b1 - b0) - (k1 - k0); if (o < 0) o = 0; printf "%.0f", 100 * o / ((w1 - w0) * n) }')

# ------------------------------------------------------------------ report
echo
echo "other processes used ${other}% of the machine's CPU time during the run" \
    "(load average now $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$other" -le 10 ] || echo "WARNING: the machine was busy with other work; these numbers are unreliable"
[ ! -s "$out/sgemm.core" ] || sgemm_how="$sgemm_how, $(cat "$out/sgemm.core") kernels"
echo "SGEMM 2048^3: $sgemm GFLOP/s (best of$sgs; $sgemm_how)"
echo
echo "peak: clock $clock MHz (highest of$clocks; bench/peak.c: dependent adds per CPU second on $threads busy" \
    "threads; /proc/cpuinfo said$cpuinfo MHz)"
for p in fp32 bf16 int8; do
    awk -v p="$p" -v o="${opc[$p]}" -v t="$threads" -v c="$clock" -v w="${opc_why[$p]}" 'BEGIN {
        printf "  %s: %d ops/cycle/core (%s)\n        x %d cores x %.0f MHz = %.1f G ops/s\n", p, o, w, t, c, o * t * c / 1e3 }'
done
[ "$have_peak" = 0 ] || awk -v f="$fp32_meas" -v i="$int8_meas" -v of="${opc[fp32]}" -v oi="${opc[int8]}" 'BEGIN {
    printf "  check (peak.c, AVX2 256-bit loops, best of the rounds): fp32 FMA %.1f flops/cycle, int8 vpmaddubsw+vpmaddwd+vpaddd %.1f ops/cycle\n", f, i
    if (of == 32 && (f < 0.9 * of || f > 1.1 * of)) print "  WARNING: the measured fp32 figure is not the assumed one"
    if (oi == 64 && (i < 0.9 * oi || i > 1.1 * oi)) print "  WARNING: the measured int8 figure is not the assumed one" }'
echo

# Per batch: images/s and peak RSS MiB of every engine that ran.
printf '%-22s' "images/s (RSS MiB)"; for b in $batches; do printf ' | %16s' "batch $b"; done; echo
for key in "${keys[@]}"; do
    [ -n "${bi[$key]:-}" ] || continue
    printf '%-22s' "${name[$key]} ${class[$key]}"
    for b in $batches; do
        if [ -n "${ips[$key,$b]:-}" ]; then printf ' | %9.2f (%4.0f)' "${ips[$key,$b]}" "${rss[$key,$b]}"
        else printf ' | %16s' "-"; fi
    done
    echo
done
echo

# Best peer of each precision class.
declare -A peer_best peer_key
for key in "${keys[@]}"; do
    [[ $key != bneck-* ]] && [ -n "${bi[$key]:-}" ] || continue
    c=${class[$key]}
    if awk -v x="${bi[$key]}" -v y="${peer_best[$c]:-0}" 'BEGIN { exit !(x > y) }'; then
        peer_best[$c]=${bi[$key]}; peer_key[$c]=$key
    fi
done
printf '%-14s %-9s %-5s %5s %9s %8s %14s %9s\n' engine precision ran batch images/s "RSS MiB" "x best peer" "% peak"
for key in "${keys[@]}"; do
    c=${class[$key]}
    if [ -z "${bi[$key]:-}" ]; then
        w=${refused[$key]:-"not measured"}
        case $key in bneck-*) w="refused: $w" ;; esac
        printf '%-14s %-9s %s\n' "${name[$key]}" "$c" "$w"
        continue
    fi
    awk -v n="${name[$key]}" -v c="$c" -v ran="${ran[$key]:-?}" -v b="${bb[$key]}" -v x="${bi[$key]}" \
        -v m="${rss[$key,${bb[$key]}]}" -v pb="${peer_best[$c]:-0}" -v f="$gflop_per_image" \
        -v o="${opc[$c]}" -v t="$threads" -v clk="$clock" 'BEGIN {
        ratio = (pb > 0) ? sprintf("%.2fx", x / pb) : "-"
        peak = o * t * clk / 1e3
        share = (peak > 0) ? sprintf("%.0f%%", 100 * x * f / peak) : "-"
        printf "%-14s %-9s %-5s %5s %9.2f %8.0f %14s %9s\n", n, c, ran, b, x, m, ratio, share }'
done
for key in "${keys[@]}"; do
    [ -z "${ran_detail[$key]:-}" ] || echo "  ${name[$key]} ${class[$key]}: ran ${ran[$key]}: ${ran_detail[$key]}"
    if [ "$key" = ov-bf16 ] && [ -n "${ran[$key]:-}" ] && [ "${ran[$key]}" != bf16 ]; then
        echo "  NOTE: OpenVINO was asked for bf16 and ran ${ran[$key]}" \
            "($(has_flag avx512_bf16 || has_flag amx_bf16 || echo 'this CPU has neither AVX512_BF16 nor AMX; ')see the line above)"
    fi
done
echo "  (x best peer: images/s over the fastest peer of the same precision; % peak: 11.42 G ops per image" \
    "over the precision's physical peak above)"
[ "$gemm_ips" = 0 ] || awk -v g="$gemm_ips" -v b="${bb[bneck-fp32]}" -v f="$gflop_per_image" -v s="$sgemm" 'BEGIN {
    printf "bneck gemm backend fp32 at batch %s (information): %.2f images/s, %.1f GFLOP/s, %.0f%% of SGEMM\n",
        b, g, g * f, 100 * g * f / s }'
echo
for c in $precisions; do
    case $c in fp32|bf16) want=1.05 ;; int8) want=1.0 ;; esac
    x=${bi[bneck-$c]:-}; y=${peer_best[$c]:-}
    if [ -z "$x" ] || [ -z "$y" ]; then
        echo "target $c (>= ${want}x the best $c peer): not measured (bneck ${x:-none}, peer ${y:-none})"
    else
        awk -v c="$c" -v w="$want" -v x="$x" -v y="$y" -v p="${name[${peer_key[$c]}]}" 'BEGIN {
            printf "target %s (>= %sx the best %s peer, %s): %.2fx: %s\n", c, w, c, p, x / y, (x >= w * y) ? "met" : "NOT met" }'
    fi
done
