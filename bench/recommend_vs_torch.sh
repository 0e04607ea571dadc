#!/usr/bin/env bash
# tessera vs PyTorch on the two-tower recommendation model (pipelines/recommend), side by side on
# the same split, plus tessera's biased-MF RMSE against the issue's target:
#
#   bench/recommend_vs_torch.sh [TESSERA_BIN] [--config PATH] [--mf-config PATH] [--no-mf]
#                               [--threads N] [--epochs N]
#
# TESSERA_BIN defaults to build/tessera. The tessera half runs
#   TESSERA_BIN train CONFIG --json --quiet --runs-dir TMP
# (CONFIG defaults to pipelines/recommend/movielens-two-tower.json), which writes the NCF
# held-out cases (1 positive + 99 sampled negatives per user, raw ids) to RUN_DIR/leave_last_out.csv.
# bench/torch_two_tower.py then trains the same model (same tables, init range, loss, negatives
# per positive, L2, optimizer, epochs, batch size) on the same training rows and evaluates it on
# the same cases, sampled and full ranking. Both get N threads (default 2); PyTorch runs with
# OpenBLAS (OpenMP build, OPENBLAS_CORETYPE=Cooperlake), set for the reference process only.
#
# Output: progress on stderr; the last stdout line is
#   {"tessera":{hr_sampled,ndcg_sampled,hr_full,ndcg_full,seconds},
#    "torch":{...}, "most_popular":{...}, "hr_ratio": tessera/torch (sampled),
#    "hr_full_ratio":..., "mf":{"test_rmse":..,"target":0.840,"global_mean_rmse":..}, "loadavg":".."}
# Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python=/usr/bin/python3  # the Debian python that has python3-torch
openblas_dir=/usr/lib/x86_64-linux-gnu/openblas-openmp

tessera_bin="$root/build/tessera"
config="$root/pipelines/recommend/movielens-two-tower.json"
mf_config="$root/pipelines/recommend/movielens-mf.json"
run_mf=1
threads=2
epochs=""

die() { echo "recommend_vs_torch: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) config="$2"; shift ;;
    --mf-config) mf_config="$2"; shift ;;
    --no-mf) run_mf=0 ;;
    --threads) threads="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) tessera_bin="$1" ;;
  esac
  shift
done
[[ -x "$tessera_bin" ]] || die "no tessera binary at $tessera_bin (build it, or pass its path)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
ratings="$root/../shared/datasets/ml-latest-small/ratings.csv"
[[ -n "${TESSERA_DATA:-}" && -f "$TESSERA_DATA/ml-latest-small/ratings.csv" ]] &&
  ratings="$TESSERA_DATA/ml-latest-small/ratings.csv"
[[ -f "$ratings" ]] || die "ml-latest-small/ratings.csv not found (../shared/datasets or \$TESSERA_DATA)"

epoch_args=()
[[ -n "$epochs" ]] && epoch_args=(--epochs "$epochs")

echo "recommend_vs_torch: tessera two-tower ($config)" >&2
tt_json="$(OMP_NUM_THREADS=$threads "$tessera_bin" train "$config" --json --quiet --runs-dir "$tmp/runs" \
  ${epoch_args[@]+"${epoch_args[@]}"} | tail -n 1)"
run_dir="$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["run_dir"])' "$tt_json")"
resolved="$run_dir/config.json"

echo "recommend_vs_torch: PyTorch two-tower on the same split" >&2
torch_json="$(OPENBLAS_CORETYPE=Cooperlake LD_LIBRARY_PATH="$openblas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  "$python" "$here/torch_two_tower.py" --ratings "$ratings" --run-dir "$run_dir" \
  --config "$resolved" --threads "$threads" | tail -n 1)"

mf_json="null"
if [[ "$run_mf" == 1 ]]; then
  echo "recommend_vs_torch: tessera biased MF ($mf_config)" >&2
  mf_json="$(OMP_NUM_THREADS=$threads "$tessera_bin" train "$mf_config" --json --quiet \
    --runs-dir "$tmp/runs" | tail -n 1)"
fi

"$python" - "$tt_json" "$torch_json" "$mf_json" "$(cat /proc/loadavg)" <<'PY'
import json, sys
tt, th, mf, load = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
m = tt["metrics"]
keys = ["hr_sampled", "ndcg_sampled", "hr_full", "ndcg_full"]
out = {
    "tessera": dict({k: m[k] for k in keys}, seconds=tt["seconds"]),
    "torch": dict({k: th[k] for k in keys}, seconds=th["seconds"]),
    "most_popular": {k: m["popular_" + k] for k in keys},
    "hr_ratio": m["hr_sampled"] / th["hr_sampled"] if th["hr_sampled"] else None,
    "hr_full_ratio": m["hr_full"] / th["hr_full"] if th["hr_full"] else None,
    "mf": None if mf is None else {"test_rmse": mf["metrics"]["test_rmse"], "target": 0.840,
                                   "global_mean_rmse": mf["metrics"]["global_mean_rmse"],
                                   "seconds": mf["seconds"]},
    "test_users": m["test_users"], "k": m["k"], "loadavg": load.strip(),
}
print(json.dumps(out))
PY
