# shellcheck shell=bash
# The steps of tools/gpu-check.sh (sourced by it; not a program of its own). They read its
# variables: root, out, work, build, jobs, dry_run, deadline, budget, cuda_compiler, gpu_desc.
# Each step is recorded in $work/steps.jsonl, each bench in $work/benches.jsonl, each thing not
# run in $work/not_run.jsonl; write_summary turns them into OUT/summary.json.

failed=0
step_command=""

json_str() {  # a JSON string literal of $1 (control characters become spaces)
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//[[:cntrl:]]/ }
  printf '"%s"' "$s"
}

# record_step NAME RC SECONDS CAP LOG NOTE; $step_command (then cleared): the command line.
record_step() {
  printf '{"name":%s,"rc":%s,"seconds":%s,"cap_s":%s,"log":%s,"note":%s,"command":%s}\n' \
    "$(json_str "$1")" "$2" "$3" "$4" "$(json_str "${5#"$out"/}")" "$(json_str "$6")" \
    "$(json_str "${step_command% }")" >>"$work/steps.jsonl"
  step_command=""
  if [[ "$2" -ne 0 ]]; then
    failed=1
    echo "gpu-check: FAILED $1 (rc $2${6:+: $6}; see ${5#"$out"/})" >&2
  else
    echo "gpu-check: ok     $1 ($3 s${6:+; $6})" >&2
  fi
}

# not_run NAME REASON: listed in the summary, neither passed nor failed.
not_run() {
  printf '{"name":%s,"reason":%s}\n' "$(json_str "$1")" "$(json_str "$2")" >>"$work/not_run.jsonl"
  echo "gpu-check: not run $1: $2" >&2
}

# The seconds a step may take: its cap, or less when the budget is nearly spent.
step_limit() {
  local left=$((deadline - SECONDS))
  ((left < $1)) && echo "$left" || echo "$1"
}

elapsed_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# run_step NAME LOG CAP VERIFY CMD...: CMD under timeout (stdout and stderr appended to LOG, and
# kept in $work/step.out for VERIFY, a function given that file that prints a note and fails
# when the output says the step did not do its job; "" for none). The summary shows CMD, or
# $step_command when the caller set it (a dry run's listing stands for the command it lists).
run_step() {
  local name="$1" log="$2" cap="$3" verify="$4" limit start rc note=""
  shift 4
  [[ -n "${step_command:-}" ]] || step_command=$(printf '%q ' "$@")
  limit=$(step_limit "$cap")
  if ((limit < 5)); then
    record_step "$name" 124 0 "$cap" "$log" "not started: the ${budget} s budget is spent"
    return 124
  fi
  printf '\n==== %s (limit %s s): %s\n' "$name" "$limit" "$(printf '%q ' "$@")" >>"$log"
  start=$(date +%s.%N)
  timeout -k 10 "$limit" "$@" >"$work/step.out" 2>&1
  rc=$?
  cat "$work/step.out" >>"$log"
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    note="stopped at its limit of $limit s"
  elif [[ $rc -eq 0 && -n "$verify" ]]; then
    note=$("$verify" "$work/step.out") || rc=1
  fi
  record_step "$name" "$rc" "$(elapsed_since "$start")" "$cap" "$log" "$note"
  return "$rc"
}

# Verifiers. check_listed: `ctest -N` or `--gtest_list_tests` listed at least one test.
check_listed() {
  local n
  n=$(sed -n 's/^Total Tests: \([0-9]*\)$/\1/p' "$1" | tail -1)
  [[ -n "$n" ]] || n=$(grep -c '^  [^ ]' "$1")
  echo "$n listed"
  [[ "$n" -gt 0 ]]
}
# check_ran_none_skipped: GoogleTest ran at least one case and skipped none.
check_ran_none_skipped() {
  local ran skipped
  ran=$(grep -c '^\[       OK \]' "$1")
  skipped=$(grep -E '^\[  SKIPPED \] .* \([0-9]+ ms\)$' "$1" | sed 's/^\[  SKIPPED \] //; s/ (.*//')
  if [[ -n "$skipped" ]]; then
    echo "skipped on the GPU: $(tr '\n' ' ' <<<"$skipped")"
    return 1
  fi
  if [[ "$ran" -eq 0 ]]; then
    echo "no case matched the filter"
    return 1
  fi
  echo "$ran passed"
}

preflight() {
  local missing=() t note=""
  for t in cmake ctest python3 timeout; do command -v "$t" >/dev/null || missing+=("$t"); done
  command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=("c++")
  if ! command -v nvcc >/dev/null; then
    cuda_compiler=0
    if [[ $dry_run -eq 1 ]]; then
      note="no nvcc: the CUDA backend is not compiled here; the dry run checks the rest"
    else
      missing+=("nvcc")
    fi
  fi
  if [[ ${#missing[@]} -gt 0 ]]; then
    record_step preflight 1 0 0 "$out/gpu-check.log" "not found: ${missing[*]}"
    write_summary
    exit 1
  fi
  record_step preflight 0 0 0 "$out/gpu-check.log" "$note"
}

gpu_visible() {
  local n
  if ! command -v nvidia-smi >/dev/null; then
    echo "nvidia-smi not found in PATH" >"$out/nvidia-smi.txt"
  elif nvidia-smi >"$out/nvidia-smi.txt" 2>&1; then
    n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
    nvidia-smi -q >>"$out/nvidia-smi.txt" 2>&1
    gpu_desc=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
      2>/dev/null | head -1)
    if [[ "$n" -ge 1 ]]; then
      record_step gpu-visible 0 0 0 "$out/nvidia-smi.txt" "$n GPU(s): $gpu_desc"
      return 0
    fi
  fi
  record_step gpu-visible 2 0 0 "$out/nvidia-smi.txt" "no GPU visible: this check needs one"
  echo "gpu-check: NO GPU VISIBLE (see $out/nvidia-smi.txt); --dry-run checks what needs none" >&2
  return 1
}

# nccl_step CAP: the NCCL data-parallel test (cuda/nccl_group.h) at one MPI rank per GPU (1 with
# one GPU); in a dry run its cases are listed (the binary sets up no device for a listing).
nccl_step() {
  local bin="$build/tests/mpi_nccl_data_parallel_test" gpus=1 cmd
  if [[ ! -x "$bin" ]]; then
    not_run "nccl" "no $(basename "$bin") in this build: it needs MPI and NCCL (tessera_nccl)"
    return 0
  fi
  if [[ $dry_run -eq 1 ]]; then
    run_step nccl "$out/tests.log" "$1" check_listed "$bin" --gtest_list_tests
    return
  fi
  if ! command -v mpirun >/dev/null; then
    record_step nccl 1 0 "$1" "$out/tests.log" "the test was built with MPI but mpirun is not in PATH"
    return 1
  fi
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
  ((gpus >= 1)) || gpus=1
  cmd=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 TESSERA_CUDA_SYNC=1
       mpirun -np "$gpus" "$bin")
  run_step nccl "$out/tests.log" "$1" check_ran_none_skipped "${cmd[@]}"
}

# The libraries the device image lacks, carried as Debian packages in $root/.gpu-deps
# (tools/gpu-deps.sh): unpacked with dpkg -x into a private prefix that CMake and the loader search
# first. cuDNN, which the image has only as the nvidia-cudnn-cu13 wheel, is taken from there when
# no cudnn.h is installed. Sets cudnn_args (extra configure arguments).
cudnn_args=()
prepare_libraries() {
  local deps="$root/.gpu-deps" prefix="$work/deps" f notes=() n=0 wheel
  if compgen -G "$deps/*.deb" >/dev/null; then
    mkdir -p "$prefix"
    for f in "$deps"/*.deb; do
      if ! dpkg -x "$f" "$prefix" 2>>"$out/gpu-check.log"; then
        record_step libraries 1 0 0 "$out/gpu-check.log" "cannot unpack ${f#"$root"/}"
        return 1
      fi
      n=$((n + 1))
    done
    export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    notes+=("$n packages from .gpu-deps unpacked into a private prefix")
  fi
  if [[ ! -f /usr/local/cuda/include/cudnn.h && ! -f /usr/include/cudnn.h &&
        ! -f /usr/include/x86_64-linux-gnu/cudnn.h ]]; then
    wheel=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null || true)
    if [[ -n "$wheel" && -f "$wheel/include/cudnn.h" && -f "$wheel/lib/libcudnn.so.9" ]]; then
      # The wheel has only the versioned name; CMake's find_library looks for libcudnn.so.
      mkdir -p "$work/cudnn"
      ln -sf "$wheel/lib/libcudnn.so.9" "$work/cudnn/libcudnn.so"
      cudnn_args=(-DTESSERA_CUDNN_LIB="$work/cudnn/libcudnn.so"
                  -DTESSERA_CUDNN_INCLUDE="$wheel/include")
      export LD_LIBRARY_PATH="$wheel/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      notes+=("cuDNN from the wheel at $wheel")
    fi
  fi
  record_step libraries 0 0 0 "$out/gpu-check.log" "${notes[*]:-the libraries installed here}"
}

configure_and_build() {
  local with_cuda=ON
  [[ $cuda_compiler -eq 1 ]] || with_cuda=AUTO
  # A build directory configured from another checkout path cannot be reused by cmake.
  if [[ -f "$build/CMakeCache.txt" ]] &&
     ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$root" "$build/CMakeCache.txt"; then
    if [[ $dry_run -eq 1 ]]; then
      record_step configure 1 0 0 "$out/build.log" "$build was configured for another source tree"
      return 1
    fi
    echo "gpu-check: $build was configured for another source tree; starting it afresh" >&2
    rm -rf "$build"
  fi
  run_step configure "$out/build.log" 120 "" cmake -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release -DTESSERA_WITH_CUDA="$with_cuda" \
    -DTESSERA_CUDA_ARCHITECTURES="${TESSERA_CUDA_ARCHITECTURES:-90}" \
    -DTESSERA_BUILD_TESTS=ON -DTESSERA_BUILD_BENCH=ON "${cudnn_args[@]}" || return 1
  grep -q '^-- tessera: CUDA backend ON' "$work/step.out" || cuda_compiler=0
  if ! run_step build "$out/build.log" 300 "" cmake --build "$build" -j"$jobs"; then
    grep -E 'error|Error' "$out/build.log" | tail -n 20 >&2
    return 1
  fi
}

# The options a bench's source parses: every "--x" string literal in bench/NAME.cpp.
static_arg_check() {
  local src="$1" a
  shift
  for a in "$@"; do
    if [[ "$a" == --* ]] && ! grep -qF "\"$a\"" "$src"; then
      echo "option $a is not one ${src#"$root"/} parses"
      return 1
    fi
  done
  echo "every option is one ${src#"$root"/} parses (it has no --check-args mode)"
}

# bench_step NAME CAP EXE ARGS...: the bench (real run), or its argument check (dry run).
bench_step() {
  local name="$1" cap="$2" exe="$3" start rc=0 note="" check="run" limit src
  shift 3
  local cmd res
  cmd=$(printf '%q ' "$exe" "$@")
  cmd=${cmd% }
  src="$root/bench/$name.cpp"
  bench_count=$((${bench_count:-0} + 1))
  res="$work/bench-$bench_count.out"
  : >"$res"
  printf '\n==== bench %s: %s\n' "$name" "$cmd" >>"$out/bench.log"
  start=$(date +%s.%N)
  limit=$(step_limit "$cap")
  if [[ "$exe" == */* && ! -x "$exe" ]]; then
    rc=1 note="not built: $exe"
  elif ((limit < 5)); then
    rc=124 note="not started: the ${budget} s budget is spent"
  elif [[ $dry_run -eq 1 ]] && ! grep -qF '"--check-args"' "$src" 2>/dev/null; then
    check="static"
    note=$(static_arg_check "$src" "$@") || rc=1
  else
    [[ $dry_run -eq 1 ]] && check="parse" && set -- "$@" --check-args && limit=$(step_limit 30)
    timeout -k 10 "$limit" "$exe" "$@" >"$res" 2>"$work/bench.err"
    rc=$?
    { echo "-- stdout"; cat "$res"; echo "-- stderr"; cat "$work/bench.err"; } >>"$out/bench.log"
    [[ $rc -eq 124 || $rc -eq 137 ]] && note="stopped at its limit of $limit s"
    if [[ $rc -eq 0 ]] && ! tail -n 1 "$res" | python3 -c \
        'import json,sys; json.loads(sys.stdin.read())' 2>/dev/null; then
      rc=1 note="its last stdout line is not a JSON object"
    fi
  fi
  [[ -n "$note" ]] && echo "-- $note" >>"$out/bench.log"
  local secs
  secs=$(elapsed_since "$start")
  printf '{"name":%s,"command":%s,"arg_check":%s,"rc":%s,"seconds":%s,"result_file":%s}\n' \
    "$(json_str "$name")" "$(json_str "$cmd")" "$(json_str "$check")" "$rc" "$secs" \
    "$(json_str "$res")" >>"$work/benches.jsonl"
  step_command=$cmd
  record_step "bench:$name" "$rc" "$secs" "$cap" "$out/bench.log" "$note"
}

