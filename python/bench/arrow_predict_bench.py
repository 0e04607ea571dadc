"""Model.predict on Arrow input against `tessera predict` on the same rows as CSV, and the peak
memory of scoring a Parquet dataset at two sizes.

    python python/bench/arrow_predict_bench.py [--rows 200000] [--repeats 3] [--json]

Trains a small synthetic behaviour model (tessera make-synthetic, 1 epoch), then:
  * throughput: the CLI's predict on test.csv (rows/s as its --json reports, and wall time of the
    process) against Model.predict on the same rows as a pyarrow Table (rows/s of the call);
    the target is >= 0.9x the CLI's rows/s.
  * memory: in a fresh interpreter each, Model.predict on a Parquet dataset of N and of 10N rows
    (files of N/4 rows each, read batch by batch) and the process's peak RSS after it; flat memory
    means the 10N run's peak exceeds the N run's by far less than the 9N rows' size in memory
    (the scores themselves, 8 bytes a row, are the output and are counted).
Prints one line per measure (one JSON object with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import tessera


def _cli() -> str:
    return os.environ.get("TESSERA_CLI") or str(Path(sys.executable).parent / "tessera")


def _peak_rss_child(model: str, dataset: str) -> dict:
    code = (
        "import json, resource, sys, time, tessera\n"
        "m = tessera.load(sys.argv[1])\n"
        "t = time.perf_counter(); s = m.predict(sys.argv[2]); dt = time.perf_counter() - t\n"
        "print(json.dumps({'rows': len(s), 'seconds': dt,\n"
        "  'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n")
    out = subprocess.run([sys.executable, "-c", code, model, dataset], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _write_parquet_dataset(table: pa.Table, rows: int, per_file: int, directory: Path) -> tuple:
    directory.mkdir(parents=True, exist_ok=True)
    written, i = 0, 0
    while written < rows:
        n = min(per_file, rows - written)
        idx = np.arange(written, written + n) % table.num_rows
        pq.write_table(table.take(pa.array(idx)), directory / f"part-{i}.parquet",
                       row_group_size=65536)
        written += n
        i += 1
    return str(directory), table.take(pa.array(np.arange(min(rows, table.num_rows)))).nbytes


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mem-rows", type=int, default=100000, help="N of the memory measure")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tessera-arrow-bench-"))
    synth = tessera.make_synthetic(tmp / "data", rows=a.rows)
    run = tessera.train(synth["config"], device="cpu", epochs=1, run_dir=tmp / "run", quiet=True)
    model = run.load()
    test_csv = tmp / "data" / "train.csv"
    table = pa.Table.from_pandas(pd.read_csv(test_csv), preserve_index=False)
    out: dict = {"rows": table.num_rows}

    cli_rates, cli_wall, py_rates = [], [], []
    for _ in range(a.repeats):
        t = time.perf_counter()
        r = subprocess.run([_cli(), "predict", str(run.model_path), str(test_csv),
                            str(tmp / "scores.csv"), "--quiet", "--json"],
                           capture_output=True, text=True, check=True)
        cli_wall.append(time.perf_counter() - t)
        cli_rates.append(json.loads(r.stdout.strip().splitlines()[-1])["rows_per_sec"])
        t = time.perf_counter()
        scores = model.predict(table)
        py_rates.append(len(scores) / (time.perf_counter() - t))
    out["cli_rows_per_sec"] = max(cli_rates)
    out["cli_process_rows_per_sec"] = table.num_rows / min(cli_wall)
    out["python_arrow_rows_per_sec"] = max(py_rates)
    out["ratio"] = out["python_arrow_rows_per_sec"] / out["cli_rows_per_sec"]

    small = table.slice(0, min(table.num_rows, a.mem_rows))
    for label, n in (("n", a.mem_rows), ("10n", 10 * a.mem_rows)):
        path, _ = _write_parquet_dataset(small, n, max(1, a.mem_rows // 4), tmp / f"parquet-{label}")
        out[f"peak_rss_mb_{label}"] = _peak_rss_child(str(run.model_path), path)["peak_rss_mb"]
    # What 9N more rows take in memory as Arrow columns, and as the float64 scores returned.
    out["extra_rows_arrow_mb"] = small.nbytes / small.num_rows * 9 * a.mem_rows / 2**20
    out["extra_scores_mb"] = 8 * 9 * a.mem_rows / 2**20
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
