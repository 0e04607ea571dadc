#!/usr/bin/python3
"""PyTorch reference for the seed's CNN on Fashion-MNIST (the model of
pipelines/image/fashion-mnist-baseline.json and bench/configs/fashion-mnist-cnn-bench.json), for
bench/cnn_vs_torch.sh.

Same data and model as tessera:
  - the first --images training images of the IDX files (pixels / 255, NCHW 1x28x28), the
    10,000 test images for accuracy;
  - Conv 32 3x3 pad 1 + ReLU -> MaxPool 2 -> Conv 64 3x3 pad 1 + ReLU -> MaxPool 2 -> Flatten ->
    Dense 128 + ReLU -> Dense 10 (logits), softmax cross-entropy (mean over the batch);
  - Adam lr 1e-3, batch 128, reshuffled every epoch, float32, torch.set_num_threads(--threads).

Throughput counts only the training loop (batch slicing, forward, backward, optimizer step).
Prints one JSON object as the last stdout line.
"""
import argparse
import gzip
import json
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path, rank):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def gemm_gflops(n=1024, reps=5):
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--images", type=int, default=12800)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    d = args.data_dir
    x = read_idx(f"{d}/train-images-idx3-ubyte.gz", 3)[: args.images]
    y = read_idx(f"{d}/train-labels-idx1-ubyte.gz", 1)[: args.images]
    xt = read_idx(f"{d}/t10k-images-idx3-ubyte.gz", 3)
    yt = read_idx(f"{d}/t10k-labels-idx1-ubyte.gz", 1)
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(y.astype(np.int64))
    xt = torch.from_numpy(xt.astype(np.float32) / 255.0).unsqueeze(1)
    yt = torch.from_numpy(yt.astype(np.int64))
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    seconds = 0.0
    seen = 0
    for _ in range(args.epochs):
        perm = torch.randperm(n)
        t = time.perf_counter()
        for b0 in range(0, n, args.batch_size):
            idx = perm[b0: b0 + args.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            seen += idx.shape[0]
        seconds += time.perf_counter() - t
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xt[i: i + 1000]).argmax(1) == yt[i: i + 1000]).sum())
                      for i in range(0, xt.shape[0], 1000))
    print(json.dumps({
        "framework": "pytorch " + torch.__version__, "threads": args.threads,
        "train_images": n, "epochs": args.epochs, "batch_size": args.batch_size,
        "train_seconds": seconds, "train_images_per_sec": seen / seconds,
        "test_accuracy": correct / xt.shape[0], "torch_gemm_gflops": gemm_gflops()}))


if __name__ == "__main__":
    main()
