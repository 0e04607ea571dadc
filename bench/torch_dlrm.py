#!/usr/bin/python3
"""PyTorch reference DLRM / DCN-v2 on the synthetic Criteo-like data (`tessera make-synthetic DIR
--layout criteo`), for bench/dlrm_vs_torch.sh: the same shape as tessera's DLRM or DCN-v2 config.

Data and preprocessing as tessera's behaviour pipeline does them for the Criteo layout:
  - DIR/train.txt (train) and DIR/test.txt (test): label, I1..I13, C1..C26, tab separated;
  - numeric: log1p(max(x, 0)); missing values take the train mean, then standardisation fitted
    on train (so a missing value is 0);
  - categorical: one vocabulary per column from train (every token seen, min_count 1); row 0 is
    the OOV row for tokens unseen on train.
Model (DLRM, Naumov et al. 2019, as in facebookresearch/dlrm's structure, written here):
  bottom MLP 13 -> 64 relu -> 16 relu; 26 nn.EmbeddingBag(rows, 16, mode="sum", sparse=True);
  interaction: Z = bmm(T, T^T) over T = [bottom, e_1..e_26] ([B, 27, 16]), the strictly lower
  triangle (351 values) concatenated after the bottom output; top MLP 367 -> 64 relu -> 32 relu
  -> 1 (logit); tessera's initialisation (He-uniform before relu, Xavier-uniform output, zero
  biases; tables uniform +-1/sqrt(rows)). BCE-with-logits; dense parameters Adam (lr 1e-3), tables Adagrad on sparse
  gradients (lr --sparse-lr; tessera's config uses "adagrad" with the same lr).
DCN-v2 (--model dcn_v2; Wang et al. 2021, as tessera's pipelines/behaviour/dcn_model.h):
  the same bottom MLP (13 -> 64 relu -> 16 relu) and tables; x0 = [bottom | e_1..e_26]
  ([B, D], D = 16 + 26 x 16 = 432); --cross-layers cross layers
  x_{l+1} = x0 * (x_l W_l + b_l) + x_l, W_l [D, D] (--low-rank 0) or W_l = V_l U_l with
  V_l [D, r], U_l [r, D] (--low-rank r: x -> x V_l -> (x V_l) U_l); W, U, V Xavier-uniform,
  b zero; --structure stacked: the deep tower (--top widths, relu) on x_L, then a linear to the
  logit; parallel: the tower on x0 beside the cross network, the final linear on [x_L | deep].

Training throughput counts only the training loop (shuffle, batch slicing, forward, backward,
optimizer steps); reading, preprocessing and the per-epoch test evaluation are excluded. After
every epoch the test AUC is computed and recorded with the training seconds so far
("epochs_detail"), so a caller can compare quality at equal epochs and time to a given AUC.
The process also reports PyTorch's own 1024^3 torch.mm GFLOP/s and the BLAS it loaded (from
/proc/self/maps), as bench/torch_mlp.py does. The last stdout line is one JSON object.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

from torch_mlp import loaded_blas, torch_gemm_gflops

N_DENSE, N_CAT = 13, 26


def read_criteo(path):
    labels, dense, cats = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) != 1 + N_DENSE + N_CAT:
                sys.exit(f"{path}: a line with {len(p)} fields (expected {1 + N_DENSE + N_CAT})")
            labels.append(float(p[0]))
            dense.append([float(v) if v else np.nan for v in p[1:1 + N_DENSE]])
            cats.append(p[1 + N_DENSE:])
    return np.array(labels, np.float32), np.array(dense, np.float64), cats


def preprocess(train, test):
    y_tr, d_tr, c_tr = train
    y_te, d_te, c_te = test
    t_tr = np.log1p(np.maximum(d_tr, 0))
    t_te = np.log1p(np.maximum(d_te, 0))
    mean = np.nanmean(t_tr, axis=0)
    t_tr = np.where(np.isnan(t_tr), mean, t_tr)
    t_te = np.where(np.isnan(t_te), mean, t_te)
    std = t_tr.std(axis=0)
    std[std == 0] = 1
    x_tr = ((t_tr - mean) / std).astype(np.float32)
    x_te = ((t_te - mean) / std).astype(np.float32)
    vocab = [dict() for _ in range(N_CAT)]
    for row in c_tr:
        for j, tok in enumerate(row):
            v = vocab[j]
            if tok not in v:
                v[tok] = len(v) + 1  # row 0 is OOV
    enc = lambda rows: np.array([[vocab[j].get(t, 0) for j, t in enumerate(r)] for r in rows],
                                np.int64)
    return x_tr, enc(c_tr), y_tr, x_te, enc(c_te), y_te, [len(v) + 1 for v in vocab]


class Dlrm(nn.Module):
    def __init__(self, n_dense, rows, dim, bottom, top):
        super().__init__()
        layers, w = [], n_dense
        for h in bottom + [dim]:
            layers += [nn.Linear(w, h), nn.ReLU()]
            w = h
        self.bottom = nn.Sequential(*layers)
        self.tables = nn.ModuleList(nn.EmbeddingBag(r, dim, mode="sum", sparse=True) for r in rows)
        for t, r in zip(self.tables, rows):
            nn.init.uniform_(t.weight, -1 / np.sqrt(r), 1 / np.sqrt(r))
        v = len(rows) + 1
        li, lj = torch.tril_indices(v, v, offset=-1)
        self.register_buffer("li", li)
        self.register_buffer("lj", lj)
        layers, w = [], dim + v * (v - 1) // 2
        for h in top:
            layers += [nn.Linear(w, h), nn.ReLU()]
            w = h
        layers.append(nn.Linear(w, 1))
        self.top = nn.Sequential(*layers)
        # tessera's initialisation: He-uniform before a relu, Xavier-uniform for the output
        # layer, zero biases.
        linears = [m for m in self.modules() if isinstance(m, nn.Linear)]
        for m in linears:
            if m is linears[-1]:
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)

    def forward(self, dense, cat):
        b = dense.shape[0]
        z0 = self.bottom(dense)
        offsets = torch.arange(b, dtype=torch.int64)
        embs = [t(cat[:, j].contiguous(), offsets) for j, t in enumerate(self.tables)]
        t = torch.cat([z0] + embs, dim=1).view(b, -1, z0.shape[1])
        z = torch.bmm(t, t.transpose(1, 2))
        inter = z[:, self.li, self.lj]
        return self.top(torch.cat([z0, inter], dim=1)).squeeze(1)


def init_like_tessera(module):
    """He-uniform before a relu, Xavier-uniform for the last Linear (the logit), zero biases."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    for m in linears:
        if m is linears[-1]:
            nn.init.xavier_uniform_(m.weight)
        else:
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
        nn.init.zeros_(m.bias)


