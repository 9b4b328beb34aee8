#!/bin/bash
# leaks.sh: no leaks in bneck's own code over a whole extract + train +
# classify run, at 1 and 2 ranks, under LeakSanitizer. Runs only in a build
# made with --enable-sanitizers (the test environment sets BNECK_SANITIZERS=1;
# elsewhere it skips, 77).
# Open MPI, its dlopened components, hwloc, HDF5 and oneDNN keep some
# allocations until exit by design; LSan reports them too, mostly from
# unloaded modules that no suppression can name. So a leak counts when its
# allocation stack passes through bneck's sources (io/, net/, pipeline/,
# stages/): memory bneck allocated, or asked a library for, and never freed.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "${BNECK_SANITIZERS:-0}" = 1 ] || { echo "SKIP: not a --enable-sanitizers build"; exit 77; }
PY=${PYTHON3:-/usr/bin/python3}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
launch="${MPIEXEC:-mpirun --oversubscribe} -n"
base="detect_leaks=0:allocator_may_return_null=1"
ASAN_OPTIONS=$base "$BNECK" mkweights w.h5 --seed 2 -q
ASAN_OPTIONS=$base "$BNECK" mkcorpus c --classes 3 --per-class 8 --seed 5 -q
printf 'not an image' > c/daisy/bad.jpg  # a failed image takes the error paths too
mkdir -p lsan
run() {  # NAME CMD...: run CMD with leak checks, reports into lsan/NAME.*
    local name=$1; shift
    # exitcode=0: the leaks of the libraries must not fail the command;
    # every report is read below, and any other sanitizer error fails.
    local rc=0
    ASAN_OPTIONS="detect_leaks=1:exitcode=0:allocator_may_return_null=1:log_path=$tmp/lsan/$name" "$@" > "$name.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$name.log"; fail "$name: exit status $rc"; }
}
for np in 1 2; do
    run "extract$np" $launch $np "$BNECK" extract --images c --weights w.h5 --out "f$np.h5" --backend gemm --threads 1 \
        --batch 4 --validation-percentage 25 --testing-percentage 25 --progress none -q
    run "resume$np" $launch $np "$BNECK" extract --images c --weights w.h5 --out "f$np.h5" --backend gemm --threads 1 \
        --batch 4 --validation-percentage 25 --testing-percentage 25 --progress none -q
    run "train$np" $launch $np "$BNECK" train --features "f$np.h5" --out "cl$np.h5" --steps 30 -q
    run "classify$np" $launch $np "$BNECK" classify --weights w.h5 --classifier "cl$np.h5" --images c --out "p$np.csv" \
        --backend gemm --threads 1 --progress none -q
done
run features "$BNECK" features --weights w.h5 --threads 1 --out x.npy c/daisy/daisy_0000.jpg
run report "$BNECK" report f2.h5 cl2.h5 --svg svg
"$PY" - lsan <<'PY' || fail "leaks in bneck's code, or no leak report to judge by (above)"
import os, re, sys
d = sys.argv[1]
# A frame in bneck's sources, whether the symbolizer prints the path as
# compiled (io/store.c:12) or absolute (/tmp/x/io/store.c:12).
ours = re.compile(r"[ /](?:io|net|pipeline|stages)/[A-Za-z0-9_]+\.c:\d+")
# A frame with a file and line at all: without one, nothing could be judged.
located = re.compile(r"^\s*#\d+ 0x[0-9a-f]+ in \S+ \S+\.(?:c|cc|cpp|h):\d+", re.M)
bad, total, with_lines, files = [], 0, 0, sorted(os.listdir(d))
for name in files:
    text = open(os.path.join(d, name), errors="replace").read()
    if re.search(r"ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer)", text):
        bad.append((name, text[:3000]))
    for block in re.split(r"\n(?=(?:Direct|Indirect) leak of )", text):
        if " leak of " not in block.split("\n", 1)[0]:
            continue
        total += 1
        with_lines += bool(located.search(block))
        if ours.search(block):
            bad.append((name, block.strip()))
for name, block in bad[:10]:
    print("== " + name + "\n" + "\n".join(block.splitlines()[:25]))
print("%d leak reports in %d log files (%d with source lines), %d in bneck's code"
      % (total, len(files), with_lines, len(bad)))
# MPI and HDF5 keep allocations to exit, so LeakSanitizer always reports some:
# none at all, or none symbolized, means the check itself did not work.
if total == 0 or with_lines == 0:
    print("no leak report with source lines: LeakSanitizer or its symbolizer did not run")
    sys.exit(1)
sys.exit(1 if bad else 0)
PY
