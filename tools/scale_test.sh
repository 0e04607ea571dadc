#!/usr/bin/env bash
# Issue 18's scale test: synthetic Criteo-layout text of SIZE bytes, prepared, trained for one
# epoch streamed from the prepared shards, and evaluated, each step under /usr/bin/time -v.
#
#   tools/scale_test.sh SIZE WORKDIR [--bin TESSERA] [--threads N] [--max-table-rows N] [--keep]
#
# SIZE: what `make-synthetic --size` takes (6G, 512M; train + test text, test a fifth of it).
# WORKDIR: a new or empty directory outside the repository (data, prepared shards, runs); the
# generated data is deleted at the end unless --keep. TESSERA defaults to build/tessera.
# Steps:
#   1. make-synthetic WORKDIR/data --layout criteo --size SIZE   (writes data/config.json)
#   2. prep data/config.json                                      (shards in data/prepared)
#   3. train, one epoch, on that config with data.read "stream"   (validation split 5%)
#   4. evaluate the model on data/test.txt
# Output: progress on stderr; the last stdout line is one JSON object:
#   {"size":..,"bytes":..,"train_rows":..,"test_rows":..,"prepared_bytes":..,"model_bytes":..,
#    "steps":{"make_synthetic":{"seconds":..,"cpu_seconds":..,"peak_rss_mb":..,
#                               "sampled_anon_mb":..,"mb_per_s":..},
#             "prep":{..,"rows":{..}},
#             "train":{..,"samples_per_sec":..,"test_auc":..},"evaluate":{..,"auc":..}},
#    "loadavg_1m":..}
# and WORK/STEP.rss: the step's RssAnon / RssFile sampled every 0.5 s (sample_rss below).
# The target (issue 18): peak RSS of every step bounded by the model + 1 GiB however large the
# data, which the figures of two sizes show: run it at SIZE and 6 x SIZE and compare peak_rss_mb.
# The issue asks for text 1.5x the machine's RAM; on the development machine (23 GiB of RAM,
# about 36 GB of free disk, 2 cores shared) 36 GB of text plus its shards does not fit on disk,
# so it was run at smaller sizes 6x apart instead. Peak RSS (MB) there, 2 threads, load 7-20,
# training streamed ("data_read": "stream" in train's JSON). Before: the prepared reader mapped
# the shards; after (9965989, e5eb4c7): it reads blocks with pread into buffers it frees, and
# evaluate streams the test text instead of load_table:
#   size  --max-table-rows  rows (train+test)  model.tsm  make-synthetic  prep  train  evaluate
#   before:
#   64M   20000             256k               11.7 MB    33              125   184    127
#   384M  20000             1.53M              20.2 MB    36              182   273    255
#   128M  1000000 (default) 512k               20.6 MB    34              176   271    178
#   768M  1000000 (default) 3.07M              79.8 MB    34              426   815    544
#   after:
#   128M  20000             512k               16.3 MB    34              145   237    126
#   768M  20000             3.07M              20.6 MB    36              179   269    177
#   128M  1000000 (default) 512k               20.6 MB    32              176   268    141
#   768M  1000000 (default) 3.07M              79.8 MB    35              426   829    328
# Train's RSS sampled from /proc/PID/status every 4-8 s while it trained (after): file-backed
# 17 MB at every size (the binary and libraries: no shard page stays resident); anonymous steady
# at 145 MB (128M, cap 20000), 196 MB (768M, cap 20000) and 380 MB (768M, default cap: tables
# and optimizer state grow with the distinct ids up to the cap), then a spike at the end (model
# snapshot + save_model's in-memory archive: 380 -> 597 MB sampled, 829 peak). Of the +51 MB
# anonymous between the capped sizes, the model (parameters +26%) explains part; the reader's
# shard data is bounded (prepared_memory_test), the rest was not traced. Evaluate's peak follows
# the model (load_model) plus the scores and labels and the metrics' copies of them (some tens of
# bytes a test row). Prep grows with the distinct ids it counts (vocabulary fit: a count per
# distinct value before the cap applies), a separate problem. Test AUC after: 0.759, 0.820,
# 0.747, 0.802 (evaluate gives the same).
# At 1.6x RAM (2026-12-07, commit 57a84d6's binary, a machine with 23.5 GiB of RAM and 80 GB of
# free disk, shared with other builds: load 4-19): `tools/scale_test.sh 38G DIR --threads 2`
# with the generated config's model swapped for a lighter DLRM so that one epoch fits an
# afternoon on 2 cores (embedding_dim 8, bottom [16], hidden [16], row-wise Adagrad tables,
# batch 8192; tables at the default 1M-row cap). 40.8 GB of text (155.5M rows; 1.61x MemTotal),
# 19.7 GB of shards, 56.8M parameters (model.tsm 325 MB):
#   step            wall s  CPU s   peak RSS MB  result
#   make-synthetic  2028    284     38           143 MB per CPU-second
#   prep            3551    1288    1509         118.2M train / 6.2M validation / 31.1M test rows
#   train (1 epoch) 1550    1473    3772         102.6k samples/s streamed, test AUC 0.8407
#   evaluate        335     307     2275         test.txt AUC 0.8407
# Train's RSS, sampled while the epoch ran, was 1.57-2.0 GB; its peak came after the epoch, when
# it scores the 31.1M test rows (scores and labels of every row are kept for the exact AUC:
# with the vectors' growth and the sort's copy, ~30 bytes a row) and writes the model. Against
# model + 1 GiB with the model counted as its file (325 MB + 1 GiB = 1.35 GB) every step misses:
# the epoch by 0.2-0.65 GB (in memory the model is more than its file: weights, optimizer state,
# and 7.1M vocabulary tokens in hash maps), end-of-run scoring by more, since its memory grows
# with the test rows; evaluate's 2275 MB is the same effect. Prep's peak is its vocabulary count
# (7.1M distinct tokens). What does not grow with the data is the reader: the epoch's RSS was flat.
# Generation: about 150-170 MB of text per CPU-second.
# Session 28 (issue 18, bounded memory at the end of a run): BinaryMetrics keeps 4 bytes a row
# (the scores split by label in fixed blocks; logloss, accuracy, calibration summed as rows
# pass) where scoring kept ~30; save_archive streams the file instead of building it in
# one string; the run writes its model from references instead of copying the preprocessor.
# Peak RSS (MB) of `tools/scale_test.sh SIZE DIR --threads 2 --max-table-rows 20000` (load
# 8-13, other builds running), before = a binary of the tree just before these commits, after =
# with them; in brackets the largest RssAnon sampled every 0.5 s (it can miss a short spike):
#   size  rows (train+test)  model.tsm  train before  train after  evaluate before  evaluate after
#   128M  409k + 102k        16.3 MB    267 (171)     217 (168)    124 (108)        125 (108)
#   768M  2.46M + 614k       20.6 MB    337 (228)     281 (263)    179 (134)        143 (126)
# Test AUC 0.7589 / 0.8197 before and after (evaluate the same). From 128M to 768M, evaluate's
# peak grows 18 MB after (54 before): what is left is the model and the input's pages. Train's
# anonymous memory during the 768M epoch is flat at 184 MB (132 at 128M: tables and vocabulary
# grow with the distinct ids up to the cap, not with the rows); the final scoring adds ~30 MB
# (the split readers' buffers; the 614k test scores are 2.5 MB) and writing the model ~40 MB.
# heaptrack of the 128M train (heaptrack_print's peak consumers): heap peak 250 MB before, 190
# after; at the peak, after: weights, snapshot and
# optimizer state 70 MB, the prepared reader's blocks and shuffle buffer 42 MB, the
# preprocessor's JSON document built to write the model 24 MB (rapidjson DOM, ~110 B a
# vocabulary token), the run's copy of the vocabulary 14 MB beside the prepared dataset's own
# (TokenIndex, ~52 B a token). Not done (other owners' files): at the 1.6x-RAM run's 7.1M tokens
# those last two are ~0.8 GB at save and ~0.4 GB (each copy) through the epoch; the scoring
# (31M test rows: ~0.9 GB -> 124 MB) and archive (325 MB) parts are gone. Metrics alone on 31M
# rows: 124.5 MB of scores, compute_with_roc 6.9 s (indicative: busy machine). Then load_archive
# reading in place (no copy of the file while loading): 768M again, load 4.8: train 278 (217),
# evaluate 142 (125), test AUC 0.8197; no change visible with a 20 MB model (evaluate's peak is
# its scoring, not the load), two to three copies of the file less at load with a 325 MB one.
# Then the vocabulary held once through the epoch (the run takes the prepared dataset's
# preprocessor instead of copying it) and the preprocessor's JSON streamed onto the model's
# metadata at save (no rapidjson document; the same bytes). `tools/scale_test.sh 768M DIR
# --threads 2` at the default 1M-row cap (1.03M vocabulary tokens, model.tsm 79.8 MB), before =
# build-h1's binary of c687b3d, after = 419f5f1 + cdb06d9; load 9.4 and 8.7 (two helpers' builds
# and a CI run beside it), so the seconds say little:
#   step      peak RSS before (sampled anon)  after (sampled anon)  anon median of the epoch
#   train     638 (551)                       469 (463)             364 -> 291
#   evaluate  323 (310)                       324 (274)             (loads a model; no save)
# Test AUC 0.8017 before and after (evaluate the same). Train's end-of-run peak drops 170 MB
# (the document, ~110 B a token, and a second copy of its text) and the epoch's level ~70 MB
# (the second vocabulary, ~52 B a token, and its index). Evaluate is unchanged: load_model still
# parses the whole metadata into a document (~110 B a token) before building the preprocessor.
# The model files' "preprocessor" member is the same bytes from both binaries (48M, --keep:
# 126,657 tokens, 1,681,137 bytes of JSON).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
tessera_bin="$root/build/tessera"
threads=$(nproc)
max_table_rows=""
keep=0
die() { echo "scale_test: $*" >&2; exit 1; }

