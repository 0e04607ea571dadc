#!/usr/bin/env python3
"""PyTorch reference for tessera's two-tower recommendation model (pipelines/recommend).

Trains the same model on the same split and evaluates it with the same protocol:
  score(u, i) = <U[u], V[i]> + b[i]; U, V uniform in [-init_scale, init_scale), b = 0;
  each training positive with NEG items drawn uniformly from those the user has not interacted
  with in training; loss summed over the batch (BCE: softplus(-s_pos) + sum softplus(s_neg);
  BPR: sum softplus(s_neg - s_pos)) plus per-occurrence L2 (l2/2 |U[u]|^2 + l2/2 |V[i]|^2 +
  bias_l2/2 b[i]^2 for every row a sample uses); sparse gradients, Adagrad (eps added after the
  square root, as tessera) or SparseAdam.
The split is tessera's: RUN_DIR/leave_last_out.csv (user,item,neg_1..neg_99 raw ids) names the
held-out positive and the sampled negatives of each user; every other row of ratings.csv trains.
Metrics: HR@K and NDCG@K with the 99 sampled negatives and with full ranking over the items the
user has not seen in training (ties count against the positive, as in tessera).

  torch_two_tower.py --ratings ratings.csv --run-dir RUN_DIR --config CONFIG.json [--threads N]

Prints one JSON line: {"hr_sampled", "ndcg_sampled", "hr_full", "ndcg_full", "seconds", ...}.
"""
import argparse
import csv
import json
import math
import re
import sys
import time

import numpy as np
import torch


def load_config(path):
    text = open(path).read()
    text = re.sub(r"^\s*//.*$", "", text, flags=re.M)  # tessera configs allow // comments
    return json.loads(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ratings", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    cfg = load_config(a.config)
    e, t, v = cfg.get("embeddings", {}), cfg.get("train", {}), cfg.get("evaluate", {})
    dim = e.get("dim", 64)
    init = e.get("init_scale", 0.1)
    opt = e.get("optimizer", {})
    kind, lr = opt.get("kind", "adagrad"), opt.get("lr", 0.05)
    epochs, bs = t.get("epochs", 20), t.get("batch_size", 1024)
    l2, bl2 = t.get("l2", 0.05), t.get("bias_l2", 0.005)
    negs, loss_kind = t.get("negatives", 4), t.get("loss", "bce")
    k = v.get("k", 10)

    users, items = [], []
    with open(a.ratings) as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            users.append(int(row[0]))
            items.append(int(row[1]))
    uids = np.unique(users)
    iids = np.unique(items)
    u_all = np.searchsorted(uids, users)
    i_all = np.searchsorted(iids, items)
    held = {}
    with open(a.run_dir + "/leave_last_out.csv") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            u = int(np.searchsorted(uids, int(row[0])))
            held[u] = (int(np.searchsorted(iids, int(row[1]))),
                       np.searchsorted(iids, np.array([int(x) for x in row[2:]])))
    # Drop one held-out row per user (ml-latest-small has no duplicate pairs).
    keep = np.ones(len(u_all), dtype=bool)
    dropped = set()
    for n, (u, i) in enumerate(zip(u_all, i_all)):
        if u in held and held[u][0] == i and u not in dropped:
            keep[n] = False
            dropped.add(u)
    tu, ti = u_all[keep], i_all[keep]
    U, I = len(uids), len(iids)
    seen = [set() for _ in range(U)]
    for u, i in zip(tu, ti):
        seen[u].add(i)

    seen_keys = np.unique(tu.astype(np.int64) * I + ti)

    def is_seen(u, i):
        keys = u.astype(np.int64) * I + i
        pos = np.minimum(np.searchsorted(seen_keys, keys), len(seen_keys) - 1)
        return seen_keys[pos] == keys

    P = torch.nn.Embedding(U, dim, sparse=True)
    Q = torch.nn.Embedding(I, dim, sparse=True)
    B = torch.nn.Embedding(I, 1, sparse=True)
    with torch.no_grad():
        P.weight.uniform_(-init, init)
        Q.weight.uniform_(-init, init)
        B.weight.zero_()
    params = list(P.parameters()) + list(Q.parameters()) + list(B.parameters())
    if kind == "adagrad":
        optim = torch.optim.Adagrad(params, lr=lr, eps=opt.get("eps", 1e-8),
                                    initial_accumulator_value=opt.get("initial_accumulator", 0.0))
    elif kind == "lazy_adam":
        optim = torch.optim.SparseAdam(params, lr=lr, betas=(opt.get("beta1", 0.9), opt.get("beta2", 0.999)),
                                       eps=opt.get("eps", 1e-8))
    elif kind == "sgd":
        optim = torch.optim.SGD(params, lr=lr)
    else:
        raise SystemExit("torch_two_tower: optimizer '%s' has no PyTorch counterpart here" % kind)

    G = 1 + negs
    t0 = time.time()
    for epoch in range(epochs):
        order = rng.permutation(len(tu))
        for b0 in range(0, len(order), bs):
            idx = order[b0:b0 + bs]
            n = len(idx)
            uu = tu[idx]
            cand = rng.integers(0, I, size=(n, negs))
            # Resample negatives the user has seen in training (up to 64 tries, as tessera).
            for _ in range(64):
                bad = is_seen(np.repeat(uu, negs).reshape(n, negs), cand)
                if not bad.any():
                    break
                cand[bad] = rng.integers(0, I, size=int(bad.sum()))
            it = np.concatenate([ti[idx][:, None], cand], axis=1)  # [n, G]
            ut = torch.from_numpy(np.repeat(uu, G))
            itt = torch.from_numpy(it.reshape(-1))
            pu, qi, bi = P(ut), Q(itt), B(itt).squeeze(1)
            s = (pu * qi).sum(1) + bi
            s = s.view(n, G)
            if loss_kind == "bce":
                loss = torch.nn.functional.softplus(-s[:, 0]).sum() + torch.nn.functional.softplus(s[:, 1:]).sum()
            else:
                loss = torch.nn.functional.softplus(s[:, 1:] - s[:, :1]).sum()
            loss = loss + 0.5 * l2 * (pu.pow(2).sum() + qi.pow(2).sum()) + 0.5 * bl2 * bi.pow(2).sum()
            optim.zero_grad()
            loss.backward()
            optim.step()
        print("torch_two_tower: epoch %d/%d, %.1f s" % (epoch + 1, epochs, time.time() - t0),
              file=sys.stderr, flush=True)
    seconds = time.time() - t0

    with torch.no_grad():
        Pw, Qw, Bw = P.weight.double(), Q.weight.double(), B.weight.double().squeeze(1)
        hs = ns = hf = nf = 0.0
        for u, (pos, neg) in held.items():
            sc = Qw @ Pw[u] + Bw
            ps = sc[pos]
            r_s = int((sc[torch.from_numpy(neg)] >= ps).sum())
            mask = torch.ones(I, dtype=torch.bool)
            if seen[u]:
                mask[torch.tensor(sorted(seen[u]))] = False
            mask[pos] = False
            r_f = int((sc[mask] >= ps).sum())
            if r_s < k:
                hs += 1
                ns += 1 / math.log2(r_s + 2)
            if r_f < k:
                hf += 1
                nf += 1 / math.log2(r_f + 2)
        n = len(held)
    print(json.dumps({"hr_sampled": hs / n, "ndcg_sampled": ns / n, "hr_full": hf / n,
                      "ndcg_full": nf / n, "seconds": seconds, "epochs": epochs,
                      "train_rows": int(len(tu)), "test_users": n, "optimizer": kind,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
