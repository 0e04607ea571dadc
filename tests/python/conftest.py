"""Fixtures of the Python package's tests: a small synthetic behaviour dataset and the CLI.

The CLI is the `tessera` executable the wheel installs beside the interpreter (or $TESSERA_CLI);
the tests compare the package against it and fail, not skip, when it is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

import tessera

# Fields that measure time (and the paths of the run directory) differ between two identical runs.
_TIMING_SUFFIXES = ("seconds", "_per_sec", "_per_s")
_PATH_FIELDS = {"run_dir", "model", "model_path", "checkpoint", "config", "output", "dir", "outdir"}


def comparable(value: Any) -> Any:
    """`value` without its timing fields and run paths, for comparing two runs' JSON."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()
                if not k.endswith(_TIMING_SUFFIXES) and k not in _PATH_FIELDS}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


@pytest.fixture(scope="session")
def cli() -> str:
    path = os.environ.get("TESSERA_CLI") or str(Path(sys.executable).parent / "tessera")
    assert Path(path).is_file(), f"the tessera CLI is not at {path} (set TESSERA_CLI)"
    return path


def run_cli(cli: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([cli, *args], capture_output=True, text=True, timeout=600)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def cli_json(cli: str, *args: str) -> Dict[str, Any]:
    r = run_cli(cli, *args, "--json")
    return json.loads(r.stdout.strip().splitlines()[-1])


def read_jsonl(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic behaviour dataset (2,000 training rows); returns its config.json."""
    d = tmp_path_factory.mktemp("synthetic")
    out = tessera.make_synthetic(d, rows=2000)
    return Path(out["config"])


@pytest.fixture(scope="session")
def trained(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> tessera.Run:
    """One 2-epoch run of the synthetic config, on the CPU, through the package."""
    run_dir = tmp_path_factory.mktemp("runs") / "py"
    return tessera.train(synthetic, device="cpu", epochs=2, run_dir=run_dir, quiet=True)
