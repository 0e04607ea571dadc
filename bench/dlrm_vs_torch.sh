#!/usr/bin/env bash
# tessera DLRM or DCN-v2 vs a PyTorch model of the same shape (bench/torch_dlrm.py), side by side
# in one run on the same synthetic Criteo-like data: training samples/s, test AUC after every
# epoch, and the training time each side needs to reach the reference's AUC.
#
#   bench/dlrm_vs_torch.sh [TESSERA_BIN] [--model dlrm|dcn_v2] [--low-rank R] [--cross-layers N]
#       [--structure stacked|parallel] [--prepared] [--read auto|memory|stream] [--rows N]
#       [--epochs N] [--batch-size N] [--threads N] [--seeds N[,N..]] [--auc-tolerance X]
#       [--keep DIR]
#
# TESSERA_BIN defaults to build/tessera. Steps:
#   1. TESSERA_BIN make-synthetic TMP/data --layout criteo --rows N (default 200000; test N/4):
#      13 counts + 26 power-law categorical ids with a planted signal;
#   2. tessera: TESSERA_BIN train on the generated config with the model replaced by the
#      benchmark's and every categorical token given its own row (min_count 1, PyTorch's
#      vocabulary: the two models must have equal parameter counts, or the comparison fails)
#      (embedding dim 16, bottom [64], tables sparse Adagrad lr 0.05, dense Adam lr
#      1e-3, no dropout; dlrm: top [64, 32]; dcn_v2: --cross-layers (3) cross layers, full rank
#      or --low-rank R, --structure (stacked), deep tower [64, 32]), CPU, --epochs (default 1:
#      DLRMs on click data overfit after one pass). The test file is also its validation file, so
#      metrics.jsonl has the test AUC after every epoch (no rows are held out of training).
#      With --prepared, TESSERA_BIN prep writes the data once as shards (its time reported apart,
#      "prep_seconds") and training reads them (data.prepared; data.read from --read, default
#      the config's "auto");
#      --seeds (default 42; --seed N is one) seeds tessera's run (the config's "seed") and
#      PyTorch's alike, each seed a pair of runs; the data stay the same (make-synthetic's own
#      seed), so seeds show the runs' own spread (DLRM on this data: about 0.01 AUC between
#      seeds at 200,000 rows, so a single seed cannot rank the two sides within that).
#   3. PyTorch: the same model (nn.EmbeddingBag sparse + Adagrad; DLRM: bmm interaction; DCN-v2:
#      the cross network as tessera's dcn_model.h), same epochs, batch size and threads, the data
#      preprocessed into memory first (so it never pays for reading, in either mode).
# Fairness: both get the same threads (OMP_NUM_THREADS / torch.set_num_threads); PyTorch runs
# with OpenBLAS (OpenMP build, checked from its /proc/self/maps) and OPENBLAS_CORETYPE=Cooperlake,
# set for its process only, and prints its own 1024^3 torch.mm GFLOP/s beside its figures. Both
# time only the training loop (tessera's includes its batcher); evaluation is excluded.
#
# Time to the reference's AUC: the reference AUC is the best test AUC PyTorch reached over its
# epochs (with several seeds: the best of its per-epoch mean AUCs); each side's time is its
# (mean) cumulative training seconds at the end of the first epoch whose (mean) test AUC is >=
# that minus --auc-tolerance (default 0.001); null when it never gets there within --epochs.
#
# Output: progress on stderr; the last stdout line is
#   {"model":..,"mode":"text"|"prepared","tessera_samples_per_sec":..,"torch_samples_per_sec":..,
#    "ratio":..,"target_ratio":2.5,"reference_auc":..,"tessera_seconds_to_reference_auc":..,
#    "torch_seconds_to_reference_auc":..,"time_to_auc_ratio":..,"torch_gemm_gflops":..,
#    "epochs":[{"epoch":1,"tessera_auc":..,"torch_auc":..},..],"tessera":{..},"torch":{..},..}
# ratio = tessera / torch samples/s; time_to_auc_ratio = torch seconds / tessera seconds.
# With several seeds the last line is dlrm_compare.py --aggregate's: the same fields from the
# per-seed means, plus "seeds", per-epoch mean and spread (sample standard deviation) of each
# side's AUC, and "per_seed" (each pair's own line).
# Exits non-zero on any failure.
# gpu-check: skip needs PyTorch and trains both sides on the CPU; nothing of it runs on the GPU
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python=/usr/bin/python3
openblas_dir=/usr/lib/x86_64-linux-gnu/openblas-openmp
tessera_bin="$root/build/tessera"
model=dlrm
low_rank=0
cross_layers=3
structure=stacked
prepared=0
read_mode=""
rows=200000
epochs=1
batch_size=1024
threads=2
auc_tolerance=0.001
seeds=42
keep=""

die() { echo "dlrm_vs_torch: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift ;;
    --low-rank) low_rank="$2"; shift ;;
    --cross-layers) cross_layers="$2"; shift ;;
    --structure) structure="$2"; shift ;;
    --prepared) prepared=1 ;;
    --read) read_mode="$2"; shift ;;
    --rows) rows="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    --batch-size) batch_size="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --auc-tolerance) auc_tolerance="$2"; shift ;;
    --seed|--seeds) seeds="$2"; shift ;;
    --keep) keep="$2"; shift ;;
    -h|--help) sed -n '2,43p' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) tessera_bin="$1" ;;
  esac
  shift
done
[[ "$model" == dlrm || "$model" == dcn_v2 ]] || die "--model is dlrm or dcn_v2, not '$model'"
[[ "$structure" == stacked || "$structure" == parallel ]] \
  || die "--structure is stacked or parallel, not '$structure'"
