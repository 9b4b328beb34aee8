#!/bin/bash
# slurm_array.sh: slurm/extract-array.sbatch as an array of 3 shards, then
# slurm/join.sbatch with --dependency=afterok on the array, both submitted
# unchanged: each shard holds only its own rows, and the joined file's rows
# equal a single run's.
set -euo pipefail
. "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
. "$SRCDIR/tests/slurm/lib.sh"

bn_mkweights "$tmp/w.h5" --seed 2 -q
"$BNECK" mkcorpus "$tmp/c" --classes 3 --per-class 3 --seed 9 -q
opts=(--backend gemm --threads 1 --batch 1)  # batch 1: the gemm engine's rows depend on the batch they are computed in
"$BNECK" extract --images "$tmp/c" --weights "$tmp/w.h5" --out "$tmp/ref.h5" "${opts[@]}" --progress none -q \
    > "$tmp/ref.log" 2>&1 || fail "direct extract"

arr=$(cd "$tmp" && sbatch --parsable --array=0-2 --ntasks=1 --cpus-per-task=1 --time=10 \
    --output="$tmp/shard-%a.log" "$SRCDIR/slurm/extract-array.sbatch" "$tmp/c" "$tmp/w.h5" "$tmp/out.h5" "${opts[@]}")
[ -n "$arr" ] || fail "sbatch gave no array job id"
join=$(cd "$tmp" && sbatch --parsable --dependency=afterok:"$arr" --time=5 --output="$tmp/join.log" \
    "$SRCDIR/slurm/join.sbatch" "$tmp/out.h5" 3)
[ -n "$join" ] || fail "sbatch gave no join job id"
# The join waits for the whole array.
[ "$(job_field "$join" JobState)" = PENDING ] || fail "join job $join did not wait for the array"
wait_job "$join" COMPLETED 240
for k in 0 1 2; do
    [ "$(job_field "${arr}_$k" JobState)" = COMPLETED ] || fail "array task $k: $(job_field "${arr}_$k" JobState)"
    grep -q "shard $k/3 into $tmp/out.shard-$k.h5" "$tmp/shard-$k.log" || fail "array task $k did not extract shard $k/3"
done

"$PY" - "$tmp" <<'PY' || fail "the joined file differs from a single run's"
import sys, h5py
t = sys.argv[1]
a, b = h5py.File(t + "/ref.h5", "r"), h5py.File(t + "/out.h5", "r")
sa, sb = a["status"][()], b["status"][()]
assert len(sa) == 9 and (sa == 1).all(), sa
assert len(sb) == len(sa) and (sb == sa).all(), (sa, sb)
assert a["features"][()].tobytes() == b["features"][()].tobytes(), "feature rows differ"
for name in ("label", "split"):
    assert (a[name][()] == b[name][()]).all(), name + " differs"
# Every shard did some of the work, and none did it all.
counts = []
for k in range(3):
    s = h5py.File("%s/out.shard-%d.h5" % (t, k), "r")
    counts.append(int((s["status"][()] == 1).sum()))
assert sum(counts) == 9 and all(0 < c < 9 for c in counts), counts
print("joined == single run: 9 rows; rows per shard %s" % counts)
PY
echo "slurm array: 3 shards (array $arr) joined by job $join equal a single run"
