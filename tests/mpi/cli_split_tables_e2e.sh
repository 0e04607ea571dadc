#!/usr/bin/env bash
# `mpirun -np N tessera train` with model.tables_across_ranks "split": each embedding table lives
# on one rank, lookups and gradients go all-to-all, and rank 0 validates, scores the test split
# and writes the model on a whole copy of the tables gathered for it (docs/distributed.md,
# "Tables split across ranks"). On the synthetic behaviour data (no download):
#   - one process with "split" is one process: the replicated run's test figures, bit for bit;
#   - DLRM (Adagrad tables) at 2 and 3 ranks, DCN-v2 (SGD tables) and Wide & Deep at 3 ranks,
#     against one process with replicated tables: per-epoch train_loss within 1e-5 relative, test
#     and validation AUC / logloss within 1e-4 (the tolerances of the replicated case in
#     cli_data_parallel_e2e.sh: the two differ by float summation order only);
#   - the result counts the all-to-all; rank 0 alone writes one model file, which `tessera
#     evaluate` in one process and under mpirun -np 2 scores to the run's test figures;
#   - a 2-rank run killed (kill -9 of a rank) after a mid-epoch checkpoint resumes at 2 ranks to
#     the uninterrupted run exactly (losses, test figures, model bytes; deterministic reduction),
#     and in one process with the tables replicated within the tolerances above;
#   - the key is refused by name for a model without tables and with model.shards > 1.
# Usage: cli_split_tables_e2e.sh TESSERA_BINARY (ctest passes it).
set -euo pipefail
tessera=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1
cd "$work"

