"""Reference CSV readers for bench/ingest.sh: a Criteo-layout file (label, I1..I13, C1..C26, tab
separated, empty = missing; `tessera make-synthetic DIR --layout criteo`) parsed into columns by
pyarrow's CSV reader and by pandas.read_csv, timed, one JSON line each, then a summary line.

  bench/.venv/bin/python bench/arrow_ingest.py FILE [--threads N] [--reps N] [--readers a,b]

Both readers parse only: label int32, I1..I13 int64 (nullable: an empty field is null / NaN),
C1..C26 strings (the hex tokens as text; no vocabulary, no normalisation, nothing written).
  pyarrow  pyarrow.csv.read_csv with use_threads=True and pyarrow.set_cpu_count(N) /
           set_io_thread_count(N): N threads, as tessera prep --threads N;
  pandas   pandas.read_csv(engine="c"): single-threaded (its C parser has no threads option),
           whatever N is.
The file is read once before timing so every reader (and tessera prep) starts from the page cache.
Each reader runs --reps times; the fastest run is reported (rows/s and MB/s of the file), and
the least CPU time (user + system, all threads) beside it: on a busy machine the wall time mostly
measures the neighbours, CPU seconds per row much less so.
"""
import argparse
import json
import os
import resource
import time

N_DENSE, N_CAT = 13, 26
NAMES = ["label"] + [f"I{i}" for i in range(1, N_DENSE + 1)] + [f"C{i}" for i in
                                                                 range(1, N_CAT + 1)]


def read_pyarrow(path, threads):
    import pyarrow as pa
    import pyarrow.csv as csv
    pa.set_cpu_count(threads)
    pa.set_io_thread_count(threads)
    types = {"label": pa.int32()}
    types.update({f"I{i}": pa.int64() for i in range(1, N_DENSE + 1)})
    types.update({f"C{i}": pa.string() for i in range(1, N_CAT + 1)})
    table = csv.read_csv(
        path,
        read_options=csv.ReadOptions(use_threads=True, column_names=NAMES),
        parse_options=csv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=csv.ConvertOptions(column_types=types, null_values=[""],
                                           strings_can_be_null=False))
    return table.num_rows, table.num_columns


def read_pandas(path, threads):
    import numpy as np
    import pandas as pd
    dtypes = {"label": np.int32}
    dtypes.update({f"I{i}": "Int64" for i in range(1, N_DENSE + 1)})
    dtypes.update({f"C{i}": object for i in range(1, N_CAT + 1)})
    df = pd.read_csv(path, sep="\t", header=None, names=NAMES, dtype=dtypes, engine="c",
                     na_values=[""], keep_default_na=False, quoting=3)
    return len(df), df.shape[1]


def cpu_seconds():
    """User + system CPU time of this process, every thread (pyarrow's pool included)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


READERS = {"pyarrow": read_pyarrow, "pandas": read_pandas}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--readers", default="pyarrow,pandas")
    args = ap.parse_args()
    mb = os.path.getsize(args.file) / 1e6
    with open(args.file, "rb") as f:  # into the page cache
        while f.read(1 << 24):
            pass
    import pandas  # noqa: F401 (imported before any clock starts)
    import pyarrow.csv  # noqa: F401
    summary = {"summary": "arrow_ingest", "file_mb": round(mb, 2), "threads": args.threads}
    for name in [r for r in args.readers.split(",") if r]:
        if name not in READERS:
            raise SystemExit(f"unknown reader '{name}' (pyarrow, pandas)")
        best = best_cpu = None
        for rep in range(args.reps):
            t0, c0 = time.perf_counter(), cpu_seconds()
            rows, cols = READERS[name](args.file, args.threads)
            sec, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            if cols != len(NAMES):
                raise SystemExit(f"{name}: {cols} columns, expected {len(NAMES)}")
            print(json.dumps({"reader": name, "rep": rep, "seconds": round(sec, 4),
                              "cpu_s": round(cpu, 4), "rows": rows,
                              "loadavg_1m": os.getloadavg()[0]}), flush=True)
            best = sec if best is None else min(best, sec)
            best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
        summary[name] = {"best_s": round(best, 4), "best_cpu_s": round(best_cpu, 4),
                         "rows_per_cpu_s": round(rows / best_cpu), "rows": rows,
                         "rows_per_s": round(rows / best), "mb_per_s": round(mb / best, 1),
                         "threads": 1 if name == "pandas" else args.threads}
    import pandas
    import pyarrow
    summary["versions"] = {"pyarrow": pyarrow.__version__, "pandas": pandas.__version__}
    summary["loadavg_1m"] = os.getloadavg()[0]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
