"""Behaviour prediction from Python: a synthetic dataset, a short training run, scores as numpy.

    python examples/behaviour_synthetic.py [WORK_DIR] [--rows N] [--epochs N]

Writes the dataset and the run under WORK_DIR (default: a temporary folder) and prints the test
AUC per epoch, the final metrics and the first scores. Needs no download.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import tessera


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work_dir", nargs="?", default=None)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="tessera-example-"))

    data = tessera.make_synthetic(work / "data", rows=args.rows)
    run = tessera.train(
        data["config"],
        device="cpu",
        epochs=args.epochs,
        runs_dir=work / "runs",
        quiet=True,
        callbacks=[lambda e: print(f"epoch {e['epoch']}: validation AUC "
                                   f"{e['validation']['auc']:.4f}")],
    )
    print(f"test AUC {run.metrics['auc']:.4f}, accuracy {run.metrics['accuracy']:.4f}")
    print(f"model: {run.model_path}")

    model = tessera.load(run.model_path)
    scores = model.predict(work / "data" / "test.csv", device="cpu")
    print(f"scored {scores.size} rows; first five: {scores[:5].round(4).tolist()}")


if __name__ == "__main__":
    main()
