#!/usr/bin/python3
"""The side-by-side summary of bench/dlrm_vs_torch.sh: tessera's train result (and its run's
metrics.jsonl, one line per epoch with the test file as validation) against torch_dlrm.py's last
line (with its "epochs_detail"). Prints one JSON line; exits non-zero when either side is missing
a field, the two trained a different number of epochs, or PyTorch did not load OpenBLAS.

Time to the reference AUC: reference = the best test AUC PyTorch reached over its epochs; a
side's time is its cumulative training seconds at the end of the first epoch whose AUC is at
least reference - tolerance (null if none is).

--aggregate CMP.json...: the per-seed lines of one benchmark (each this script's output for one
seed) summarised: per epoch, each side's mean AUC, its sample standard deviation and range over
the seeds, and its mean cumulative seconds; the reference is the best of PyTorch's per-epoch mean
AUCs, and the times to it come from the mean curves; samples/s are means over the seeds.
"""
import argparse
import json
import os
import statistics
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


def spread(values):
    return {"mean": round(statistics.fmean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "min": round(min(values), 4), "max": round(max(values), 4)}


def aggregate(paths, tolerance):
    runs = [last_json(p) for p in paths]
    first = runs[0]
    for p, r in zip(paths, runs):
        for key in ("model", "mode", "rows"):
            if r[key] != first[key]:
                sys.exit(f"{p}: {key} {r[key]!r} differs from {paths[0]}'s {first[key]!r}")
        if len(r["epochs"]) != len(first["epochs"]):
            sys.exit(f"{p}: {len(r['epochs'])} epochs, {paths[0]} {len(first['epochs'])}")
    epochs = []
    for i, e in enumerate(first["epochs"]):
        col = lambda k: [r["epochs"][i][k] for r in runs]
        epochs.append({"epoch": e["epoch"], "tessera_auc": spread(col("tessera_auc")),
                       "torch_auc": spread(col("torch_auc")),
                       "tessera_train_s": round(statistics.fmean(col("tessera_train_s")), 3),
                       "torch_train_s": round(statistics.fmean(col("torch_train_s")), 3)})
    reference = max(e["torch_auc"]["mean"] for e in epochs)
    curve = lambda side: [{"test_auc": e[f"{side}_auc"]["mean"],
                           "train_seconds": e[f"{side}_train_s"]} for e in epochs]
    t_te = seconds_to(curve("tessera"), reference - tolerance)
    t_to = seconds_to(curve("torch"), reference - tolerance)
    ts = statistics.fmean(r["tessera_samples_per_sec"] for r in runs)
    ps = statistics.fmean(r["torch_samples_per_sec"] for r in runs)
    r = lambda v, n=3: None if v is None else round(v, n)
    print(json.dumps({
        "model": first["model"], "mode": first["mode"], "rows": first["rows"],
        "seeds": [x.get("seed") for x in runs],
        "tessera_samples_per_sec": round(ts, 1), "torch_samples_per_sec": round(ps, 1),
        "ratio": round(ts / ps, 3), "target_ratio": 2.5,
        "reference_auc": round(reference, 4), "auc_tolerance": tolerance,
        "tessera_seconds_to_reference_auc": r(t_te), "torch_seconds_to_reference_auc": r(t_to),
        "time_to_auc_ratio": r(t_to / t_te) if t_te and t_to else None,
        "parameters_equal": all(x["parameters_equal"] for x in runs),
        "epochs": epochs, "per_seed": runs}))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--aggregate":
        ap = argparse.ArgumentParser(description="per-seed summaries, aggregated")
        ap.add_argument("--aggregate", nargs="+", required=True)
        ap.add_argument("--auc-tolerance", type=float, default=0.001)
        a = ap.parse_args()
        return aggregate(a.aggregate, a.auc_tolerance)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--torch", required=True)
    ap.add_argument("--seed", type=int, default=None)
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
        sys.exit(f"dlrm_compare: the models differ: tessera has {te['parameters']} parameters, "
                 f"PyTorch {to['parameters']}: not the same model, so no comparison")
    r = lambda v, n=4: None if v is None else round(v, n)
    print(json.dumps({
        "model": to["model"], "mode": a.mode, "rows": a.rows, "seed": a.seed,
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
