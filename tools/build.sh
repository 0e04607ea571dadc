#!/usr/bin/env bash
# Configures and builds tessera into ${BUILD_DIR:-build}. Extra arguments go to cmake configure.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
