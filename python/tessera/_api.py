"""tessera.train and tessera.load: the engine's verbs as Python calls (tessera._core)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _arrow, _core
from .errors import UsageError

PathLike = Union[str, "os.PathLike[str]"]
ConfigLike = Union[PathLike, Mapping[str, Any]]
# A callback gets the epoch's metrics (metrics.jsonl's line as a dict); returning False stops
# training after that epoch (its checkpoint kept). None or True goes on.
Callback = Callable[[Dict[str, Any]], Optional[bool]]


@dataclass
class Run:
    """A finished training run.

    ``result`` is the run's result.json (what ``tessera train --json`` prints); ``history`` has
    one dict per epoch (metrics.jsonl); ``metrics`` are the final metrics: the result's ``test``
    object when the task evaluates on test data, else its ``validation`` object.
    """

    result: Dict[str, Any]
    history: List[Dict[str, Any]]
    run_dir: Optional[Path]
    model_path: Optional[Path]
    summary: str = ""
    metrics: Dict[str, Any] = field(default_factory=dict)

    @property
    def report_path(self) -> Optional[Path]:
        """The run's report.html, when one was written (see ``report()``)."""
        if self.run_dir is None:
            return None
        path = self.run_dir / "report.html"
        return path if path.exists() else None

    def report(self) -> Path:
        """Writes the run's report.html (as ``tessera report RUN_DIR``) and returns its path."""
        if self.run_dir is None:
            raise ValueError("this run has no run directory")
        return report(self.run_dir)

    def load(self) -> "Model":
        """The trained model."""
        if self.model_path is None:
            raise ValueError("this run saved no model")
        return load(self.model_path)


def _json_of(result: Tuple[str, str]) -> Dict[str, Any]:
    return json.loads(result[1]) if result[1] else {}


def _options(**values: Any) -> Dict[str, str]:
    """CLI options from keyword values: None is left out, True is a flag, others are text."""
    out: Dict[str, str] = {}
    for name, value in values.items():
        if value is None or value is False:
            continue
        out["--" + name.replace("_", "-")] = "" if value is True else str(value)
    return out


