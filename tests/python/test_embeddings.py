"""Model.embeddings(): every table model's tables, as views of the model's memory.

The values are checked against an independent read of the model file: the archive parsed here
with numpy (format in host/core/archive.h, its CRC-32 checked with zlib) and the table layout
worked out from the file's own header (the fitted columns' row counts, the model type), not
through the engine. Recommendation models are checked against the CLI's `export`.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
import zlib
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import pytest

import tessera
from conftest import cli_json

RATINGS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ml-latest-small" / \
    "ratings.csv"
_DTYPES = {"f32": "<f4", "i32": "<i4", "i64": "<i8"}


def read_archive(path: Path) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """A tessera archive's metadata and tensors, read with numpy alone."""
    raw = path.read_bytes()
    assert raw[:8] == b"TESSERA1"
    assert zlib.crc32(raw[:-4]) == int.from_bytes(raw[-4:], "little")
    header_bytes = int.from_bytes(raw[8:16], "little")
    header = json.loads(raw[16:16 + header_bytes])
    start = 16 + header_bytes
    tensors = {}
    for t in header["tensors"]:
        dtype = np.dtype(_DTYPES[t["dtype"]])
        flat = np.frombuffer(raw, dtype, count=t["bytes"] // dtype.itemsize,
                             offset=start + t["offset"])
        tensors[t["name"]] = flat.reshape(t["shape"])
    return header["meta"], tensors


