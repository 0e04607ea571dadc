"""tessera.load and the model verbs against the CLI's, on the run of the `trained` fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tessera
from conftest import cli_json, comparable, run_cli


def test_load_names_the_task(trained: tessera.Run) -> None:
    model = trained.load()
    assert model.task == "behaviour"
    assert model.path == trained.model_path


def test_evaluate_matches_cli(cli: str, synthetic: Path, trained: tessera.Run) -> None:
    test_csv = synthetic.parent / "test.csv"
    ours = tessera.load(trained.model_path).evaluate(test_csv, device="cpu")
    theirs = cli_json(cli, "evaluate", str(trained.model_path), str(test_csv), "--device", "cpu")
    assert comparable(ours) == comparable(theirs)
    assert ours["metrics"]["auc"] == pytest.approx(trained.metrics["auc"])


def test_predict_returns_the_cli_scores(cli: str, synthetic: Path, trained: tessera.Run,
                                        tmp_path: Path) -> None:
    test_csv = synthetic.parent / "test.csv"
    scores = tessera.load(trained.model_path).predict(test_csv, device="cpu")
    out = tmp_path / "cli.csv"
    run_cli(cli, "predict", str(trained.model_path), str(test_csv), str(out), "--device", "cpu")
    cli_scores = np.loadtxt(out, delimiter=",", skiprows=1, usecols=1)
    rows = len(test_csv.read_text().splitlines()) - 1  # less the header
    assert scores.dtype == np.float64 and scores.shape == (rows,)
    np.testing.assert_array_equal(scores, cli_scores)
    assert np.all((scores >= 0) & (scores <= 1))


def test_embeddings_of_a_behaviour_model_are_its_columns(trained: tessera.Run) -> None:
    # (test_embeddings.py checks the values of every table model's tables.)
    tables = tessera.load(trained.model_path).embeddings()
    assert list(tables) == ["device", "region", "plan"]
    assert all(t.dtype == np.float32 and t.ndim == 2 for t in tables.values())


def test_run_report(trained: tessera.Run) -> None:
    path = trained.report()
    assert path == trained.run_dir / "report.html"
    assert trained.report_path == path
    assert "<svg" in path.read_text()


def test_tasks_and_config_docs() -> None:
    names = [name for name, _, _ in tessera.tasks()]
    assert "behaviour" in names and "recommend" in names
    verbs = dict((name, v) for name, _, v in tessera.tasks())
    assert "predict" in verbs["behaviour"]
    schema = tessera.config_schema("behaviour")
    assert schema["type"] == "object" and "data" in schema["properties"]
    assert '"task": "behaviour"' in tessera.config_example("behaviour")


def test_runs_lists_the_run(trained: tessera.Run) -> None:
    listed = tessera.runs(trained.run_dir.parent)
    mine = [r for r in listed if r["run"] == trained.run_dir.name]
    assert len(mine) == 1 and mine[0]["finished"]
    assert mine[0]["auc"] == pytest.approx(trained.metrics["auc"], abs=1e-6)


def test_prep_writes_the_cli_shards(cli: str, synthetic: Path, tmp_path: Path) -> None:
    ours = tessera.prep(synthetic, out=tmp_path / "py", shard_rows=500, threads=2)
    theirs = cli_json(cli, "prep", str(synthetic), "--out", str(tmp_path / "cli"),
                      "--shard-rows", "500", "--threads", "2", "--quiet")
    assert comparable(ours) == comparable(theirs)
    files = sorted(p.relative_to(tmp_path / "py") for p in (tmp_path / "py").rglob("*")
                   if p.is_file())
    assert len(files) > 2  # the manifest and shards
    for f in files:
        if f.name != "manifest.json":
            assert (tmp_path / "py" / f).read_bytes() == (tmp_path / "cli" / f).read_bytes(), f
