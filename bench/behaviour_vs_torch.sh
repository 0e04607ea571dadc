#!/usr/bin/env bash
# tessera vs PyTorch (CPU) on the behaviour MLP over UCI Adult, side by side: training samples/s
# and the test metrics of both, so we see the speed and that both models learn.
#
#   bench/behaviour_vs_torch.sh [TESSERA_BIN] [--torch-only] [--config PATH] [--threads N]
#                               [--repeat N] [--data-dir DIR] [--epochs N] [--batch-size N]
#
# TESSERA_BIN defaults to build/tessera. The tessera half runs
#   TESSERA_BIN train CONFIG --json --quiet --runs-dir TMP
# (CONFIG defaults to bench/configs/uci-adult-bench.json: the model of
# pipelines/behaviour/uci-adult.json, 3 epochs, no validation split, CPU) and reads its last
# stdout line, a JSON object with "train_samples_per_sec", "epochs", "batch_size" and
# "test": {"auc", "accuracy", "logloss"}. The PyTorch half (bench/torch_mlp.py) then trains the same model with the same
# epochs and batch size as tessera reported.
#
# Fairness: both get the same number of threads (default 2: OMP_NUM_THREADS for tessera,
# torch.set_num_threads for PyTorch). PyTorch runs at its best configuration on this CPU:
# OpenBLAS (OpenMP build) with OPENBLAS_CORETYPE=Cooperlake, set for the reference process only.
# Its own 1024^3 GEMM GFLOP/s is printed beside its result.
#
# Output: progress on stderr; the last stdout line is
#   {"tessera_samples_per_sec":..,"torch_samples_per_sec":..,"ratio":..,"torch_gemm_gflops":..,
#    "tessera":{..},"torch":{..}}
# with ratio = tessera / torch (null in --torch-only mode). With --repeat N each side runs N times
# and its fastest run is reported. Exits non-zero on any failure.
# gpu-check: skip needs PyTorch and trains both sides on the CPU; nothing of it runs on the GPU
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python=/usr/bin/python3  # the Debian python that has python3-torch
openblas_dir=/usr/lib/x86_64-linux-gnu/openblas-openmp

tessera_bin="$root/build/tessera"
config="$here/configs/uci-adult-bench.json"
data_dir="$(cd "$root/.." && pwd)/shared/datasets/uci-adult"
threads=2
torch_only=0
epochs=3        # used in --torch-only mode; otherwise taken from tessera's report
batch_size=256
repeat=1        # runs per side; the fastest of each is reported (a shared machine is noisy)

die() { echo "behaviour_vs_torch: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --torch-only) torch_only=1 ;;
    --config) config="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --data-dir) data_dir="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    --batch-size) batch_size="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) tessera_bin="$1" ;;
  esac
  shift
done