class CrossNetwork(nn.Module):
    """x_{l+1} = x0 * (x_l W_l + b_l) + x_l; W_l [D, D] or V_l U_l ([D, r] [r, D])."""

    def __init__(self, width, layers, low_rank):
        super().__init__()
        xavier = lambda i, o: nn.Parameter(nn.init.xavier_uniform_(torch.empty(i, o)))
        self.low_rank = low_rank
        if low_rank == 0:
            self.w = nn.ParameterList(xavier(width, width) for _ in range(layers))
        else:
            self.v = nn.ParameterList(xavier(width, low_rank) for _ in range(layers))
            self.u = nn.ParameterList(xavier(low_rank, width) for _ in range(layers))
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(width)) for _ in range(layers))

    def forward(self, x0):
        x = x0
        for i, b in enumerate(self.b):
            z = torch.addmm(b, x, self.w[i]) if self.low_rank == 0 else \
                torch.addmm(b, x @ self.v[i], self.u[i])
            x = x0 * z + x
        return x


class Dcn(nn.Module):
    def __init__(self, n_dense, rows, dim, bottom, deep, cross_layers, low_rank, parallel):
        super().__init__()
        layers, w = [], n_dense
        for h in bottom + [dim]:
            layers += [nn.Linear(w, h), nn.ReLU()]
            w = h
        self.bottom = nn.Sequential(*layers)
        self.tables = nn.ModuleList(nn.EmbeddingBag(r, dim, mode="sum", sparse=True) for r in rows)
        for t, r in zip(self.tables, rows):
            nn.init.uniform_(t.weight, -1 / np.sqrt(r), 1 / np.sqrt(r))
        width = dim * (len(rows) + 1)
        self.cross = CrossNetwork(width, cross_layers, low_rank)
        self.parallel = parallel
        layers, w = [], width
        for h in deep:
            layers += [nn.Linear(w, h), nn.ReLU()]
            w = h
        if parallel:
            self.deep = nn.Sequential(*layers)
            self.final = nn.Linear(width + w, 1)
        else:
            self.deep = nn.Sequential(*layers, nn.Linear(w, 1))
        init_like_tessera(self.bottom)
        init_like_tessera(self.deep if not parallel else nn.Sequential(self.deep, self.final))
        if parallel:  # the tower's layers all feed a relu
            for m in self.deep.modules():
                if isinstance(m, nn.Linear):
                    nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")

    def forward(self, dense, cat):
        b = dense.shape[0]
        offsets = torch.arange(b, dtype=torch.int64)
        x0 = torch.cat([self.bottom(dense)] +
                       [t(cat[:, j].contiguous(), offsets) for j, t in enumerate(self.tables)],
                       dim=1)
        xl = self.cross(x0)
        if self.parallel:
            return self.final(torch.cat([xl, self.deep(x0)], dim=1)).squeeze(1)
        return self.deep(xl).squeeze(1)


