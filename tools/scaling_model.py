#!/usr/bin/env python3
"""A scaling model for hybrid-parallel DLRM training (issue 19, deliver 6 b and c).

Predicts samples/s for N GPUs from: the model's shape, a per-sample compute time, the bytes each
collective moves (computed from the shape and from the embedding planner's placement for that N),
and a cluster's link bandwidths and latencies. Every input is labelled in the output as measured,
assumed or predicted. docs/scaling-model.md explains the equations. Standard library only.

  tools/scaling_model.py [--model NAME] [--gpus 1,2,4,...] [--json OUT] [--markdown OUT] ...
  tools/scaling_model.py --dense-allreduce-bytes --dense-params P --world N --deterministic

The planner is not reachable from the CLI (`tessera --help` has no plan verb), so plan_shards()
of embeddings/sharding.cpp is reimplemented here with its documented rule (plan_tables below).
"""
import argparse
import json
import math
import sys

# Criteo 1TB's distinct values per categorical feature (pipelines/behaviour/synthetic_criteo.cpp).
CRITEO_1TB_ROWS = [227605432, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 130229467, 3067956,
                   405282, 10, 2209, 11938, 155, 4, 976, 14, 292775614, 40790948, 187188510, 590152,
                   12973, 108, 36]

# gpu_model_bench's prediction for its DLRM-dot shape (bench/gpu_model_bench.cpp, emulator's cost
# model, H100; /work/notes/s25/closing.md): a prediction, not a GPU measurement.
BENCH_STEP_MS = 18.200
BENCH_BATCH = 65536
# Of which the embedding-bag kernels (resolve 18 us, forward 590 us, fused backward + update 742 us
# at that batch, the same note): the rest is the dense towers and the interaction.
BENCH_BAGS_MS = 1.350

# Presets: the model shapes this repository trains. Dense towers are linear layers with a bias.
MODELS = {
    "dlrm-dot-bench": {
        "what": "gpu_model_bench's MLPerf-shaped DLRM (dot interaction), 26 x 100,000-row tables",
        "type": "dlrm", "dense": 13, "dim": 128, "bottom": [512, 256],
        "top": [1024, 1024, 512, 256],
        "tables": [100000] * 26, "sparse_optimizer": "rowwise_adagrad", "global_batch": 65536,
    },
    "mlperf-dcnv2": {
        "what": "pipelines/behaviour/mlperf-dlrm-dcnv2.json on the MLPerf table sizes "
                "(Criteo 1TB capped at 40M rows)",
        "type": "dcn_v2", "dense": 13, "dim": 128, "bottom": [512, 256],
        "top": [1024, 1024, 512, 256], "cross_layers": 3, "low_rank": 512,
        "tables": [min(r, 40000000) for r in CRITEO_1TB_ROWS], "sparse_optimizer": "adagrad",
        "global_batch": 65536,
    },
    "synthetic-criteo-dlrm": {
        "what": "tessera make-synthetic --criteo's DLRM config, tables at their cap "
                "(max_table_rows 1,000,000: an upper bound on the fitted vocabularies)",
        "type": "dlrm", "dense": 13, "dim": 16, "bottom": [64], "top": [64, 32],
        "tables": [min(r, 1000000) for r in CRITEO_1TB_ROWS], "sparse_optimizer": "rowwise_adagrad",
        "global_batch": 1024,
    },
}


def tower_params(inp, widths):
    n = 0
    for w in widths:
        n += inp * w + w
        inp = w
    return n


def dense_shape(m):
    """(dense parameter count, dense multiply-adds per sample) of a preset."""
    t = len(m["tables"])
    bottom = m["bottom"] + [m["dim"]]
    p = tower_params(m["dense"], bottom)
    macs = p
    if m["type"] == "dlrm":
        v = t + 1
        inter = m["dim"] + v * (v - 1) // 2  # DlrmSpec::interaction_width()
        top = tower_params(inter, m["top"] + [1])
        macs += top + v * v * m["dim"] // 2
        p += top
    else:  # dcn_v2, stacked: x0 -> cross layers -> deep tower (DcnModel)
        d = m["dim"] * (t + 1)
        cross = m["cross_layers"] * (2 * d * m["low_rank"] + d)
        deep = tower_params(d, m["top"] + [1])
        p += cross + deep
        macs += cross + deep
    return p, macs