fail() { echo "FAIL: $*"; exit 1; }
field() {  # field FILE EXPR: a value of FILE's last JSON line
  python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(repr($2))" "$1"
}
close() {  # close WHAT A B TOL: |A - B| <= TOL * max(1, |B|)
  python3 - "$@" <<'PY' || exit 1
import sys
what, a, b, tol = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
if abs(a - b) > tol * max(1.0, abs(b)):
    print("FAIL: %s: %r vs %r (tolerance %g)" % (what, a, b, tol)); sys.exit(1)
print("ok: %s: %r vs %r" % (what, a, b))
PY
}
losses() {  # the train_loss of every line of a metrics.jsonl
  python3 -c "import json,sys; print(' '.join(repr(json.loads(l)['train_loss']) for l in open(sys.argv[1])))" "$1"
}
# same_run WHAT RUN_DIR OUT REF_DIR REF_OUT: losses 1e-5, validation and test figures 1e-4.
same_run() {
  local what=$1 dir=$2 out=$3 rdir=$4 rout=$5 e
  local -a a b
  read -r -a a <<< "$(losses "$dir/metrics.jsonl")"
  read -r -a b <<< "$(losses "$rdir/metrics.jsonl")"
  [[ ${#a[@]} == "${#b[@]}" ]] || fail "$what: ${#a[@]} epochs, the reference ${#b[@]}"
  for e in "${!b[@]}"; do close "$what: epoch $((e + 1)) train_loss" "${a[$e]}" "${b[$e]}" 1e-5; done
  for f in "d['test']['auc']" "d['test']['logloss']" "d['validation']['auc']" \
    "d['validation']['logloss']"; do
    close "$what: $f" "$(field "$out" "$f")" "$(field "$rout" "$f")" 1e-4
  done
}

"$tessera" make-synthetic data --rows 6000 --quiet > /dev/null
# No dropout: its masks are drawn per row of the local batch, so ranks would draw others.
sed -i 's/"dropout": 0.1/"dropout": 0/; s/"epochs": 5/"epochs": 3/' data/config.json
# The synthetic data's 3 categorical columns become the tables: with 2 or 3 ranks every rank
# owns one table or more, and every lookup crosses ranks.
python3 - data/config.json data <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
models = {
    "dlrm": {"type": "dlrm", "embedding_dim": 8, "bottom": [16], "hidden": [32, 16],
             "dropout": 0, "sparse_optimizer": {"type": "adagrad", "lr": 0.05}},
    "dcn": {"type": "dcn_v2", "embedding_dim": 8, "bottom": [16], "hidden": [32, 16],
            "dropout": 0, "sparse_optimizer": {"type": "sgd", "lr": 0.05}},
    "wd": {"type": "wide_deep", "embedding_dim": 8, "hidden": [32, 16], "dropout": 0,
           "sparse_optimizer": {"type": "adagrad", "lr": 0.05}},
}
for name, m in models.items():
    c["model"] = dict(m)
    json.dump(c, open("%s/%s.json" % (sys.argv[2], name), "w"), indent=1)
    c["model"]["tables_across_ranks"] = "split"
    json.dump(c, open("%s/%s-split.json" % (sys.argv[2], name), "w"), indent=1)
# A mid-epoch checkpoint: 170 steps an epoch, one every 7 steps.
c["model"] = dict(models["dlrm"], tables_across_ranks="split")
c["train"].update({"batch_size": 32, "epochs": 2, "checkpoint_every_steps": 7})
json.dump(c, open(sys.argv[2] + "/ckpt-split.json", "w"), indent=1)
c["model"] = dict(models["dlrm"])
json.dump(c, open(sys.argv[2] + "/ckpt.json", "w"), indent=1)
c = json.load(open(sys.argv[1]))
c["model"]["tables_across_ranks"] = "split"
json.dump(c, open(sys.argv[2] + "/mlp-split.json", "w"), indent=1)
c["model"] = dict(models["dlrm"], shards=2, tables_across_ranks="split")
json.dump(c, open(sys.argv[2] + "/shards-split.json", "w"), indent=1)
PY
opts=(--device cpu --quiet --json)

# ---- one process: "split" over a group of one is the replicated run --------------------------
"$tessera" train data/dlrm.json "${opts[@]}" --run-dir dlrm-one > dlrm-one.out
"$tessera" train data/dlrm-split.json "${opts[@]}" --run-dir dlrm-one-split > dlrm-one-split.out
for f in "d['test']['auc']" "d['test']['logloss']" "d['validation']['logloss']"; do
  [[ $(field dlrm-one-split.out "$f") == $(field dlrm-one.out "$f") ]] ||
    fail "one process with split tables differs in $f"
done
echo "ok: one process with \"split\" equals the replicated run bit for bit"

# ---- DLRM at 2 and 3 ranks ---------------------------------------------------------------------
for n in 2 3; do
  timeout 300 mpirun -np "$n" "$tessera" train data/dlrm-split.json "${opts[@]}" \
    --run-dir "dlrm-$n" > "dlrm-$n.out"
  [[ $(field "dlrm-$n.out" "d['ranks']") == "$n" ]] || fail "the DLRM result does not say $n ranks"
  [[ $(field "dlrm-$n.out" "d['alltoall_calls']") -gt 0 ]] || fail "$n ranks made no all-to-all"
  [[ $(wc -l < "dlrm-$n/metrics.jsonl") == 3 ]] || fail "$n ranks wrote other than 3 metrics lines"
  [[ $(find . -name model.tsm -path "./dlrm-$n/*" | wc -l) == 1 ]] || fail "not one model file"
  same_run "DLRM, split over $n ranks" "dlrm-$n" "dlrm-$n.out" dlrm-one dlrm-one.out
  echo "ok: DLRM at $n ranks: alltoall_bytes_sent $(field "dlrm-$n.out" "d['alltoall_bytes_sent']")" \
    "in $(field "dlrm-$n.out" "d['alltoall_calls']") calls"
done
# The model file holds whole tables: it scores in one process, and under mpirun (each rank its
# part of the rows), to its run's test figures.
"$tessera" evaluate dlrm-2/model.tsm data/test.csv --json --quiet > eval1.out
timeout 120 mpirun -np 2 "$tessera" evaluate dlrm-2/model.tsm data/test.csv --json --quiet > eval2.out
for out in eval1.out eval2.out; do
  close "evaluate ($out) AUC" "$(field $out "d['metrics']['auc']")" "$(field dlrm-2.out "d['test']['auc']")" 1e-12
  close "evaluate ($out) logloss" "$(field $out "d['metrics']['logloss']")" \
    "$(field dlrm-2.out "d['test']['logloss']")" 1e-12
done

# ---- DCN-v2 and Wide & Deep at 3 ranks ---------------------------------------------------------
for m in dcn wd; do
  "$tessera" train "data/$m.json" "${opts[@]}" --run-dir "$m-one" > "$m-one.out"
  timeout 300 mpirun -np 3 "$tessera" train "data/$m-split.json" "${opts[@]}" --run-dir "$m-3" > "$m-3.out"
  same_run "$m, split over 3 ranks" "$m-3" "$m-3.out" "$m-one" "$m-one.out"
done

# ---- kill -9 after a mid-epoch checkpoint; resume at 2 ranks and in one process --------------
det=(--device cpu --json --deterministic-reduction)
timeout 300 mpirun -np 2 "$tessera" train data/ckpt-split.json "${det[@]}" --quiet --resume full > full.out
"$tessera" train data/ckpt.json "${opts[@]}" --resume full-one > full-one.out
mid=no
for attempt in 1 2 3; do
  rm -rf cut
  mpirun -np 2 "$tessera" train data/ckpt-split.json "${det[@]}" --quiet --resume cut > /dev/null 2>&1 &
  job=$!
  for _ in $(seq 1 1200); do
    [[ -f cut/checkpoint.tsc ]] && break
    kill -0 "$job" 2> /dev/null || break
    sleep 0.01
  done
  victim=$(pgrep -P "$job" -f "tessera train" | tail -n 1 || true)
  [[ -n $victim ]] && kill -9 "$victim"
  rc=0
  wait "$job" || rc=$?
  [[ -f cut/checkpoint.tsc && ! -f cut/result.json && $rc != 0 ]] || continue
  cp -r cut cut-one
  timeout 300 mpirun -np 2 "$tessera" train data/ckpt-split.json "${det[@]}" --resume cut \
    > cut.out 2> cut.err
  if grep -Eq "resuming cut after epoch [0-9]+ and [1-9][0-9]* batches" cut.err; then
    mid=yes
    break
  fi
  rm -rf cut-one
done
[[ $mid == yes ]] || fail "no kill left a mid-epoch checkpoint in 3 attempts"
[[ $(losses cut/metrics.jsonl) == $(losses full/metrics.jsonl) ]] ||
  fail "resumed losses $(losses cut/metrics.jsonl), uninterrupted $(losses full/metrics.jsonl)"
for f in "d['test']['auc']" "d['test']['logloss']" "d['steps']"; do
  [[ $(field cut.out "$f") == $(field full.out "$f") ]] || fail "the resumed run differs in $f"
done
cmp -s cut/model.tsm full/model.tsm || fail "the resumed model file differs"
echo "ok: $(grep -a resuming cut.err | head -n 1); equal to the uninterrupted 2-rank run"
# The checkpoint holds whole tables: one process resumes it with them replicated.
"$tessera" train data/ckpt.json "${opts[@]}" --resume cut-one > cut-one.out
same_run "a 2-rank split checkpoint resumed in one process" cut-one cut-one.out full-one full-one.out

# ---- refused configs ---------------------------------------------------------------------------
for c in mlp-split shards-split; do
  rc=0
  "$tessera" train "data/$c.json" "${opts[@]}" > "$c.out" 2> "$c.err" || rc=$?
  [[ $rc != 0 ]] || fail "$c was not refused"
  grep -q "model.tables_across_ranks" "$c.err" || fail "$c's refusal does not name the key: $(cat "$c.err")"
done
echo "ok: $(head -n 1 mlp-split.err)"
echo "PASS"
