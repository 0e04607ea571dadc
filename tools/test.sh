#!/usr/bin/env bash
# Installs what is needed, builds tessera and runs every test:
#   1. the main build (CUDA backend compiled and linked when nvcc is present; its GPU cases skip
#      without a GPU) and its ctest suite, which includes replaying every fuzz corpus and
#      regression input; then tools/gpu-check.sh --dry-run on that build (what the GPU check
#      would run, checked without a GPU);
#   2. the sanitizer build (AddressSanitizer + UndefinedBehaviorSanitizer) with the CUDA emulator
#      (cuda/emu): every custom CUDA kernel executed on the CPU against the host backend, and the
#      data layer — readers, configs, model files, checkpoints, the scheduler, the CLI, and the
#      fuzz corpora and regressions;
#   3. every fuzz target under libFuzzer for a bounded time (tools/fuzz.sh);
#   4. the Python package: `pip install .` into a venv it creates (build-py/venv; the engine's
#      build is kept in build-py/ between runs) and pytest over tests/python.
# Before building, tools/check_function_length.sh fails on a production function over 100 lines.
# CI (.ci/run) runs this inside a freshly debootstrapped Debian 12 root with TESSERA_REQUIRE_DATA=1,
# which turns every dataset- or tool-dependent skip into a failure (only GPU cases may skip).
# Environment: BUILD_DIR (default build), EMU_BUILD_DIR (default build-emu-asan),
# TESSERA_SKIP_EMULATION=1 / TESSERA_SKIP_FUZZ=1 / TESSERA_SKIP_PYTHON=1 to leave out step 2 / 3 /
# 4 (for quick local runs),
# TESSERA_FUZZ_SECONDS (default 15) per fuzz target: with the fuzz build, the step stays under 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
jobs=$(nproc)
started=$SECONDS
stage() { echo "== [$((SECONDS - started)) s] $*" >&2; }

stage "function length: no production function over 100 lines (tools/check_function_length.sh)"
bash tools/check_function_length.sh

build_dir=${BUILD_DIR:-build}
stage "main build ($build_dir)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTESSERA_WITH_CUDA=AUTO \
  -DTESSERA_BUILD_TESTS=ON -DTESSERA_BUILD_BENCH=ON >/dev/null
cmake --build "$build_dir" -j"$jobs"
stage "main tests"
(cd "$build_dir" && ctest --output-on-failure -j"$jobs" --timeout 600 --no-tests=error --output-junit ctest-junit.xml)
stage "skipped tests: only GPU cases may skip"
bash tests/check_skips.sh "$build_dir/ctest-junit.xml"
# The GPU check without a GPU, on the main build (already built, so it adds seconds): configure,
# build, the test and cuda:0 case lists, every GPU bench's arguments; summary.json in the folder.
stage "GPU check, dry run (tools/gpu-check.sh --dry-run)"
bash tools/gpu-check.sh --dry-run "$build_dir/gpu-check-dry" --build-dir "$build_dir"