DTYPE_BYTES = {"f32": 4, "bf16": 2, "f16": 2}


def table_bytes(rows, dim, optimizer, dtype="f32"):
    """embeddings/sharding.cpp table_bytes(): weights (in the table dtype) plus f32 sparse
    optimizer state."""
    per_element = {"sgd": 0, "adagrad": 1, "rowwise_adagrad": 0, "lazy_adam": 2}[optimizer]
    b = rows * dim * (DTYPE_BYTES[dtype] + 4 * per_element)
    if optimizer == "rowwise_adagrad":
        b += rows * 4
    return b


def plan_tables(rows, dim, optimizer, n, capacity, threshold=1.0, force=None, dtype="f32"):
    """plan_shards() (embeddings/sharding.cpp) reimplemented. Tables go largest first. With no
    forced placement (the planner's "auto"), a table above `threshold` x the average per-shard load,
    or fitting on no shard, is split row-wise over the shards in proportion to their free memory;
    else it goes whole to the shard with the most free memory. force "table" / "row" / "column"
    gives every table that placement (column: columns evenly over min(N, dim) shards from the one
    with the most free memory, the first dim % n parts one column wider).
    Returns (parts per table as [(shard, rows, columns)], bytes per shard), or raises ValueError
    when the tables do not fit."""
    sizes = [table_bytes(r, dim, optimizer, dtype) for r in rows]
    total = sum(sizes)
    if total > capacity * n:
        raise ValueError("the tables need %.1f GiB (weights + %s state), %d shards have %.1f GiB"
                         % (total / 2**30, optimizer, n, capacity * n / 2**30))
    if force == "column" and optimizer == "rowwise_adagrad" and n > 1:
        raise ValueError("column-wise sharding cannot train with rowwise_adagrad")
    average = total / n
    free = [capacity] * n
    used = [0] * n
    parts = [None] * len(rows)
    for t in sorted(range(len(rows)), key=lambda i: -sizes[i]):  # stable, as std::stable_sort
        best = max(range(n), key=lambda k: (free[k], -k))  # first maximum, as std::max_element
        if force == "column" and n > 1:
            parts[t] = place_columns(rows[t], dim, sizes[t], best, free, used)
            continue
        if force == "balanced":  # not the planner's rule: a proposal (docs/scaling-model.md)
            fits = [k for k in range(n) if free[k] >= sizes[t]]
            if fits:
                count = [sum(1 for q in parts if q and q[0][0] == k and len(q) == 1)
                         for k in range(n)]
                best = min(fits, key=lambda k: (count[k], -free[k], k))
                parts[t] = [(best, rows[t], dim)]
                free[best] -= sizes[t]
                used[best] += sizes[t]
                continue
        rowwise = force == "row" if force in ("table", "row") else sizes[t] > threshold * average
        if free[best] < sizes[t]:
            rowwise = True
        if n == 1:
            rowwise = False
        if not rowwise:
            parts[t] = [(best, rows[t], dim)]
            free[best] -= sizes[t]
            used[best] += sizes[t]
            continue
        row_bytes = sizes[t] // rows[t]
        free_sum = sum(max(f, 0) for f in free)
        begin, parts[t] = 0, []
        for k in range(n):
            if begin >= rows[t]:
                break
            take = rows[t] - begin if k == n - 1 else int(rows[t] * max(free[k], 0) / free_sum)
            take = min(take, rows[t] - begin)
            if take <= 0:
                continue
            if take * row_bytes > free[k]:
                raise ValueError("table %d does not fit on shard %d" % (t, k))
            parts[t].append((k, take, dim))
            free[k] -= take * row_bytes
            used[k] += take * row_bytes
            begin += take
    return parts, used