[[ -z "$read_mode" || $prepared == 1 ]] || die "--read needs --prepared"
[[ -x "$tessera_bin" ]] || die "tessera binary '$tessera_bin' not found (build it or pass its path)"
[[ -x "$python" ]] || die "$python not found (install python3-torch: TESSERA_SETUP_BENCH=1 tools/setup.sh)"
[[ -d "$openblas_dir" ]] || die "$openblas_dir is missing: apt-get install libopenblas0-openmp"

if [[ -n "$keep" ]]; then
  mkdir -p "$keep"
  tmp="$(cd "$keep" && pwd)"
else
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
fi

echo "== synthetic criteo: $rows train rows" >&2
"$tessera_bin" make-synthetic "$tmp/data" --layout criteo --rows "$rows" --json >"$tmp/gen.out" \
  || die "make-synthetic failed"
# The generated config with the benchmark's model and schedule (its seed is set per run below).
"$python" - "$tmp/data/config.json" "$tmp/bench.json" "$epochs" "$batch_size" "$model" \
  "$cross_layers" "$low_rank" "$structure" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
epochs, batch, model, layers, rank, structure = sys.argv[3:9]
c["device"] = "cpu"
d = c["data"]
d.pop("validation_fraction", None)
# make-synthetic's config takes the large-data route (data.prepared): the text mode reads the
# files, and --prepared below names the directory it writes.
d.pop("prepared", None)
d.pop("read", None)
d["validation"] = d["test"]  # the test AUC after every epoch; no train rows held out
# PyTorch's vocabulary: every token seen on train has its own row (torch_dlrm.py), so the two
# models have the same tables and parameter count.
d.setdefault("categorical", {})["min_count"] = 1
m = {"type": model, "embedding_dim": 16, "bottom": [64], "hidden": [64, 32], "dropout": 0.0,
     "sparse_optimizer": {"type": "adagrad", "lr": 0.05}}
if model == "dcn_v2":
    m["cross"] = {"layers": int(layers), "low_rank": int(rank), "structure": structure}
c["model"] = m
c["train"].update({"epochs": int(epochs), "batch_size": int(batch),
                   "optimizer": {"type": "adam", "lr": 0.001}})
c["train"].pop("early_stopping", None)  # every epoch runs: quality at equal epochs
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY

config="$tmp/bench.json"
prep_seconds=null
if [[ $prepared == 1 ]]; then
  echo "== tessera prep --threads $threads" >&2
  "$tessera_bin" prep "$config" --out "$tmp/prepared" --threads "$threads" --json --quiet \
    >"$tmp/prep.out" || { tail -n 5 "$tmp/prep.out" >&2; die "tessera prep failed"; }
  prep_seconds="$("$python" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["seconds"])' "$tmp/prep.out")"
  "$python" - "$config" "$tmp/prepared" "$read_mode" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["data"]["prepared"] = sys.argv[2]
if sys.argv[3]:
    c["data"]["read"] = sys.argv[3]
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
fi
mode="$([[ $prepared == 1 ]] && echo prepared || echo text)"

# One pair of runs (tessera, then PyTorch) with seed $1; its comparison in $tmp/cmp-$1.json.
run_pair() {
  local seed="$1"
  "$python" -c 'import json,sys; c=json.load(open(sys.argv[1])); c["seed"]=int(sys.argv[3]); json.dump(c, open(sys.argv[2], "w"), indent=1)' \
    "$config" "$tmp/bench-$seed.json" "$seed"
  echo "== tessera: train $model ($mode, OMP_NUM_THREADS=$threads, seed $seed)" >&2
  OMP_NUM_THREADS="$threads" "$tessera_bin" train "$tmp/bench-$seed.json" --json --quiet \
    --runs-dir "$tmp/runs-$seed" >"$tmp/tessera-$seed.out" \
    || { tail -n 20 "$tmp/tessera-$seed.out" >&2; die "tessera train failed"; }
  local load_tessera
  load_tessera="$(cut -d' ' -f1 /proc/loadavg)"
  echo "== pytorch: $model epochs=$epochs batch=$batch_size threads=$threads seed $seed (OpenBLAS openmp, Cooperlake)" >&2
  OPENBLAS_CORETYPE=Cooperlake LD_LIBRARY_PATH="$openblas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$python" "$here/torch_dlrm.py" --data-dir "$tmp/data" --model "$model" --epochs "$epochs" \
    --batch-size "$batch_size" --threads "$threads" --cross-layers "$cross_layers" \
    --low-rank "$low_rank" --structure "$structure" --seed "$seed" >"$tmp/torch-$seed.out" \
    || die "torch_dlrm.py failed"
  "$python" "$here/dlrm_compare.py" --tessera "$tmp/tessera-$seed.out" --torch "$tmp/torch-$seed.out" \
    --rows "$rows" --mode "$mode" --prep-seconds "$prep_seconds" --tessera-loadavg "$load_tessera" \
    --auc-tolerance "$auc_tolerance" --seed "$seed" >"$tmp/cmp-$seed.json" \
    || die "dlrm_compare.py failed (seed $seed)"
}

IFS=, read -r -a seed_list <<<"$seeds"
((${#seed_list[@]} > 0)) || die "--seeds names no seed"
for seed in "${seed_list[@]}"; do
  [[ "$seed" =~ ^[0-9]+$ ]] || die "--seeds takes non-negative integers, not '$seed'"
  run_pair "$seed"
done
if ((${#seed_list[@]} == 1)); then
  cat "$tmp/cmp-${seed_list[0]}.json"
else
  "$python" "$here/dlrm_compare.py" --aggregate $(printf "$tmp/cmp-%s.json " "${seed_list[@]}") \
    --auc-tolerance "$auc_tolerance"
fi
