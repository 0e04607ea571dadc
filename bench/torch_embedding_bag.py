#!/usr/bin/python3
"""PyTorch reference for bench/embedding_bag_bench.cpp: T x nn.EmbeddingBag(rows, dim, mode='sum',
sparse=True) and torch.optim.SGD (sparse gradients), one training step = forward over every table,
concatenation to [B, T*D], loss = sum(out * dout) (the same fixed dout pattern as the C++ side),
backward, optimizer step. Reads the C++ bench's ids (raw int64, ids<k>.bin, table-major bags of
`pooling` ids each), so both run on the same power-law ids. Prints one JSON line (last stdout line).
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn


def main():
    p = argparse.ArgumentParser()
    for name in ("tables", "rows", "dim", "batch", "pooling", "batches", "steps", "threads"):
        p.add_argument("--" + name, type=int, required=True)
    p.add_argument("--dir", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    T, B, L, D = a.tables, a.batch, a.pooling, a.dim
    bags = [nn.EmbeddingBag(a.rows, D, mode="sum", sparse=True) for _ in range(T)]
    params = [q for m in bags for q in m.parameters()]
    opt = torch.optim.SGD(params, lr=0.01)
    batches = []
    for k in range(a.batches):
        ids = np.fromfile(os.path.join(a.dir, "ids%d.bin" % k), dtype=np.int64).reshape(T, B * L)
        batches.append([torch.from_numpy(ids[t].copy()) for t in range(T)])
    offsets = torch.arange(0, B * L, L, dtype=torch.int64)
    idx = torch.arange(B * T * D, dtype=torch.int64)
    dout = (1e-3 * (((idx * 7919) % 13) - 6).to(torch.float32)).reshape(B, T * D)

    def step(k):
        out = torch.cat([bags[t](batches[k][t], offsets) for t in range(T)], dim=1)
        loss = (out * dout).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = []
    for it in range(a.steps + 2):
        t0 = time.perf_counter()
        step(it % a.batches)
        if it >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    # torch's own 1024^3 GEMM rate, as the other torch references print it.
    x = torch.randn(1024, 1024)
    y = torch.randn(1024, 1024)
    x @ y
    t0 = time.perf_counter()
    for _ in range(5):
        x @ y
    gflops = 5 * 2 * 1024 ** 3 / (time.perf_counter() - t0) / 1e9
    print(json.dumps({"bench": "torch_embedding_bag_step", "torch": torch.__version__,
                      "threads": a.threads, "median_step_ms": times[len(times) // 2] * 1e3,
                      "best_step_ms": times[0] * 1e3, "torch_gemm_gflops": gflops}))


if __name__ == "__main__":
    main()
