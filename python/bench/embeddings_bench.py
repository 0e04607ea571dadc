"""Model.embeddings() (numpy views of the model loaded once in C++) against the way it worked
before: `tessera export --format npy` into a temporary directory, then np.load of every file.

    python python/bench/embeddings_bench.py [--dim 256] [--buckets 500000] [--repeats 3] [--json]

Trains (1 epoch, CPU) an MF model on ml-latest-small with `--dim` and a DLRM on make-synthetic
rows whose three categorical columns hash into `--buckets` rows of 16 each, then times:
  * mf: embeddings() against export + np.load (the reference, the same run), the values equal;
  * dlrm: embeddings() against reading the model file's bytes (the floor: the file is read once),
    and the tables against an np.frombuffer read of the file's flat table buffer.
numpy_peak_bytes is tracemalloc's peak during the call (numpy's allocations are traced): a copy
of the tables shows as their size. Exits 1 on any mismatch. One JSON object per line (--json).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

import tessera

RATINGS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ml-latest-small" / \
    "ratings.csv"


def measure(name: str, f: Callable[[], Any], repeats: int) -> Dict[str, Any]:
    """The best of `repeats` calls of f: seconds and tracemalloc's peak, and the last result."""
    best, peak, out = float("inf"), 0, None
    for _ in range(repeats):
        out = None
        tracemalloc.start()
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return {"method": name, "seconds": round(best, 5), "numpy_peak_bytes": peak, "result": out}


def export_and_load(model: tessera.Model) -> Dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="tessera-emb-") as tmp:
        model.export("npy", tmp)
        return {p.stem: np.load(p) for p in sorted(Path(tmp).glob("*.npy"))}


def flat_tables(path: Path) -> np.ndarray:
    """The file's "embedding.tables" tensor, read with numpy (host/core/archive.h's layout)."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[8:16], "little")
    entry = next(t for t in json.loads(raw[16:16 + n])["tensors"]
                 if t["name"] == "embedding.tables")
    return np.frombuffer(raw, "<f4", count=entry["bytes"] // 4, offset=16 + n + entry["offset"])


def mf_rows(work: Path, dim: int, repeats: int) -> List[Dict[str, Any]]:
    config = {"task": "recommend", "name": "bench-mf", "model": "mf", "seed": 1,
              "data": {"train": str(RATINGS), "on_error": "error"}, "embeddings": {"dim": dim},
              "train": {"epochs": 1, "batch_size": 1024}}
    model = tessera.train(config, device="cpu", run_dir=work / "mf", quiet=True).load()
    ours = measure("embeddings_views", model.embeddings, repeats)
    ref = measure("export_npy_np_load", lambda: export_and_load(model), repeats)
    same = sorted(ours["result"]) == sorted(ref["result"]) and all(
        np.array_equal(ours["result"][k], ref["result"][k]) for k in ref["result"])
    return [dict(r, model="mf", equal=same) for r in (ours, ref)]


def dlrm_rows(work: Path, buckets: int, repeats: int) -> List[Dict[str, Any]]:
    cfg = json.loads(Path(tessera.make_synthetic(work / "data", rows=2000)["config"]).read_text())
    for key in ("train", "test"):
        cfg["data"][key] = str(work / "data" / Path(cfg["data"][key]).name)
    cfg["data"]["categorical"] = {"hash_buckets": buckets}
    cfg["model"] = {"type": "dlrm", "embedding_dim": 16, "hidden": [8]}
    cfg["train"] = {"epochs": 1}
    model = tessera.train(cfg, device="cpu", run_dir=work / "dlrm", quiet=True).load()
    ours = measure("embeddings_views", model.embeddings, repeats)
    floor = measure("read_file_bytes", model.path.read_bytes, repeats)
    joined = np.concatenate([t.ravel() for t in ours["result"].values()])
    same = bool(np.array_equal(joined, flat_tables(model.path)))
    return [dict(r, model="dlrm", equal=same) for r in (ours, floor)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--buckets", type=int, default=500000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tessera-emb-bench-") as tmp:
        rows = mf_rows(Path(tmp), args.dim, args.repeats) + \
            dlrm_rows(Path(tmp), args.buckets, args.repeats)
        ok = True
        for r in rows:
            result = r.pop("result")
            r["table_bytes"] = sum(a.nbytes for a in result.values()) \
                if isinstance(result, dict) else len(result)
            ok = ok and r["equal"]
            print(json.dumps(r) if args.json else
                  f"{r['model']:5} {r['method']:20} {r['seconds']:.4f} s  numpy peak "
                  f"{r['numpy_peak_bytes']} B  of {r['table_bytes']} B  equal {r['equal']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
