#!/usr/bin/env bash
# tessera DLRM vs a PyTorch DLRM of the same shape (bench/torch_dlrm.py), side by side in one run
# on the same synthetic Criteo-like data: training samples/s and both models' test AUC.
#
#   bench/dlrm_vs_torch.sh [TESSERA_BIN] [--rows N] [--epochs N] [--batch-size N] [--threads N]
#
# TESSERA_BIN defaults to build/tessera. Steps:
#   1. TESSERA_BIN make-synthetic TMP/data --layout criteo --rows N (default 200000; test N/4):
#      13 counts + 26 power-law categorical ids with a planted signal;
#   2. tessera: TESSERA_BIN train on the generated DLRM config (embedding dim 16, bottom [64],
#      top [64, 32], dense Adam lr 1e-3, tables sparse Adagrad lr 0.05, no dropout, no
#      validation split, CPU; --epochs, default 1: DLRMs on click data overfit after one pass),
#      reading "train_samples_per_sec" and "test.auc" from its JSON;
#   3. PyTorch: the same model (nn.EmbeddingBag sparse + Adagrad, bmm interaction), same epochs
#      and batch size.
# Fairness: both get the same threads (OMP_NUM_THREADS / torch.set_num_threads); PyTorch runs
# with OpenBLAS (OpenMP build) and OPENBLAS_CORETYPE=Cooperlake, set for its process only.
# Both exclude reading and preprocessing from the timed loop (tessera's figure is its training
# loop including its batcher).
#
# Output: progress on stderr; the last stdout line is
#   {"tessera_samples_per_sec":..,"torch_samples_per_sec":..,"ratio":..,"target_ratio":2.5,
#    "tessera":{"auc":..,..},"torch":{"auc":..,..},"rows":..,"loadavg_1m":..}
# ratio = tessera / torch. Exits non-zero on any failure.
# gpu-check: skip needs PyTorch and trains both sides on the CPU; nothing of it runs on the GPU
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python=/usr/bin/python3
openblas_dir=/usr/lib/x86_64-linux-gnu/openblas-openmp
tessera_bin="$root/build/tessera"
rows=200000
epochs=1
batch_size=1024
threads=2

die() { echo "dlrm_vs_torch: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    --batch-size) batch_size="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) tessera_bin="$1" ;;
  esac
  shift
done
[[ -x "$tessera_bin" ]] || die "tessera binary '$tessera_bin' not found (build it or pass its path)"
[[ -x "$python" ]] || die "$python not found (install python3-torch)"
[[ -d "$openblas_dir" ]] || die "$openblas_dir is missing: apt-get install libopenblas0-openmp"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== synthetic criteo: $rows train rows" >&2
"$tessera_bin" make-synthetic "$tmp/data" --layout criteo --rows "$rows" --json >"$tmp/gen.out" \
  || die "make-synthetic failed"
# The generated config with the benchmark's schedule; tables on sparse Adagrad as PyTorch's.
"$python" - "$tmp/data/config.json" "$tmp/bench.json" "$epochs" "$batch_size" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["device"] = "cpu"
c["data"]["validation_fraction"] = 0
c["model"]["sparse_optimizer"] = {"type": "adagrad", "lr": 0.05}
c["train"].update({"epochs": int(sys.argv[3]), "batch_size": int(sys.argv[4])})
c["train"].pop("early_stopping", None)  # no validation split to stop on
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY

echo "== tessera: train (OMP_NUM_THREADS=$threads)" >&2
OMP_NUM_THREADS="$threads" "$tessera_bin" train "$tmp/bench.json" --json --quiet \
  --runs-dir "$tmp/runs" >"$tmp/tessera.out" || { tail -n 20 "$tmp/tessera.out" >&2; die "tessera train failed"; }
load_tessera="$(cut -d' ' -f1 /proc/loadavg)"

echo "== pytorch: epochs=$epochs batch=$batch_size threads=$threads (OpenBLAS openmp, Cooperlake)" >&2
OPENBLAS_CORETYPE=Cooperlake LD_LIBRARY_PATH="$openblas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  "$python" "$here/torch_dlrm.py" --data-dir "$tmp/data" --epochs "$epochs" \
  --batch-size "$batch_size" --threads "$threads" >"$tmp/torch.out" || die "torch_dlrm.py failed"

"$python" - "$tmp/tessera.out" "$tmp/torch.out" "$rows" "$load_tessera" <<'PY'
import json, sys
last = lambda p: json.loads([l for l in open(p).read().splitlines() if l.strip()][-1])
te, to = last(sys.argv[1]), last(sys.argv[2])
ts, ps = te["train_samples_per_sec"], to["train_samples_per_sec"]
print(json.dumps({
    "tessera_samples_per_sec": round(ts, 1), "torch_samples_per_sec": round(ps, 1),
    "ratio": round(ts / ps, 3), "target_ratio": 2.5, "rows": int(sys.argv[3]),
    "tessera": {"auc": te["test"]["auc"], "logloss": te["test"]["logloss"],
                "epochs": te["epochs"], "batch_size": te["batch_size"],
                "train_seconds": te["train_seconds"], "parameters": te["parameters"],
                "loadavg_1m": float(sys.argv[4])},
    "torch": {"auc": to["test"]["auc"], "epochs": to["epochs"], "batch_size": to["batch_size"],
              "train_seconds": to["train_seconds"], "loadavg_1m": to["loadavg_1m"]},
}))
PY
