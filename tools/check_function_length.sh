#!/usr/bin/env bash
# Fails when a production function (host/, pipelines/, embeddings/, cuda/) is longer than 100
# lines, as lizard measures it (from the signature to the closing brace, comments included).
# Long functions are where the task layer used to hide five copies of one loop; tools/test.sh runs
# this first, so CI keeps it so. Tests, benchmarks and tools are not held to it.
#   tools/check_function_length.sh [MAX_LINES]
# lizard (PyPI) is installed, pinned, into a virtual environment under ~/.cache the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-100}
venv=${TESSERA_TOOLS_VENV:-$HOME/.cache/tessera/tools-venv}
if ! "$venv/bin/lizard" --version >/dev/null 2>&1; then
  echo "check_function_length: installing lizard 1.24.3 into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check lizard==1.24.3
fi
# -C 10000: only the length is checked here, not the cyclomatic complexity.
if report=$("$venv/bin/lizard" --length "$max" -C 10000 --warnings_only host pipelines embeddings cuda); then
  echo "check_function_length: no production function over $max lines" >&2
else
  echo "check_function_length: functions over $max lines (split them):" >&2
  echo "$report" >&2
  exit 1
fi