[[ $# -ge 2 ]] || die "usage: tools/scale_test.sh SIZE WORKDIR [--bin TESSERA] [--threads N] [--max-table-rows N] [--keep]"
size="$1"
work="$2"
shift 2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) tessera_bin="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --max-table-rows) max_table_rows="$2"; shift ;;
    --keep) keep=1 ;;
    *) die "unknown option '$1'" ;;
  esac
  shift
done
[[ -x "$tessera_bin" ]] || die "tessera binary '$tessera_bin' not found (build it or pass --bin)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (apt-get install time)"
mkdir -p "$work"
work="$(cd "$work" && pwd -P)"
case "$work/" in "$root"/*) die "WORKDIR $work is inside the repository: use a scratch directory" ;; esac
[[ -z "$(ls -A "$work")" ]] || die "WORKDIR $work is not empty"
data="$work/data"
cleanup() { [[ $keep == 1 ]] || rm -rf "$data" "$work/runs"; }
trap cleanup EXIT

# sample_rss PID FILE: while PID (/usr/bin/time) runs, every 0.5 s one line "UNIX_SECONDS
# RSSANON_KB RSSFILE_KB" of its child (the measured command) into FILE: where in a step its memory
# goes (the peak of /usr/bin/time alone does not say whether it is the epoch or the end of the run).
sample_rss() {
  local tpid="$1" out="$2" child="" anon file st
  : >"$out"
  while kill -0 "$tpid" 2>/dev/null; do
    [[ -n "$child" ]] || child=$(pgrep -P "$tpid" | head -n 1 || true)
    st="/proc/$child/status"
    if [[ -n "$child" && -r $st ]]; then
      anon=$(sed -n 's/^RssAnon:[[:space:]]*\([0-9]*\) kB/\1/p' "$st" 2>/dev/null || true)
      file=$(sed -n 's/^RssFile:[[:space:]]*\([0-9]*\) kB/\1/p' "$st" 2>/dev/null || true)
      if [[ -n "$anon" ]]; then echo "$EPOCHREALTIME $anon $file" >>"$out"; fi
    fi
    sleep 0.5
  done
}

# step NAME CMD...: runs CMD under /usr/bin/time -v; its stdout goes to WORK/NAME.out, and
# WORK/NAME.step gets {"seconds":..,"cpu_seconds":..,"peak_rss_mb":..} (cpu: user + system, which
# says more than the wall time on a shared machine).
step() {
  local name="$1"
  shift
  echo "== $name: $*" >&2
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  local tpid=$!
  sample_rss "$tpid" "$work/$name.rss" &
  local spid=$!
  if ! wait "$tpid"; then
    wait "$spid" || true
    tail -n 20 "$work/$name.err" "$work/$name.out" >&2
    die "$name failed"
  fi
  wait "$spid" || true
  t1=$(date +%s.%N)
  local rss_kb user sys
  rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$name.time")
  user=$(sed -n 's/.*User time (seconds): //p' "$work/$name.time")
  sys=$(sed -n 's/.*System time (seconds): //p' "$work/$name.time")
  # sampled_anon_mb: the largest RssAnon sampled (what the heap held; the peak above includes
  # the mapped binary and pages of files read).
  python3 -c 'import json,sys; a=sys.argv; anon=[int(l.split()[1]) for l in open(a[6]) if len(l.split()) == 3]; print(json.dumps({"seconds": round(float(a[2]) - float(a[1]), 2), "cpu_seconds": round(float(a[4]) + float(a[5]), 2), "peak_rss_mb": round(int(a[3]) / 1024, 1), "sampled_anon_mb": round(max(anon) / 1024, 1) if anon else None}))' \
    "$t0" "$t1" "$rss_kb" "$user" "$sys" "$work/$name.rss" >"$work/$name.step"
  echo "   $(cat "$work/$name.step")" >&2
}

gen_args=(make-synthetic "$data" --layout criteo --size "$size" --threads "$threads" --json)
[[ -n "$max_table_rows" ]] && gen_args+=(--max-table-rows "$max_table_rows")
step make_synthetic "$tessera_bin" "${gen_args[@]}"
config="$data/config.json"
step prep "$tessera_bin" prep "$config" --threads "$threads" --json --quiet
# One epoch streamed from the shards: the generated config with data.read "stream".
python3 - "$config" "$data/config-stream.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["data"]["read"] = "stream"
c["device"] = "cpu"
c["train"]["epochs"] = 1
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
step train "$tessera_bin" train "$data/config-stream.json" --runs-dir "$work/runs" --json --quiet
model="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["model"])' "$work/train.out")"
step evaluate "$tessera_bin" evaluate "$model" "$data/test.txt" --json

python3 - "$work" "$size" "$model" "$data/prepared" <<'PY'
import json, os, sys
work, size, model, prepared = sys.argv[1:5]
last = lambda name: json.loads(open(f"{work}/{name}.out").read().strip().splitlines()[-1])
step = lambda name: json.load(open(f"{work}/{name}.step"))
gen, tr, ev = last("make_synthetic"), last("train"), last("evaluate")
steps = {n: step(n) for n in ("make_synthetic", "prep", "train", "evaluate")}
steps["make_synthetic"]["mb_per_s"] = round(gen["mb_per_s"], 1)
cpu = steps["make_synthetic"]["cpu_seconds"]
steps["make_synthetic"]["mb_per_cpu_second"] = round(gen["bytes"] / 1e6 / cpu, 1) if cpu > 0 else None
steps["prep"]["rows"] = last("prep")["rows"]
steps["train"]["samples_per_sec"] = round(tr.get("train_samples_per_sec", 0), 1)
steps["train"]["test_auc"] = round(tr["test"]["auc"], 4)
steps["evaluate"]["auc"] = round(ev["metrics"]["auc"], 4)
shards = sum(os.path.getsize(os.path.join(prepared, f)) for f in os.listdir(prepared))
print(json.dumps({"size": size, "bytes": gen["bytes"], "train_rows": gen["train_rows"],
                  "test_rows": gen["test_rows"], "prepared_bytes": shards,
                  "model_bytes": os.path.getsize(model), "steps": steps,
                  "loadavg_1m": float(open("/proc/loadavg").read().split()[0])}))
PY
