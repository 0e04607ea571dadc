#!/usr/bin/python3
"""The side-by-side summary of bench/dlrm_vs_torch.sh: tessera's train result (and its run's
metrics.jsonl, one line per epoch with the test file as validation) against torch_dlrm.py's last
line (with its "epochs_detail"). Prints one JSON line; exits non-zero when either side is missing
a field, the two trained a different number of epochs, or PyTorch did not load OpenBLAS.

Time to the reference AUC: reference = the best test AUC PyTorch reached over its epochs; a
side's time is its cumulative training seconds at the end of the first epoch whose AUC is at
least reference - tolerance (null if none is).
"""
import argparse
import json
import os
import sys


def last_json(path):
    lines = [l for l in open(path).read().splitlines() if l.strip()]
    if not lines:
        sys.exit(f"{path}: empty")
    return json.loads(lines[-1])


def tessera_epochs(result):
    """[(epoch, test_auc, cumulative train seconds)] from the run's metrics.jsonl."""
    path = os.path.join(result["run_dir"], "metrics.jsonl")
    out, total = [], 0.0
    for line in open(path):
        if not line.strip():
            continue
        m = json.loads(line)
        if "validation" not in m or "epoch_seconds" not in m:
            sys.exit(f"{path}: epoch {m.get('epoch')} has no validation AUC or epoch_seconds")
        total += m["epoch_seconds"]
        out.append({"epoch": m["epoch"], "test_auc": m["validation"]["auc"],
                    "train_seconds": total})
    return out


def seconds_to(epochs, target):
    for e in epochs:
        if e["test_auc"] >= target:
            return e["train_seconds"]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--torch", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--mode", default="text")
    ap.add_argument("--prep-seconds", default="null")
    ap.add_argument("--tessera-loadavg", type=float, default=-1)
    ap.add_argument("--auc-tolerance", type=float, default=0.001)
    a = ap.parse_args()
    te, to = last_json(a.tessera), last_json(a.torch)
    if "openblas" not in to.get("blas", ""):
        sys.exit(f"PyTorch did not load OpenBLAS (blas={to.get('blas')}): not its best "
                 "configuration")
    te_epochs, to_epochs = tessera_epochs(te), to["epochs_detail"]
    if len(te_epochs) != len(to_epochs):
        sys.exit(f"tessera trained {len(te_epochs)} epochs, PyTorch {len(to_epochs)}")
    reference = max(e["test_auc"] for e in to_epochs)
    target = reference - a.auc_tolerance
    t_te, t_to = seconds_to(te_epochs, target), seconds_to(to_epochs, target)
    ts, ps = te["train_samples_per_sec"], to["train_samples_per_sec"]
    if te["parameters"] != to["parameters"]:
        print(f"dlrm_compare: the models differ: tessera has {te['parameters']} parameters, "
              f"PyTorch {to['parameters']}", file=sys.stderr)
    r = lambda v, n=4: None if v is None else round(v, n)
    print(json.dumps({
        "model": to["model"], "mode": a.mode, "rows": a.rows,
        "tessera_samples_per_sec": round(ts, 1), "torch_samples_per_sec": round(ps, 1),
        "ratio": round(ts / ps, 3), "target_ratio": 2.5,
        "reference_auc": r(reference), "auc_tolerance": a.auc_tolerance,
        "tessera_seconds_to_reference_auc": r(t_te, 3),
        "torch_seconds_to_reference_auc": r(t_to, 3),
        "time_to_auc_ratio": r(t_to / t_te, 3) if t_te and t_to else None,
        "torch_gemm_gflops": to["torch_gemm_gflops"],
        "parameters_equal": te["parameters"] == to["parameters"],
        "epochs": [{"epoch": x["epoch"], "tessera_auc": r(x["test_auc"]),
                    "torch_auc": r(y["test_auc"]), "tessera_train_s": r(x["train_seconds"], 3),
                    "torch_train_s": r(y["train_seconds"], 3)}
                   for x, y in zip(te_epochs, to_epochs)],
        "tessera": {"auc": te["test"]["auc"], "logloss": te["test"]["logloss"],
                    "best_epoch": te.get("best_epoch"), "epochs": te["epochs"],
                    "batch_size": te["batch_size"], "train_seconds": te["train_seconds"],
                    "parameters": te["parameters"],
                    "prep_seconds": json.loads(a.prep_seconds),
                    "loadavg_1m": a.tessera_loadavg},
        "torch": {"auc": to["test"]["auc"], "epochs": to["epochs"],
                  "batch_size": to["batch_size"], "train_seconds": to["train_seconds"],
                  "parameters": to["parameters"], "blas": to["blas"],
                  "loadavg_1m": to["loadavg_1m"]},
    }))


if __name__ == "__main__":
    main()
