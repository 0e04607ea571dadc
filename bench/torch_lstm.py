#!/usr/bin/python3
"""PyTorch nn.LSTM reference for bench/lstm_vs_torch.sh: forward + backward (input and weight
gradients, initial state given) of one time-major segment [T, B, I], the same work
bench/lstm_bench.cpp times for tessera's host LSTM. Prints one JSON object (last stdout line)
with tokens/s (T * B per iteration) and torch's own 1024^3 GEMM GFLOP/s."""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--t", type=int, default=64)
    ap.add_argument("--b", type=int, default=64)
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=3.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)

    m = torch.randn(1024, 1024)
    torch.mm(m, m)
    t0 = time.perf_counter()
    for _ in range(5):
        torch.mm(m, m)
    gemm_gflops = 5 * 2 * 1024**3 / (time.perf_counter() - t0) / 1e9

    lstm = torch.nn.LSTM(a.input, a.hidden, num_layers=a.layers)
    x = (torch.rand(a.t, a.b, a.input) * 0.2 - 0.1).requires_grad_()
    h0 = torch.rand(a.layers, a.b, a.hidden) * 0.2 - 0.1
    c0 = torch.rand(a.layers, a.b, a.hidden) * 0.2 - 0.1
    dy = torch.rand(a.t, a.b, a.hidden) * 0.2 - 0.1

    def once():
        lstm.zero_grad(set_to_none=True)
        x.grad = None
        y, _ = lstm(x, (h0, c0))
        y.backward(dy)

    once()
    iters = 0
    start = time.perf_counter()
    secs = 0.0
    while secs < a.min_time or iters < 3:
        once()
        iters += 1
        secs = time.perf_counter() - start
    print(json.dumps({"bench": "lstm_train", "backend": "torch", "torch": torch.__version__,
                      "threads": a.threads, "t": a.t, "b": a.b, "input": a.input,
                      "hidden": a.hidden, "layers": a.layers, "iters": iters,
                      "ms_per_iter": 1e3 * secs / iters,
                      "tokens_per_s": a.t * a.b * iters / secs,
                      "torch_gemm_gflops": gemm_gflops}))


if __name__ == "__main__":
    main()
