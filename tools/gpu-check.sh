#!/usr/bin/env bash
# The GPU check: build tessera with the CUDA backend, run every test and the GPU benchmarks on a
# real GPU, and keep the evidence. It fails only for a defect of tessera's on that GPU: nothing is
# judged by a test's name, every bench gets the arguments it needs, and no step can overrun.
#
#   tools/gpu-check.sh OUT [--dry-run] [--build-dir DIR] [--budget SEC] [--no-bench]
#
#   OUT             created if missing; receives the files below (at most 8: what the device
#                   tool brings back from $OUT)
#   --dry-run       everything that needs no GPU: configure, build, list the tests (ctest -N) and
#                   the cuda:0 cases, check every bench binary exists and accepts its arguments;
#                   runs nothing on a GPU. tools/test.sh (CI) runs it on the main build.
#   --build-dir DIR default build-gpu (relative to the repository root)
#   --budget SEC    the whole run's time limit, default 470 (8 minutes less a margin): every step
#                   runs under `timeout` with min(its own cap, the time left); a step with no
#                   time left is recorded as failed (rc 124), never started
#   --no-bench      tests only
#
# Steps (real run; the dry run's differences in brackets):
#   preflight     cmake, ctest, python3, a C++ compiler, nvcc [nvcc optional: without it the
#                 CUDA backend is not compiled, which the summary says]; nvidia-smi sees a GPU
#                 [not asked] (exit 2 when it does not)
#   configure     TESSERA_WITH_CUDA=ON [AUTO without nvcc], Release, tests and benches, archs from
#                 TESSERA_CUDA_ARCHITECTURES (default 90)
#   build         every target, all cores
#   ctest         the whole suite, TESSERA_CUDA_SYNC=1 (a kernel fault is reported at its launch),
#                 JUnit into OUT [ctest -N: the list]
#   skips         tests/check_skips.sh --on-gpu: a case that skips because it needs a CUDA device
#                 fails here, one that skips because a GPU is usable (a check of the no-GPU path)
#                 or for another build does not; the skip *message* decides
#                 (tests/support/gpu_skips.h) [not run]
#   cuda0:BIN     the parity suites again with TESSERA_PARITY_BACKENDS=cuda:0, the backend named
#                 explicitly (tests/support/backends.h: then it must be created, and no case may
#                 skip) [--gtest_list_tests: the cases exist]
#   nccl          tests/mpi/mpi_nccl_data_parallel_test under mpirun, -np = the GPUs nvidia-smi
#                 lists (1 on a single GPU) [--gtest_list_tests: the cases exist]; listed as not
#                 run when the build has no MPI or no NCCL (no such binary)
#   bench:NAME    the GPU benchmarks of the table below, each with its arguments [the binary
#                 exists and accepts them: `ARGS --check-args` where the bench has that mode, else
#                 every option in ARGS is one its source parses]; bench/*.sh scripts only when
#                 their header has `# gpu-check-args: ARGS` ({tessera}, {build} substituted), and
#                 `# gpu-check: skip REASON` says why one is not run (all are today: they compare
#                 against PyTorch on the CPU or measure the host)
#
# OUT gets: summary.json, gpu-check.log (the progress lines), build.log (configure + build),
# tests.log (ctest, the skip check, the cuda:0 runs), ctest-junit.xml, bench.log (each bench's
# command, stdout and stderr), nvidia-smi.txt. summary.json:
#   {"ok":bool,"dry_run":bool,"gpu":"..","cuda_backend":bool,"build_dir":"..","budget_s":N,
#    "seconds":N,"steps":[{"name","rc","seconds","cap_s","log","note"}],"ctest":{..},
#    "skips":{..check_skips.sh --json..},"benches":[{"name","command","rc","seconds",
#    "arg_check","result":LAST_JSON_LINE}],"not_run":[{"name","reason"}]}
# Exit status: 0 when every step passed, 1 when one failed, 2 on a usage error or no GPU.
#
# Time on 16 cores + one H100, the budget's sizing (estimated: no GPU has been lent yet):
#   configure  ~20 s
#   build      ~120 s: CI's host-only build of every target takes 310-470 s on 2 cores (~900
#              core-seconds; tools/test.sh's "main build" stage), /16 = ~60 s, plus the nvcc
#              objects (measured here: device_segments_cub.cu 15 core-s, each other .cu ~3, ~60
#              core-s in all), plus links and test discovery along the library chain
#   ctest      ~60 s: 1,080 tests take 113 s on 2 cores, plus a CUDA context per GPU case
#   cuda:0     ~30 s: the parity suites once more on the named device
#   benches    ~100 s: their arguments keep each under a minute (pipeline_overlap ~6 s a rep)
# About 5.5 minutes of the 7:50 budget; the caps (configure 120, build 300, ctest 240, each
# cuda:0 suite 60, each bench 60-90) bound each step, the budget the whole.
set -uo pipefail

