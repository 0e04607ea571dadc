#!/usr/bin/env bash
# Fails when a production function (host/, pipelines/, embeddings/, cuda/) is longer than 100
# lines, counted as lizard counts them (from the name to the closing brace, comments included).
# Long functions are where the task layer used to hide five copies of one loop; tools/test.sh runs
# this first, so CI keeps it so. Tests, benchmarks and tools are not held to it.
#   tools/check_function_length.sh [MAX_LINES]
# The measuring is tools/function_lengths.py (Python 3 only: a fresh machine behind a proxy may
# not reach PyPI for lizard). On this tree it finds every function lizard 1.24.3 finds over 15
# lines with the same length, and the CUDA kernels lizard does not parse;
# tests/tools/function_lengths_test.py checks it on a fixture.
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-100}
python3 tests/tools/function_lengths_test.py >&2
if report=$(python3 tools/function_lengths.py --max "$max" host pipelines embeddings cuda); then
  echo "check_function_length: no production function over $max lines" >&2
else
  echo "check_function_length: functions over $max lines (split them):" >&2
  echo "$report" >&2
  exit 1
fi
