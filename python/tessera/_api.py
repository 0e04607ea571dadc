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

from . import _core

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
    """
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


def _data_path(data: Any) -> str:
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    raise TypeError(
        "data must be a path (any format the CLI reads) in this version; pandas DataFrames and "
        "Arrow tables are not supported yet, not " + type(data).__name__)


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
        """``tessera evaluate MODEL DATA``: the metrics on labelled data, as its --json object."""
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
        """
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
