"""Nightly batch scoring of a Parquet dataset in bounded memory.

    python examples/batch_scoring_parquet.py [WORK_DIR] [--model MODEL.tsm --input DIR]
        [--rows N] [--copies N] [--files N] [--batch-rows N] [--epochs N]

Scores every Parquet file under --input with a behaviour model and writes, per input file, a
Parquet file of its key column and the score under WORK_DIR/scores/. Each file is read as a
stream of record batches (pyarrow's RecordBatchReader, handed to Model.predict through the
Arrow C stream interface), so memory holds one batch of input plus the file's scores, however
large the dataset. Without --model/--input the example makes its own: a synthetic dataset, a
short training run, and a "nightly" dataset of --files Parquet files holding the test rows
--copies times with an "id" key column. Prints rows, rows/s and the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import tessera

# The exit status when this build's Model.predict takes no Arrow data (paths only).
NO_ARROW_INPUT = 3


def make_nightly(work: Path, rows: int, copies: int, files: int,
                 epochs: int) -> Tuple[Path, Path]:
    """A trained model and a Parquet dataset to score (the synthetic test rows, repeated)."""
    made = tessera.make_synthetic(work / "data", rows=rows)
    run = tessera.train(made["config"], device="cpu", epochs=epochs, runs_dir=work / "runs",
                        quiet=True)
    test = pd.read_csv(work / "data" / "test.csv", dtype=str, keep_default_na=False)
    for name in ("age", "sessions", "minutes", "clicked"):
        test[name] = pd.to_numeric(test[name])
    frame = pd.concat([test] * copies, ignore_index=True)
    frame.insert(0, "id", np.arange(len(frame), dtype=np.int64))
    nightly = work / "nightly"
    nightly.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        pq.write_table(pa.Table.from_pandas(frame.iloc[part], preserve_index=False),
                       nightly / f"part-{i:03d}.parquet", row_group_size=1024)
    assert run.model_path is not None
    return run.model_path, nightly


def batches(path: Path, batch_rows: int) -> pa.RecordBatchReader:
    """The file as a stream of record batches of at most `batch_rows` rows."""
    f = pq.ParquetFile(path)
    source: Iterator[pa.RecordBatch] = f.iter_batches(batch_size=batch_rows)
    return pa.RecordBatchReader.from_batches(f.schema_arrow, source)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def score_dataset(model: tessera.Model, inputs: Path, out: Path, key: str,
                  batch_rows: int) -> int:
    """Scores every Parquet file under `inputs` into `out`, file by file; returns the rows."""
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    for path in sorted(inputs.glob("*.parquet")):
        try:
            scores = model.predict(batches(path, batch_rows), batch_size=batch_rows)
        except TypeError as e:
            if "path" not in str(e):
                raise
            print(f"this tessera's Model.predict takes paths only ({e})", file=sys.stderr)
            raise SystemExit(NO_ARROW_INPUT)
        keys = pq.read_table(path, columns=[key]).column(key)
        if len(keys) != len(scores):
            raise SystemExit(f"{path}: {len(keys)} rows but {len(scores)} scores")
        pq.write_table(pa.table({key: keys, "score": pa.array(scores, pa.float64())}),
                       out / path.name)
        rows += len(scores)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work_dir", nargs="?", default=None)
    parser.add_argument("--model", help="a behaviour model file (with --input)")
    parser.add_argument("--input", help="a folder of Parquet files to score (with --model)")
    parser.add_argument("--key", default="id", help="the key column copied beside each score")
    parser.add_argument("--rows", type=int, default=20000, help="synthetic rows (no --input)")
    parser.add_argument("--copies", type=int, default=10, help="test rows repeated (no --input)")
    parser.add_argument("--files", type=int, default=4, help="Parquet files (no --input)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-rows", type=int, default=4096)
    args = parser.parse_args()
    if (args.model is None) != (args.input is None):
        parser.error("give both --model and --input, or neither")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="tessera-example-"))

    if args.model is None:
        model_path, inputs = make_nightly(work, args.rows, args.copies, args.files, args.epochs)
    else:
        model_path, inputs = Path(args.model), Path(args.input)
    model = tessera.load(model_path)
    before = peak_rss_mib()
    t0 = time.perf_counter()
    rows = score_dataset(model, inputs, work / "scores", args.key, args.batch_rows)
    seconds = time.perf_counter() - t0
    print(f"scored {rows} rows of {inputs} into {work / 'scores'}")
    print(f"{rows / seconds:.0f} rows/s; peak RSS {peak_rss_mib():.0f} MiB "
          f"({before:.0f} MiB before scoring)")


if __name__ == "__main__":
    main()