def _config_file(config: ConfigLike, scratch: List[str]) -> str:
    """A path for `config`: itself when a path, else a temporary file the caller deletes."""
    if isinstance(config, Mapping):
        text = json.dumps(config)
    elif isinstance(config, str) and config.lstrip().startswith("{"):
        text = config
    elif isinstance(config, (str, os.PathLike)):
        return os.fspath(config)
    else:
        raise TypeError("config must be a path, a dict or a JSON string, not " + type(config).__name__)
    fd, path = tempfile.mkstemp(prefix="tessera-config-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    scratch.append(path)
    return path


def _read_jsonl(path: Path) -> List[Dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _progress_line(epoch: Dict[str, Any]) -> str:
    parts = [f"epoch {epoch.get('epoch')}"]
    if "train_loss" in epoch:
        parts.append(f"train loss {epoch['train_loss']:.4g}")
    for name, value in (epoch.get("validation") or {}).items():
        if isinstance(value, float):
            parts.append(f"{name} {value:.4g}")
    return ", ".join(parts)


def _model_path(result: Dict[str, Any], run_dir: Optional[Path]) -> Optional[Path]:
    """The model file a train result names: "model_path" (recommend, whose "model" is the model
    type), else "model" (the other tasks), else the run directory's model.tsm."""
    for key in ("model_path", "model"):
        value = result.get(key)
        if isinstance(value, str) and Path(value).is_file():
            return Path(value)
    if run_dir is not None and (run_dir / "model.tsm").is_file():
        return run_dir / "model.tsm"
    return None


def train(
    config: ConfigLike,
    *,
    device: Optional[str] = None,
    epochs: Optional[int] = None,
    seed: Optional[int] = None,
    run_dir: Optional[PathLike] = None,
    runs_dir: Optional[PathLike] = None,
    resume: Optional[PathLike] = None,
    time_budget: Optional[float] = None,
    quiet: bool = False,
    callbacks: Optional[Iterable[Callback]] = None,
    data: Any = None,
    validation: Any = None,
) -> Run:
    """Trains the model ``config`` describes, as ``tessera train CONFIG`` does, in this process.

    ``config`` is a config file's path, a dict or a JSON string (relative data paths in a dict
    or string are relative to the working directory). The keywords are the CLI's options
    (``--device``, ``--epochs``, ``--seed``, ``--run-dir``, ``--runs-dir``, ``--resume``,
    ``--time-budget``). Unless ``quiet``, one line per epoch is printed to ``sys.stderr``
    (terminal and Jupyter alike). Each of ``callbacks`` is called after every epoch with that
    epoch's metrics; one returning False stops training after it. The GIL is released while the
    engine works; Ctrl-C stops training at the end of the current epoch (its checkpoint kept)
    and raises KeyboardInterrupt. Engine errors raise :class:`tessera.Error` subclasses.

    ``data`` (behaviour configs) replaces the config's data files: a path the CLI reads (CSV,
    TSV, Criteo text), or tabular data -- a pandas DataFrame, a pyarrow Table / RecordBatchReader
    / Dataset, a Parquet file or directory, a dict of numpy arrays -- whose columns are matched
    by name to the config's ``data.columns``. Tabular rows are prepared (fitted and encoded as
    ``tessera prep`` does, in bounded memory) into a directory beside the run, trained on through
    ``data.prepared``, and moved into the run as ``RUN_DIR/data`` afterwards: the same metrics as the rows written as CSV and trained by the
    CLI with the same seed. ``validation`` likewise (default: the config's validation_fraction
    of ``data``). Errors in the rows raise :class:`tessera.DataError` naming the column and row.
    """
    if data is not None or validation is not None:
        return _train_on_data(config, data, validation, device=device, epochs=epochs, seed=seed,
                              run_dir=run_dir, runs_dir=runs_dir, resume=resume,
                              time_budget=time_budget, quiet=quiet, callbacks=callbacks)
    hooks = list(callbacks or [])

    def on_epoch(line: str) -> bool:
        epoch = json.loads(line)
        if not quiet:
            print(_progress_line(epoch), file=sys.stderr, flush=True)
        go_on = True
        for hook in hooks:
            if hook(epoch) is False:
                go_on = False
        return go_on

    options = _options(device=device, epochs=epochs, seed=seed, run_dir=run_dir,
                       runs_dir=runs_dir, resume=resume, time_budget=time_budget, quiet=True)
    scratch: List[str] = []
    try:
        path = _config_file(config, scratch)
        summary, result_json = _core.train(path, options, on_epoch)
    finally:
        for p in scratch:
            os.unlink(p)
    result = json.loads(result_json) if result_json else {}
    rd = Path(result["run_dir"]) if result.get("run_dir") else None
    model = _model_path(result, rd)
    history = _read_jsonl(rd / "metrics.jsonl") if rd is not None else []
    metrics = result.get("test") or result.get("validation") or {}
    return Run(result=result, history=history, run_dir=rd, model_path=model, summary=summary,
               metrics=metrics)


def _config_dict(config: ConfigLike) -> Dict[str, Any]:
    if isinstance(config, Mapping):
        return json.loads(json.dumps(config))
    if isinstance(config, str) and config.lstrip().startswith("{"):
        return json.loads(config)
    with open(os.fspath(config), encoding="utf-8") as f:
        return json.load(f)


def _write_config(cfg: Dict[str, Any], scratch: List[str]) -> str:
    return _config_file(cfg, scratch)


def _train_on_data(config: ConfigLike, data: Any, validation: Any, **kw: Any) -> Run:
    """train(config, data=..., validation=...): see train()."""
    import shutil

    if data is None:
        raise TypeError("validation= needs data= too")
    cfg = _config_dict(config)
    section = dict(cfg.get("data") or {})
    for key in ("dataset", "train", "file", "path", "validation", "test", "prepared"):
        section.pop(key, None)
    train_src = _arrow.source(data)
    if train_src is None:  # a text file: the config reads it as data.train
        if validation is not None and _arrow.source(validation) is not None:
            raise TypeError("validation= must be a path too when data= is a path")
        section["train"] = os.fspath(data)
        if validation is not None:
            section["validation"] = os.fspath(validation)
        return train({**cfg, "data": section}, **kw)
    if kw.get("resume") is not None:
        # The prepared rows' directory is part of the run's config (and of its resume check),
        # and a new one is made per call.
        raise UsageError("resume= with tabular data= is not supported yet: resume the run from "
                         "its config with data.prepared set to RUN_DIR/data")
    # Prepared next to where the run goes, then moved into it (a run's directory must not exist
    # before the run starts).
    run_dir = kw.get("run_dir")
    if run_dir is not None:
        base = Path(run_dir).parent
    else:
        base = Path(kw.get("runs_dir") or (cfg.get("train") or {}).get("runs_dir") or "runs")
    base.mkdir(parents=True, exist_ok=True)
    prepared = Path(tempfile.mkdtemp(prefix=".tessera-data-", dir=base))
    scratch: List[str] = []
    try:
        train_src = _arrow.source(data, spool_dir=str(prepared))
        val_src = _arrow.source(validation, spool_dir=str(prepared)) if validation is not None else None
        if validation is not None and val_src is None:
            raise TypeError("validation= must be tabular data too when data= is")
        # The config as training will read it (data.read and the like apply with "prepared").
        section["train"] = section["prepared"] = str(prepared)
        if kw.get("seed") is not None:
            cfg["seed"] = int(kw["seed"])
        path = _write_config({**cfg, "data": section}, scratch)
        _core.prepare_arrow(path, str(prepared), train_src.stream,
                            val_src.stream if val_src is not None else None, 1 << 18, True)
        run = train({**cfg, "data": section}, **kw)
        if run.run_dir is not None and run.run_dir.is_dir():
            shutil.move(str(prepared), str(run.run_dir / "data"))
        return run
    finally:
        for p in scratch:
            os.unlink(p)
        shutil.rmtree(prepared, ignore_errors=True)


def _data_path(data: Any) -> str:
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    raise TypeError("this model's task reads files: data must be a path, not "
                    + type(data).__name__)


class Model:
    """A trained model file (model.tsm and the like), answering its task's verbs."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.task: str = _core.task_of_model(os.fspath(path))

    def __repr__(self) -> str:
        return f"tessera.Model({str(self.path)!r}, task={self.task!r})"

    def _run(self, verb: str, args: Sequence[str], **options: Any) -> Dict[str, Any]:
        opts = _options(**options)
        return _json_of(_core.command(verb, [str(self.path), *args], {**opts, "--json": ""}))

    def evaluate(self, data: Any, *, device: Optional[str] = None,
                 skip_lines: Optional[int] = None, on_error: Optional[str] = None) -> Dict[str, Any]:
        """``tessera evaluate MODEL DATA``: the metrics on labelled data, as its --json object.

        ``data`` may also be tabular (behaviour models; see ``predict``): its rows are streamed
        through the model batch by batch, and the object has the CLI's fields."""
        src = _arrow.source(data) if self.task == "behaviour" else None
        if src is not None:
            text = _core.evaluate_arrow(str(self.path), src.stream(), src.name, device or "",
                                        on_error or "", 4096)
            return json.loads(text.split("\x1e", 1)[1])
        return self._run("evaluate", [_data_path(data)], device=device, skip_lines=skip_lines,
                         on_error=on_error, quiet=True)

    def predict(self, data: Any, output: Optional[PathLike] = None, *,
                device: Optional[str] = None, batch_size: Optional[int] = None,
                skip_lines: Optional[int] = None, on_error: Optional[str] = None,
                k: Optional[int] = None, length: Optional[int] = None) -> Any:
        """``tessera predict MODEL DATA OUTPUT``.

        A behaviour model returns the scores as a float64 numpy array, one per scored row in
        input order (and keeps ``output``, its CSV ``line,score``, when given). Other tasks
        write ``output`` (required) as the CLI does and return the command's --json object.

        For a behaviour model ``data`` may also be tabular -- a pandas DataFrame, a pyarrow
        Table / RecordBatchReader / Dataset, a Parquet file or directory, a dict of numpy
        arrays -- with the config's columns by name (the label may be absent): the rows are
        read where they are through the Arrow C Data Interface, batch by batch, so memory stays
        flat whatever the input's size, and the returned array is the engine's buffer (no copy).
        ``last_predict`` then holds the command's --json object.
        """
        src = _arrow.source(data) if self.task == "behaviour" else None
        if src is not None:
            scores, info = _core.predict_arrow(str(self.path), src.stream(), src.name,
                                               device or "", on_error or "", batch_size or 4096)
            self.last_predict = json.loads(info)
            if output is not None:
                np.savetxt(os.fspath(output), np.column_stack([np.arange(1, len(scores) + 1),
                                                                scores]),
                           fmt=["%d", "%.6f"], delimiter=",", header="line,score", comments="")
            return scores
        scratch = None
        if output is None:
            if self.task != "behaviour":
                raise TypeError(f"predict with a {self.task} model needs an output path")
            fd, scratch = tempfile.mkstemp(prefix="tessera-predict-", suffix=".csv")
            os.close(fd)
        out = os.fspath(output) if output is not None else scratch
        try:
            result = self._run("predict", [_data_path(data), out], device=device,
                               batch_size=batch_size, skip_lines=skip_lines, on_error=on_error,
                               k=k, length=length, quiet=True)
            if self.task != "behaviour":
                return result
            scores = np.loadtxt(out, delimiter=",", skiprows=1, usecols=1, ndmin=1,
                                dtype=np.float64)
            return scores
        finally:
            if scratch is not None:
                os.unlink(scratch)

    def generate(self, prompt: Optional[str] = None, *, length: Optional[int] = None,
                 temperature: Optional[float] = None, top_k: Optional[int] = None,
                 seed: Optional[int] = None, device: Optional[str] = None) -> str:
        """``tessera generate MODEL``: sampled text from a text-generation model."""
        result = self._run("generate", [], prompt=prompt, length=length, temperature=temperature,
                           top_k=top_k, seed=seed, device=device)
        return str(result.get("text", ""))

    def perplexity(self, data: Any, *, device: Optional[str] = None) -> Dict[str, Any]:
        """``tessera perplexity MODEL TEXT``: loss (nats/char) and perplexity on a text file."""
        return self._run("perplexity", [_data_path(data)], device=device)

    def recommend(self, output: PathLike, *, k: Optional[int] = None) -> Dict[str, Any]:
        """``tessera recommend MODEL OUTPUT --k K``: every user's top-K items into ``output``."""
        return self._run("recommend", [os.fspath(output)], k=k, quiet=True)

    def export(self, format: str, dir: PathLike) -> Dict[str, Any]:
        """``tessera export MODEL --format F DIR``: the model's tables; returns the manifest."""
        return self._run("export", [os.fspath(dir)], format=format)

    def embeddings(self) -> Dict[str, np.ndarray]:
        """The model's embedding tables by name (``tessera export --format npy``, read back).

        Each table ``NAME`` comes with ``NAME_ids`` (the raw ids of its rows). Recommendation
        models only in this version (the CLI's export); other models raise UsageError.
        """
        with tempfile.TemporaryDirectory(prefix="tessera-emb-") as tmp:
            self.export("npy", tmp)
            return {p.stem: np.load(p) for p in sorted(Path(tmp).glob("*.npy"))}


def load(path: PathLike) -> Model:
    """The model file at ``path`` (IoError when it is not a tessera model file)."""
    return Model(path)


def tasks() -> List[Tuple[str, str, List[str]]]:
    """Every task of this build: (name, description, the verbs its model files answer)."""
    return [(n, a, list(v)) for n, a, v in _core.tasks()]


def config_example(task: str) -> str:
    """``tessera config TASK --example``: a documented config with every default."""
    return _core.command("config", [task], {})[0]


def config_schema(task: str) -> Dict[str, Any]:
    """``tessera config TASK --schema``: the config's JSON Schema."""
    return json.loads(_core.command("config", [task], {"--schema": ""})[0])


def make_synthetic(dir: PathLike, *, rows: Optional[int] = None,
                   layout: Optional[str] = None) -> Dict[str, Any]:
    """``tessera make-synthetic DIR``: a synthetic behaviour dataset and its config."""
    return _json_of(_core.command("make-synthetic", [os.fspath(dir)],
                                  _options(rows=rows, layout=layout)))


def prep(config: PathLike, *, out: Optional[PathLike] = None, append: Optional[PathLike] = None,
         shard_rows: Optional[int] = None, threads: Optional[int] = None,
         quiet: bool = True) -> Dict[str, Any]:
    """``tessera prep CONFIG``: a behaviour config's data as a prepared dataset (column shards
    and manifest.json, docs/prepared-format.md); returns the command's --json object."""
    return _json_of(_core.command("prep", [os.fspath(config)],
                                  _options(out=out, append=append, shard_rows=shard_rows,
                                           threads=threads, quiet=quiet)))


def runs(runs_dir: Optional[PathLike] = None) -> List[Dict[str, Any]]:
    """``tessera runs``: the runs under ``runs_dir`` (default runs/), one dict each (``run``,
    ``finished``, ``auc``, ``logloss``, ``accuracy``: None where a run has none)."""
    return list(_json_of(_core.command("runs", [], _options(runs_dir=runs_dir)))["runs"])


def run_pipeline(pipeline: PathLike, *, device: Optional[str] = None,
                 runs_dir: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None,
                 jobs: Optional[int] = None, dry_run: bool = False,
                 quiet: bool = False) -> Dict[str, Any]:
    """``tessera run PIPELINE.json``: a pipeline's stages, cached; returns its --json object."""
    return _json_of(_core.command("run", [os.fspath(pipeline)],
                                  _options(device=device, runs_dir=runs_dir, cache_dir=cache_dir,
                                           jobs=jobs, dry_run=dry_run, quiet=quiet)))


def report(run_dir: PathLike) -> Path:
    """``tessera report RUN_DIR``: writes RUN_DIR/report.html and returns its path."""
    _core.command("report", [os.fspath(run_dir)], {})
    return Path(run_dir) / "report.html"
