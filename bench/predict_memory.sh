#!/usr/bin/env bash
# Batch scoring must run in bounded memory (streamed in, streamed out): peak RSS of
# `tessera predict MODEL INPUT OUTPUT` on N rows and on 10N rows should be about the same.
#
#   bench/predict_memory.sh TESSERA_BIN MODEL [--rows N] [--max-ratio R] [--data-dir DIR]
#                           [--keep DIR]
#
# The inputs are adult.test's data rows (its first line, "|1x3 Cross validator", is dropped),
# repeated until N and 10N rows; written to a temporary directory (or DIR with --keep).
# Peak RSS comes from GNU time (/usr/bin/time -v; Debian package `time`).
#
# Output: progress on stderr; the last stdout line is
#   {"rows_small":N,"rows_large":10N,"peak_rss_kb_small":..,"peak_rss_kb_large":..,
#    "rss_ratio":..,"seconds_small":..,"seconds_large":..,"rows_per_sec_large":..,
#    "output_lines_small":..,"output_lines_large":..,"max_ratio":R,"flat":true|false}
# Exits 1 when a predict run fails, its output has fewer lines than input rows, or
# rss_ratio > R (default 1.5: 10x the rows may not cost 1.5x the memory).
# gpu-check: skip measures host memory of tessera predict (needs a MODEL and UCI Adult); no GPU work
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
data_dir="$(cd "$root/.." && pwd)/shared/datasets/uci-adult"
rows=50000
max_ratio=1.5
keep=""
positional=()

die() { echo "predict_memory: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows="$2"; shift ;;
    --max-ratio) max_ratio="$2"; shift ;;
    --data-dir) data_dir="$2"; shift ;;
    --keep) keep="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) positional+=("$1") ;;
  esac
  shift
done
[[ ${#positional[@]} -eq 2 ]] || die "usage: $0 TESSERA_BIN MODEL [--rows N] [--max-ratio R] (see --help)"
tessera_bin="${positional[0]}"
model="${positional[1]}"
[[ -x "$tessera_bin" ]] || die "tessera binary '$tessera_bin' not found or not executable"
[[ -e "$model" ]] || die "model '$model' not found"
[[ "$rows" =~ ^[1-9][0-9]*$ ]] || die "--rows must be a positive integer, got '$rows'"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing: apt-get install time"
src="$data_dir/adult.test"
[[ -f "$src" ]] || die "no adult.test under $data_dir (use --data-dir)"

if [[ -n "$keep" ]]; then
  mkdir -p "$keep"
  work="$(cd "$keep" && pwd)"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi

# Data rows of adult.test, cycled to the requested count.
make_input() {  # make_input ROWS FILE
  awk -v want="$1" 'NR > 1 && NF { line[n++] = $0 }
    END { if (n == 0) exit 1; for (i = 0; i < want; ++i) print line[i % n] }' "$src" >"$2" \
    || die "could not build $2 from $src"
}

# Runs predict under GNU time; prints "PEAK_KB SECONDS OUTPUT_LINES".
measure() {  # measure INPUT OUTPUT LOG
  local input="$1" output="$2" log="$3"
  if ! /usr/bin/time -v -o "$log.time" "$tessera_bin" predict "$model" "$input" "$output" \
      >"$log" 2>&1; then
    tail -n 20 "$log" >&2 || true
    die "'$tessera_bin predict $model $input $output' failed (output above)"
  fi
  local kb secs
  kb="$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$log.time")"
  secs="$(awk -F': ' '/Elapsed \(wall clock\) time/ { n = split($2, p, ":"); s = 0;
    for (i = 1; i <= n; ++i) s = s * 60 + p[i]; print s }' "$log.time")"
  [[ -n "$kb" && -n "$secs" ]] || die "could not read peak RSS / time from $log.time"
  [[ -f "$output" ]] || die "predict wrote no output file $output"
  echo "$kb $secs $(wc -l <"$output")"
}

small=$rows
large=$((rows * 10))
make_input "$small" "$work/input_small.csv"
make_input "$large" "$work/input_large.csv"
echo "== predict on $small rows" >&2
res="$(measure "$work/input_small.csv" "$work/output_small" "$work/small.log")" || exit 1
read -r kb_s sec_s lines_s <<<"$res"
echo "   peak RSS ${kb_s} kB, ${sec_s} s, ${lines_s} output lines" >&2
echo "== predict on $large rows" >&2
res="$(measure "$work/input_large.csv" "$work/output_large" "$work/large.log")" || exit 1
read -r kb_l sec_l lines_l <<<"$res"
echo "   peak RSS ${kb_l} kB, ${sec_l} s, ${lines_l} output lines" >&2

# An output may carry a header line; fewer lines than rows means rows were lost.
(( lines_s >= small )) || die "output for $small rows has only $lines_s lines"
(( lines_l >= large )) || die "output for $large rows has only $lines_l lines"

awk -v ns="$small" -v nl="$large" -v ks="$kb_s" -v kl="$kb_l" -v ss="$sec_s" -v sl="$sec_l" \
    -v ls="$lines_s" -v ll="$lines_l" -v mr="$max_ratio" 'BEGIN {
  r = kl / ks
  printf "{\"rows_small\":%d,\"rows_large\":%d,\"peak_rss_kb_small\":%d,\"peak_rss_kb_large\":%d,", ns, nl, ks, kl
  printf "\"rss_ratio\":%.4f,\"seconds_small\":%.2f,\"seconds_large\":%.2f,", r, ss, sl
  printf "\"rows_per_sec_large\":%.0f,\"output_lines_small\":%d,\"output_lines_large\":%d,", (sl > 0 ? nl / sl : 0), ls, ll
  printf "\"max_ratio\":%s,\"flat\":%s}\n", mr, (r <= mr ? "true" : "false")
  exit (r <= mr ? 0 : 3)
}' || die "peak RSS grew by more than ${max_ratio}x from $small to $large rows: scoring is not streaming"
