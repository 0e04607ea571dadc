"""The examples/ scripts run green on small slices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
