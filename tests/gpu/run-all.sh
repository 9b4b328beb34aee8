#!/bin/bash
# tests/gpu/run-all.sh: everything a GPU machine is lent for, in one call
# that fits in 8 minutes: build, the GPU tests, the GPU benchmark, a summary.
#   1. build (autoreconf, configure, make) in the working tree;
#   2. tests/gpu.sh (cuda against the CPU at batches 1, 3 and 8; tf32, fp16
#      and bf16; extract with 2 ranks sharing a GPU and with 1 GPU rank among
#      2 CPU ranks; corrupt files; nvJPEG), test_gpu_image (the GPU resize
#      against the CPU's, nvJPEG against libjpeg-turbo), test_backends,
#      test_device, engine.sh;
#   3. bench/gpu.sh (forward pass alone per precision and batch, the CPU
#      peer, extract end to end, fidelity per precision);
#   4. a summary of both, also written to $OUT/summary.txt when OUT is set.
# Usage: tests/gpu/run-all.sh   (from the source tree; env OUT, JOBS)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
out=${OUT:-/tmp/bneck-gpu}
mkdir -p "$out"
jobs=${JOBS:-$(nproc)}
t0=$SECONDS
{
    echo "== build"
    [ -x configure ] || autoreconf -i > "$out/autoreconf.log" 2>&1 || { tail "$out/autoreconf.log"; exit 1; }
    [ -f Makefile ] || ./configure -q > "$out/configure.log" 2>&1 || { tail -n 30 "$out/configure.log"; exit 1; }
    make -j"$jobs" > "$out/make.log" 2>&1 || { tail -n 30 "$out/make.log"; exit 1; }
    ./bneck --build-info | grep -E "CUDA/cuDNN|GPUs visible|^  cuda"
    echo "build: $((SECONDS - t0)) s"
    echo "== tests"
    t1=$SECONDS
    make -j"$jobs" check TESTS="tests/gpu.sh tests/test_gpu_image tests/test_backends tests/test_device tests/engine.sh" > "$out/check.log" 2>&1
    trc=$?
    grep -E "^(PASS|FAIL|SKIP|ERROR):" "$out/check.log"
    for t in gpu test_gpu_image engine test_backends test_device; do
        [ -f "tests/$t.log" ] && cp "tests/$t.log" "$out/$t.log"
    done
    grep -E "max rel L2|against the CPU|against libjpeg" tests/gpu.log 2>/dev/null
    grep -E "^(resize|nvJPEG)" tests/test_gpu_image.log 2>/dev/null
    [ "$trc" = 0 ] || { echo "--- tests/gpu.log"; tail -n 40 tests/gpu.log; }
    echo "tests: exit $trc, $((SECONDS - t1)) s"
    echo "== benchmark"
    t2=$SECONDS
    BENCH_DIR=$out/bench timeout 330 bench/gpu.sh
    echo "benchmark: exit $?, $((SECONDS - t2)) s"
    echo "== total $((SECONDS - t0)) s"
} 2>&1 | tee "$out/summary.txt"