[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer, got '$repeat'"
[[ -x "$python" ]] || die "$python not found (install python3-torch)"
[[ -d "$openblas_dir" ]] || die "$openblas_dir is missing: apt-get install libopenblas0-openmp"
[[ -f "$data_dir/adult.data" && -f "$data_dir/adult.test" ]] || die "no UCI Adult under $data_dir (use --data-dir)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Of several JSON results (one per line in FILE), print the one with the highest KEY.
best_of() {  # best_of FILE KEY
  "$python" - "$1" "$2" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
print(json.dumps(max(rows, key=lambda r: r[sys.argv[2]])))
EOF
}
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# ---- (a) tessera ----------------------------------------------------------------------------
tessera_json=null
if [[ $torch_only -eq 0 ]]; then
  [[ -x "$tessera_bin" ]] || die "tessera binary '$tessera_bin' not found or not executable (build it, or pass its path, or use --torch-only)"
  [[ -f "$config" ]] || die "config '$config' not found"
  : >"$tmp/tessera.results"
  for ((i = 1; i <= repeat; ++i)); do
    echo "== tessera ($i/$repeat): $tessera_bin train $config --json --quiet --runs-dir $tmp/runs$i (OMP_NUM_THREADS=$threads)" >&2
    # Run from the repository root (where ../shared/datasets is found); the run directory goes
    # to the temporary folder, not into the tree.
    if ! (cd "$root" && OMP_NUM_THREADS="$threads" "$tessera_bin" train "$config" --json --quiet \
            --runs-dir "$tmp/runs$i") >"$tmp/tessera.out"; then
      tail -n 20 "$tmp/tessera.out" >&2 || true
      die "tessera train failed (output above)"
    fi
    # The last non-empty stdout line must be a JSON object with the fields we compare.
    "$python" - "$tmp/tessera.out" "$(loadavg)" "$threads" >>"$tmp/tessera.results" <<'EOF' || die "could not read tessera's result"
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8").read().splitlines() if l.strip()]
if not lines:
    sys.exit("tessera printed nothing on stdout (expected a JSON object as its last line)")
try:
    r = json.loads(lines[-1])
except json.JSONDecodeError as e:
    sys.exit(f"tessera's last stdout line is not JSON ({e}): {lines[-1][:200]!r}")
missing = [k for k in ("train_samples_per_sec", "epochs", "batch_size", "test") if k not in r]
missing += ["test." + k for k in ("auc", "accuracy", "logloss") if k not in r.get("test", {})]
if missing:
    sys.exit("tessera's JSON lacks " + ", ".join(missing) + f": {lines[-1][:300]}")
out = {"train_samples_per_sec": r["train_samples_per_sec"], "epochs": r["epochs"],
       "batch_size": r["batch_size"], **{k: r["test"][k] for k in ("auc", "accuracy", "logloss")}}
for k in ("train_seconds", "device", "parameters"):
    if k in r:
        out[k] = r[k]
out["threads"] = int(sys.argv[3])  # OMP_NUM_THREADS it ran with
out["loadavg_1m"] = float(sys.argv[2])
print(json.dumps(out))
EOF
    echo "tessera: $(tail -n 1 "$tmp/tessera.results")" >&2
  done
  tessera_json="$(best_of "$tmp/tessera.results" train_samples_per_sec)"
  epochs="$("$python" -c 'import json,sys; print(int(json.loads(sys.argv[1])["epochs"]))' "$tessera_json")"
  batch_size="$("$python" -c 'import json,sys; print(int(json.loads(sys.argv[1])["batch_size"]))' "$tessera_json")"
fi

# ---- (b) PyTorch reference ------------------------------------------------------------------
: >"$tmp/torch.results"
for ((i = 1; i <= repeat; ++i)); do
  echo "== pytorch ($i/$repeat): epochs=$epochs batch_size=$batch_size threads=$threads (OpenBLAS openmp, Cooperlake)" >&2
  OPENBLAS_CORETYPE=Cooperlake LD_LIBRARY_PATH="$openblas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$python" "$here/torch_mlp.py" --data-dir "$data_dir" --epochs "$epochs" \
    --batch-size "$batch_size" --threads "$threads" >"$tmp/torch.out" \
    || die "torch_mlp.py failed"
  tail -n 1 "$tmp/torch.out" >>"$tmp/torch.results"
  echo "pytorch: $(tail -n 1 "$tmp/torch.out")" >&2
done
torch_json="$(best_of "$tmp/torch.results" train_samples_per_sec)"

# ---- side by side ---------------------------------------------------------------------------
"$python" - "$tessera_json" "$torch_json" <<'EOF'
import json, sys
te = json.loads(sys.argv[1])
to = json.loads(sys.argv[2])
if "openblas" not in to.get("blas", ""):
    sys.exit(f"PyTorch did not load OpenBLAS (blas={to.get('blas')}): not its best configuration")
torch_m = {k: to["test"][k] for k in ("auc", "accuracy", "logloss")}
torch_m.update({k: to[k] for k in ("epochs", "batch_size", "threads", "train_seconds", "blas",
                                   "loadavg_1m")})
tess_sps = te["train_samples_per_sec"] if te else None
print(json.dumps({
    "tessera_samples_per_sec": tess_sps,
    "torch_samples_per_sec": to["train_samples_per_sec"],
    "ratio": round(tess_sps / to["train_samples_per_sec"], 4) if te else None,
    "torch_gemm_gflops": to["torch_gemm_gflops"],
    "tessera": te,
    "torch": torch_m,
}))
EOF
