"""Scoring a Parquet dataset streams it: at 10x the rows, the peak memory grows by the scores
returned, not by the input (each size scored in a fresh interpreter, peak RSS and the Arrow
memory pool's peak measured after the call)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import tessera

_CHILD = (
    "import json, resource, sys, pyarrow as pa, tessera\n"
    "s = tessera.load(sys.argv[1]).predict(sys.argv[2])\n"
    "print(json.dumps({'rows': len(s), 'pool_mb': pa.default_memory_pool().max_memory() / 2**20,\n"
    "  'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n")


def _dataset(table: pa.Table, rows: int, directory: Path) -> Path:
    """`rows` rows of `table` repeated, in Parquet files of 5,000 rows."""
    directory.mkdir()
    for i, start in enumerate(range(0, rows, 5000)):
        idx = np.arange(start, min(rows, start + 5000)) % table.num_rows
        pq.write_table(table.take(pa.array(idx)), directory / f"part-{i:04d}.parquet")
    return directory


def _score(model: Path, dataset: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(model), str(dataset)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_parquet_dataset_ten_times_larger_scores_in_flat_memory(
        synthetic: Path, trained: tessera.Run, tmp_path: Path) -> None:
    table = pa.Table.from_pandas(pd.read_csv(synthetic.parent / "train.csv"),
                                 preserve_index=False)
    n = 40000
    small = _score(trained.model_path, _dataset(table, n, tmp_path / "n"))
    large = _score(trained.model_path, _dataset(table, 10 * n, tmp_path / "10n"))
    assert (small["rows"], large["rows"]) == (n, 10 * n)
    # The Arrow buffers alive at once: a batch or two, whatever the dataset's size.
    assert large["pool_mb"] < 2 * small["pool_mb"] + 1, (small, large)
    # The process: the 9n more rows' scores (and labels) as the engine gathers them (a vector
    # that doubles: up to 3x), far less than the 9n rows themselves.
    extra_rows_mb = table.nbytes / table.num_rows * 9 * n / 2**20
    extra_scores_mb = 3 * 12 * 9 * n / 2**20
    assert large["rss_mb"] - small["rss_mb"] < extra_scores_mb + extra_rows_mb / 2, (
        small, large, extra_rows_mb)
