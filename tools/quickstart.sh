#!/usr/bin/env bash
# The main job, end to end on a default that needs no download: installs dependencies, builds,
# then runs the behaviour-prediction pipeline (pipelines/behaviour/pipeline.json: prep -> train ->
# evaluate -> batch-score) through the host scheduler. The prep stage finds UCI Adult under
# $TESSERA_DATA, ../shared/datasets or ~/.cache/tessera; where it is nowhere to be found it writes
# tessera's built-in synthetic dataset instead of downloading. Ends by listing the runs and
# printing where the HTML report is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${BUILD_DIR:-build} bash tools/build.sh -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCH=OFF
bin=${BUILD_DIR:-build}/tessera

echo "== tessera run pipelines/behaviour/pipeline.json"
"$bin" run pipelines/behaviour/pipeline.json --runs-dir runs
echo "== tessera runs"
"$bin" runs --runs-dir runs
