#!/usr/bin/env bash
# Installs what tessera needs to build and test on Debian 12 (run as root, or with sudo).
# Idempotent: skips apt-get entirely when every package is already installed.
# The CUDA toolkit is not installed here: with nvcc at /usr/local/cuda the CUDA backend is built
# (TESSERA_WITH_CUDA=AUTO), without it the host backend alone.
set -euo pipefail
packages=(build-essential cmake git pkg-config rapidjson-dev libdnnl-dev libgtest-dev googletest
          zlib1g-dev libpng-dev libfaiss-dev python3-numpy dataset-fashion-mnist curl ca-certificates unzip time
          # Open MPI: embedding shards in other processes (embeddings/mpi/, tests/mpi/).
          libopenmpi-dev openmpi-bin
          # The fuzz targets (tests/fuzz/, tools/fuzz.sh): clang's libFuzzer and its OpenMP runtime.
          clang-14 libfuzzer-14-dev libclang-rt-14-dev libomp-14-dev
          # The dataset registry's tests pack a zip archive; the export and audio tests check
          # against numpy.
          zip
          # The config test validates every shipped config against `tessera config TASK --schema`
          # with a JSON Schema validator we did not write.
          python3-jsonschema
          # Headless Chromium renders `tessera report` pages in the report test (a screenshot that
          # must not be blank); fonts so that the page's text renders too.
          chromium fonts-dejavu-core
          # The Python package (pyproject.toml): a venv with pip, and Python's headers for the
          # extension module; its build tools (scikit-build-core, nanobind) come from PyPI.
          python3-venv python3-dev)
if [[ "${TESSERA_SETUP_BENCH:-0}" == 1 ]]; then
  # Reference framework for the side-by-side benchmarks only.
  packages+=(python3-torch libopenblas0-openmp)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: dependencies present" >&2
