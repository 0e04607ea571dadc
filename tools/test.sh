#!/usr/bin/env bash
# Installs what is needed, builds tessera and runs every test:
#   1. the main build (CUDA backend compiled and linked when nvcc is present; its GPU cases skip
#      without a GPU) and its ctest suite;
#   2. the CUDA emulation build (cuda/emu), under AddressSanitizer + UndefinedBehaviorSanitizer,
#      which executes every custom CUDA kernel on the CPU against the host backend.
# Environment: BUILD_DIR (default build), EMU_BUILD_DIR (default build-emu-asan),
# TESSERA_SKIP_EMULATION=1 to skip step 2.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
jobs=$(nproc)

build_dir=${BUILD_DIR:-build}
echo "== main build ($build_dir)" >&2
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTESSERA_WITH_CUDA=AUTO \
  -DTESSERA_BUILD_TESTS=ON -DTESSERA_BUILD_BENCH=ON >/dev/null
cmake --build "$build_dir" -j"$jobs"
echo "== main tests" >&2
(cd "$build_dir" && ctest --output-on-failure -j"$jobs" --timeout 600)

if [[ "${TESSERA_SKIP_EMULATION:-0}" != 1 ]]; then
  emu_dir=${EMU_BUILD_DIR:-build-emu-asan}
  emu_targets="emu_runtime_test emu_negative_test emu_backend_test emu_kernels_test parity_test
               embedding_parity_test embedding_shard_test lstm_test parity_conv_test cnn_frames_test
               dlrm_model_test"
  echo "== CUDA emulation build under ASan+UBSan ($emu_dir)" >&2
  cmake -S . -B "$emu_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_WITH_CUDA=OFF \
    -DTESSERA_CUDA_EMULATION=ON -DTESSERA_SANITIZE=ON -DTESSERA_BUILD_TESTS=ON -DTESSERA_BUILD_BENCH=OFF >/dev/null
  cmake --build "$emu_dir" -j"$jobs" --target $emu_targets
  echo "== emulated CUDA kernels vs the host backend (ASan+UBSan)" >&2
  ctest --test-dir "$emu_dir" -R 'Emu|_cuda_emu|EmbeddingParity|DeviceBackendsMatchTheHost|^RemoteShards|^Loopback/' -j"$jobs" --output-on-failure --timeout 900
  echo "== which kernels ran emulated, which ops fell back to the host" >&2
  "$emu_dir"/tests/emu_backend_test --gtest_filter='*EveryCustomKernel*'
fi
