"""``data=`` inputs as Arrow streams for the engine (host/data/arrow_stream.h).

A pandas DataFrame, a pyarrow Table / RecordBatch / RecordBatchReader / Dataset, a Parquet file
or directory of Parquet files, a dict of numpy arrays, or any object with ``__arrow_c_stream__``
crosses into C++ through the Arrow C Data Interface (a PyCapsule holding an ArrowArrayStream):
the engine reads the columns' buffers where they are, batch by batch. pyarrow is needed only for
these inputs (``pip install tessera[test]`` or ``pip install pyarrow``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

_PARQUET_SUFFIXES = (".parquet", ".pq")


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.dataset  # noqa: F401  (the Parquet datasets)
    except ImportError as e:  # pragma: no cover - pyarrow is a test extra
        raise ImportError("tabular data= inputs need pyarrow: pip install pyarrow") from e
    return pyarrow


def is_parquet_path(data: Any) -> bool:
    """A Parquet file (by its suffix) or a directory holding Parquet files."""
    if not isinstance(data, (str, os.PathLike)):
        return False
    p = Path(data)
    if p.suffix.lower() in _PARQUET_SUFFIXES:
        return True
    return p.is_dir() and any(q.suffix.lower() in _PARQUET_SUFFIXES for q in p.rglob("*"))


class Source:
    """Tabular rows the engine can read, as many times as ``stream()`` is called."""

    def __init__(self, name: str, make: Callable[[], Any], reusable: bool = True) -> None:
        self.name = name
        self._make = make
        self._reusable = reusable
        self._used = False

    def stream(self) -> Any:
        """A fresh 'arrow_array_stream' PyCapsule of the rows."""
        if self._used and not self._reusable:
            raise ValueError(f"{self.name} is a one-pass stream and was read already")
        self._used = True
        return self._make()


def _from_pandas(pa: Any, df: Any) -> Any:
    """The DataFrame as an Arrow table: its numeric columns' buffers as they are; an object
    column of mixed values (numbers and text) as the text a CSV of it would hold."""
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        columns = {}
        for name in df.columns:
            col = df[name]
            if col.dtype == object:
                col = col.map(lambda v: None if v is None or v != v else str(v))
            columns[str(name)] = pa.array(col, from_pandas=True)
        return pa.table(columns)


def _dataset_source(ds: Any, name: str, batch_rows: int) -> Source:
    """A dataset read one fragment (file) at a time, batch by batch, with no read-ahead across
    files: memory stays about one row group whatever the dataset's size (a scanner over the
    whole dataset reads ahead as fast as it can)."""
    pa = _pyarrow()

    def batches() -> Any:
        for fragment in ds.get_fragments():
            yield from fragment.to_batches(schema=ds.schema, batch_size=batch_rows,
                                           batch_readahead=0, fragment_readahead=0)

    return Source(name, lambda: pa.RecordBatchReader.from_batches(
        ds.schema, batches()).__arrow_c_stream__())


def source(data: Any, *, batch_rows: int = 65536, spool_dir: Optional[str] = None) -> Optional[Source]:
    """The Arrow source of ``data``, or None when ``data`` is a path the CLI reads itself (CSV,
    TSV, Criteo text). A one-pass stream (RecordBatchReader) is written to Parquet in
    ``spool_dir`` first when given (training reads its rows more than once), else read once."""
    if isinstance(data, (str, os.PathLike)):
        if not is_parquet_path(data):
            return None
        pa = _pyarrow()
        return _dataset_source(pa.dataset.dataset(os.fspath(data), format="parquet"),
                               os.fspath(data), batch_rows)
    pa = _pyarrow()
    mod = type(data).__module__
    if mod.startswith("pandas") and type(data).__name__ == "DataFrame":
        return Source("DataFrame", _from_pandas(pa, data).__arrow_c_stream__)
    if isinstance(data, pa.Table):
        return Source("Table", data.__arrow_c_stream__)
    if isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
        return Source("RecordBatch", table.__arrow_c_stream__)
    if isinstance(data, pa.dataset.Dataset):
        return _dataset_source(data, "Dataset", batch_rows)
    if isinstance(data, pa.RecordBatchReader):
        if spool_dir is None:
            return Source("RecordBatchReader", data.__arrow_c_stream__, reusable=False)
        import pyarrow.parquet as pq

        path = os.path.join(spool_dir, "spooled.parquet")
        with pq.ParquetWriter(path, data.schema) as w:
            for batch in data:
                w.write_batch(batch)
        return _dataset_source(pa.dataset.dataset(path, format="parquet"), "RecordBatchReader",
                               batch_rows)
    if isinstance(data, Mapping):
        # from_pandas: NaN and None in an object (text) array are nulls, as pandas has them.
        table = pa.table({str(k): v if isinstance(v, (pa.Array, pa.ChunkedArray))
                          else pa.array(v, from_pandas=True) for k, v in data.items()})
        return Source("dict", table.__arrow_c_stream__)
    if hasattr(data, "__arrow_c_stream__"):
        return Source(type(data).__name__, data.__arrow_c_stream__)
    raise TypeError(
        "data must be a path (any format the CLI reads, or Parquet), a pandas DataFrame, a "
        "pyarrow Table / RecordBatch / RecordBatchReader / Dataset, a dict of numpy arrays or an "
        "object with __arrow_c_stream__, not " + type(data).__name__)
