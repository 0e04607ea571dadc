"""A recommendation model from Python: embeddings, export and top-K lists against the CLI's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tessera
from conftest import cli_json, comparable, run_cli

CONFIG = Path(__file__).resolve().parents[2] / "pipelines" / "recommend" / "movielens-mf.json"


@pytest.fixture(scope="module")
def mf(tmp_path_factory: pytest.TempPathFactory) -> tessera.Model:
    run = tessera.train(CONFIG, device="cpu", epochs=1, quiet=True,
                        run_dir=tmp_path_factory.mktemp("rec") / "mf")
    assert run.result["task"] == "recommend"
    return run.load()


def test_embeddings_are_the_cli_export(cli: str, mf: tessera.Model, tmp_path: Path) -> None:
    tables = mf.embeddings()
    manifest = cli_json(cli, "export", str(mf.path), "--format", "npy", str(tmp_path))
    files = sorted(p.stem for p in tmp_path.glob("*.npy"))
    assert sorted(tables) == files and len(files) >= 4, (sorted(tables), manifest)
    for name in files:
        np.testing.assert_array_equal(tables[name], np.load(tmp_path / f"{name}.npy"))
    users = [n for n in files if n.startswith("user") and not n.endswith("_ids")]
    assert users and tables[users[0]].ndim == 2
    assert tables[users[0]].shape[0] == tables[users[0] + "_ids"].shape[0]


def test_export_returns_the_manifest(cli: str, mf: tessera.Model, tmp_path: Path) -> None:
    ours = mf.export("npy", tmp_path / "py")
    theirs = cli_json(cli, "export", str(mf.path), "--format", "npy", str(tmp_path / "cli"))
    assert comparable(ours) == comparable(theirs)


def test_recommend_writes_the_cli_lists(cli: str, mf: tessera.Model, tmp_path: Path) -> None:
    mf.recommend(tmp_path / "py.csv", k=5)
    run_cli(cli, "recommend", str(mf.path), str(tmp_path / "cli.csv"), "--k", "5", "--quiet")
    ours = (tmp_path / "py.csv").read_text()
    assert ours == (tmp_path / "cli.csv").read_text()
    assert ours.splitlines()[0].startswith("user,rank,item,score")
