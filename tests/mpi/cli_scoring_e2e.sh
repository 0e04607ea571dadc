#!/usr/bin/env bash
# `mpirun -np N tessera predict|evaluate` of a behaviour model: every rank scores its part of the
# input (docs/distributed-scoring.md). Against the one-process commands, on the synthetic
# behaviour MLP (no download), at 1, 2 and 3 ranks (the ranks to test are the arguments):
#   - predict on a CSV with a header, on a prepared directory's split, on a CSV whose first line
#     is skipped (--skip-lines 1), in small batches that cut the parts mid-batch, on a file of 2
#     rows (more ranks than rows: some ranks' parts are empty) and on libSVM rows (a libSVM
#     model): OUTPUT is byte-identical (cmp) to the one-process file, and no part file is left;
#   - evaluate on the CSV and on the prepared split: the same row count, equal AUC (exactly) and
#     logloss within 1e-12 relative, and bad rows counted once over the ranks (--on-error skip);
#   - bad rows in several ranks' parts under --on-error error end the job (non-zero exit, no
#     hang) with the first one's file and line, as one process names it, and leave no output or
#     part file; so does a bad row in the last rank's part only (its error, its rank named).
# Usage: cli_scoring_e2e.sh TESSERA_BINARY RANKS... (ctest passes them).
set -euo pipefail
tessera=$1
shift
ranks=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1
cd "$work"

fail() { echo "FAIL: $*"; exit 1; }
field() {  # field FILE EXPR: a value of FILE's last JSON line
  python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(repr($2))" "$1"
}
close() {  # close WHAT A B TOL: |A - B| <= TOL * |B|
  python3 - "$@" <<'PY' || exit 1
import sys
what, a, b, tol = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
if abs(a - b) > tol * abs(b):
    print("FAIL: %s: %r vs %r (tolerance %g)" % (what, a, b, tol)); sys.exit(1)
print("ok: %s: %r vs %r" % (what, a, b))
PY
}
no_parts() {  # no part file of OUTPUT's may be left
  if compgen -G "$1.part*" > /dev/null; then fail "part files left: $(ls "$1".part*)"; fi
}

"$tessera" make-synthetic data --rows 3000 --quiet > /dev/null
sed -i 's/"epochs": 5/"epochs": 1/' data/config.json
"$tessera" train data/config.json --device cpu --quiet --json --run-dir run > train.out
model=run/model.tsm
"$tessera" prep data/config.json --out data/prepared --quiet > /dev/null
{ echo "# a note above the header"; cat data/test.csv; } > noted.csv
head -n 3 data/test.csv > tiny.csv  # the header and 2 rows

# name | input | extra options
cases=("csv|data/test.csv|" "prepared|data/prepared:test|" "skip|noted.csv|--skip-lines 1"
       "batches|data/test.csv|--batch-size 7" "tiny|tiny.csv|")
for c in "${cases[@]}"; do
  IFS='|' read -r name input extra <<< "$c"
  # shellcheck disable=SC2086
  "$tessera" predict "$model" "$input" "one-$name.csv" --device cpu --quiet --json $extra > "one-$name.out"
  for n in "${ranks[@]}"; do
    # shellcheck disable=SC2086
    timeout 300 mpirun -np "$n" "$tessera" predict "$model" "$input" "$n-$name.csv" --device cpu \
      --quiet --json $extra > "$n-$name.out"
    cmp "one-$name.csv" "$n-$name.csv" || fail "predict $name at $n ranks differs from one process"
    [[ $(field "$n-$name.out" "d['rows']") == $(field "one-$name.out" "d['rows']") ]] ||
      fail "predict $name at $n ranks reports another row count"
    no_parts "$n-$name.csv"
  done
  echo "ok: predict $name: $(($(wc -l < "one-$name.csv") - 1)) rows, byte-identical at ranks ${ranks[*]}"
done

# a libSVM model: its rows are kept sparse (sparse_input.h), read by lines, not records
python3 - <<'PY'
import math, random
random.seed(3)
def rows(n):
    out = []
    for _ in range(n):
        feats = {random.randint(1, 40): round(random.random(), 3) for _ in range(random.randint(1, 6))}
        z = sum(v for k, v in feats.items() if k % 3 == 0) - 0.5
        y = 1 if random.random() < 1 / (1 + math.exp(-3 * z)) else 0
        out.append(str(y) + " " + " ".join("%d:%g" % kv for kv in sorted(feats.items())))
    return "\n".join(out) + "\n"
open("s.svm", "w").write(rows(2000))
open("t.svm", "w").write(rows(500))
open("svm.json", "w").write('{"task": "behaviour", "seed": 5, "data": {"train": "s.svm", '
                            '"format": "libsvm", "validation_fraction": 0.25}, "train": {"epochs": 1}}')
