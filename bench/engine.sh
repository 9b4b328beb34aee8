#!/bin/bash
# bench/engine.sh: the Inception v3 engine against its peer, in one run.
#
# Measures, on this machine, with 2 threads each:
#   (a) "bneck benchmark" images/s with the default cpu backend at batch sizes
#       1, 4, 8, 16, 32, and the gemm backend at cpu's best batch (information);
#   (b) the peer: PyTorch + torchvision inception_v3, eval, torch.no_grad(),
#       torch.set_num_threads(2), channels_last model and input, the same random
#       (mkweights) weights, at the same batch sizes, after 1-2 warm-up passes;
#   (c) OpenBLAS SGEMM 2048^3 GFLOP/s (a small C program compiled here, 2
#       threads; numpy float32 matmul if it cannot be built), once per round,
#       the peak the engines are compared to, at 5.71 G multiply-adds = 11.42
#       GFLOP per image. OpenBLAS picks its kernels itself (or from
#       OPENBLAS_CORETYPE, left as the environment has it); the report names
#       them. If they are not AVX-512 ones, oneDNN can beat the "peak";
#   (d) peak RSS of both (bneck prints its own; the peer uses getrusage, one
#       process per measurement, so each includes torch itself).
# bneck and the peer alternate setting by setting, ROUNDS times over; each
# figure is the best of its rounds (these machines are shared and noisy).
# Throughput is images over a timed window of about SECONDS_PER, for both.
#
# Usage: bench/engine.sh
# Environment: BNECK (binary, default ./bneck), BENCH_DIR (default bench/out),
#   ROUNDS (default 3), SECONDS_PER (seconds per measurement, default 5),
#   BATCHES (default "1 4 8 16 32"), THREADS (default 2), PYTHON3 (default /usr/bin/python3).
set -euo pipefail
export LC_ALL=C
bneck=${BNECK:-./bneck}
out=${BENCH_DIR:-bench/out}
rounds=${ROUNDS:-3}
secs=${SECONDS_PER:-5}
batches=${BATCHES:-"1 4 8 16 32"}
threads=${THREADS:-2}
py=${PYTHON3:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
gflop_per_image=11.42
mkdir -p "$out"
out=$(cd "$out" && pwd)

echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: $threads threads, batches $batches, $rounds rounds, ~${secs} s per measurement"

weights="$out/engine-weights.h5"
[ -s "$weights" ] || "$bneck" mkweights "$weights" --seed 1 -q

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

# ------------------------------------------------------------------ the peer
cat > "$out/peer.py" <<'EOF'
# One peer measurement: torchvision inception_v3 (eval, no_grad, channels_last)
# at batch argv[1] for about argv[2] seconds with argv[3] threads, weights argv[4].
# Prints "images/s X peak RSS MiB Y".
import resource, sys, time
import torch, torchvision
sys.path.insert(0, sys.argv[5])
import torch_ref

batch, secs, threads, weights = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
torch_ref.copy_weights(model, torch_ref.iter_keras_weights(weights))
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

# ------------------------------------------------------------------ helpers
# bneck BACKEND BATCH -> "images/s rss"
run_bneck() {
    "$bneck" benchmark --weights "$weights" --backend "$1" --batch "$2" --threads "$threads" \
        --seconds "$secs" > "$out/bneck.log" 2>&1 ||
        { cat "$out/bneck.log" >&2; echo "engine.sh: $bneck benchmark --backend $1 --batch $2 failed" >&2; return 1; }
    awk '/^images\/s:/ { ips = $2 } /^peak RSS MiB:/ { rss = $4 } END { print ips + 0, rss + 0 }' "$out/bneck.log"
}
# peer BATCH -> "images/s rss"
run_peer() {
    OMP_NUM_THREADS=$threads "$py" "$out/peer.py" "$1" "$secs" "$threads" "$weights" "$here/../tests" \
        > "$out/peer.log" 2>&1 || { cat "$out/peer.log" >&2; echo "engine.sh: the pytorch peer failed at batch $1" >&2; return 1; }
    awk '/^images\/s/ { print $2 + 0, $6 + 0 }' "$out/peer.log"
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
declare -A bn_ips bn_rss pt_ips pt_rss
sgemm=0; sgs=""
for r in $(seq "$rounds"); do
    sg=$(sgemm_peak); sgs="$sgs $sg"; sgemm=$(max "$sgemm" "$sg")
    for b in $batches; do
        res=$(run_bneck cpu "$b"); read -r ips rss <<< "$res"
        bn_ips[$b]=$(max "${bn_ips[$b]:-0}" "$ips"); bn_rss[$b]=$(max "${bn_rss[$b]:-0}" "$rss")
        res=$(run_peer "$b"); read -r ips rss <<< "$res"
        pt_ips[$b]=$(max "${pt_ips[$b]:-0}" "$ips"); pt_rss[$b]=$(max "${pt_rss[$b]:-0}" "$rss")
        echo "  round $r batch $b: bneck ${bn_ips[$b]} images/s, pytorch ${pt_ips[$b]} images/s (best so far)" >&2
    done
done

best_of() {  # name of the associative array -> "batch images/s"
    local -n arr=$1
    for b in $batches; do echo "$b ${arr[$b]}"; done | sort -k2,2gr | head -n 1
}
read -r bn_b bn_best < <(best_of bn_ips)
read -r pt_b pt_best < <(best_of pt_ips)
awk -v x="$bn_best" -v y="$pt_best" 'BEGIN { exit !(x > 0 && y > 0) }' ||
    { echo "engine.sh: no throughput measured (bneck $bn_best, pytorch $pt_best); see $out/*.log" >&2; exit 1; }
gemm_ips=0
for r in $(seq "$rounds"); do
    res=$(run_bneck gemm "$bn_b"); read -r ips rss <<< "$res"
    gemm_ips=$(max "$gemm_ips" "$ips")
done

children_cpu
other=$(awk -v b0="$busy0" -v b1="$(machine_busy)" -v k0="$kids0" -v k1="$kids" \
    -v w0="$wall0" -v w1="$(date +%s.%N)" -v n="$(nproc)" \
    'BEGIN { o = (b1 - b0) - (k1 - k0); if (o < 0) o = 0; printf "%.0f", 100 * o / ((w1 - w0) * n) }')

# ------------------------------------------------------------------ report
echo "other processes used ${other}% of the machine's CPU time during the run" \
    "(load average now $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$other" -le 10 ] || echo "WARNING: the machine was busy with other work; these numbers are unreliable"
[ ! -s "$out/sgemm.core" ] || sgemm_how="$sgemm_how, $(cat "$out/sgemm.core") kernels"
echo "SGEMM 2048^3 peak: $sgemm GFLOP/s (best of$sgs; $sgemm_how)"
echo
printf '%-6s | %12s %9s %9s %8s | %12s %9s %9s %8s\n' batch "bneck img/s" GFLOP/s "%SGEMM" "RSS MiB" \
    "torch img/s" GFLOP/s "%SGEMM" "RSS MiB"
for b in $batches; do
    awk -v b="$b" -v x="${bn_ips[$b]}" -v xr="${bn_rss[$b]}" -v y="${pt_ips[$b]}" -v yr="${pt_rss[$b]}" \
        -v f="$gflop_per_image" -v s="$sgemm" 'BEGIN {
        printf "%-6s | %12.2f %9.1f %8.0f%% %8.0f | %12.2f %9.1f %8.0f%% %8.0f\n",
            b, x, x * f, 100 * x * f / s, xr, y, y * f, 100 * y * f / s, yr }'
done
echo
awk -v g="$gemm_ips" -v b="$bn_b" -v f="$gflop_per_image" -v s="$sgemm" 'BEGIN {
    printf "bneck gemm backend at batch %s (information): %.2f images/s, %.1f GFLOP/s, %.0f%% of SGEMM\n",
        b, g, g * f, 100 * g * f / s }'
awk -v x="$bn_best" -v xb="$bn_b" -v y="$pt_best" -v yb="$pt_b" -v f="$gflop_per_image" -v s="$sgemm" \
    -v xr="${bn_rss[$bn_b]}" -v yr="${pt_rss[$pt_b]}" 'BEGIN {
    printf "bneck best:   %.2f images/s at batch %s, %.1f GFLOP/s = %.0f%% of SGEMM peak, peak RSS %.0f MiB\n",
        x, xb, x * f, 100 * x * f / s, xr
    printf "pytorch best: %.2f images/s at batch %s, %.1f GFLOP/s = %.0f%% of SGEMM peak, peak RSS %.0f MiB\n",
        y, yb, y * f, 100 * y * f / s, yr
    printf "ratio bneck/pytorch: %.2fx\n", x / y
    printf "target >= 1.1x: %s\n", (x >= 1.1 * y) ? "met" : "NOT met" }'
