"""The README's Python quickstart (the first ```python block of its "## Python" section) runs as
written, in a working directory laid out like the repository's: `pipelines/` and `../shared`
(the datasets) resolve to the real ones, and the run directory lands in the test's own folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_python_quickstart() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python\n", 1)
    assert len(section) == 2, "README.md has no '## Python' section"
    m = re.search(r"```python\n(.*?)```", section[1], re.S)
    assert m, "README.md's Python section has no ```python block"
    return m.group(1)


def test_readme_python_quickstart_runs(tmp_path: Path) -> None:
    code = readme_python_quickstart()
    shared = ROOT.parent / "shared"
    assert (shared / "datasets").is_dir(), f"{shared}/datasets is missing (CI provides it)"
    work = tmp_path / "work"
    work.mkdir()
    (work / "pipelines").symlink_to(ROOT / "pipelines")
    (tmp_path / "shared").symlink_to(shared)
    r = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True,
                       timeout=900, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    # Two epochs' callback lines (validation AUCs), then the run's AUC, model path and history.
    aucs = [float(x) for x in lines[:2]]
    assert all(0.85 < a <= 1.0 for a in aucs), lines
    final = lines[2].split()
    model = work / final[1]  # relative to the working directory, where "runs" was made
    assert 0.85 < float(final[0]) <= 1.0 and model.is_file() and final[2] == "2", lines
    assert "'auc'" in lines[3] or '"auc"' in lines[3], lines[3]
