#!/usr/bin/env bash
# The main job, end to end on a default that needs no download: installs dependencies, builds,
# then trains the behaviour-prediction MLP on UCI Adult (found under $TESSERA_DATA or
# ../shared/datasets or ~/.cache/tessera), evaluates the saved model on the test file and
# batch-scores it. Where UCI Adult is not present it uses tessera's built-in synthetic dataset
# instead of downloading.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${BUILD_DIR:-build} bash tools/build.sh -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCH=OFF
bin=${BUILD_DIR:-build}/tessera

adult=""
for d in "${TESSERA_DATA:-/nonexistent}/uci-adult" ../shared/datasets/uci-adult "$HOME/.cache/tessera/uci-adult"; do
  if [[ -f "$d/adult.data" && -f "$d/adult.test" ]]; then adult=$d; break; fi
done

if [[ -n "$adult" ]]; then
  echo "== training on UCI Adult ($adult)"
  config=pipelines/behaviour/uci-adult.json
  test_file=$adult/adult.test
  skip=1
else
  echo "== UCI Adult not found locally: using the built-in synthetic dataset"
  "$bin" make-synthetic runs/synthetic-data
  config=runs/synthetic-data/config.json
  test_file=runs/synthetic-data/test.csv
  skip=1  # the header line
fi

result=$("$bin" train "$config" --json | tail -n 1)
echo "$result"
model=$(printf '%s' "$result" | sed -n 's/.*"model":"\([^"]*\)".*/\1/p')
run_dir=$(dirname "$model")
echo "== evaluate $model on $test_file"
"$bin" evaluate "$model" "$test_file" --skip-lines "$skip"
echo "== predict: batch-score $test_file"
"$bin" predict "$model" "$test_file" "$run_dir/scores.csv" --skip-lines "$skip"
echo "== run directory: $run_dir (config.json, metrics.jsonl, model.tsm, result.json, scores.csv)"
