"""tessera.models: Keras-style builders whose saved config the CLI reruns to the same run."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd
import pytest

import tessera
from conftest import cli_json, comparable, read_jsonl
from tessera.models import MF, DCNv2, DLRM, MLP, TwoTower, WideAndDeep, load_model

RATINGS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ml-latest-small" / \
    "ratings.csv"


def _synthetic_data(config: Path) -> Dict[str, Any]:
    """The synthetic config's data section, its file paths absolute."""
    data = json.loads(config.read_text())["data"]
    for key in ("train", "validation", "test"):
        if isinstance(data.get(key), str):
            data[key] = str((config.parent / data[key]).resolve())
    return data


@pytest.fixture(scope="module")
def data(synthetic: Path) -> Dict[str, Any]:
    return _synthetic_data(synthetic)


@pytest.fixture(scope="module")
def columns(data: Dict[str, Any]) -> List[Dict[str, Any]]:
    return data["columns"]


# The synthetic files' first line names the columns.
HEADER = {"header": True}


@pytest.fixture(scope="module")
def dlrm(data: Dict[str, Any], columns: List[Dict[str, Any]],
         tmp_path_factory: pytest.TempPathFactory) -> DLRM:
    model = DLRM(columns=columns, embedding_dim=8, bottom=[16], hidden=[32, 16], dropout=0.1,
                 sparse_optimizer="adagrad", sparse_learning_rate=0.05, learning_rate=0.002,
                 seed=7, name="py-dlrm", data_options=HEADER)
    model.fit(data["train"], test_data=data["test"], epochs=2, batch_size=128, device="cpu",
              run_dir=tmp_path_factory.mktemp("models") / "dlrm")
    return model


def test_builder_keys_are_the_config(columns: List[Dict[str, Any]]) -> None:
    model = DCNv2(columns=columns, embedding_dim=4, bottom=[], cross_layers=2, low_rank=3,
                  structure="parallel", hidden=[8], optimizer={"type": "sgd", "momentum": 0.5},
                  learning_rate=0.01, table_dtype="bf16", seed=3)
    config = model.config()
    assert config["task"] == "behaviour" and config["seed"] == 3
    assert config["model"] == {"type": "dcn_v2", "embedding_dim": 4, "hidden": [8], "bottom": [],
                               "cross": {"layers": 2, "low_rank": 3, "structure": "parallel"},
                               "table_dtype": "bf16"}
    assert config["train"]["optimizer"] == {"type": "sgd", "momentum": 0.5, "lr": 0.01}
    # config() is a copy: editing it leaves the model alone.
    config["model"]["hidden"].append(99)
    assert model.config()["model"]["hidden"] == [8]


def test_saved_config_reruns_in_the_cli(cli: str, dlrm: DLRM, tmp_path: Path) -> None:
    saved = dlrm.save(tmp_path / "saved")
    assert (saved / "model.tsm").read_bytes() == dlrm.model.path.read_bytes()
    config = json.loads((saved / "config.json").read_text())
    assert config == dlrm.config()
    assert config["model"]["type"] == "dlrm" and config["train"]["epochs"] == 2
    cli_dir = tmp_path / "cli"
    result = cli_json(cli, "train", str(saved / "config.json"), "--device", "cpu", "--run-dir",
                      str(cli_dir), "--quiet")
    assert dlrm.run is not None
    assert comparable(result) == comparable(dlrm.run.result)
    assert comparable(read_jsonl(cli_dir / "metrics.jsonl")) == comparable(dlrm.history)
    assert len(dlrm.history) == 2 and 0.5 < dlrm.run.metrics["auc"] <= 1.0
    assert (cli_dir / "model.tsm").read_bytes() == dlrm.model.path.read_bytes()


def test_evaluate_and_predict_are_the_models(dlrm: DLRM, data: Dict[str, Any]) -> None:
    assert dlrm.run is not None
    metrics = dlrm.evaluate(data["test"], device="cpu")
    assert metrics["auc"] == pytest.approx(dlrm.run.metrics["auc"], abs=1e-12)
    scores = dlrm.predict(data["test"], device="cpu")
    np.testing.assert_array_equal(scores, tessera.load(dlrm.model.path).predict(data["test"]))
    assert scores.shape == (metrics_rows(dlrm, data),)
    assert ((scores >= 0) & (scores <= 1)).all()


def metrics_rows(model: DLRM, data: Dict[str, Any]) -> int:
    return int(model.model.evaluate(data["test"])["rows"])


