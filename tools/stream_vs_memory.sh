#!/usr/bin/env bash
# Training throughput on the same prepared data read into memory (data.read "memory") and
# streamed from its shards (data.read "stream": PreparedSource, block shuffle + shuffle buffer on
# a prefetch thread). Prints one JSON object: each mode's train_samples_per_sec per run, their
# median, min and max; stream / memory of the medians (the target is >= 0.95) and of each
# alternating pair (run i's stream over run i's memory: median, min, max); the load average
# before and after (a busy machine's figures are indicative only).
#
#   tools/stream_vs_memory.sh [--tessera BIN] [--rows N] [--epochs E] [--repeats R]
#                             [--block-rows K] [--shuffle-buffer S] [--work DIR] [--device D]
#
# The runs alternate (memory, stream, stream, memory, memory, stream, ...: each pair's order
# swaps, so neither mode always runs first after the other) so a busy machine slows both alike.
# The data is `tessera make-synthetic --layout criteo --rows N`, prepared with `tessera prep`;
# WORK (default a temporary directory, removed at the end) keeps it between calls when given.
set -euo pipefail

BIN=${TESSERA:-build/tessera}
ROWS=200000
EPOCHS=1
REPEATS=5
BLOCK=4096
BUFFER=65536
DEVICE=cpu
WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tessera) BIN=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --block-rows) BLOCK=$2; shift 2 ;;
    --shuffle-buffer) BUFFER=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "stream_vs_memory.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "stream_vs_memory.sh: no tessera binary at '$BIN' (--tessera BIN)" >&2; exit 2; }
KEEP=1
if [ -z "$WORK" ]; then
  WORK=$(mktemp -d /tmp/stream_vs_memory.XXXXXX)
  KEEP=0
fi
cleanup() { if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

if [ ! -f "$WORK/syn/config.json" ]; then
  "$BIN" make-synthetic "$WORK/syn" --layout criteo --rows "$ROWS" >/dev/null
fi
"$BIN" prep "$WORK/syn/config.json" --out "$WORK/prepared" --quiet >/dev/null

# The two configs: the synthetic one with data.prepared and each read mode.
for mode in memory stream; do
  python3 - "$WORK" "$mode" "$BLOCK" "$BUFFER" <<'EOF'
import json, sys
work, mode, block, buffer = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = json.load(open(f"{work}/syn/config.json"))
c["data"].update({"prepared": f"{work}/prepared", "read": mode, "block_rows": block,
                  "shuffle_buffer": buffer})
json.dump(c, open(f"{work}/config-{mode}.json", "w"), indent=1)
EOF
done

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
declare -A RATES=([memory]="" [stream]="")
for ((i = 0; i < REPEATS; i++)); do
  order="memory stream"
  if ((i % 2 == 1)); then order="stream memory"; fi
  for mode in $order; do
    out=$("$BIN" train "$WORK/config-$mode.json" --epochs "$EPOCHS" --device "$DEVICE" \
      --runs-dir "$WORK/runs-$mode" --json --quiet | tail -n 1)
    rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["train_samples_per_sec"])' "$out")
    RATES[$mode]="${RATES[$mode]} $rate"
  done
done

LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)

python3 - "$ROWS" "$EPOCHS" "$BLOCK" "$BUFFER" "$DEVICE" "${RATES[memory]}" "${RATES[stream]}" \
  "$LOAD_BEFORE" "$LOAD_AFTER" <<'EOF'
import json, statistics, sys
rows, epochs, block, buffer, device = sys.argv[1:6]
memory = [float(x) for x in sys.argv[6].split()]
stream = [float(x) for x in sys.argv[7].split()]
def summary(v):
    return {"samples_per_sec": v, "median": statistics.median(v), "min": min(v), "max": max(v)}
m, s = statistics.median(memory), statistics.median(stream)
pairs = [b / a for a, b in zip(memory, stream) if a > 0]
print(json.dumps({"bench": "stream_vs_memory", "rows": int(rows), "epochs": int(epochs),
                  "device": device, "block_rows": int(block), "shuffle_buffer": int(buffer),
                  "loadavg": {"before": float(sys.argv[8]), "after": float(sys.argv[9])},
                  "memory": summary(memory), "stream": summary(stream),
                  "stream_over_memory": s / m if m > 0 else None,
                  "pairwise": {"ratios": pairs, "median": statistics.median(pairs),
                               "min": min(pairs), "max": max(pairs)} if pairs else None,
                  "target": 0.95}))
EOF
