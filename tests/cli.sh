#!/bin/bash
# cli.sh: --help everywhere, and clear errors with exit status 2 for bad
# command lines.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Run bneck, capture output and status without tripping set -e.
run() { set +e; "$BNECK" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; set -e; }
expect_usage() {  # args...: must exit 2 with a message on stderr
    run "$@"
    [ "$rc" = 2 ] || fail "bneck $* exited $rc, want 2"
    [ -s "$tmp/err" ] || fail "bneck $* printed no error"
    grep -q "bneck" "$tmp/err" || fail "bneck $*: error does not say who complains"
}

run --help
[ "$rc" = 0 ] || fail "--help exited $rc"
for c in corpus mkcorpus mkweights features benchmark; do grep -q "^  $c " "$tmp/out" || fail "--help does not list $c"; done
run --version; [ "$rc" = 0 ] && grep -q '^bneck [0-9]' "$tmp/out" || fail "--version"
run --build-info
[ "$rc" = 0 ] || fail "--build-info exited $rc"
for k in MPI "parallel HDF5" CBLAS JPEG PNG oneDNN CUDA; do grep -q "$k" "$tmp/out" || fail "--build-info lacks $k"; done
# It says only what was built: without a built cuda backend, the CUDA line
# must not read as if CUDA were in use.
if ! grep -qE '^  cuda +built' "$tmp/out"; then
    grep -E '^  CUDA/cuDNN \.+ ' "$tmp/out" | grep -qE ' no( |$)' ||
        fail "--build-info claims CUDA without a cuda backend: $(grep CUDA "$tmp/out")"
else  # built, but never run on a GPU: both lines must say so
    grep -E '^  CUDA/cuDNN \.+ ' "$tmp/out" | grep -q "not yet run on hardware" &&
        grep -qE '^  cuda +built .*NOT YET RUN ON HARDWARE' "$tmp/out" ||
        fail "--build-info must say the cuda backend has not run on hardware yet"
fi
grep -qE '^  GPUs visible \.+ [0-9]+' "$tmp/out" || fail "--build-info lacks the GPUs it sees"

# Each command's --help lists every option with its default.
run corpus --help
[ "$rc" = 0 ] || fail "corpus --help exited $rc"
for o in --images --manifest --validation-percentage --testing-percentage --list --decode --max-pixels --dct --preprocess --verbose --quiet --help; do
    grep -q -- "$o" "$tmp/out" || fail "corpus --help lacks $o"
done
grep -q -- '--validation-percentage PCT.*(default: 10)' "$tmp/out" || fail "corpus --help shows no default for --validation-percentage"
run mkcorpus --help
[ "$rc" = 0 ] || fail "mkcorpus --help exited $rc"
grep -q -- '--per-class' "$tmp/out" && grep -q 'default' "$tmp/out" || fail "mkcorpus --help"

for c in mkweights features benchmark; do
    run $c --help
    [ "$rc" = 0 ] || fail "$c --help exited $rc"
    grep -q -- '--verbose' "$tmp/out" || fail "$c --help lacks --verbose"
done
run features --help
for o in --weights --backend --batch --threads --preprocess --out --dump-input; do
    grep -q -- "$o" "$tmp/out" || fail "features --help lacks $o"
done
grep -q -- '--batch N.*(default: 8)' "$tmp/out" || fail "features --help shows no default batch"
expect_usage features x.jpg
grep -q -- "--weights FILE is required" "$tmp/err" || fail "features without weights"
expect_usage features --weights w.h5
expect_usage features --weights w.h5 --batch 0 x.jpg
expect_usage features --weights w.h5 --backend tpu x.jpg
expect_usage features --weights w.h5 --out x.csv x.jpg
expect_usage mkweights
expect_usage mkweights a.h5 b.h5
expect_usage mkweights a.h5 --seed -1
expect_usage benchmark --weights w.h5 --seconds abc

expect_usage
expect_usage nosuchcommand
grep -q "unknown command 'nosuchcommand'" "$tmp/err" || fail "unknown command message"
expect_usage corpus
grep -q "exactly one of --images" "$tmp/err" || fail "corpus without input: $(cat "$tmp/err")"
expect_usage corpus --images a --manifest b
expect_usage corpus --images x --bogus
grep -q "unknown option '--bogus'" "$tmp/err" || fail "unknown option message"
expect_usage corpus --images x --validation-percentage 10x
grep -q "expects a number, got '10x'" "$tmp/err" || fail "strict number message: $(cat "$tmp/err")"
expect_usage corpus --images x --validation-percentage 60 --testing-percentage 50
expect_usage corpus --images x --max-pixels 1e9
expect_usage corpus --images x --max-pixels
grep -q "needs a value" "$tmp/err" || fail "missing value message"
expect_usage corpus --images x --dct slow
grep -q "must be one of accurate|fast" "$tmp/err" || fail "choice message"
expect_usage corpus --images x stray
expect_usage mkcorpus "$tmp/c" --per-class 10x
grep -q "expects an integer, got '10x'" "$tmp/err" || fail "mkcorpus strict integer: $(cat "$tmp/err")"
expect_usage mkcorpus "$tmp/c" --classes 1
expect_usage mkcorpus "$tmp/c" --quality 101

# A missing corpus is a run failure (1), with the folder named.
run corpus --images "$tmp/does-not-exist"
[ "$rc" = 1 ] || fail "missing folder exited $rc, want 1"
grep -q "does-not-exist" "$tmp/err" || fail "missing folder not named: $(cat "$tmp/err")"
echo "cli: all checks passed"
