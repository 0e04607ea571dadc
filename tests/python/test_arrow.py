"""data= as tabular data: pandas DataFrames, pyarrow tables and streams, Parquet, dicts of numpy
arrays, read by the engine through the Arrow C Data Interface (host/data/arrow_stream.h).

Training on a DataFrame gives the metrics `tessera train` gives on the same rows written as CSV
(same seed); scoring a table gives `tessera predict`'s scores without copying the input.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tessera
from conftest import cli_json, comparable, read_jsonl, run_cli


def _frame(synthetic: Path) -> pd.DataFrame:
    """The synthetic train rows, with missing values put in (nulls become missing tokens)."""
    df = pd.read_csv(synthetic.parent / "train.csv")
    df.loc[df.index % 17 == 3, "age"] = np.nan
    df.loc[df.index % 23 == 5, "region"] = None
    return df


def _config(synthetic: Path, **data: Any) -> Dict[str, Any]:
    cfg = json.loads(synthetic.read_text())
    section = {k: v for k, v in cfg["data"].items() if k not in ("train", "test")}
    cfg["data"] = {**section, **data}
    return cfg


def _run_cli_on_csv(cli: str, cfg: Dict[str, Any], tmp_path: Path, name: str) -> Path:
    cfg_path = tmp_path / f"{name}.json"
    cfg_path.write_text(json.dumps(cfg))
    run_dir = tmp_path / name
    run_cli(cli, "train", str(cfg_path), "--device", "cpu", "--epochs", "2", "--run-dir",
            str(run_dir), "--quiet")
    return run_dir


def test_a_dataframe_trains_as_its_csv_does_with_the_cli(cli: str, synthetic: Path,
                                                          tmp_path: Path) -> None:
    df = _frame(synthetic)
    csv = tmp_path / "rows.csv"
    df.to_csv(csv, index=False)
    cli_dir = _run_cli_on_csv(cli, _config(synthetic, train=str(csv)), tmp_path, "cli")
    run = tessera.train(_config(synthetic), data=df, device="cpu", epochs=2,
                        run_dir=tmp_path / "py", quiet=True)
    cli_history = read_jsonl(cli_dir / "metrics.jsonl")
    assert len(run.history) == 2
    assert comparable(run.history) == comparable(cli_history)
    assert run.metrics == json.loads((cli_dir / "result.json").read_text())["validation"]
    assert 0.5 < run.metrics["auc"] <= 1.0
    # A path is read by the engine as the CLI reads it.
    from_path = tessera.train(_config(synthetic), data=csv, device="cpu", epochs=2,
                              run_dir=tmp_path / "path", quiet=True)
    assert comparable(from_path.history) == comparable(cli_history)
    # The rows were prepared beside the run, trained on, then moved into it.
    manifest = json.loads((tmp_path / "py" / "data" / "manifest.json").read_text())
    assert manifest["complete"] is True
    # The same model, weight for weight: scores of the test rows equal.
    test = pd.read_csv(synthetic.parent / "test.csv")
    cli_model = tessera.load(cli_dir / "model.tsm")
    assert np.array_equal(run.load().predict(test), cli_model.predict(test))


def test_arrow_tables_parquet_and_dicts_train_alike(synthetic: Path, tmp_path: Path) -> None:
    df = _frame(synthetic)
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, tmp_path / "rows.parquet", row_group_size=300)
    arrays = {name: df[name].to_numpy() for name in df.columns}
    runs = {}
    for name, data in [("table", table), ("parquet", tmp_path / "rows.parquet"),
                       ("reader", pa.RecordBatchReader.from_batches(table.schema,
                                                                    table.to_batches(250))),
                       ("dict", arrays)]:
        runs[name] = tessera.train(_config(synthetic), data=data, device="cpu", epochs=1,
                                   run_dir=tmp_path / name, quiet=True)
    histories = {name: comparable(r.history) for name, r in runs.items()}
    assert histories["parquet"] == histories["table"]
    assert histories["reader"] == histories["table"]
    assert histories["dict"] == histories["table"]


def test_validation_data_is_a_split_of_its_own(cli: str, synthetic: Path, tmp_path: Path) -> None:
    df = _frame(synthetic)
    train, val = df.iloc[:1500], df.iloc[1500:]
    train.to_csv(tmp_path / "t.csv", index=False)
    val.to_csv(tmp_path / "v.csv", index=False)
    cli_dir = _run_cli_on_csv(
        cli, _config(synthetic, train=str(tmp_path / "t.csv"), validation=str(tmp_path / "v.csv")),
        tmp_path, "cli")
    run = tessera.train(_config(synthetic), data=train, validation=val, device="cpu", epochs=2,
                        run_dir=tmp_path / "py", quiet=True)
    assert comparable(run.history) == comparable(read_jsonl(cli_dir / "metrics.jsonl"))
    assert run.history[-1]["validation"]["count"] == 500


def test_predict_on_a_table_equals_the_cli_and_copies_nothing(
        cli: str, synthetic: Path, trained: tessera.Run, tmp_path: Path) -> None:
    test_csv = synthetic.parent / "test.csv"
    out = tmp_path / "cli.csv"
    run_cli(cli, "predict", str(trained.model_path), str(test_csv), str(out), "--quiet")
    cli_scores = np.loadtxt(out, delimiter=",", skiprows=1, usecols=1)
    model = trained.load()
    table = pa.Table.from_pandas(pd.read_csv(test_csv), preserve_index=False)
    # A larger input, so that a copy of it would show: the same rows 40 times (one buffer each).
    big = pa.concat_tables([table] * 40)
    tracemalloc.start()
    scores = model.predict(big)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert scores.dtype == np.float64 and scores.shape == (big.num_rows,)
    assert peak < big.nbytes / 10, (peak, big.nbytes)  # neither the table nor a copy of it
    assert not scores.flags.owndata  # the engine's buffer, handed over as it is
    assert np.allclose(scores[: table.num_rows], cli_scores, atol=5e-7, rtol=0)
    assert np.array_equal(scores[table.num_rows: 2 * table.num_rows], scores[: table.num_rows])
    assert model.last_predict["rows"] == big.num_rows
    # Without the label column, and with the columns in another order.
    reordered = table.drop_columns(["clicked"]).select(["plan", "age", "sessions", "minutes",
                                                        "device", "region"])
    assert np.array_equal(model.predict(reordered), scores[: table.num_rows])


def test_evaluate_on_a_dataframe_equals_the_cli(cli: str, synthetic: Path,
                                                trained: tessera.Run) -> None:
    test_csv = synthetic.parent / "test.csv"
    cli_result = cli_json(cli, "evaluate", str(trained.model_path), str(test_csv))
    result = trained.load().evaluate(pd.read_csv(test_csv))
    for key in ("count", "positives", "auc", "logloss", "accuracy"):
        assert result["metrics"][key] == pytest.approx(cli_result["metrics"][key], abs=1e-6), key
    assert result["rows"] == cli_result["rows"]


def test_bad_rows_raise_data_errors_naming_the_column_and_row(synthetic: Path,
                                                              trained: tessera.Run) -> None:
    df = pd.read_csv(synthetic.parent / "test.csv").astype({"age": object})
    df.loc[2, "age"] = "old"  # a column of numbers and text (read as the CSV's text would be)
    model = trained.load()
    with pytest.raises(tessera.DataError) as e:
        model.predict(df)
    assert str(e.value).startswith("DataFrame:3:column 1 (age): expected a number, got 'old'")
    assert e.value.line == 3
    scores = model.predict(df, on_error="skip")
    assert len(scores) == len(df) - 1
    with pytest.raises(tessera.DataError, match="column 'plan' is not in the data"):
        model.predict(df.drop(columns=["plan"]))
    with pytest.raises(tessera.DataError, match="column 'age' is not in the data"):
        tessera.train(_config(synthetic), data=df.drop(columns=["age"]), device="cpu", epochs=1,
                      quiet=True, runs_dir=str(Path(synthetic).parent / "runs"))
    with pytest.raises(TypeError, match="data must be a path"):
        model.predict(object())


def test_a_producer_error_mid_stream_is_a_data_error_with_its_message(
        synthetic: Path, trained: tessera.Run) -> None:
    table = pa.Table.from_pandas(pd.read_csv(synthetic.parent / "test.csv"), preserve_index=False)

    def batches():
        yield table.slice(0, 100).to_batches()[0]
        raise ValueError("the source went away")

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    with pytest.raises(tessera.DataError, match="the source went away") as e:
        trained.load().predict(reader)
    assert "RecordBatchReader: the Arrow stream's get_next failed" in str(e.value)
    with pytest.raises(ValueError, match="one-pass stream"):
        src = tessera._arrow.source(pa.RecordBatchReader.from_batches(table.schema, []))
        src.stream()
        src.stream()


def test_a_parquet_dataset_trains_through_the_streamed_prepared_reader(
        synthetic: Path, tmp_path: Path) -> None:
    df = _frame(synthetic)
    (tmp_path / "parts").mkdir()
    for i in range(4):  # a dataset of several files
        pq.write_table(pa.Table.from_pandas(df.iloc[i * 500:(i + 1) * 500], preserve_index=False),
                       tmp_path / "parts" / f"part-{i}.parquet")
    cfg = _config(synthetic, read="stream", block_rows=64)
    from_parquet = tessera.train(cfg, data=tmp_path / "parts", device="cpu", epochs=2,
                                 run_dir=tmp_path / "pq", quiet=True)
    from_frame = tessera.train(cfg, data=df, device="cpu", epochs=2, run_dir=tmp_path / "df",
                               quiet=True)
    assert len(from_parquet.history) == 2
    assert comparable(from_parquet.history) == comparable(from_frame.history)
    assert 0.5 < from_parquet.metrics["auc"] <= 1.0


def test_a_frame_runs_config_names_its_rows(cli: str, synthetic: Path, tmp_path: Path) -> None:
    """RUN_DIR/config.json names the prepared rows where they end up (RUN_DIR/data), so the CLI
    trains the saved config again on the same rows, to the same metrics."""
    run = tessera.train(_config(synthetic), data=_frame(synthetic), device="cpu", epochs=2,
                        run_dir=tmp_path / "py", quiet=True)
    saved = json.loads((tmp_path / "py" / "config.json").read_text())
    data = tmp_path / "py" / "data"
    assert saved["data"]["prepared"] == str(data) and (data / "manifest.json").is_file()
    assert not list(tmp_path.glob(".tessera-data-*"))  # no scratch directory left
    cli_dir = tmp_path / "cli"
    run_cli(cli, "train", str(tmp_path / "py" / "config.json"), "--device", "cpu", "--run-dir",
            str(cli_dir), "--quiet")
    assert comparable(read_jsonl(cli_dir / "metrics.jsonl")) == comparable(run.history)


def test_resume_with_the_same_frame_goes_on(synthetic: Path, tmp_path: Path) -> None:
    """train(data=frame, resume=DIR) stopped after epoch 1, then called again with the same
    rows, ends where an uninterrupted run ends; other rows are refused."""
    df = _frame(synthetic)
    whole = tessera.train(_config(synthetic), data=df, device="cpu", epochs=3,
                          resume=tmp_path / "whole", quiet=True)
    stopped = tessera.train(_config(synthetic), data=df, device="cpu", epochs=3,
                            resume=tmp_path / "cut", quiet=True, callbacks=[lambda e: False])
    assert len(stopped.history) == 1
    saved = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert saved["data"]["prepared"] == str(tmp_path / "cut" / "data")
    with pytest.raises(tessera.UsageError, match="other rows than the ones the run was started"):
        tessera.train(_config(synthetic), data=df.iloc[:-50], device="cpu", epochs=3,
                      resume=tmp_path / "cut", quiet=True)
    seen = []
    resumed = tessera.train(_config(synthetic), data=df, device="cpu", epochs=3,
                            resume=tmp_path / "cut", quiet=True,
                            callbacks=[lambda e: seen.append(e["epoch"])])
    assert seen == [2, 3] and len(resumed.history) == 3  # went on from epoch 1's checkpoint
    assert comparable(resumed.history) == comparable(whole.history)
    # The same weights (the model files differ in the data path their configs name).
    test = pd.read_csv(synthetic.parent / "test.csv")
    assert np.array_equal(resumed.load().predict(test), whole.load().predict(test))
    for name, table in resumed.load().embeddings().items():
        assert np.array_equal(table, whole.load().embeddings()[name]), name
