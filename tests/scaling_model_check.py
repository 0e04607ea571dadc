#!/usr/bin/env python3
"""Checks tools/scaling_model.py (docs/scaling-model.md):
  - it runs for every preset and writes a row per GPU count;
  - its dense all-reduce bytes per sample equal 2 (N - 1) / N x 4 (P + 1) / global batch, with P
    counted here independently from the layer widths;
  - its count of MpiGroup's deterministic all-reduce bytes equals what the MPI runs measured on
    the synthetic behaviour MLP (docs/distributed.md: 16,168 / 21,556 / 24,248 bytes per step at
    2 / 3 / 4 ranks, P = 4,041);
  - its planner agrees with embeddings/sharding.cpp's on the cases tests/embedding_shard_test.cpp
    pins, and a table-wise plan moves exactly the analytic minimum of pooled bytes;
  - with --tessera BIN (and mpirun on PATH): a fresh deterministic run of the synthetic MLP at
    2 and 3 ranks sends exactly the bytes the model predicts (result.json's allreduce_bytes_sent).
Usage: scaling_model_check.py [--tessera BIN]   (exit 0: all checks passed)
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "tools", "scaling_model.py")
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import scaling_model as sm  # noqa: E402

failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def run_json(*args):
    out = subprocess.run([sys.executable, SCRIPT, "--json", "-"] + list(args), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def linear(i, o):
    return i * o + o


def dlrm_dot_bench_params():
    bottom = linear(13, 512) + linear(512, 256) + linear(256, 128)
    inter = 128 + 27 * 26 // 2
    top = linear(inter, 1024) + linear(1024, 1024) + linear(1024, 512) + linear(512, 256) + \
        linear(256, 1)
    return bottom + top


def dcnv2_params():
    d = 27 * 128
    bottom = linear(13, 512) + linear(512, 256) + linear(256, 128)
    cross = 3 * (d * 512 + 512 * d + d)
    deep = linear(d, 1024) + linear(1024, 1024) + linear(1024, 512) + linear(512, 256) + \
        linear(256, 1)
    return bottom + cross + deep


def check_presets():
    expected_p = {"dlrm-dot-bench": dlrm_dot_bench_params(), "mlperf-dcnv2": dcnv2_params()}
    for model in sorted(sm.MODELS):
        r = run_json("--model", model)
        check(len(r["rows"]) == 7 and [x["gpus"] for x in r["rows"]] == [1, 2, 4, 8, 16, 32, 64],
              "%s: one row per N = 1..64" % model)
        if model in expected_p:
            check(r["dense_params"] == expected_p[model], "%s: %d dense parameters (counted: %d)"
                  % (model, r["dense_params"], expected_p[model]))
        p = r["dense_params"]
        for row in r["rows"]:
            if not row["fits"]:
                check(row["samples_per_s"] is None and row["why"], "%s N=%d: no plan, says why"
                      % (model, row["gpus"]))
                continue
            n, g = row["gpus"], row["global_batch"]
            want = 2 * (n - 1) / n * 4 * (p + 1) / g
            got = row["bytes_per_sample"]["dense_allreduce"]
            check(abs(got - want) <= 1e-9 * max(1.0, want),
                  "%s N=%d: dense all-reduce %.4f B/sample = 2(N-1)/N x 4(P+1)/B %.4f"
                  % (model, n, got, want))
            check(row["samples_per_s"] > 0 and row["step_ms"] >= row["compute_ms"] - 1e-12,
                  "%s N=%d: a positive rate, the step no shorter than its compute" % (model, n))


def check_measured_figures():
    # docs/distributed.md, "Bytes communicated": measured by MpiGroup's counters under mpirun.
    for n, measured in ((2, 16168), (3, 21556), (4, 24248)):
        got = sm.deterministic_allreduce_bytes(4041 + 1, n, 4)
        check(got == measured, "deterministic all-reduce of P=4041 at N=%d: %d bytes, measured %d"
              % (n, got, measured))
        cli = subprocess.run([sys.executable, SCRIPT, "--dense-allreduce-bytes", "--dense-params",
                              "4041", "--world", str(n), "--deterministic"], check=True,
                             capture_output=True, text=True).stdout.strip()
        check(cli == str(measured), "the CLI prints %s at N=%d" % (cli, n))


def check_planner():
    # tests/embedding_shard_test.cpp: {"huge", 1000, 8} (SGD: 32,000 B) is split row-wise over two
    # shards of 20,000 B and refused over two of 10,000 B.
    parts, used = sm.plan_tables([1000], 8, "sgd", 2, 20000)
    check(len(parts[0]) == 2 and sum(r for _, r, _ in parts[0]) == 1000 and sum(used) == 32000,
          "huge over 2 x 20000 B: row-wise over both shards, every row placed")
    try:
        sm.plan_tables([1000], 8, "sgd", 2, 10000)
        check(False, "huge over 2 x 10000 B: refused")
    except ValueError as e:
        check("need" in str(e), "huge over 2 x 10000 B: refused (%s)" % e)
    for n in (2, 3, 4):
        r = run_json("--model", "synthetic-criteo-dlrm", "--placement", "table", "--gpus", str(n))
        row = r["rows"][0]
        minimum = 26 * 16 * 4 * (n - 1) / n
        got = row["bytes_per_sample"]["pooled_alltoall_forward"]
        check(abs(got - minimum) < 1e-9 and abs(row["pooled_ratio_to_minimum"] - 1.0) < 1e-12,
              "synthetic Criteo, table-wise, N=%d: %.2f pooled B/sample = the minimum %.2f"
              % (n, got, minimum))


def check_fresh_run(tessera):
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([tessera, "make-synthetic", os.path.join(work, "data"), "--rows", "3000",
                        "--quiet"], check=True, capture_output=True)
        cfg = os.path.join(work, "data", "config.json")
        text = open(cfg).read().replace('"dropout": 0.1', '"dropout": 0')
        open(cfg, "w").write(text.replace('"epochs": 5', '"epochs": 2'))
        for n in (2, 3):
            run = os.path.join(work, "run%d" % n)
            out = subprocess.run(
                ["timeout", "300", "mpirun", "--oversubscribe", "-np", str(n), tessera, "train",
                 cfg,
                 "--device", "cpu", "--quiet", "--json", "--run-dir", run,
                 "--deterministic-reduction"], check=True, capture_output=True, text=True,
                env=dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
                         OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")).stdout
            res = json.loads(out.strip().splitlines()[-1])
            result = json.load(open(os.path.join(run, "result.json")))
            sent, calls = result["allreduce_bytes_sent"], result["allreduce_calls"]
            p = res.get("parameters", result.get("parameters"))
            lines = [json.loads(x) for x in open(os.path.join(run, "metrics.jsonl"))]
            epochs = len(lines)
            steps = lines[-1]["step"]
            # The epoch sums (host/train/trainer.cpp EpochSums::allreduce): examples, units, loss,
            # loss examples, then the task's named sums, which the metrics line writes between its
            # loss field (third key) and "lr".
            keys = list(lines[0])
            doubles = 4 + keys.index("lr") - 3
            step = sm.deterministic_allreduce_bytes(p + 1, n, 4)
            epoch = sm.deterministic_allreduce_bytes(doubles, n, 8)
            check(calls == steps + epochs, "N=%d: %d all-reduce calls = %d steps + %d epochs"
                  % (n, calls, steps, epochs))
            check(sent == steps * step + epochs * epoch,
                  "N=%d: measured %d bytes sent = %d steps x %d (P=%d) + %d epochs x %d "
                  "(%d doubles)"
                  % (n, sent, steps, step, p, epochs, epoch, doubles))


def main(argv):
    check_presets()
    check_measured_figures()
    check_planner()
    if len(argv) == 2 and argv[0] == "--tessera":
        check_fresh_run(argv[1])
    elif argv:
        sys.exit("usage: scaling_model_check.py [--tessera BIN]")
    print("%d failed" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
