#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.cpp) with clang-14 under ASan + UBSan and runs
# each for a bounded time. See tests/fuzz/README.md.
#
#   tools/fuzz.sh [--seconds N] [--jobs J] [--merge] [--no-build] [TARGET...]
#
#   --seconds N  run each target N seconds (default 20; `--seconds 600` is the long run)
#   --jobs J     run J targets at a time (default 1; CI uses the machine's cores)
#   --merge      afterwards, add the inputs that found new coverage to tests/fuzz/corpus/<target>/
#                (libFuzzer -merge=1: only inputs that add coverage; review before committing)
#   --no-build   use the targets already in the build folder
#   TARGET       a target's name (csv for fuzz_csv); default: every tests/fuzz/fuzz_*.cpp
# Environment: FUZZ_BUILD_DIR (default build-fuzz).
#
# Each target runs on a scratch corpus (build-fuzz/fuzz-runs/<target>/corpus/, new inputs go
# there) seeded read-only from tests/fuzz/corpus/<target>/ and tests/fuzz/regressions/<target>/,
# with -timeout=10 (a hang is a finding), -rss_limit_mb=2048, -malloc_limit_mb=1024 (one
# allocation above 1 GiB is a finding) and leak detection. Prints one JSON line per target
# {"target", "seconds", "executions", "result"} and a summary line. Exits 1 when any target found
# something (a crash, leak, timeout, OOM, sanitizer report or broken invariant); the input that
# did it is kept in build-fuzz/fuzz-findings/<target>/ and named on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=20
jobs=1
merge=0
build=1
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --merge) merge=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ! [[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 && "$jobs" =~ ^[0-9]+$ && "$jobs" -ge 1 ]]; then
  echo "fuzz.sh: --seconds and --jobs take positive integers" >&2
  exit 2
fi
if [[ ${#targets[@]} -eq 0 ]]; then
  for src in tests/fuzz/fuzz_*.cpp; do
    name=$(basename "$src" .cpp)
    targets+=("${name#fuzz_}")
  done
fi
for t in "${targets[@]}"; do
  if [[ ! -f "tests/fuzz/fuzz_$t.cpp" ]]; then
    echo "fuzz.sh: no target '$t' (no tests/fuzz/fuzz_$t.cpp)" >&2
    exit 2
  fi
done

build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
build_dir=$(mkdir -p "$build_dir" && cd "$build_dir" && pwd)
start=$(date +%s)
if [[ $build -eq 1 ]]; then
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  # -O1 -g without NDEBUG: assertions (RapidJSON's among them) stay on while fuzzing.
  echo "== configuring $build_dir (clang-14, libFuzzer + ASan + UBSan)" >&2
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$build_dir" -DTESSERA_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
    -DTESSERA_WITH_CUDA=OFF -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCH=OFF \
    "${launcher[@]}" >/dev/null
  echo "== building ${targets[*]}" >&2
  cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
fi
build_s=$(($(date +%s) - start))

# UBSan settings are built into the targets (tests/fuzz/sanitizer_options.cpp).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}

# Runs one target; writes its JSON line to $work/result.json.
run_one() {
  local t=$1
  local exe=$build_dir/fuzz/fuzz_$t
  local work=$build_dir/fuzz-runs/$t
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  local seeds=("$root/tests/fuzz/corpus/$t")
  [[ -d "$root/tests/fuzz/regressions/$t" ]] && seeds+=("$root/tests/fuzz/regressions/$t")
  local rc=0
  (cd "$work" && "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -detect_leaks=1 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/" "$work/corpus" "${seeds[@]}") >"$work/log" 2>&1 || rc=$?
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | tail -1 | grep -o '[0-9]*$' || true)
  if [[ -z "$execs" ]]; then  # no final stats (killed): the last progress line
    execs=$(grep -o '^#[0-9]*' "$work/log" | tail -1 | tr -d '#' || true)
  fi
  local result=ok
  if [[ $rc -ne 0 ]]; then
    if grep -q 'ERROR: LeakSanitizer' "$work/log"; then result=leak
    elif grep -q 'ERROR: libFuzzer: timeout' "$work/log"; then result=timeout
    elif grep -q 'ERROR: libFuzzer: out-of-memory' "$work/log"; then result=oom
    elif grep -q 'runtime error:' "$work/log"; then result=ubsan
    elif grep -q 'ERROR: AddressSanitizer' "$work/log"; then result=asan
    elif grep -q '\*\*\* fuzz finding' "$work/log"; then result=finding
    elif grep -q 'ERROR: libFuzzer: deadly signal' "$work/log"; then result=crash
    else result="error (exit $rc)"
    fi
    local keep=$build_dir/fuzz-findings/$t
    mkdir -p "$keep"
    cp "$work"/artifacts/* "$keep"/ 2>/dev/null || true
    cp "$work/log" "$keep/log-$(date +%Y%m%dT%H%M%S)"
    echo "fuzz.sh: $t: $result; input and log kept in $keep (log: $work/log)" >&2
  fi
  printf '{"target": "%s", "seconds": %s, "executions": %s, "result": "%s"}\n' \
    "$t" "$seconds" "${execs:-0}" "$result" >"$work/result.json"
}

echo "== running ${#targets[@]} target(s), ${seconds} s each, $jobs at a time" >&2
running=0
for t in "${targets[@]}"; do
  if [[ $running -ge $jobs ]]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

total=0
failed=()
for t in "${targets[@]}"; do
  line=$(cat "$build_dir/fuzz-runs/$t/result.json")
  echo "$line"
  n=$(echo "$line" | grep -o '"executions": [0-9]*' | grep -o '[0-9]*$')
  total=$((total + n))
  echo "$line" | grep -q '"result": "ok"' || failed+=("$t")
done

if [[ $merge -eq 1 ]]; then
  for t in "${targets[@]}"; do
    before=$(find "tests/fuzz/corpus/$t" -type f | wc -l)
    "$build_dir/fuzz/fuzz_$t" -merge=1 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      "tests/fuzz/corpus/$t" "$build_dir/fuzz-runs/$t/corpus" >"$build_dir/fuzz-runs/$t/merge.log" 2>&1 ||
      echo "fuzz.sh: merging $t failed: $build_dir/fuzz-runs/$t/merge.log" >&2
    after=$(find "tests/fuzz/corpus/$t" -type f | wc -l)
    echo "fuzz.sh: $t: merged $((after - before)) new input(s) into tests/fuzz/corpus/$t" >&2
  done
fi

failed_json=""
for t in "${failed[@]+"${failed[@]}"}"; do failed_json+="${failed_json:+, }\"$t\""; done
printf '{"summary": "fuzz", "targets": %d, "seconds_each": %s, "executions": %d, "failed": [%s], "build_seconds": %d, "wall_seconds": %d}\n' \
  "${#targets[@]}" "$seconds" "$total" "$failed_json" "$build_s" "$(($(date +%s) - start))"
[[ ${#failed[@]} -eq 0 ]]