def expected_tables(meta: Dict[str, Any], weights: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The tables a behaviour model file holds, cut from its weights by its header: one table
    per categorical column (libSVM: per field, or one "features"), in the model's order."""
    config = meta["config"]
    kind = config["model"].get("type", "mlp")
    if config["data"].get("format") == "libsvm":
        fields = config["data"].get("libsvm_field_features") or []
        names = [f"field {i}" for i in range(len(fields))] if fields else ["features"]
        rows = list(fields) if fields else [config["data"]["libsvm_features"]]
    else:
        cats = meta["preprocessor"]["categorical"]
        names, rows = [c["name"] for c in cats], [c["size"] for c in cats]
    out: Dict[str, np.ndarray] = {}
    if kind == "mlp":
        # The MLP's one table numbers every column's rows after the columns before it; on
        # libSVM rows its first layer's rows are the features.
        table = weights["dense0.weight" if config["data"].get("format") == "libsvm"
                        else "embedding.table"]
        starts = np.cumsum([0] + rows)
        for name, begin, n in zip(names, starts, rows):
            out[name] = table[begin:begin + n]
        return out
    dim = config["model"]["embedding_dim"]
    flat = weights["embedding.tables"]
    shapes = [(name, n, dim) for name, n in zip(names, rows)]
    if kind == "wide_deep":
        shapes += [("wide:" + name, n, 1) for name, n in zip(names, rows)]
    at = 0
    for name, n, d in shapes:
        out[name] = flat[at:at + n * d].reshape(n, d)
        at += n * d
    assert at == flat.size, "the tables are the whole flat buffer"
    return out


def _absolute(config: Path) -> Dict[str, Any]:
    cfg = json.loads(config.read_text())
    for key in ("train", "validation", "test"):
        if isinstance(cfg["data"].get(key), str):
            cfg["data"][key] = str((config.parent / cfg["data"][key]).resolve())
    return cfg


def _train(cfg: Dict[str, Any], model: Dict[str, Any], run_dir: Path,
           **data: Any) -> tessera.Model:
    config = {**cfg, "model": model, "data": {**cfg["data"], **data},
              "train": {"epochs": 1, "batch_size": 128}}
    run = tessera.train(config, device="cpu", run_dir=run_dir, quiet=True)
    assert isinstance(run, tessera.Run)
    return run.load()


MODELS = {
    "mlp": {"type": "mlp", "hidden": [16], "embedding_dim": 4},
    "dlrm": {"type": "dlrm", "embedding_dim": 8, "bottom": [16], "hidden": [16]},
    "dcn_v2": {"type": "dcn_v2", "embedding_dim": 4, "hidden": [16]},
    "wide_deep": {"type": "wide_deep", "embedding_dim": 4, "hidden": [16]},
    "dlrm_bf16": {"type": "dlrm", "embedding_dim": 8, "hidden": [16], "table_dtype": "bf16"},
    "wide_deep_f16": {"type": "wide_deep", "embedding_dim": 4, "hidden": [16],
                      "table_dtype": "f16"},
}


@pytest.fixture(scope="module")
def behaviour(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """A one-epoch model file of each behaviour table model on the synthetic data."""
    cfg = _absolute(synthetic)
    root = tmp_path_factory.mktemp("emb")
    return {name: _train(cfg, model, root / name).path for name, model in MODELS.items()}


def _libsvm_rows(n: int, fields: bool, seed: int) -> str:
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        idx = rng.choice(12, size=4, replace=False)
        x = rng.uniform(-1, 1, size=4)
        label = "+1" if x[0] + (idx[0] % 3) - 1 > 0 else "-1"
        if fields:  # field f holds indices f, f + 3, ...: three fields
            lines.append(label + "".join(f" {i % 3}:{i // 3}:{v:.3f}" for i, v in zip(idx, x)))
        else:
            lines.append(label + "".join(f" {i}:{v:.3f}" for i, v in zip(idx, x)))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", list(MODELS))
def test_behaviour_tables_are_the_model_files(name: str, behaviour: Dict[str, Path]) -> None:
    path = behaviour[name]
    tables = tessera.load(path).embeddings()
    meta, weights = read_archive(path)
    expected = expected_tables(meta, weights)
    assert list(tables) == list(expected) and len(tables) == 3 * (2 if "wide" in name else 1)
    for table, want in expected.items():
        got = tables[table]
        assert got.dtype == np.float32 and got.shape == want.shape, table
        np.testing.assert_array_equal(got, want, err_msg=table)
    categories = {c["name"]: c for c in meta["preprocessor"]["categorical"]}
    assert tables["region"].shape[0] == 1 + len(categories["region"]["tokens"])


@pytest.mark.parametrize("name", list(MODELS))
def test_behaviour_tables_view_one_buffer(name: str, behaviour: Dict[str, Path]) -> None:
    """Every table is a read-only view into one allocation: the tables lie one after another in
    the flat buffer (the MLP's: its one table), so each starts where the one before ends."""
    tables = tessera.load(behaviour[name]).embeddings()
    arrays = list(tables.values())
    for a in arrays:
        assert not a.flags.writeable and a.flags.c_contiguous
        with pytest.raises(ValueError):
            a[0, 0] = 1.0
    for before, after in zip(arrays, arrays[1:]):
        assert after.__array_interface__["data"][0] == \
            before.__array_interface__["data"][0] + before.nbytes
        assert np.shares_memory(before, after) is False  # apart, inside one buffer
    first = arrays[0].__array_interface__["data"][0]
    whole = np.asarray(_Addressed(first, sum(a.nbytes for a in arrays)))
    # A view spanning the buffer overlaps every table (the memory is one allocation).
    assert all(np.shares_memory(whole, a) for a in arrays)


class _Addressed:
    """A read-only buffer at a raw address, for np.shares_memory checks only (never written)."""

    def __init__(self, address: int, nbytes: int) -> None:
        self.__array_interface__ = {"data": (address, True), "shape": (nbytes,), "typestr": "|u1",
                                    "version": 3}


def test_sixteen_bit_tables_hold_sixteen_bit_values(behaviour: Dict[str, Path]) -> None:
    bf16 = tessera.load(behaviour["dlrm_bf16"]).embeddings()
    for name, t in bf16.items():
        bits = t.view(np.uint32)
        assert not (bits & 0xFFFF).any(), f"{name}: not bf16 values"  # low half zero
    f16 = tessera.load(behaviour["wide_deep_f16"]).embeddings()
    for name, t in f16.items():
        np.testing.assert_array_equal(t.astype(np.float16).astype(np.float32), t, err_msg=name)


def test_wide_tables_start_at_their_columns_rows(behaviour: Dict[str, Path]) -> None:
    """A meaning check of the split: wide tables start at zero and only trained rows move; the
    out-of-vocabulary row 0 is never trained (every token of the synthetic columns is in the
    vocabulary), so each wide table's row 0 is still exactly 0 while its other rows are not, and
    each deep table's row 0 is its uniform initial value, inside +-1/sqrt(rows)."""
    tables = tessera.load(behaviour["wide_deep"]).embeddings()
    for column in ("device", "region", "plan"):
        wide, deep = tables["wide:" + column], tables[column]
        assert wide.shape == (deep.shape[0], 1)
        assert wide[0, 0] == 0.0 and np.all(wide[1:, 0] != 0.0), column
        assert np.all(np.abs(deep[0]) <= 1 / np.sqrt(deep.shape[0])) and np.any(deep[0] != 0)


def test_tables_outlive_the_model(behaviour: Dict[str, Path]) -> None:
    path = behaviour["dcn_v2"]
    model = tessera.load(path)
    tables = model.embeddings()
    kept = tables["plan"]
    del model, tables
    gc.collect()
    junk = [np.full(1 << 16, 7.0, np.float32) for _ in range(64)]  # reuse freed memory if any
    meta, weights = read_archive(path)
    np.testing.assert_array_equal(kept, expected_tables(meta, weights)["plan"])
    assert junk[0][0] == 7.0


def test_libsvm_tables_are_the_layouts(tmp_path: Path) -> None:
    """libSVM rows: the MLP's table is its first layer (one "features" table); libFM rows give
    a table model one table per field."""
    (tmp_path / "train.svm").write_text(_libsvm_rows(400, fields=False, seed=1))
    (tmp_path / "train.ffm").write_text(_libsvm_rows(400, fields=True, seed=2))
    cfg = {"task": "behaviour", "name": "svm", "seed": 1,
           "data": {"format": "libsvm", "train": str(tmp_path / "train.svm")}}
    mlp = _train(cfg, {"type": "mlp", "hidden": [8]}, tmp_path / "mlp")
    wide = _train(cfg, {"type": "wide_deep", "embedding_dim": 4, "hidden": [8]},
                  tmp_path / "wd", train=str(tmp_path / "train.ffm"))
    for model, names in ((mlp, ["features"]),
                         (wide, ["field 0", "field 1", "field 2",
                                 "wide:field 0", "wide:field 1", "wide:field 2"])):
        tables = model.embeddings()
        meta, weights = read_archive(model.path)
        expected = expected_tables(meta, weights)
        assert list(tables) == names == list(expected)
        for name, want in expected.items():
            np.testing.assert_array_equal(tables[name], want, err_msg=name)
    assert mlp.embeddings()["features"].shape == (12, 8)


def test_no_copy_of_the_tables(synthetic: Path, tmp_path: Path) -> None:
    """A 12.8 MB table: numpy allocates nothing table-sized (tracemalloc traces numpy's data
    buffers), and the process grows by the one loaded copy, not two."""
    cfg = _absolute(synthetic)
    cfg["data"]["categorical"] = {"hash_buckets": 200_000}
    model = _train(cfg, {"type": "dlrm", "embedding_dim": 16, "hidden": [8]}, tmp_path / "big")
    table_bytes = 3 * 200_000 * 16 * 4
    gc.collect()
    rss_before = _rss()
    tracemalloc.start()
    tables = model.embeddings()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    grown = _rss() - rss_before
    assert sum(t.nbytes for t in tables.values()) == table_bytes
    assert peak < table_bytes // 20, peak
    assert grown < 1.6 * table_bytes, (grown, table_bytes)
    del tables
    gc.collect()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_an_mlp_without_categorical_columns_has_no_tables(synthetic: Path,
                                                          tmp_path: Path) -> None:
    cfg = _absolute(synthetic)
    cfg["data"]["columns"] = [c if c["type"] != "categorical" else {**c, "type": "ignore"}
                              for c in cfg["data"]["columns"]]
    model = _train(cfg, {"type": "mlp", "hidden": [8]}, tmp_path / "dense")
    assert model.embeddings() == {}


# ---- Recommendation models --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ratings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert RATINGS.is_file(), f"ml-latest-small is not at {RATINGS}"
    path = tmp_path_factory.mktemp("ratings") / "ratings.csv"
    path.write_text("\n".join(RATINGS.read_text().splitlines()[:3001]) + "\n")
    return path


@pytest.mark.parametrize("kind", ["mf", "two_tower"])
def test_recommendation_tables_are_the_cli_export(kind: str, ratings: Path, cli: str,
                                                  tmp_path: Path) -> None:
    config = {"task": "recommend", "name": kind, "model": kind, "seed": 3,
              "data": {"train": str(ratings), "on_error": "error"},
              "embeddings": {"dim": 8}, "train": {"epochs": 1, "batch_size": 256}}
    run = tessera.train(config, device="cpu", run_dir=tmp_path / "run", quiet=True)
    assert isinstance(run, tessera.Run)
    model = run.load()
    tables = model.embeddings()
    cli_json(cli, "export", str(model.path), "--format", "npy", str(tmp_path / "npy"))
    files = sorted(p.stem for p in (tmp_path / "npy").glob("*.npy"))
    assert sorted(tables) == files and {"user", "item", "user_ids", "item_ids"} <= set(files)
    for name in files:
        want = np.load(tmp_path / "npy" / f"{name}.npy")
        assert tables[name].dtype == want.dtype, name
        np.testing.assert_array_equal(tables[name], want, err_msg=name)
        assert not tables[name].flags.writeable
    # Tables of the same ids share one ids array's memory.
    for name in tables:
        if name.endswith("_ids") and name != "user_ids" and name.startswith("user"):
            assert np.shares_memory(tables[name], tables["user_ids"])
    del model
    gc.collect()
    np.testing.assert_array_equal(tables["item"], np.load(tmp_path / "npy" / "item.npy"))


def test_other_tasks_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [",".join(str(int(v)) for v in rng.integers(0, 16, 64)) + f",{i % 2}" for i in range(40)]
    (tmp_path / "digits.csv").write_text("\n".join(rows) + "\n")
    config = {"task": "image", "name": "emb", "seed": 2,
              "data": {"format": "digits_csv", "train": str(tmp_path / "digits.csv"),
                       "test_fraction": 0.2, "validation_fraction": 0.2, "classes": 10},
              "model": {"layers": [{"type": "flatten"}]},
              "train": {"epochs": 1, "batch_size": 8}}
    run = tessera.train(config, device="cpu", run_dir=tmp_path / "run", quiet=True)
    assert isinstance(run, tessera.Run)
    with pytest.raises(tessera.UsageError, match="is a model of the image task; embeddings.. "
                                                 "reads the tables of behaviour and "
                                                 "recommendation"):
        run.load().embeddings()
    with pytest.raises(tessera.IoError):
        tessera.load(tmp_path / "missing.tsm")