def roc_auc(scores, labels):
    scores = np.asarray(scores, dtype=np.float64)
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    uniq, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - counts + 1 + (counts - 1) / 2.0
    u = avg_rank[inverse][pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def predict(model, x, c, batch=8192):
    model.eval()
    with torch.no_grad():
        p = torch.cat([torch.sigmoid(model(x[b:b + batch], c[b:b + batch]))
                       for b in range(0, len(x), batch)]).numpy()
    model.train()
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--model", choices=("dlrm", "dcn_v2"), default="dlrm")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--sparse-lr", type=float, default=0.05)
    ap.add_argument("--embedding-dim", type=int, default=16)
    ap.add_argument("--bottom", default="64")
    ap.add_argument("--top", default="64,32", help="DLRM top MLP / DCN-v2 deep tower widths")
    ap.add_argument("--cross-layers", type=int, default=3)
    ap.add_argument("--low-rank", type=int, default=0, help="0: full-rank cross layers")
    ap.add_argument("--structure", choices=("stacked", "parallel"), default="stacked")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_tr, c_tr, y_tr, x_te, c_te, y_te, rows = preprocess(
        read_criteo(os.path.join(args.data_dir, "train.txt")),
        read_criteo(os.path.join(args.data_dir, "test.txt")))
    x_tr, c_tr, y_tr = map(torch.from_numpy, (x_tr, c_tr, y_tr))
    x_te, c_te = map(torch.from_numpy, (x_te, c_te))
    ints = lambda s: [int(v) for v in s.split(",") if v]
    if args.model == "dlrm":
        model = Dlrm(N_DENSE, rows, args.embedding_dim, ints(args.bottom), ints(args.top))
    else:
        model = Dcn(N_DENSE, rows, args.embedding_dim, ints(args.bottom), ints(args.top),
                    args.cross_layers, args.low_rank, args.structure == "parallel")
    dense_params = [p for n, p in model.named_parameters() if not n.startswith("tables.")]
    opt_dense = torch.optim.Adam(dense_params, lr=args.lr)
    opt_sparse = torch.optim.Adagrad(list(model.tables.parameters()), lr=args.sparse_lr)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(args.seed)
    n = len(y_tr)
    train_s, per_epoch = 0.0, []
    model.train()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for b in range(0, n, args.batch_size):
            idx = perm[b:b + args.batch_size]
            loss = loss_fn(model(x_tr[idx], c_tr[idx]), y_tr[idx])
            opt_dense.zero_grad(set_to_none=True)
            opt_sparse.zero_grad(set_to_none=True)
            loss.backward()
            opt_dense.step()
            opt_sparse.step()
        train_s += time.perf_counter() - t0
        auc = roc_auc(predict(model, x_te, c_te), y_te)
        per_epoch.append({"epoch": epoch, "test_auc": auc, "train_seconds": train_s})
        print(json.dumps(per_epoch[-1]), file=sys.stderr, flush=True)
    print(json.dumps({
        "model": args.model, "train_samples_per_sec": n * args.epochs / train_s,
        "train_seconds": train_s, "epochs": args.epochs, "batch_size": args.batch_size,
        "threads": args.threads, "train_rows": n, "table_rows": int(sum(rows)),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "test": {"auc": per_epoch[-1]["test_auc"], "count": int(len(y_te))},
        "epochs_detail": per_epoch, "torch_gemm_gflops": round(torch_gemm_gflops(), 2),
        "blas": loaded_blas(), "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "loadavg_1m": float(open("/proc/loadavg").read().split()[0]),
    }))


if __name__ == "__main__":
    main()
