#!/usr/bin/python3
"""PyTorch reference for the behaviour MLP on UCI Adult (the model tessera's behaviour pipeline
trains), for bench/behaviour_vs_torch.sh.

Same data and preprocessing as the tessera config:
  - adult.data (train) and adult.test (test; first line skipped, labels end in '.');
  - numeric: age, fnlwgt, education-num, capital-gain, capital-loss, hours-per-week;
    log1p(max(x, 0)) on fnlwgt / capital-gain / capital-loss, missing values imputed with the
    train mean, then standardisation fitted on train;
  - categorical: workclass, education, marital-status, occupation, relationship, race, sex,
    native-country; one vocabulary per column from train (tokens seen >= min_count times; a
    missing value, '?', is a category of its own, as in tessera's preprocessor); row 0 is the
    OOV row for tokens unseen on train;
  - model: embeddings (dim 8) per column, concatenated with the numeric features ->
    Dense 128 relu -> Dropout 0.2 -> Dense 64 relu -> Dropout 0.2 -> Dense 1 (logit);
    He-uniform init for relu layers, Xavier-uniform for the output, zero biases,
    embeddings N(0, 0.05^2) (as tessera's MlpModel);
  - BCE-with-logits, Adam lr 1e-3, batch 256, reshuffled every epoch.

Training throughput counts only the training loop (shuffle, batch slicing, forward, backward,
optimizer step); CSV parsing and preprocessing are excluded. Prints one JSON object as the last
stdout line.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

COLUMNS = [
    ("age", "numeric"), ("workclass", "categorical"), ("fnlwgt", "numeric"),
    ("education", "categorical"), ("education-num", "numeric"),
    ("marital-status", "categorical"), ("occupation", "categorical"),
    ("relationship", "categorical"), ("race", "categorical"), ("sex", "categorical"),
    ("capital-gain", "numeric"), ("capital-loss", "numeric"), ("hours-per-week", "numeric"),
    ("native-country", "categorical"), ("income", "label"),
]
LOG1P = {"fnlwgt", "capital-gain", "capital-loss"}
MISSING = {"", "?"}  # the config's "missing" tokens
MISSING_CATEGORY = "\x1f<missing>"
POSITIVE = {">50K", ">50K."}
NEGATIVE = {"<=50K", "<=50K."}


def read_adult(path, skip_lines):
    """Rows of stripped fields; errors name the file, line and field."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if lineno <= skip_lines:
                continue
            line = line.strip()
            if not line:
                continue
            fields = [x.strip() for x in line.split(",")]
            if len(fields) != len(COLUMNS):
                sys.exit(f"{path}:{lineno}: expected {len(COLUMNS)} fields, got {len(fields)}")
            label = fields[-1]
            if label not in POSITIVE and label not in NEGATIVE:
                sys.exit(f"{path}:{lineno}: field 'income': unexpected label '{label}'")
            rows.append((lineno, fields))
    return rows


def preprocess(train_rows, test_rows, path_train, path_test, min_count):
    num_idx = [i for i, (_, t) in enumerate(COLUMNS) if t == "numeric"]
    cat_idx = [i for i, (_, t) in enumerate(COLUMNS) if t == "categorical"]

    def numeric(rows, path):
        out = np.empty((len(rows), len(num_idx)), dtype=np.float64)
        for r, (lineno, fields) in enumerate(rows):
            for j, i in enumerate(num_idx):
                name = COLUMNS[i][0]
                if fields[i] in MISSING:
                    out[r, j] = math.nan
                    continue
                try:
                    v = float(fields[i])
                except ValueError:
                    sys.exit(f"{path}:{lineno}: field '{name}': '{fields[i]}' is not a number")
                out[r, j] = math.log1p(max(v, 0.0)) if name in LOG1P else v
        return out

    xn_train, xn_test = numeric(train_rows, path_train), numeric(test_rows, path_test)
    mean = np.nanmean(xn_train, axis=0)
    for x in (xn_train, xn_test):  # impute with the train mean
        x[:] = np.where(np.isnan(x), mean, x)
    std = xn_train.std(axis=0)
    std[std == 0] = 1.0
    xn_train = ((xn_train - mean) / std).astype(np.float32)
    xn_test = ((xn_test - mean) / std).astype(np.float32)

    vocabs = []
    for i in cat_idx:
        counts = {}
        for _, fields in train_rows:
            tok = MISSING_CATEGORY if fields[i] in MISSING else fields[i]
            counts[tok] = counts.get(tok, 0) + 1
        kept = sorted(t for t, c in counts.items() if c >= min_count)
        vocabs.append({t: k + 1 for k, t in enumerate(kept)})  # 0 = OOV

    def categorical(rows):
        out = np.zeros((len(rows), len(cat_idx)), dtype=np.int64)
        for r, (_, fields) in enumerate(rows):
            for j, i in enumerate(cat_idx):
                tok = MISSING_CATEGORY if fields[i] in MISSING else fields[i]
                out[r, j] = vocabs[j].get(tok, 0)
        return out

    def labels(rows):
        return np.array([1.0 if f[-1] in POSITIVE else 0.0 for _, f in rows], dtype=np.float32)

    return (xn_train, categorical(train_rows), labels(train_rows),
            xn_test, categorical(test_rows), labels(test_rows),
            [len(v) + 1 for v in vocabs])


