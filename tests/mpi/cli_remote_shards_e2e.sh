#!/usr/bin/env bash
# `tessera train` with "remote_shards" under mpirun -np 3 (rank 0 trains, ranks 1-2 hold the
# embedding shards) gives exactly the in-process sharded run's results:
#   - DLRM on a uci-adult slice, 3 row-wise shards: test AUC and logloss equal to the last bit,
#     and the artefact it saved scores the test slice the same without mpirun;
#   - two-tower on ml-latest-small, 2 row-wise shards, 1 epoch under a warm-up and cosine lr
#     schedule (the remote shards' update requests carry its factor): HR@10 and NDCG@10 equal;
#   - without mpirun the remote config is refused by name (exit 2), not hung.
# Usage: cli_remote_shards_e2e.sh TESSERA_BINARY SOURCE_DIR (ctest passes both). Skips (exit 77)
# when a dataset is not under $TESSERA_DATA or SOURCE_DIR/../shared/datasets, and fails instead
# when TESSERA_REQUIRE_DATA is set (to anything but 0), as CI does (tests/support/skips.h).
set -euo pipefail
tessera=$1
src=$2
data=${TESSERA_DATA:-$src/../shared/datasets}
adult=$data/uci-adult
movielens=$data/ml-latest-small
for f in "$adult/adult.data" "$adult/adult.test" "$movielens/ratings.csv"; do
  if [[ ! -f $f ]]; then
    if [[ -n ${TESSERA_REQUIRE_DATA:-} && ${TESSERA_REQUIRE_DATA} != 0 ]]; then
      echo "FAIL: $f not found, and TESSERA_REQUIRE_DATA is set: a missing dataset is a failure"
      exit 1
    fi
    echo "skip: $f not found"
    exit 77
  fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TESSERA_SOURCE_DIR=$src OMP_NUM_THREADS=1
mpi=(mpirun -np 3)

field() {  # field FILE EXPR: a value of the last JSON line of FILE
  python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(repr($2))" "$1"
}
same() {  # same WHAT A B
  if [[ "$2" != "$3" ]]; then echo "FAIL: $1: in-process $2, remote $3"; exit 1; fi
  echo "ok: $1 = $2 both ways"
}

# ---- DLRM, uci-adult slice -------------------------------------------------------------------
head -n 3000 "$adult/adult.data" > "$work/train.csv"
sed -n "2,1501p" "$adult/adult.test" > "$work/test.csv"
python3 - "$src/pipelines/behaviour/uci-adult-dlrm.json" "$work" <<'PY'
import sys
src, work = sys.argv[1], sys.argv[2]
s = open(src).read()
s = s.replace('"dataset": "uci-adult",', '').replace('"adult.data"', '"%s/train.csv"' % work)
s = s.replace('{"path": "adult.test", "skip_lines": 1}', '"%s/test.csv"' % work)
shards = '"bottom": [64], "shards": 3, "placement": "row",'
open(work + '/local.json', 'w').write(s.replace('"bottom": [64],', shards))
open(work + '/remote.json', 'w').write(s.replace('"bottom": [64],', shards + ' "remote_shards": true,'))
PY
opts=(--epochs 2 --device cpu --quiet --json --runs-dir "$work/runs")
"$tessera" train "$work/local.json" "${opts[@]}" > "$work/local.out"
timeout 300 "${mpi[@]}" "$tessera" train "$work/remote.json" "${opts[@]}" > "$work/remote.out"
same "DLRM test AUC" "$(field "$work/local.out" "d['test']['auc']")" "$(field "$work/remote.out" "d['test']['auc']")"
same "DLRM test logloss" "$(field "$work/local.out" "d['test']['logloss']")" \
  "$(field "$work/remote.out" "d['test']['logloss']")"
model=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['model'])" "$work/remote.out")
"$tessera" evaluate "$model" "$work/test.csv" --device cpu --quiet --json > "$work/eval.out"
same "AUC of the remote-trained artefact, scored without mpirun" \
  "$(field "$work/remote.out" "d['test']['auc']")" "$(field "$work/eval.out" "d['metrics']['auc']")"
set +e
"$tessera" train "$work/remote.json" "${opts[@]}" > /dev/null 2> "$work/refused.err"
rc=$?
set -e
if [[ $rc -ne 2 ]] || ! grep -q "remote_shards" "$work/refused.err"; then
  echo "FAIL: remote_shards without mpirun: exit $rc, $(cat "$work/refused.err")"
  exit 1
fi
echo "ok: remote_shards without mpirun refused: $(cat "$work/refused.err")"

# ---- two-tower, ml-latest-small --------------------------------------------------------------
sed 's/"train": {/"train": {"lr_schedule": {"type": "cosine", "warmup_steps": 20},/' \
  "$src/pipelines/recommend/movielens-two-tower.json" > "$work/tt_scheduled.json"
cfg=$work/tt_scheduled.json
sed 's/"init_scale": 0.1,/"init_scale": 0.1, "shards": 2, "placement": "row",/' "$cfg" > "$work/tt_local.json"
sed 's/"init_scale": 0.1,/"init_scale": 0.1, "shards": 2, "placement": "row", "remote_shards": true,/' \
  "$cfg" > "$work/tt_remote.json"
grep -q '"remote_shards": true' "$work/tt_remote.json" || { echo "FAIL: config edit"; exit 1; }
grep -q '"warmup_steps": 20' "$work/tt_remote.json" || { echo "FAIL: schedule edit"; exit 1; }
ropts=(--epochs 1 --quiet --json --runs-dir "$work/runs")
"$tessera" train "$work/tt_local.json" "${ropts[@]}" > "$work/tt_local.out"
timeout 300 "${mpi[@]}" "$tessera" train "$work/tt_remote.json" "${ropts[@]}" > "$work/tt_remote.out"
for m in hr_sampled ndcg_sampled; do
  same "two-tower $m" "$(field "$work/tt_local.out" "d['metrics']['$m']")" \
    "$(field "$work/tt_remote.out" "d['metrics']['$m']")"
done