if [[ "${TESSERA_SKIP_EMULATION:-0}" != 1 ]]; then
  emu_dir=${EMU_BUILD_DIR:-build-emu-asan}
  # The CUDA backend itself (cuda/*.cpp) on the emulated runtime and the vendor stand-ins, its
  # kernels against the host backend: every tests/emu_*_test.cpp and the parity suites.
  emu_targets=(parity_test embedding_parity_test embedding_shard_test lstm_test parity_conv_test
               cnn_frames_test dlrm_model_test)
  for f in tests/emu_*_test.cpp; do emu_targets+=("$(basename "$f" .cpp)"); done
  # The data layer: every reader of outside bytes, configs, model files and checkpoints, the
  # scheduler and the CLI (through the binary), plus the fuzz corpora and regressions.
  data_suites=(config_test path_names_test content_hash_test data_adult_test data_batcher_test
               data_libsvm_test data_movielens_clicks_test data_preprocess_test data_reader_test
               data_registry_test audio_wav_test image_data_test recommend_data_test
               textclass_tokenizer_test synthetic_criteo_test model_test model_file_test
               train_checkpoint_test scheduler_pipeline_test scheduler_parallel_test
               scheduler_resume_test divergence_test full_disk_test cli_test
               prepared_format_test prepared_stream_test batch_source_test arrow_stream_test)
  stage "sanitizer build: ASan+UBSan, CUDA emulation ($emu_dir)"
  cmake -S . -B "$emu_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_WITH_CUDA=OFF \
    -DTESSERA_CUDA_EMULATION=ON -DTESSERA_SANITIZE=ON -DTESSERA_BUILD_TESTS=ON \
    -DTESSERA_BUILD_BENCH=OFF >/dev/null
  cmake --build "$emu_dir" -j"$jobs" --target tessera "${emu_targets[@]}" "${data_suites[@]}" \
    fuzz_replay_all
  stage "emulated CUDA kernels vs the host backend (ASan+UBSan)"
  ctest --test-dir "$emu_dir" -R 'Emu|_cuda_emu|EmbeddingParity|DeviceBackendsMatchTheHost|^RemoteShards|^Loopback/' \
    -j"$jobs" --output-on-failure --timeout 900 --no-tests=error --output-junit ctest-emu-junit.xml
  bash tests/check_skips.sh "$emu_dir/ctest-emu-junit.xml"
  stage "data layer, scheduler, CLI and fuzz replays (ASan+UBSan)"
  labels=$(IFS='|'; echo "${data_suites[*]}")
  ctest --test-dir "$emu_dir" -L "^($labels)\$" -j"$jobs" --output-on-failure --timeout 900 --no-tests=error \
    --output-junit ctest-data-junit.xml
  ctest --test-dir "$emu_dir" -R '^Fuzz\.' -j"$jobs" --output-on-failure --timeout 900 --no-tests=error
  bash tests/check_skips.sh "$emu_dir/ctest-data-junit.xml"
  stage "the emulator's report: every custom kernel, every vendor entry point and its rules"
  "$emu_dir"/tests/emu_backend_test --gtest_filter='*EveryCustomKernel*'

  # The GPU cost model needs the kernels instrumented without the sanitizers (cuda/emu/cost_model.h):
  # its own build, only the model's test and the DLRM step benchmark at a small size.
  model_dir=${EMU_MODEL_BUILD_DIR:-build-emu-model}
  stage "GPU cost model: emulation build without sanitizers ($model_dir)"
  cmake -S . -B "$model_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_WITH_CUDA=OFF \
    -DTESSERA_CUDA_EMULATION=ON -DTESSERA_EMU_COST_MODEL=ON -DTESSERA_BUILD_TESTS=ON \
    -DTESSERA_BUILD_BENCH=ON >/dev/null
  cmake --build "$model_dir" -j"$jobs" --target emu_cost_model_test gpu_model_bench \
    mpi_nccl_data_parallel_test
  "$model_dir"/tests/emu_cost_model_test
  "$model_dir"/bench/gpu_model_bench --batches 16,32 --rows 4096
  # The NCCL call sites of data-parallel training (cuda/nccl_group.cpp) over the MPI-backed
  # stand-in at 2 and 3 emulated ranks (this build has MPI; the sanitizer build does not).
  stage "data-parallel NCCL path on emulated GPUs under mpirun ($model_dir)"
  ctest --test-dir "$model_dir" -R '^MpiNcclDataParallel\.' --output-on-failure --timeout 600 \
    --no-tests=error --output-junit ctest-nccl-junit.xml
  bash tests/check_skips.sh "$model_dir/ctest-nccl-junit.xml"
fi

if [[ "${TESSERA_SKIP_FUZZ:-0}" != 1 ]]; then
  stage "fuzz targets under libFuzzer, ${TESSERA_FUZZ_SECONDS:-15} s each (tools/fuzz.sh)"
  bash tools/fuzz.sh --seconds "${TESSERA_FUZZ_SECONDS:-15}" --jobs "$jobs"
fi
if [[ "${TESSERA_SKIP_PYTHON:-0}" != 1 ]]; then
  # pip builds the engine once more, host only (pyproject.toml), in build-py/<wheel tag>, reused
  # by the next run (build isolation moves nanobind, so CMake reconfigures; objects are kept).
  py_venv=${PY_VENV_DIR:-build-py/venv}
  stage "Python package: pip install . into $py_venv, pytest tests/python"
  python3 -m venv "$py_venv"
  py_cache=()
  command -v ccache >/dev/null && py_cache=(--config-settings=cmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache)
  "$py_venv/bin/pip" install -q "${py_cache[@]}" ".[test]"
  "$py_venv/bin/python" -m pytest tests/python -q -rs --junitxml="$py_venv/pytest-junit.xml"
  # A skipped Python test is a failure here, as a skipped C++ test without a GPU reason is.
  "$py_venv/bin/python" - "$py_venv/pytest-junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
skipped = sum(int(s.get("skipped", 0)) for s in ET.parse(sys.argv[1]).iter("testsuite"))
sys.exit(f"{skipped} Python test(s) skipped: none may" if skipped else 0)
PY
fi
stage "all tests passed"
