"""The examples/ scripts run green on small slices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tessera

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_behaviour_synthetic_example(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(EXAMPLES / "behaviour_synthetic.py"), str(tmp_path),
                        "--rows", "1000", "--epochs", "2"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("epoch 1: validation AUC ")
    assert lines[1].startswith("epoch 2: validation AUC ")
    assert lines[2].startswith("test AUC ")
    assert lines[-1].startswith("scored 250 rows; first five: ")


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=900)


def test_behaviour_dataframe_example(tmp_path: Path) -> None:
    r = _run("behaviour_dataframe.py", str(tmp_path), "--rows", "4000", "--epochs", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("epoch 1: validation AUC ")
    assert lines[2] == ("columns: age (numeric), minutes (numeric), device (categorical), "
                        "country (categorical), clicked (label)")
    auc = float(lines[3].split()[2].rstrip(","))
    assert 0.6 < auc <= 1.0, lines[3]  # the planted signal is learnt
    assert lines[4].startswith("scored 800 rows; mean score ")
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["model"]["type"] == "dlrm" and (tmp_path / "model" / "model.tsm").is_file()
    assert Path(saved["data"]["train"]).is_file()


def test_recommendation_faiss_example(tmp_path: Path) -> None:
    r = _run("recommendation_faiss.py", str(tmp_path), "--max-rows", "6000", "--epochs", "2",
             "--k", "5", "--users", "4")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAISS top-5 agrees with tessera for 4 of 4 users" in r.stdout
    assert (tmp_path / "interactions.parquet").is_file()


def test_batch_scoring_parquet_example(tmp_path: Path) -> None:
    r = _run("batch_scoring_parquet.py", str(tmp_path), "--rows", "2000", "--copies", "10",
             "--files", "3", "--epochs", "1", "--batch-rows", "256")
    if r.returncode == 3:  # NO_ARROW_INPUT: this build's Model.predict takes paths only
        pytest.skip("Model.predict takes no Arrow stream in this build: " + r.stderr.strip())
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0].startswith("scored 5000 rows of ")
    import pyarrow.parquet as pq

    model = tessera.load(next((tmp_path / "runs").glob("*/model.tsm")))
    expected = model.predict(tmp_path / "data" / "test.csv")
    got = pq.read_table(tmp_path / "scores").to_pandas().sort_values("id")
    assert got["id"].tolist() == list(range(5000))
    # Every copy of the test rows scores as the CSV does (the CLI writes 6 decimals).
    np.testing.assert_allclose(got["score"].to_numpy(), np.tile(expected, 10), atol=1e-6)