def place_columns(rows, dim, size, first, free, used):
    n_shards = len(free)
    n = min(n_shards, dim)
    elem = size // (rows * dim)
    out = []
    for i in range(n):
        k = (first + i) % n_shards
        cols = dim // n + (1 if i < dim % n else 0)
        b = elem * rows * cols + (size - elem * rows * dim if i == 0 else 0)
        if b > free[k]:
            raise ValueError("a table does not fit column-wise on shard %d" % k)
        out.append((k, rows, cols))
        free[k] -= b
        used[k] += b
    return out


def deterministic_allreduce_bytes(elements, n, elem_bytes, rank=0, bucket_bytes=4 << 20):
    """What MpiGroup's deterministic all-reduce counts as sent by `rank` (host/dist/mpi_group.cpp):
    per bucket of m elements, m - s_rank in the all-to-all and (N - 1) s_rank in the all-gather,
    with slice j = [m j / N, m (j + 1) / N)."""
    if n == 1 or elements == 0:
        return 0
    bucket = max(1, bucket_bytes // elem_bytes)
    sent, off = 0, 0
    while off < elements:
        m = min(bucket, elements - off)
        mine = m * (rank + 1) // n - m * rank // n
        sent += (m - mine) + (n - 1) * mine
        off += m
    return sent * elem_bytes


def allreduce_minimum(nbytes, n):
    return 2 * (n - 1) / n * nbytes


def link_time(intra_bytes, inter_bytes, a):
    """Seconds for one GPU's transfers: NVLink and InfiniBand run at the same time."""
    t_nvl = intra_bytes / (a.nvlink_gbs * 1e9)
    t_ib = inter_bytes / (a.ib_gbs * 1e9)
    return max(t_nvl, t_ib), ("IB" if t_ib > t_nvl else "NVLink")


def predict_row(m, n, a, params, compute_us):
    g = min(n, a.gpus_per_node)
    nodes = math.ceil(n / a.gpus_per_node)
    batch = a.global_batch if a.scaling == "strong" else a.local_batch * n
    local = batch / n
    row = {"gpus": n, "nodes": nodes, "global_batch": batch, "local_batch": local}
    dim = m["dim"]
    try:
        parts, used = plan_tables(m["tables"], dim, m["sparse_optimizer"], n,
                                  int(a.shard_capacity_gib * 2**30),
                                  force=None if a.placement == "auto" else a.placement,
                                  dtype=a.table_dtype)
    except ValueError as e:
        row.update({"fits": False, "why": str(e), "samples_per_s": None,
                    "bottleneck": "the plan is refused"})
        return row
    row["fits"] = True
    row["split_tables"] = sum(1 for p in parts if len(p) > 1)
    # Dense compute on the local batch; lookups on the busiest shard, for the global batch (a
    # part's share of a table's work: its columns x its rows' fraction, ids spread over rows).
    load = [0.0] * n
    for t, p in enumerate(parts):
        for shard, r, cols in p:
            load[shard] += cols * a.hotness * r / m["tables"][t]
    t_dense = compute_us["dense"] * 1e-6 * local
    t_bags = compute_us["bags_per_column"] * 1e-6 * batch * max(load)
    t_compute = t_dense + t_bags + a.step_overhead_us * 1e-6
    # Dense all-reduce of the P gradients + tessera's example count, f32: ring within the node over
    # NVLink, then between nodes on 1/g of the buffer per GPU (hierarchical), plus latencies.
    ar = 4 * (params + 1)
    ar_intra = allreduce_minimum(ar, g)
    ar_inter = allreduce_minimum(ar / g, nodes) if nodes > 1 else 0.0
    t_ar, _ = link_time(ar_intra, 0, a)
    t_ar += ar_inter / (a.ib_gbs * 1e9)
    t_ar += 2 * (g - 1) * a.nvlink_latency_us * 1e-6 + 2 * (nodes - 1) * a.ib_latency_us * 1e-6
    # Embedding all-to-all: every part of every table sends a pooled (partial) vector of `dim`
    # f32 per sample of the global batch to the rank owning that sample; (N-1)/N of it leaves the
    # rank, (N-g)/(N-1) of that leaves the node. Backward sends the same volume back.
    send = [0.0] * n
    for p in parts:
        for shard, _, cols in p:
            send[shard] += batch * cols * 4 * (n - 1) / n
    a2a_total = sum(send)
    recv = a2a_total / n
    busiest = max(max(send), recv)
    off_node = (n - g) / (n - 1) if n > 1 else 0.0
    t_a2a, link = link_time(busiest * (1 - off_node), busiest * off_node, a)
    lat = a.ib_latency_us if nodes > 1 else a.nvlink_latency_us
    t_a2a = 2 * (t_a2a + (lat * 1e-6 if n > 1 else 0))  # forward + backward
    # Ids to the table owners: hotness ids (int64) and one length (int32) per sample and table.
    ids_per_sample = 0.0
    for p in parts:
        columns = p[0][2] < dim  # every column part needs every id; a row part only its own
        ids_per_sample += (len(p) if columns else 1) * a.hotness * a.id_bytes + 4 * len(p)
    ids_per_sample *= (n - 1) / n
    ids_bytes = ids_per_sample * local
    t_ids, _ = link_time(ids_bytes * (1 - off_node), ids_bytes * off_node, a)
    t_comm = t_ar + t_a2a + t_ids
    hidden = a.overlap * min(t_compute, t_comm)
    t_step = t_compute + t_comm - hidden
    parts_c = {"compute": t_compute, "dense all-reduce": t_ar,
               "embedding all-to-all (%s)" % link: t_a2a, "id all-to-all": t_ids}
    minimum_pooled = len(m["tables"]) * dim * 4 * (n - 1) / n
    row.update({
        "compute_ms": 1e3 * t_compute, "dense_ms": 1e3 * t_dense, "bags_ms": 1e3 * t_bags,
        "allreduce_ms": 1e3 * t_ar, "alltoall_ms": 1e3 * t_a2a,
        "ids_ms": 1e3 * t_ids, "step_ms": 1e3 * t_step, "samples_per_s": batch / t_step,
        "bottleneck": max(parts_c, key=parts_c.get),
        "bytes_per_sample": {
            "dense_allreduce": ar * 2 * (n - 1) / n / batch,
            "dense_allreduce_minimum": 4 * params * 2 * (n - 1) / n / batch,
            "pooled_alltoall_forward": a2a_total / batch,
            "pooled_alltoall_backward": a2a_total / batch,
            "pooled_alltoall_minimum_each_way": minimum_pooled,
            "id_alltoall": ids_per_sample,
        },
        "pooled_ratio_to_minimum": (a2a_total / batch / minimum_pooled) if n > 1 else 1.0,
        "busiest_sender_bytes": max(send),
        "shards_sending": sum(1 for s in send if s > 0),
    })
    return row


def markdown(rows, name):
    out = ["| GPUs | nodes | local batch | split tables | compute ms | all-reduce ms | "
           "all-to-all ms | step ms | samples/s | pooled bytes/sample (x minimum) | bottleneck |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r["fits"]:
            out.append("| %d | %d | %g | | | | | | no plan | | %s |"
                       % (r["gpus"], r["nodes"], r["local_batch"], r["why"]))
            continue
        b = r["bytes_per_sample"]
        fmt = "| %d | %d | %g | %d | %.3f | %.3f | %.3f | %.3f | %.3g | %.0f (%.2fx) | %s |"
        out.append(fmt % (
            r["gpus"], r["nodes"], r["local_batch"], r["split_tables"], r["compute_ms"],
            r["allreduce_ms"], r["alltoall_ms"] + r["ids_ms"], r["step_ms"], r["samples_per_s"],
            b["pooled_alltoall_forward"], r["pooled_ratio_to_minimum"], r["bottleneck"]))
    return "Predicted for %s\n\n" % name + "\n".join(out) + "\n"


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--model", choices=sorted(MODELS), default="mlperf-dcnv2")
    p.add_argument("--inputs", help="a JSON file whose keys override these options (dashes as _)")
    p.add_argument("--gpus", default="1,2,4,8,16,32,64")
    p.add_argument("--scaling", choices=["strong", "weak"], default="strong",
                   help="strong: the global batch stays (MLPerf); weak: the local batch stays")
    p.add_argument("--global-batch", type=int, help="default: the preset's")
    p.add_argument("--local-batch", type=int, default=8192, help="per GPU, with --scaling weak")
    p.add_argument("--compute-us-per-sample", type=float,
                   help="dense towers + interaction per sample per GPU; default: "
                        "gpu_model_bench's prediction (18.200 - 1.350 ms at 65,536), scaled by "
                        "dense multiply-adds for another shape")
    p.add_argument("--bags-us-per-column", type=float,
                   help="embedding-bag work per sample per table column (one id); default: "
                        "gpu_model_bench's 1.350 ms / (65,536 x 26 x 128)")
    p.add_argument("--step-overhead-us", type=float, default=50.0,
                   help="fixed time per step (assumed: the launches of a step's kernels)")
    p.add_argument("--gpus-per-node", type=int, default=8)
    p.add_argument("--nvlink-gbs", type=float, default=450.0, help="GB/s per direction per GPU")
    p.add_argument("--ib-gbs", type=float, default=50.0, help="GB/s per GPU (400 Gb/s NDR)")
    p.add_argument("--nvlink-latency-us", type=float, default=3.0)
    p.add_argument("--ib-latency-us", type=float, default=10.0)
    p.add_argument("--overlap", type=float, default=0.0,
                   help="fraction of min(compute, communication) hidden (tessera today: 0)")
    p.add_argument("--shard-capacity-gib", type=float, default=64.0,
                   help="memory per GPU the planner may fill with tables")
    p.add_argument("--placement", choices=["auto", "table", "row", "column", "balanced"],
                   default="auto",
                   help="the planner's placement (a config's embedding placement); balanced: "
                        "not the planner's, whole tables spread by count where they fit")
    p.add_argument("--table-dtype", choices=sorted(DTYPE_BYTES), default="f32",
                   help="model.table_dtype: the tables' storage (the planner's bytes)")
    p.add_argument("--hotness", type=int, default=1, help="ids per sample and table")
    p.add_argument("--id-bytes", type=int, default=8)
    p.add_argument("--json", help="write the prediction as JSON here ('-': stdout)")
    p.add_argument("--markdown", help="write the table here ('-': stdout, the default)")
    p.add_argument("--dense-allreduce-bytes", action="store_true",
                   help="print the bytes rank 0 sends per dense all-reduce and exit")
    p.add_argument("--dense-params", type=int, help="with --dense-allreduce-bytes")
    p.add_argument("--world", type=int, help="with --dense-allreduce-bytes")
    p.add_argument("--deterministic", action="store_true",
                   help="with --dense-allreduce-bytes: MpiGroup's counted bytes, else the minimum")
    a = p.parse_args(argv)
    if a.inputs:
        with open(a.inputs) as f:
            for k, v in json.load(f).items():
                if not hasattr(a, k):
                    p.error("--inputs: unknown key %r" % k)
                setattr(a, k, v)
    if not 0.0 <= a.overlap <= 1.0:
        p.error("--overlap must lie in [0, 1]")
    for name in ("nvlink_gbs", "ib_gbs", "shard_capacity_gib", "gpus_per_node", "hotness",
                 "id_bytes", "local_batch"):
        if not getattr(a, name) > 0:
            p.error("--%s must be positive" % name.replace("_", "-"))
    if a.global_batch is not None and a.global_batch < 1:
        p.error("--global-batch must be positive")
    try:
        a.gpu_list = [int(x) for x in str(a.gpus).split(",")]
    except ValueError:
        p.error("--gpus takes counts separated by commas, e.g. 1,2,4,8")
    if not a.gpu_list or min(a.gpu_list) < 1:
        p.error("--gpus: every count must be at least 1")
    return a


def main(argv):
    a = parse(argv)
    if a.dense_allreduce_bytes:
        if a.dense_params is None or a.world is None or a.dense_params < 0 or a.world < 1:
            sys.exit("scaling_model: --dense-allreduce-bytes needs --dense-params P >= 0 and "
                     "--world N >= 1")
        elems = a.dense_params + 1
        if a.deterministic:
            print(deterministic_allreduce_bytes(elems, a.world, 4))
        else:
            print("%.1f" % allreduce_minimum(4 * elems, a.world))
        return 0
    m = MODELS[a.model]
    if a.global_batch is None:
        a.global_batch = m["global_batch"]
    params, macs = dense_shape(m)
    bench_macs = dense_shape(MODELS["dlrm-dot-bench"])[1]
    dense_us = (BENCH_STEP_MS - BENCH_BAGS_MS) * 1e3 / BENCH_BATCH
    compute_us = {"bags_per_column": BENCH_BAGS_MS * 1e3 / (BENCH_BATCH * 26 * 128)}
    if a.bags_us_per_column is not None:
        compute_us["bags_per_column"] = a.bags_us_per_column
    if a.compute_us_per_sample is not None:
        compute_us["dense"], compute_src = a.compute_us_per_sample, "given"
    elif a.model == "dlrm-dot-bench":
        compute_us["dense"] = dense_us
        compute_src = ("predicted: gpu_model_bench, emulator cost model, H100 (not a GPU "
                       "measurement)")
    else:
        compute_us["dense"] = dense_us * macs / bench_macs
        compute_src = ("assumed: gpu_model_bench's prediction for the DLRM-dot shape, dense part "
                       "scaled by dense multiply-adds per sample (%.3g / %.3g)"
                       % (macs, bench_macs))
    gpus = a.gpu_list
    rows = [predict_row(m, n, a, params, compute_us) for n in gpus]
    result = {
        "model": a.model, "what": m["what"], "dense_params": params,
        "dense_macs_per_sample": macs, "tables": len(m["tables"]), "dim": m["dim"],
        "compute_us_per_sample": compute_us, "compute_source": compute_src,
        "inputs": {k: v for k, v in vars(a).items()
                   if k not in ("json", "markdown", "inputs", "dense_allreduce_bytes",
                                "dense_params", "world", "deterministic", "gpu_list")},
        "labels": {"dense all-reduce bytes": "formula, checked against MpiGroup's counters "
                                             "(measured, synthetic MLP: "
                                             "tests/scaling_model_check.py)",
                   "embedding all-to-all bytes": "analytic from the planner's placement; not "
                                                 "measured (the hybrid all-to-all is not built)",
                   "bandwidths, latencies, capacity": "assumed (parameters)"},
        "rows": rows,
    }
    if a.json:
        text = json.dumps(result, indent=1)
        if a.json == "-":
            print(text)
        else:
            with open(a.json, "w") as f:
                f.write(text + "\n")
    md = markdown(rows, "%s (%s); dense %.4f us/sample per GPU, %s; bags %.3g us per sample and "
                  "column" % (a.model, m["what"], compute_us["dense"], compute_src,
                              compute_us["bags_per_column"]))
    if a.markdown and a.markdown != "-":
        with open(a.markdown, "w") as f:
            f.write(md)
    elif not a.json or a.markdown == "-":
        print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
