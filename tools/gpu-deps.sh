#!/usr/bin/env bash
# The libraries tessera builds against that the GPU machine's image does not have, as Debian 12
# packages to carry there: oneDNN, RapidJSON, GoogleTest, libpng and zlib's headers (about 9 MB).
# The image has nvcc, CMake, the CUDA libraries and cuDNN (as the nvidia-cudnn-cu13 wheel) and
# nothing can be fetched on it (../.library/device/KINDS.md). tools/gpu-check.sh unpacks what it
# finds in .gpu-deps/ with dpkg -x into a private prefix (nothing is installed) and points CMake
# and the loader at it; without the folder it uses the machine's own libraries.
#
#   bash tools/gpu-deps.sh [DIR]     DIR: default .gpu-deps in the repository root (git-ignored)
#
# Then hand the device tool `carry: [".gpu-deps"]` (and "shared" for the datasets, README "On a
# GPU") with `bash tools/gpu-check.sh "$OUT"`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$root/.gpu-deps}"
packages=(libdnnl2 libdnnl-dev rapidjson-dev libgtest-dev libpng-dev libpng16-16 zlib1g-dev)
mkdir -p "$dir"
rm -f "$dir"/*.deb
# apt-get download writes into the current directory; -q: one line per package.
(cd "$dir" && apt-get download -q "${packages[@]}")
count=$(find "$dir" -maxdepth 1 -name '*.deb' | wc -l)
if [[ "$count" -ne "${#packages[@]}" ]]; then
  echo "gpu-deps: expected ${#packages[@]} packages in $dir, found $count" >&2
  exit 1
fi
echo "gpu-deps: $count packages, $(du -sh "$dir" | cut -f1), in $dir"
