"""Behaviour prediction from a pandas DataFrame with tessera.models: fit, evaluate, predict, save.

    python examples/behaviour_dataframe.py [WORK_DIR] [--rows N] [--epochs N] [--model dlrm|...]

Builds a DataFrame of user sessions (numeric and text columns, a planted click signal), trains
a DLRM on it (the columns typed from the dtypes), scores a held-out frame into a "score" column
and saves the model with the config `tessera train` reruns. Needs no download.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from tessera import models

BUILDERS = {"mlp": models.MLP, "dlrm": models.DLRM, "dcn_v2": models.DCNv2,
            "wide_deep": models.WideAndDeep}


def sessions(rows: int, seed: int) -> pd.DataFrame:
    """A DataFrame of sessions: whether the user clicked depends on every column."""
    rng = np.random.default_rng(seed)
    device = rng.choice(["phone", "tablet", "desktop"], size=rows, p=[0.6, 0.1, 0.3])
    country = rng.choice(["de", "fr", "us", "jp", "br"], size=rows)
    age = rng.integers(18, 80, size=rows)
    minutes = np.round(rng.exponential(12.0, size=rows), 3)
    z = (0.9 * (device == "desktop") - 0.6 * (country == "jp") + 0.04 * (age - 45)
         + 0.08 * minutes - 0.9)
    clicked = (rng.random(rows) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    return pd.DataFrame({"age": age, "minutes": minutes, "device": device, "country": country,
                         "clicked": clicked})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work_dir", nargs="?", default=None)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--model", choices=sorted(BUILDERS), default="dlrm")
    args = parser.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="tessera-example-"))

    frame = sessions(args.rows, seed=1)
    cut = int(0.8 * len(frame))
    train, test = frame.iloc[:cut], frame.iloc[cut:].reset_index(drop=True)

    keys = {"embedding_dim": 8, "hidden": [32, 16], "seed": 42}
    if args.model in ("dlrm", "dcn_v2"):
        keys["bottom"] = [16]
    model = BUILDERS[args.model](label="clicked", **keys)
    model.fit(train, validation_split=0.1, epochs=args.epochs, batch_size=256, device="cpu",
              runs_dir=work / "runs",
              callbacks=[lambda e: print(f"epoch {e['epoch']}: validation AUC "
                                         f"{e['validation']['auc']:.4f}")])
    columns = ", ".join(f"{c['name']} ({c['type']})" for c in model.config()["data"]["columns"])
    print(f"columns: {columns}")

    metrics = model.evaluate(test)
    print(f"test AUC {metrics['auc']:.4f}, logloss {metrics['logloss']:.4f}")
    scored = test.assign(score=model.predict(test))
    print(f"scored {len(scored)} rows; mean score {scored.score.mean():.4f}, "
          f"click rate {scored.clicked.mean():.4f}")
    print(scored.head(3).to_string(index=False))
    saved = model.save(work / "model")
    print(f"saved: {saved / 'model.tsm'}; rerun with: tessera train {saved / 'config.json'}")


if __name__ == "__main__":
    main()