def test_load_model_answers_as_the_fitted_one(dlrm: DLRM, data: Dict[str, Any],
                                              tmp_path: Path) -> None:
    loaded = load_model(dlrm.save(tmp_path / "m"))
    assert isinstance(loaded, DLRM) and loaded.config() == dlrm.config()
    np.testing.assert_array_equal(loaded.predict(data["test"]), dlrm.predict(data["test"]))


@pytest.mark.parametrize("builder", [MLP, DCNv2, WideAndDeep])
def test_every_tabular_type_trains(builder: Any, data: Dict[str, Any],
                                   columns: List[Dict[str, Any]], tmp_path: Path) -> None:
    model = builder(columns=columns, hidden=[16], embedding_dim=4, seed=1, data_options=HEADER)
    run = model.fit(data["train"], validation_split=0.2, test_data=data["test"], epochs=2,
                    batch_size=32, device="cpu", run_dir=tmp_path / "r")
    resolved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert resolved["model"]["type"] == builder.model_type
    assert resolved["data"]["validation_fraction"] == 0.2
    assert len(run.history) == 2 and 0.5 < run.metrics["auc"] <= 1.0


def _frame(path: str, columns: List[Dict[str, Any]]) -> pd.DataFrame:
    """The synthetic CSV as a DataFrame: numeric columns numbers, categorical columns text."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in columns:
        if c["type"] in ("numeric", "label"):
            df[c["name"]] = pd.to_numeric(df[c["name"]])
    return df


@pytest.mark.parametrize("with_test", [None, "frame", "file"])
def test_a_dataframe_trains_as_its_csv(with_test: Optional[str], data: Dict[str, Any],
                                       columns: List[Dict[str, Any]], tmp_path: Path) -> None:
    # A frame takes the engine's data= route, with a test frame or a test file beside it: it
    # trains as the same rows read from the file.
    label = next(c["name"] for c in columns if c["type"] == "label")
    # A frame's columns carry no transform: the file's model goes without too.
    plain = [{"name": c["name"], "type": c["type"]} for c in columns]
    train_df, test_df = _frame(data["train"], columns), _frame(data["test"], columns)
    test = {"test_data": test_df if with_test == "frame" else data["test"]} if with_test else {}
    from_frame = WideAndDeep(label=label, hidden=[16], seed=5)
    run = from_frame.fit(train_df, epochs=2, device="cpu", runs_dir=tmp_path / "frame", **test)
    # The rows went to the engine as Arrow (prepared into the run), not through a CSV.
    assert run.run_dir is not None and (run.run_dir / "data" / "manifest.json").is_file()
    assert "train" not in from_frame.config()["data"]
    # The columns were typed from the dtypes as the synthetic config types them.
    assert from_frame.config()["data"]["columns"] == plain
    from_file = WideAndDeep(columns=plain, hidden=[16], seed=5, data_options=HEADER)
    test = {"test_data": data["test"]} if with_test else {}
    file_run = from_file.fit(data["train"], epochs=2, device="cpu", runs_dir=tmp_path / "file",
                             **test)
    assert len(run.history) == 2
    assert comparable(run.history) == comparable(file_run.history)
    assert comparable(run.metrics) == comparable(file_run.metrics)
    np.testing.assert_allclose(from_frame.predict(test_df), from_file.predict(data["test"]),
                               rtol=0, atol=1e-6)
    ours, theirs = from_frame.evaluate(test_df), from_file.evaluate(data["test"])
    assert ours["auc"] == pytest.approx(theirs["auc"], abs=1e-12)
    if with_test:
        assert ours["auc"] == pytest.approx(run.metrics["auc"], abs=1e-12)


def test_a_validation_file_beside_a_frame(data: Dict[str, Any], columns: List[Dict[str, Any]],
                                          tmp_path: Path) -> None:
    # fit(frame, validation_data=FILE, test_data=FILE) trains as the files do, through data=.
    lines = Path(data["train"]).read_text().splitlines(keepends=True)
    train_csv, valid_csv = tmp_path / "train.csv", tmp_path / "valid.csv"
    train_csv.write_text("".join(lines[:1501]))
    valid_csv.write_text("".join(lines[:1] + lines[1501:]))
    plain = [{"name": c["name"], "type": c["type"]} for c in columns]
    mixed = MLP(columns=plain, hidden=[8], seed=3, data_options=HEADER)
    run = mixed.fit(_frame(str(train_csv), columns), validation_data=str(valid_csv),
                    test_data=data["test"], epochs=2, device="cpu", run_dir=tmp_path / "mixed")
    assert run.run_dir is not None and (run.run_dir / "data" / "manifest.json").is_file()
    files = MLP(columns=plain, hidden=[8], seed=3, data_options=HEADER)
    file_run = files.fit(str(train_csv), validation_data=str(valid_csv), test_data=data["test"],
                         epochs=2, device="cpu", run_dir=tmp_path / "files")
    assert run.result["validation"]["count"] == 500
    assert comparable(run.history) == comparable(file_run.history)
    assert comparable(run.metrics) == comparable(file_run.metrics)
    # The saved config names the files and the frame's CSV: the CLI reruns it.
    saved = json.loads((mixed.save(tmp_path / "saved") / "config.json").read_text())
    assert saved["data"]["validation"] == str(valid_csv.resolve())
    assert saved["data"]["test"] == str(Path(data["test"]).resolve())
    assert Path(saved["data"]["train"]).is_file()


@pytest.mark.parametrize("kind", ["arrow", "numpy"])
def test_arrow_tables_and_numpy_dicts_train_as_the_dataframe(kind: str, data: Dict[str, Any],
                                                             columns: List[Dict[str, Any]],
                                                             tmp_path: Path) -> None:
    import pyarrow as pa

    label = next(c["name"] for c in columns if c["type"] == "label")
    df = _frame(data["train"], columns)
    other = pa.Table.from_pandas(df) if kind == "arrow" else {
        name: df[name].to_numpy() for name in df.columns}
    runs = []
    for source in (df, other):
        model = DCNv2(label=label, hidden=[8], cross_layers=1, seed=9)
        runs.append(model.fit(source, epochs=1, device="cpu", runs_dir=tmp_path / kind))
        assert [c["type"] for c in model.config()["data"]["columns"]] == \
            [c["type"] for c in columns]
        scores = model.predict(other)
        assert scores.shape == (len(df),)
    assert comparable(runs[0].history) == comparable(runs[1].history)


def test_a_record_batch_stream_is_read_once(data: Dict[str, Any], columns: List[Dict[str, Any]],
                                            tmp_path: Path) -> None:
    import pyarrow as pa

    label = next(c["name"] for c in columns if c["type"] == "label")
    table = pa.Table.from_pandas(_frame(data["train"], columns))
    stream = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=300))
    from_stream = MLP(label=label, hidden=[8], seed=4)
    run = from_stream.fit(stream, epochs=1, device="cpu", runs_dir=tmp_path / "s")
    # The columns came from the stream's schema, which left every row for training.
    assert [c["type"] for c in from_stream.config()["data"]["columns"]] == \
        [c["type"] for c in columns]
    from_table = MLP(label=label, hidden=[8], seed=4)
    table_run = from_table.fit(table, epochs=1, device="cpu", runs_dir=tmp_path / "t")
    assert comparable(run.history) == comparable(table_run.history)
    if "data" in inspect.signature(tessera.train).parameters:
        # The engine read the stream itself: nothing is left to write beside a saved config.
        with pytest.raises(ValueError, match="one-pass stream"):
            from_stream.save(tmp_path / "saved")
    else:  # written as CSV before training, which save copies
        assert Path(from_stream.save(tmp_path / "saved") / "train.csv").is_file()


def test_ignored_frame_columns_are_left_out(data: Dict[str, Any], columns: List[Dict[str, Any]],
                                            tmp_path: Path) -> None:
    label = next(c["name"] for c in columns if c["type"] == "label")
    df = _frame(data["train"], columns)
    keyed = df.assign(row_id=np.arange(len(df)), note="x")
    plain = MLP(label=label, hidden=[8], seed=3)
    with_keys = MLP(label=label, hidden=[8], seed=3, ignore=["row_id", "note"])
    runs = [m.fit(f, epochs=1, device="cpu", runs_dir=tmp_path / "r")
            for m, f in ((plain, df), (with_keys, keyed))]
    types = {c["name"]: c["type"] for c in with_keys.config()["data"]["columns"]}
    assert types["row_id"] == "ignore" and types["note"] == "ignore"
    assert comparable(runs[0].history) == comparable(runs[1].history)
    np.testing.assert_array_equal(with_keys.predict(keyed), plain.predict(df))
    with pytest.raises(ValueError, match="ignore= names columns the frame lacks: nope"):
        MLP(label=label, ignore=["nope"]).fit(df, epochs=1, device="cpu")


def test_a_frame_model_saves_a_config_the_cli_reruns(cli: str, data: Dict[str, Any],
                                                      columns: List[Dict[str, Any]],
                                                      tmp_path: Path) -> None:
    label = next(c["name"] for c in columns if c["type"] == "label")
    model = MLP(label=label, hidden=[8], seed=2)
    model.fit(_frame(data["train"], columns), epochs=1, device="cpu", run_dir=tmp_path / "py")
    saved = model.save(tmp_path / "saved")
    config = json.loads((saved / "config.json").read_text())
    assert Path(config["data"]["train"]).parent == saved.resolve()
    result = cli_json(cli, "train", str(saved / "config.json"), "--device", "cpu", "--run-dir",
                      str(tmp_path / "cli"), "--quiet")
    assert model.run is not None
    assert comparable(result["validation"]) == comparable(model.run.result["validation"])


def test_misuse_is_refused(columns: List[Dict[str, Any]], data: Dict[str, Any],
                           tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="columns= is needed"):
        DLRM().fit(data["train"], epochs=1, device="cpu", run_dir=tmp_path / "a")
    with pytest.raises(RuntimeError, match="call fit first"):
        MLP(columns=columns).predict(data["test"])
    with pytest.raises(tessera.ConfigError, match="sparse_optimizer"):
        DLRM(columns=columns, sparse_optimizer="rmsprop", data_options=HEADER).fit(
            data["train"], epochs=1, device="cpu", run_dir=tmp_path / "b")
    with pytest.raises(ValueError, match="label"):
        MLP().fit(pd.DataFrame({"x": [1.0, 2.0]}), epochs=1, device="cpu")


@pytest.fixture(scope="module")
def ratings_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 4,000 ratings of ml-latest-small (a few dozen users, whole)."""
    assert RATINGS.is_file(), f"ml-latest-small is not at {RATINGS}"
    path = tmp_path_factory.mktemp("ratings") / "ratings.csv"
    lines = RATINGS.read_text().splitlines()[:4001]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_two_tower_recommends_and_reruns(cli: str, ratings_slice: Path, tmp_path: Path) -> None:
    model = TwoTower(dim=16, negatives=2, learning_rate=0.05, k=5, seed=4)
    run = model.fit(ratings_slice, epochs=2, batch_size=256, device="cpu",
                    run_dir=tmp_path / "py")
    assert run.result["task"] == "recommend"
    every = model.recommend(k=5)
    assert list(every.columns) == ["user", "rank", "item", "score"]
    some = model.recommend(users=[1, 4], k=5)
    expected = every[every.user.isin([1, 4])].reset_index(drop=True)
    pd.testing.assert_frame_equal(some, expected)
    # predict on (user, item) pairs scores as recommend ranks.
    pairs = some[["user", "item"]]
    np.testing.assert_allclose(model.predict(pairs), some["score"].to_numpy(), atol=2e-6)
    tables = model.embeddings()
    assert tables["item"].shape == (tables["item_ids"].shape[0], 16)
    saved = model.save(tmp_path / "saved")
    result = cli_json(cli, "train", str(saved / "config.json"), "--device", "cpu", "--run-dir",
                      str(tmp_path / "cli"), "--quiet")
    assert comparable(result) == comparable(run.result)
    assert isinstance(load_model(saved), TwoTower)


def test_mf_from_a_frame_holds_out_its_share(cli: str, ratings_slice: Path,
                                             tmp_path: Path) -> None:
    ratings = pd.read_csv(ratings_slice)
    model = MF(dim=8, test_fraction=0.2, learning_rate=0.05, seed=6)
    run = model.fit(ratings, epochs=2, device="cpu", run_dir=tmp_path / "py")
    resolved = json.loads((tmp_path / "py" / "config.json").read_text())
    assert resolved["model"] == "mf" and resolved["data"]["test_fraction"] == 0.2
    assert len(run.history) == 2
    pairs = ratings.iloc[:50]
    scores = model.predict(pairs)
    assert scores.shape == (50,) and np.isfinite(scores).all()
    low, high = ratings.rating.min(), ratings.rating.max()
    assert ((scores >= low) & (scores <= high)).all()  # clipped to the training range
    saved = model.save(tmp_path / "saved")
    result = cli_json(cli, "train", str(saved / "config.json"), "--run-dir", str(tmp_path / "cli"),
                      "--quiet")
    assert comparable(result) == comparable(run.result)
    assert isinstance(load_model(saved), MF)