die() { echo "gpu-check: $*" >&2; exit 2; }
usage() { die "usage: tools/gpu-check.sh OUT [--dry-run] [--build-dir DIR] [--budget SEC] [--no-bench]"; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_arg=""
dry_run=0
build="build-gpu"
budget=470
run_bench=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1; shift ;;
    --build-dir) [[ $# -ge 2 ]] || usage; build="$2"; shift 2 ;;
    --budget) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage; budget="$2"; shift 2 ;;
    --no-bench) run_bench=0; shift ;;
    -*) echo "gpu-check: unknown option '$1'" >&2; usage ;;
    *) [[ -z "$out_arg" ]] || usage; out_arg="$1"; shift ;;
  esac
done
[[ -n "$out_arg" ]] || usage
mkdir -p "$out_arg" || die "cannot create $out_arg"
out="$(cd "$out_arg" && pwd)"
[[ "$build" = /* ]] || build="$root/$build"
jobs="$(nproc 2>/dev/null || echo 4)"
work="$(mktemp -d /tmp/gpu-check.XXXXXX)" || die "mktemp failed"
rm -f "$out"/{summary.json,gpu-check.log,build.log,tests.log,ctest-junit.xml,bench.log,nvidia-smi.txt}
exec 2> >(tee -a "$out/gpu-check.log" >&2)
tee_pid=$!
# At exit: let tee write its last lines into OUT before the caller collects it.
trap 'exec 2>&-; wait "$tee_pid" 2>/dev/null; rm -rf "$work"' EXIT
deadline=$((SECONDS + budget))
[[ -d /usr/local/cuda/bin ]] && export PATH="$PATH:/usr/local/cuda/bin"
# Datasets that travelled with the tree (a shared/ folder in the checkout; the device tool copies
# it), for the cases that read one. The others skip with a dataset reason, which is listed.
if [[ -z "${TESSERA_DATA:-}" && -d "$root/shared/datasets" ]]; then
  export TESSERA_DATA="$root/shared/datasets"
fi
export TESSERA_SOURCE_DIR="$root"
# A dataset missing on the GPU machine is listed, not a failure there (CI fails on it).
unset TESSERA_REQUIRE_DATA

# ---- the GPU work: tests on cuda:0 and benchmarks ------------------------------------------------
# cuda:0 runs: "BINARY|GTEST_FILTER|CAP_S".
cuda0_suites=(
  "parity_test|*cuda_0*|60"
  "parity_conv_test|*cuda_0*|60"
  "embedding_parity_test|*cuda_0*|60"
  "gradcheck_test|*cuda_0*|60"
  "lstm_test|Lstm/LstmCase.*|60"
)
# GPU benchmarks: "BINARY|ARGS|CAP_S" (ARGS: words, no quoting).
gpu_benches=(
  "batch_staging_bench|--device cuda|60"
  "embedding_bag_bench|--device cuda --steps 30|90"
  "lstm_bench|--device cuda --min-time 2|60"
  "log_mel_bench|--device cuda --n 2000|60"
  "pipeline_overlap_bench|--reps 3|90"
)
# ctest cases left out on the GPU machine (a regular expression) and why: no GPU work in them,
# and they need a tool the device image lacks (CI runs them).
ctest_exclude='^ConfigSchema\.'
ctest_exclude_why="validates the shipped configs with python3-jsonschema, which the device image does not list"
# Bench binaries that have no GPU variant: "BINARY|REASON".
cpu_benches=(
  "gemm_bench|the host backend's sgemm against the CPU's FMA peak"
  "gpu_model_bench|the CUDA emulator's cost model of a DLRM step: runs on the CPU, predicts an H100"
  "ingest_bench|tessera prep's phases on the host (text parsing and encoding): no GPU work"
  "sparse_input_bench|libSVM/libFM against Criteo text: peak RSS and AUC of the host reader and model"
)

source "$root/tools/gpu-check-lib.sh"

# ---- 1. preflight --------------------------------------------------------------------------------
gpu_desc=""
cuda_compiler=1
preflight
if [[ $dry_run -eq 0 ]]; then gpu_visible || { write_summary; exit 2; }; fi

# ---- 2. configure and build ----------------------------------------------------------------------
prepare_libraries || { write_summary; exit 1; }
configure_and_build || { write_summary; exit 1; }

# ---- 3. tests --------------------------------------------------------------------------------------
not_run "ctest:$ctest_exclude" "$ctest_exclude_why"
ctest_cmd=(env TESSERA_CUDA_SYNC=1 ctest --test-dir "$build" -j"$jobs" --timeout 120
           --output-on-failure --no-tests=error -E "$ctest_exclude" --output-junit "$out/ctest-junit.xml")
if [[ $dry_run -eq 1 ]]; then
  step_command=$(printf '%q ' "${ctest_cmd[@]}")
  run_step ctest-list "$out/tests.log" 60 check_listed ctest --test-dir "$build" -N -E "$ctest_exclude"
  not_run "skips" "dry run: no tests ran, so none skipped"
else
  run_step ctest "$out/tests.log" 240 "" "${ctest_cmd[@]}"
  if [[ -s "$out/ctest-junit.xml" ]]; then
    run_step skips "$out/tests.log" 30 "" bash "$root/tests/check_skips.sh" --on-gpu \
      --json "$work/skips.json" "$out/ctest-junit.xml"
  else
    record_step skips 1 0 0 "$out/tests.log" "ctest wrote no JUnit file to judge"
  fi
fi
for entry in "${cuda0_suites[@]}"; do
  IFS='|' read -r bin filter cap <<<"$entry"
  cuda0_cmd=(env TESSERA_PARITY_BACKENDS=cuda:0 TESSERA_CUDA_SYNC=1 "$build/tests/$bin"
             "--gtest_filter=$filter")
  if [[ $dry_run -eq 1 ]]; then
    step_command=$(printf '%q ' "${cuda0_cmd[@]}")
    run_step "cuda0:$bin" "$out/tests.log" "$cap" check_listed "${cuda0_cmd[@]}" --gtest_list_tests
  else
    run_step "cuda0:$bin" "$out/tests.log" "$cap" check_ran_none_skipped "${cuda0_cmd[@]}"
  fi
done

# The GPU path of data-parallel training (cuda/nccl_group.h): mpi_nccl_data_parallel_test with one
# rank per GPU, or one rank on a single GPU (a communicator of one is still a real NCCL call).
nccl_step 120

# ---- 4. benchmarks ---------------------------------------------------------------------------------
if [[ $run_bench -eq 1 ]]; then
  for entry in "${gpu_benches[@]}"; do
    IFS='|' read -r bin args cap <<<"$entry"
    read -r -a argv <<<"$args"
    bench_step "$bin" "$cap" "$build/bench/$bin" "${argv[@]}"
  done
  other_benches
  bench_scripts
else
  not_run "benchmarks" "--no-bench"
fi

write_summary
if [[ $failed -ne 0 ]]; then
  echo "gpu-check: FAILED (summary: $out/summary.json)" >&2
  exit 1
fi
echo "gpu-check: all passed$([[ $dry_run -eq 1 ]] && echo " (dry run)") (summary: $out/summary.json)" >&2