PY
"$tessera" train svm.json --device cpu --quiet --json --run-dir svmrun > svm-train.out
"$tessera" predict svmrun/model.tsm t.svm one-svm.csv --device cpu --quiet --json > one-svm.out
"$tessera" evaluate svmrun/model.tsm t.svm --device cpu --quiet --json > one-svm-eval.out
for n in "${ranks[@]}"; do
  timeout 300 mpirun -np "$n" "$tessera" predict svmrun/model.tsm t.svm "$n-svm.csv" --device cpu \
    --quiet --json > "$n-svm.out"
  cmp one-svm.csv "$n-svm.csv" || fail "predict libSVM at $n ranks differs from one process"
  timeout 300 mpirun -np "$n" "$tessera" evaluate svmrun/model.tsm t.svm --device cpu --quiet \
    --json > "$n-svm-eval.out"
  [[ $(field "$n-svm-eval.out" "d['metrics']['auc']") == $(field one-svm-eval.out "d['metrics']['auc']") ]] ||
    fail "evaluate libSVM at $n ranks: another AUC"
done
echo "ok: libSVM predict byte-identical and evaluate's AUC equal at ranks ${ranks[*]}"

# evaluate, with 3 bad rows (one per third of the file) skipped
python3 - data/test.csv bad.csv <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines(True)
n = len(lines)
for at in (n // 6, n // 2, 5 * n // 6):
    lines[at] = "not,a,row\n"
open(sys.argv[2], "w").write("".join(lines))
PY
for input in data/test.csv data/prepared:test bad.csv; do
  tag=${input//[\/:]/_}
  "$tessera" evaluate "$model" "$input" --device cpu --quiet --json --on-error skip > "one-$tag.out"
  for n in "${ranks[@]}"; do
    timeout 300 mpirun -np "$n" "$tessera" evaluate "$model" "$input" --device cpu --quiet --json \
      --on-error skip > "$n-$tag.out"
    for f in "d['rows']" "d['metrics']['auc']" "d['metrics']['count']" "d['bad_rows_skipped']"; do
      [[ $(field "$n-$tag.out" "$f") == $(field "one-$tag.out" "$f") ]] ||
        fail "evaluate $input at $n ranks: $f $(field "$n-$tag.out" "$f") vs $(field "one-$tag.out" "$f")"
    done
    close "evaluate $input logloss at $n ranks" "$(field "$n-$tag.out" "d['metrics']['logloss']")" \
      "$(field "one-$tag.out" "d['metrics']['logloss']")" 1e-12
  done
done
[[ $(field one-bad.csv.out "d['bad_rows_skipped']") == 3 ]] || fail "the bad file does not have 3 bad rows"

# an error in one rank's part ends the job with its row's place, no output, no part file
n=${ranks[-1]}
rc=0
timeout 120 mpirun -np "$n" "$tessera" predict "$model" bad.csv err.csv --device cpu --quiet --json \
  > err.out 2> err.err || rc=$?
[[ $rc != 0 && $rc != 124 ]] || fail "a bad row under mpirun exited $rc (124: it hung)"
"$tessera" predict "$model" bad.csv one-err.csv --device cpu --quiet 2> one-err.err && fail "no error in one process"
where=$(grep -o 'bad.csv:[0-9]*' one-err.err | head -n 1)
grep -q "$where" err.err || fail "the job's error does not name $where: $(cat err.err)"
[[ ! -e err.csv ]] || fail "a failed job left an output"
no_parts err.csv
echo "ok: bad rows ended the $n-rank job (exit $rc) naming the first, $where"
# a bad row in the last rank's part only: that rank's error, with its place, ends the job
python3 - data/test.csv bad-last.csv <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines(True)
lines[len(lines) - 3] = "not,a,row\n"
open(sys.argv[2], "w").write("".join(lines))
PY
rc=0
timeout 120 mpirun -np "$n" "$tessera" predict "$model" bad-last.csv err.csv --device cpu --quiet \
  > err.out 2> err.err || rc=$?
[[ $rc != 0 && $rc != 124 ]] || fail "a bad row on the last rank exited $rc (124: it hung)"
where="bad-last.csv:$(($(wc -l < bad-last.csv) - 2))"
grep -q "MPI rank $((n - 1)): $where" err.err || fail "the job's error does not name $where: $(cat err.err)"
[[ ! -e err.csv ]] || fail "a failed job left an output"
no_parts err.csv
echo "ok: a bad row in rank $((n - 1))'s part ended the job (exit $rc) naming $where"
echo "PASS"