class AdultMlp(nn.Module):
    def __init__(self, n_dense, vocab_sizes, dim, hidden, dropout):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(v, dim) for v in vocab_sizes)
        layers = []
        width = n_dense + dim * len(vocab_sizes)
        for h in hidden:
            lin = nn.Linear(width, h)
            nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")  # bound sqrt(6 / in)
            nn.init.zeros_(lin.bias)
            layers += [lin, nn.ReLU(), nn.Dropout(dropout)]
            width = h
        out = nn.Linear(width, 1)
        nn.init.xavier_uniform_(out.weight)
        nn.init.zeros_(out.bias)
        layers.append(out)
        self.mlp = nn.Sequential(*layers)
        for e in self.embeddings:
            nn.init.normal_(e.weight, 0.0, 0.05)

    def forward(self, dense, cat):
        embs = [e(cat[:, j]) for j, e in enumerate(self.embeddings)]
        return self.mlp(torch.cat([dense] + embs, dim=1)).squeeze(1)


def roc_auc(scores, labels):
    """Exact AUC, ties counted one half (Mann-Whitney U with average ranks)."""
    scores = np.asarray(scores, dtype=np.float64)
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    uniq, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1  # 1-based rank of each group's first row
    avg_rank = first_rank + (counts - 1) / 2.0
    u = avg_rank[inverse][pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def evaluate(model, dense, cat, y, batch):
    model.eval()
    probs = []
    with torch.no_grad():
        for b in range(0, len(y), 4096):
            probs.append(torch.sigmoid(model(dense[b:b + 4096], cat[b:b + 4096])))
    p = torch.cat(probs).numpy().astype(np.float64)
    yn = y.numpy()
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    return {
        "auc": roc_auc(p, yn),
        "accuracy": float(((p >= 0.5) == (yn == 1)).mean()),
        "logloss": float(-(yn * np.log(pc) + (1 - yn) * np.log1p(-pc)).mean()),
        "count": int(len(yn)),
    }


def torch_gemm_gflops(n=1024, reps=20):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        torch.mm(a, b)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    times.sort()
    return 2.0 * n ** 3 / times[len(times) // 2] * 1e-9


def loaded_blas():
    """Which BLAS this process mapped (to prove the reference runs on OpenBLAS)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if ".so" in line}
    except OSError:
        return "unknown"
    hits = sorted(l for l in libs if "blas" in os.path.basename(l).lower())
    return ",".join(hits) if hits else "none"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_data = os.path.normpath(os.path.join(here, "..", "..", "shared", "datasets", "uci-adult"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=default_data)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--embedding-dim", type=int, default=8)
    ap.add_argument("--hidden", default="128,64")
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--min-count", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gemm = torch_gemm_gflops()

    t_load = time.perf_counter()
    p_train = os.path.join(args.data_dir, "adult.data")
    p_test = os.path.join(args.data_dir, "adult.test")
    for p in (p_train, p_test):
        if not os.path.isfile(p):
            sys.exit(f"torch_mlp.py: missing data file {p} (use --data-dir)")
    xn_tr, xc_tr, y_tr, xn_te, xc_te, y_te, vocab_sizes = preprocess(
        read_adult(p_train, 0), read_adult(p_test, 1), p_train, p_test, args.min_count)
    dense_tr, cat_tr, lab_tr = map(torch.from_numpy, (xn_tr, xc_tr, y_tr))
    dense_te, cat_te, lab_te = map(torch.from_numpy, (xn_te, xc_te, y_te))
    load_s = time.perf_counter() - t_load

    hidden = [int(h) for h in args.hidden.split(",") if h]
    model = AdultMlp(dense_tr.shape[1], vocab_sizes, args.embedding_dim, hidden, args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(args.seed)

    n = len(lab_tr)
    epoch_losses = []
    t_train = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total, seen = 0.0, 0
        for b in range(0, n, args.batch_size):
            idx = perm[b:b + args.batch_size]
            logits = model(dense_tr[idx], cat_tr[idx])
            loss = loss_fn(logits, lab_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        epoch_losses.append(total / seen)
    train_s = time.perf_counter() - t_train

    result = {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": loaded_blas(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "torch_gemm_gflops": round(gemm, 2),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "train_rows": n,
        "train_seconds": round(train_s, 4),
        "load_seconds": round(load_s, 4),
        "train_samples_per_sec": round(n * args.epochs / train_s, 1),
        "train_loss_per_epoch": [round(x, 6) for x in epoch_losses],
        "parameters": sum(p.numel() for p in model.parameters()),
        # Other processes on the cores distort every number here (OpenMP spin-waits badly when
        # oversubscribed); a load well above `threads` means rerun on a quiet machine.
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "test": evaluate(model, dense_te, cat_te, lab_te, args.batch_size),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