# Bench binaries outside the GPU table: listed with the reason they are not run.
other_benches() {
  local exe name entry known reason
  for exe in "$build"/bench/*; do
    [[ -f "$exe" && -x "$exe" ]] || continue
    name=$(basename "$exe")
    known=0
    for entry in "${gpu_benches[@]}"; do [[ "${entry%%|*}" == "$name" ]] && known=1; done
    [[ $known -eq 1 ]] && continue
    reason="not in tools/gpu-check.sh's gpu_benches or cpu_benches: classify it there"
    for entry in "${cpu_benches[@]}"; do
      [[ "${entry%%|*}" == "$name" ]] && reason="no GPU variant: ${entry#*|}"
    done
    not_run "bench:$name" "$reason"
  done
}

# bench/*.sh: run only with a `# gpu-check-args:` header line.
bench_scripts() {
  local script name args_line reason
  for script in "$root"/bench/*.sh; do
    name=$(basename "$script" .sh)
    args_line=$(sed -n 's/^# gpu-check-args: *//p' "$script" | head -1)
    if [[ -z "$args_line" ]]; then
      reason=$(sed -n 's/^# gpu-check: skip *//p' "$script" | head -1)
      not_run "bench/$name.sh" "${reason:-no '# gpu-check' header line: add one}"
      continue
    fi
    args_line=${args_line//\{tessera\}/$build/tessera}
    args_line=${args_line//\{build\}/$build}
    read -r -a argv <<<"$args_line"
    if [[ $dry_run -eq 1 ]]; then
      run_step "bench:$name.sh" "$out/bench.log" 10 "" bash -n "$script"
    else
      bench_step "$name.sh" 120 bash "$script" "${argv[@]}"
    fi
  done
}

write_summary() {
  python3 - "$work" "$out" "$dry_run" "$gpu_desc" "$cuda_compiler" "$build" "$budget" \
    "$SECONDS" <<'PY'
import json, os, re, sys
work, out, dry, gpu, cuda, build, budget, seconds = sys.argv[1:]

def lines(name):
    p = os.path.join(work, name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []

steps = lines("steps.jsonl")
benches = []
for b in lines("benches.jsonl"):
    result = None
    try:
        last = [l for l in open(b.pop("result_file")) if l.strip()][-1]
        result = json.loads(last)
    except (OSError, IndexError, ValueError):
        pass
    b["result"] = result
    benches.append(b)
ctest = {}
tests_log = os.path.join(out, "tests.log")
if os.path.exists(tests_log):
    text = open(tests_log, errors="replace").read()
    m = re.findall(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", text)
    if m:
        ctest = {"total": int(m[-1][2]), "failed": int(m[-1][1])}
    m = re.findall(r"^Total Tests: (\d+)$", text, re.M)
    if m:
        ctest["listed"] = int(m[-1])
skips = None
if os.path.exists(os.path.join(work, "skips.json")):
    skips = json.load(open(os.path.join(work, "skips.json")))
summary = {
    "ok": all(s["rc"] == 0 for s in steps) and bool(steps),
    "dry_run": dry == "1", "gpu": gpu, "cuda_backend": cuda == "1", "build_dir": build,
    "budget_s": int(budget), "seconds": int(seconds), "steps": steps, "ctest": ctest,
    "skips": skips, "benches": benches, "not_run": lines("not_run.jsonl"),
}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
    f.write("\n")
PY
}
