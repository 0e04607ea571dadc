#!/usr/bin/env bash
# tessera vs PyTorch on the two-tower recommendation model (pipelines/recommend), side by side on
# the same split, plus tessera's biased-MF RMSE against the issue's target:
#
#   bench/recommend_vs_torch.sh [TESSERA_BIN] [--config PATH] [--mf-config PATH] [--no-mf]
#                               [--threads N] [--epochs N] [--seeds S1,S2,...]
#
# TESSERA_BIN defaults to build/tessera. The tessera half runs
#   TESSERA_BIN train CONFIG --json --quiet --runs-dir TMP
# (CONFIG defaults to pipelines/recommend/movielens-two-tower.json), which writes the NCF
# held-out cases (1 positive + 99 sampled negatives per user, raw ids) to RUN_DIR/leave_last_out.csv.
# bench/torch_two_tower.py then trains the same model (same tables, init range, loss, negatives
# per positive, L2, optimizer, epochs, batch size) on the same training rows and evaluates it on
# the same cases, sampled and full ranking. Both get N threads (default 2); PyTorch runs with
# OpenBLAS (OpenMP build, OPENBLAS_CORETYPE=Cooperlake), set for the reference process only.
# --seeds repeats the comparison once per seed: tessera's config gets `"seed": S` (which draws
# its init, negatives and held-out negatives) and PyTorch `--seed S`; the top-level figures are
# then means over the seeds, with each seed's pair under "per_seed".
#
# Output: progress on stderr; the last stdout line is
#   {"tessera":{hr_sampled,ndcg_sampled,hr_full,ndcg_full,seconds},
#    "torch":{...}, "most_popular":{...}, "hr_ratio": tessera/torch (sampled),
#    "hr_full_ratio":..., "seeds":[..], "per_seed":[{"seed","tessera","torch","most_popular"}],
#    "tessera_hr_wins": seeds where tessera's sampled HR >= PyTorch's,
#    "mf":{"test_rmse":..,"target":0.840,"global_mean_rmse":..}, "loadavg":".."}
# Exits non-zero on any failure.
# gpu-check: skip needs PyTorch and trains both sides on the CPU; nothing of it runs on the GPU
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
seeds=""

die() { echo "recommend_vs_torch: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) config="$2"; shift ;;
    --mf-config) mf_config="$2"; shift ;;
    --no-mf) run_mf=0 ;;
    --threads) threads="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    --seeds) seeds="$2"; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
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

[[ -z "$seeds" || "$seeds" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--seeds wants comma-separated integers, got '$seeds'"

# One tessera + PyTorch pair; $1 = config path, $2 = PyTorch seed. Appends a JSON line to pairs.
run_pair() {
  local cfg="$1" tseed="$2" tt_json run_dir torch_json
  echo "recommend_vs_torch: tessera two-tower ($cfg)" >&2
  tt_json="$(OMP_NUM_THREADS=$threads "$tessera_bin" train "$cfg" --json --quiet --runs-dir "$tmp/runs" \
    ${epoch_args[@]+"${epoch_args[@]}"} | tail -n 1)"
  run_dir="$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["run_dir"])' "$tt_json")"
  echo "recommend_vs_torch: PyTorch two-tower on the same split (seed $tseed)" >&2
  torch_json="$(OPENBLAS_CORETYPE=Cooperlake LD_LIBRARY_PATH="$openblas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$python" "$here/torch_two_tower.py" --ratings "$ratings" --run-dir "$run_dir" \
    --config "$run_dir/config.json" --threads "$threads" --seed "$tseed" | tail -n 1)"
  "$python" -c 'import json,sys; print(json.dumps({"seed": int(sys.argv[3]), "tt": json.loads(sys.argv[1]), "th": json.loads(sys.argv[2])}))' \
    "$tt_json" "$torch_json" "$tseed" >> "$tmp/pairs.jsonl"
}

: > "$tmp/pairs.jsonl"
if [[ -z "$seeds" ]]; then
  run_pair "$config" 0
else
  IFS=, read -r -a seed_list <<< "$seeds"
  for s in "${seed_list[@]}"; do
    # The config with its seed replaced (configs may carry // comments).
    "$python" - "$config" "$s" "$tmp/seed_$s.json" <<'PY'
import json, re, sys
text = re.sub(r"^\s*//.*$", "", open(sys.argv[1]).read(), flags=re.M)
c = json.loads(text)
c["seed"] = int(sys.argv[2])
c["name"] = "%s-seed%s" % (c.get("name", "two-tower"), sys.argv[2])
json.dump(c, open(sys.argv[3], "w"), indent=1)
PY
    run_pair "$tmp/seed_$s.json" "$s"
  done
fi

mf_json="null"
if [[ "$run_mf" == 1 ]]; then
  echo "recommend_vs_torch: tessera biased MF ($mf_config)" >&2
  mf_json="$(OMP_NUM_THREADS=$threads "$tessera_bin" train "$mf_config" --json --quiet \
    --runs-dir "$tmp/runs" | tail -n 1)"
fi

"$python" - "$tmp/pairs.jsonl" "$mf_json" "$(cat /proc/loadavg)" <<'PY'
import json, sys
pairs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mf, load = json.loads(sys.argv[2]), sys.argv[3]
keys = ["hr_sampled", "ndcg_sampled", "hr_full", "ndcg_full"]
per_seed = []
for p in pairs:
    m, th = p["tt"]["metrics"], p["th"]
    per_seed.append({"seed": p["seed"],
                     "tessera": dict({k: m[k] for k in keys}, seconds=p["tt"]["seconds"]),
                     "torch": dict({k: th[k] for k in keys}, seconds=th["seconds"]),
                     "most_popular": {k: m["popular_" + k] for k in keys}})
def mean(side):
    return {k: sum(p[side][k] for p in per_seed) / len(per_seed) for k in per_seed[0][side]}
tt, th, mp = mean("tessera"), mean("torch"), mean("most_popular")
m0 = pairs[0]["tt"]["metrics"]
out = {
    "tessera": tt, "torch": th, "most_popular": mp,
    "hr_ratio": tt["hr_sampled"] / th["hr_sampled"] if th["hr_sampled"] else None,
    "hr_full_ratio": tt["hr_full"] / th["hr_full"] if th["hr_full"] else None,
    "seeds": [p["seed"] for p in per_seed], "per_seed": per_seed,
    "tessera_hr_wins": sum(p["tessera"]["hr_sampled"] >= p["torch"]["hr_sampled"] for p in per_seed),
    "mf": None if mf is None else {"test_rmse": mf["metrics"]["test_rmse"], "target": 0.840,
                                   "global_mean_rmse": mf["metrics"]["global_mean_rmse"],
                                   "seconds": mf["seconds"]},
    "test_users": m0["test_users"], "k": m0["k"], "loadavg": load.strip(),
}
print(json.dumps(out))
PY
