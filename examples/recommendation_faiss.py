"""Recommendation from a Parquet file of interactions: two-tower, top-K as a DataFrame, FAISS.

    python examples/recommendation_faiss.py [WORK_DIR] [--max-rows N] [--epochs N] [--k K]
        [--users N]

Reads MovieLens (ml-latest-small's ratings.csv, found as the dataset registry finds it:
$TESSERA_DATA/ml-latest-small, else ../shared/datasets/ml-latest-small under the working
directory or the source tree, else tessera's download cache), writes the interactions as
Parquet, trains a two-tower model on them with tessera.models.TwoTower, prints a few users'
top-K list (a DataFrame), puts the item embeddings into a FAISS inner-product index and checks
that FAISS's top-K for those users is tessera's. The two-tower score is <u, v_i> + b_i, so the
index holds [v_i, b_i] and a user queries with [u, 1]; tessera leaves out the items a user saw
in training, so the FAISS answer is filtered the same way. --max-rows keeps the first N
interactions (a quick run).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Dict, List

import faiss
import numpy as np
import pandas as pd

from tessera.models import TwoTower

SOURCE = Path(__file__).resolve().parents[1]


def ratings_csv() -> Path:
    """ml-latest-small's ratings.csv where the dataset registry looks (host/data/registry.h),
    in its order; no download (`tessera train pipelines/recommend/movielens-mf.json` fetches
    it into the cache once)."""
    places = [Path("..") / "shared" / "datasets", SOURCE.parent / "shared" / "datasets"]
    if os.environ.get("TESSERA_DATA"):
        places.insert(0, Path(os.environ["TESSERA_DATA"]))
    cache = os.environ.get("TESSERA_CACHE_DIR") or (
        os.path.join(os.environ["XDG_CACHE_HOME"], "tessera") if os.environ.get("XDG_CACHE_HOME")
        else os.path.join(os.path.expanduser("~"), ".cache", "tessera"))
    places.append(Path(cache))
    for place in places:
        path = place / "ml-latest-small" / "ratings.csv"
        if path.is_file():
            return path
    raise SystemExit("ml-latest-small/ratings.csv not found under: " +
                     ", ".join(str(p) for p in places) + " (set TESSERA_DATA)")


def seen_in_training(interactions: pd.DataFrame, held_out: pd.DataFrame) -> Dict[int, set]:
    """Each user's training items: every interaction but the held-out (leave-last-out) one."""
    held = set(zip(held_out.user.astype(int), held_out.item.astype(int)))
    seen: Dict[int, set] = {}
    for user, item in zip(interactions.userId.astype(int), interactions.movieId.astype(int)):
        if (user, item) not in held:
            seen.setdefault(user, set()).add(item)
    return seen


def faiss_top_k(tables: Dict[str, np.ndarray], users: List[int], seen: Dict[int, set],
                k: int) -> Dict[int, List[tuple]]:
    """Each user's top k (item, score) by FAISS's exact inner-product search, seen items out."""
    items = np.hstack([tables["item"], tables["item_bias"].reshape(-1, 1)]).astype(np.float32)
    index = faiss.IndexIDMap(faiss.IndexFlatIP(items.shape[1]))
    index.add_with_ids(items, tables["item_ids"].astype(np.int64))
    row_of = {int(u): i for i, u in enumerate(tables["user_ids"])}
    queries = np.hstack([tables["user"][[row_of[u] for u in users]],
                         np.ones((len(users), 1), np.float32)]).astype(np.float32)
    depth = k + max(len(seen.get(u, ())) for u in users)
    scores, ids = index.search(queries, min(depth, index.ntotal))
    out = {}
    for user, row_scores, row_ids in zip(users, scores, ids):
        kept = [(int(i), float(s)) for i, s in zip(row_ids, row_scores)
                if i >= 0 and int(i) not in seen.get(user, ())]
        out[user] = kept[:k]
    return out


def agrees(ours: pd.DataFrame, theirs: List[tuple], tolerance: float = 1e-4) -> bool:
    """The same items in the same order, but where two scores tie within `tolerance` (the
    engine's and FAISS's sums may round differently; tessera writes 6 decimals)."""
    if len(ours) != len(theirs):
        return False
    for (item, score), (f_item, f_score) in zip(zip(ours.item, ours.score), theirs):
        if abs(score - f_score) > tolerance:
            return False
        if item != f_item and not any(abs(s - score) <= tolerance for i, s in theirs if i == item):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work_dir", nargs="?", default=None)
    parser.add_argument("--max-rows", type=int, default=0, help="first N interactions (0: all)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--users", type=int, default=5, help="users whose lists are compared")
    args = parser.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="tessera-example-"))
    work.mkdir(parents=True, exist_ok=True)

    ratings = pd.read_csv(ratings_csv())
    if args.max_rows:
        ratings = ratings.iloc[:args.max_rows]
    parquet = work / "interactions.parquet"
    ratings.to_parquet(parquet, index=False)
    interactions = pd.read_parquet(parquet)
    print(f"{len(interactions)} interactions of {interactions.userId.nunique()} users and "
          f"{interactions.movieId.nunique()} items -> {parquet.name}")

    model = TwoTower(dim=32, negatives=4, learning_rate=0.05, seed=42)
    run = model.fit(interactions, epochs=args.epochs, batch_size=1024, device="cpu",
                    runs_dir=work / "runs")
    m = run.result.get("metrics", run.metrics)
    hr = {k: v for k, v in m.items() if k.startswith(("hr", "ndcg")) and isinstance(v, float)}
    print("held-out ranking: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(hr.items())[:4]))

    users = sorted(interactions.userId.unique().tolist())[:args.users]
    top = model.recommend(users=users, k=args.k)
    print(f"top-{args.k} of user {users[0]}:")
    print(top[top.user == users[0]].to_string(index=False))

    tables = model.embeddings()
    held_out = pd.read_csv(run.run_dir / "leave_last_out.csv")
    seen = seen_in_training(interactions, held_out)
    theirs = faiss_top_k(tables, users, seen, args.k)
    same = [u for u in users if agrees(top[top.user == u], theirs[u])]
    print(f"FAISS top-{args.k} agrees with tessera for {len(same)} of {len(users)} users")
    if len(same) != len(users):
        raise SystemExit("FAISS and tessera disagree for users " +
                         ", ".join(str(u) for u in users if u not in same))


if __name__ == "__main__":
    main()
