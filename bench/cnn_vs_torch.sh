#!/usr/bin/env bash
# tessera vs PyTorch (CPU) on the seed's CNN over Fashion-MNIST, side by side: training images/s
# on the same model, data, batch size and thread count, and each side's test accuracy (so we see
# both models learn).
#
#   bench/cnn_vs_torch.sh [TESSERA_BIN] [--threads N] [--repeat N] [--config PATH] [--device D]
#
# --device D runs tessera's half on D (e.g. cuda; default: the config's, cpu); the PyTorch half
# always runs on the CPU (Debian's python3-torch has no CUDA), so the ratio is then GPU tessera
# over CPU PyTorch.
# gpu-check: skip needs PyTorch (CPU only), Fashion-MNIST and minutes; parity_conv_test covers CUDA
#
# TESSERA_BIN defaults to build/tessera. The tessera half runs
#   TESSERA_BIN train CONFIG --json --quiet --runs-dir TMP
# with CONFIG = bench/configs/fashion-mnist-cnn-bench.json (the model of
# pipelines/image/fashion-mnist-baseline.json, the first 12,800 training images, 1 epoch, CPU)
# and reads "train_images_per_sec" and "test.accuracy" from its last stdout line. The PyTorch half
# (bench/torch_cnn.py) trains the same model on the same images with the same batch size.
#
# Fairness: both get the same threads (default 2: OMP_NUM_THREADS for tessera,
# torch.set_num_threads for PyTorch); PyTorch's convolutions use its own oneDNN/native kernels,
# its GEMMs OpenBLAS (OpenMP build, OPENBLAS_CORETYPE=Cooperlake, for the reference process
# only). Its 1024^3 GEMM GFLOP/s is printed beside its result. The host is shared: use --repeat
# to keep the fastest of N runs per side, and read the load average printed with each run.
#
# Output: the last stdout line is
#   {"tessera_images_per_sec":..,"torch_images_per_sec":..,"ratio":..,"torch_gemm_gflops":..,
#    "tessera":{..},"torch":{..}}
# with ratio = tessera / torch. Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python=/usr/bin/python3
openblas_dir=/usr/lib/x86_64-linux-gnu/openblas-openmp
tessera_bin="$root/build/tessera"
config="$here/configs/fashion-mnist-cnn-bench.json"
threads=2
repeat=1
device_args=()

die() { echo "cnn_vs_torch: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    --config) config="$2"; shift ;;
    --device) device_args=(--device "$2"); shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) tessera_bin="$1" ;;
  esac
  shift
done
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer, got '$repeat'"
[[ -x "$tessera_bin" ]] || die "no tessera binary at $tessera_bin (build it, or pass its path)"
[[ -x "$python" ]] || die "$python not found (install python3-torch)"
[[ -d /usr/share/datasets/fashion-mnist ]] || die "no Fashion-MNIST (apt-get install dataset-fashion-mnist)"
images=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['data']['max_train_images'])" "$config")
batch=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['train']['batch_size'])" "$config")
epochs=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['train']['epochs'])" "$config")

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
best_of() {  # best_of FILE KEY: the JSON line with the highest KEY
  "$python" - "$1" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(json.dumps(max(rows, key=lambda r: r[sys.argv[2]])))
PY
}

for ((i = 1; i <= repeat; i++)); do
  echo "tessera run $i/$repeat (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  OMP_NUM_THREADS=$threads "$tessera_bin" train "$config" --json --quiet --runs-dir "$tmp/runs" "${device_args[@]}" \
    | tail -n 1 >> "$tmp/tessera.jsonl" || die "tessera failed"
  echo "pytorch run $i/$repeat (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  OPENBLAS_CORETYPE=Cooperlake LD_LIBRARY_PATH=$openblas_dir OMP_NUM_THREADS=$threads \
    "$python" "$here/torch_cnn.py" --threads "$threads" --images "$images" --epochs "$epochs" \
    --batch-size "$batch" | tail -n 1 >> "$tmp/torch.jsonl" || die "pytorch failed"
done
tessera_json=$(best_of "$tmp/tessera.jsonl" train_images_per_sec)
torch_json=$(best_of "$tmp/torch.jsonl" train_images_per_sec)
"$python" - "$tessera_json" "$torch_json" <<'PY'
import json, sys
t, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
tessera = {k: t[k] for k in ("train_images_per_sec", "train_seconds", "train_images", "epochs",
                             "batch_size", "parameters")}
tessera["test_accuracy"] = t["test"]["accuracy"]
print(f"tessera {tessera['train_images_per_sec']:.0f} images/s (test accuracy "
      f"{tessera['test_accuracy']:.4f}) vs PyTorch {p['train_images_per_sec']:.0f} images/s "
      f"(test accuracy {p['test_accuracy']:.4f}; its GEMM {p['torch_gemm_gflops']:.0f} GFLOP/s)",
      file=sys.stderr)
print(json.dumps({"tessera_images_per_sec": tessera["train_images_per_sec"],
                  "torch_images_per_sec": p["train_images_per_sec"],
                  "ratio": tessera["train_images_per_sec"] / p["train_images_per_sec"],
                  "torch_gemm_gflops": p["torch_gemm_gflops"], "tessera": tessera, "torch": p}))
PY
