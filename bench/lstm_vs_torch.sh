#!/usr/bin/env bash
# tessera's host LSTM vs PyTorch nn.LSTM of the same size, on the same CPU threads, side by side:
# training tokens/s (forward + backward of one [T, B, I] segment with initial state).
#
#   bench/lstm_vs_torch.sh [BENCH_BIN] [--threads N] [--t T] [--b B] [--input I] [--hidden H]
#                          [--layers L] [--min-time SEC] [--repeat N]
#
# BENCH_BIN defaults to build/bench/lstm_bench. Defaults: the shape the tinyshakespeare config
# trains (T 64, B 64, I 64, H 384, 2 layers), 2 threads (OMP_NUM_THREADS for tessera,
# torch.set_num_threads for PyTorch). PyTorch runs at its best configuration on this CPU
# (OpenBLAS OpenMP build, OPENBLAS_CORETYPE=Cooperlake, set for the reference process only) and
# prints its own 1024^3 GEMM GFLOP/s. With --repeat N each side runs N times, alternating, and
# its fastest run is reported (a shared machine is noisy).
#
# tessera runs twice: its default host LSTM (host_lstm_impl.h: oneDNN's primitive at this size)
# and the GEMM + fused-gate path (TESSERA_HOST_LSTM=gemm), so the choice between them is measured.
# Last stdout line: {"tessera_tokens_per_s":..,"torch_tokens_per_s":..,"ratio":..,
#                    "torch_gemm_gflops":..,"tessera_gemm_path_tokens_per_s":..,"gemm_path_ratio":..,
#                    "tessera":{..},"tessera_gemm_path":{..},"torch":{..}}, ratio = tessera/torch.
# Exits non-zero on any failure.
# gpu-check: skip needs PyTorch and measures the host LSTM; lstm_bench --device cuda is run instead
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python=/usr/bin/python3
openblas_dir=/usr/lib/x86_64-linux-gnu/openblas-openmp
bench_bin="$root/build/bench/lstm_bench"
threads=2; t=64; b=64; input=64; hidden=384; layers=2; min_time=3; repeat=1

die() { echo "lstm_vs_torch: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift ;;
    --t) t="$2"; shift ;;
    --b) b="$2"; shift ;;
    --input) input="$2"; shift ;;
    --hidden) hidden="$2"; shift ;;
    --layers) layers="$2"; shift ;;
    --min-time) min_time="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) bench_bin="$1" ;;
  esac
  shift
done
[[ -x "$bench_bin" ]] || die "no benchmark binary at $bench_bin (build the lstm_bench target)"
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer"

shape=(--t "$t" --b "$b" --input "$input" --hidden "$hidden" --layers "$layers" --min-time "$min_time")
best_tessera=""; best_gemm=""; best_torch=""
pick() {  # pick BEST NEW -> the JSON with more tokens_per_s
  "$python" -c 'import json,sys
a=sys.argv[1]; b=sys.argv[2]
if not a: print(b); sys.exit()
print(a if json.loads(a)["tokens_per_s"] >= json.loads(b)["tokens_per_s"] else b)' "$1" "$2"
}
for ((i = 1; i <= repeat; i++)); do
  echo "lstm_vs_torch: run $i/$repeat: tessera" >&2
  out="$(OMP_NUM_THREADS="$threads" "$bench_bin" --device cpu "${shape[@]}" | tail -n 1)" || die "lstm_bench failed"
  best_tessera="$(pick "$best_tessera" "$out")"
  echo "lstm_vs_torch: run $i/$repeat: tessera, GEMM path (TESSERA_HOST_LSTM=gemm)" >&2
  out="$(TESSERA_HOST_LSTM=gemm OMP_NUM_THREADS="$threads" "$bench_bin" --device cpu "${shape[@]}" | tail -n 1)" || die "lstm_bench (gemm) failed"
  best_gemm="$(pick "$best_gemm" "$out")"
  echo "lstm_vs_torch: run $i/$repeat: torch" >&2
  out="$(OPENBLAS_CORETYPE=Cooperlake LD_LIBRARY_PATH="$openblas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
         OMP_NUM_THREADS="$threads" "$python" "$here/torch_lstm.py" --threads "$threads" "${shape[@]}" | tail -n 1)" \
    || die "torch_lstm.py failed"
  best_torch="$(pick "$best_torch" "$out")"
done
"$python" -c 'import json,sys
te=json.loads(sys.argv[1]); to=json.loads(sys.argv[2]); tg=json.loads(sys.argv[3])
print(json.dumps({"tessera_tokens_per_s": te["tokens_per_s"], "torch_tokens_per_s": to["tokens_per_s"],
  "ratio": te["tokens_per_s"] / to["tokens_per_s"], "torch_gemm_gflops": to["torch_gemm_gflops"],
  "tessera_gemm_path_tokens_per_s": tg["tokens_per_s"],
  "gemm_path_ratio": tg["tokens_per_s"] / to["tokens_per_s"],
  "tessera": te, "tessera_gemm_path": tg, "torch": to}))' "$best_tessera" "$best_torch" "$best_gemm"
