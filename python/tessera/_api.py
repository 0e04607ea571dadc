"""tessera.train and tessera.load: the engine's verbs as Python calls (tessera._core)."""

from __future__ import annotations

import json
import os
import shutil
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


@dataclass
class Seeds:
    """Runs of one config with several seeds (``tessera train CONFIG --seeds S1,S2,...``).

    ``result`` is the CLI's --json object: ``seeds``, ``runs`` (each run's result), and ``mean``,
    ``std`` (sample standard deviation; 0 for one run), ``min`` and ``max`` of every number the
    runs' results share, by dotted name (``"test.auc"``). ``runs`` are the seeds' :class:`Run`
    objects, in seed order; ``summary`` is the CLI's text.
    """

    result: Dict[str, Any]
    runs: List[Run]
    summary: str = ""

    @property
    def seeds(self) -> List[int]:
        return [int(s) for s in self.result.get("seeds", [])]

    @property
    def mean(self) -> Dict[str, float]:
        return dict(self.result.get("mean", {}))

    @property
    def std(self) -> Dict[str, float]:
        return dict(self.result.get("std", {}))

    @property
    def min(self) -> Dict[str, float]:
        return dict(self.result.get("min", {}))

    @property
    def max(self) -> Dict[str, float]:
        return dict(self.result.get("max", {}))


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


def _run_of(result: Dict[str, Any], summary: str = "") -> Run:
    """The Run a train result (result.json) describes."""
    rd = Path(result["run_dir"]) if result.get("run_dir") else None
    model = _model_path(result, rd)
    history = _read_jsonl(rd / "metrics.jsonl") if rd is not None else []
    metrics = result.get("test") or result.get("validation") or {}
    return Run(result=result, history=history, run_dir=rd, model_path=model, summary=summary,
               metrics=metrics)


def _result_json(result: Dict[str, Any]) -> Dict[str, Any]:
    """A run's result as its run directory's result.json holds it (the repeats summary writes
    its copies of the runs' results again, their numbers to a few ulps), else as given."""
    path = Path(result["run_dir"]) / "result.json" if result.get("run_dir") else None
    if path is not None and path.is_file():
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    return result


def _result_text(run: Run) -> str:
    """The run's result as the engine wrote it (result.json's text: its numbers parse back to
    the same values in the engine, which a Python re-serialisation need not)."""
    path = run.run_dir / "result.json" if run.run_dir is not None else None
    if path is not None and path.is_file():
        return path.read_text(encoding="utf-8")
    return json.dumps(run.result)


def _seed_list(seeds: Iterable[int]) -> str:
    values = list(seeds)
    if not values:
        raise UsageError("seeds= needs at least one seed")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError("seeds= takes integers, not " + type(value).__name__)
    return ",".join(str(int(v)) for v in values)


def train(
    config: ConfigLike,
    *,
    device: Optional[str] = None,
    epochs: Optional[int] = None,
    seed: Optional[int] = None,
    seeds: Optional[Iterable[int]] = None,
    deterministic_reduction: bool = False,
    run_dir: Optional[PathLike] = None,
    runs_dir: Optional[PathLike] = None,
    resume: Optional[PathLike] = None,
    time_budget: Optional[float] = None,
    quiet: bool = False,
    callbacks: Optional[Iterable[Callback]] = None,
    data: Any = None,
    validation: Any = None,
    test: Any = None,
) -> Union[Run, Seeds]:
    """Trains the model ``config`` describes, as ``tessera train CONFIG`` does, in this process.

    ``config`` is a config file's path, a dict or a JSON string (relative data paths in a dict
    or string are relative to the working directory). The keywords are the CLI's options
    (``--device``, ``--epochs``, ``--seed``, ``--seeds``, ``--run-dir``, ``--runs-dir``,
    ``--resume``, ``--time-budget``, ``--deterministic-reduction``). Returns a :class:`Run`;
    with ``seeds=[S1, S2, ...]`` one run per seed, each its own run directory under
    ``runs_dir`` (not with ``seed``, ``run_dir`` or ``resume``, as the CLI), and a
    :class:`Seeds` with every run and each metric's mean, std, min and max -- the CLI's
    ``--seeds`` result. ``deterministic_reduction`` is the CLI's flag: it sums the ranks'
    gradients in rank order when training runs in a group of several processes (the CLI under
    mpirun); this process trains as a group of one, where the flag, as in a CLI run without
    mpirun, changes nothing. Unless ``quiet``, one line per epoch is printed to ``sys.stderr``
    (terminal and Jupyter alike). Each of ``callbacks`` is called after every epoch with that
    epoch's metrics; one returning False stops training after it. The GIL is released while the
    engine works; Ctrl-C stops training at the next step, the last checkpoint kept (epoch ends,
    or every ``train.checkpoint_every_steps`` steps), and raises KeyboardInterrupt. Engine errors raise :class:`tessera.Error` subclasses.

    ``data`` (behaviour configs) replaces the config's data files: a path the CLI reads (CSV,
    TSV, Criteo text), or tabular data -- a pandas DataFrame, a pyarrow Table / RecordBatchReader
    / Dataset, a Parquet file or directory, a dict of numpy arrays -- whose columns are matched
    by name to the config's ``data.columns``. Tabular rows are prepared (fitted and encoded as
    ``tessera prep`` does, in bounded memory) into a directory beside the run, trained on through
    ``data.prepared``, and moved into the run as ``RUN_DIR/data`` afterwards (with ``seeds``,
    once per seed: the validation split depends on the seed), which ``RUN_DIR/config.json``
    then names (so ``tessera train RUN_DIR/config.json`` trains on the same rows): the same
    metrics as the rows written as CSV and trained by the CLI with the same seed. With
    ``resume=RUN_DIR`` the rows are prepared into ``RUN_DIR/data`` before training, the same
    path at every call: a call with the same rows after an interruption goes on from the run's
    checkpoint, and other rows are refused (UsageError). ``validation`` and
    ``test`` take the same kinds of data, or a path (or ``{"path": ..., "skip_lines": N}``) of a
    file in the config's layout beside tabular ``data`` (read by pyarrow's CSV reader as text
    columns, which the engine parses as it parses a file's fields); ``validation`` defaults to
    the config's validation_fraction of ``data``, ``test`` to the config's ``data.test``.
    Errors in the rows raise :class:`tessera.DataError` naming the column and row.
    """
    if data is not None or validation is not None or test is not None:
        return _train_on_data(config, data, validation, test, device=device, epochs=epochs, seed=seed,
                              seeds=seeds, deterministic_reduction=deterministic_reduction,
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

    options = _options(device=device, epochs=epochs, seed=seed,
                       seeds=_seed_list(seeds) if seeds is not None else None, run_dir=run_dir,
                       runs_dir=runs_dir, resume=resume, time_budget=time_budget,
                       deterministic_reduction=deterministic_reduction, quiet=True)
    scratch: List[str] = []
    try:
        path = _config_file(config, scratch)
        summary, result_json = _core.train(path, options, on_epoch)
    finally:
        for p in scratch:
            os.unlink(p)
    result = json.loads(result_json) if result_json else {}
    if seeds is not None:
        return Seeds(result=result, runs=[_run_of(_result_json(r)) for r in result.get("runs", [])],
                     summary=summary)
    return _run_of(result, summary)


def _config_dict(config: ConfigLike) -> Dict[str, Any]:
    if isinstance(config, Mapping):
        return json.loads(json.dumps(config))
    if isinstance(config, str) and config.lstrip().startswith("{"):
        return json.loads(config)
    with open(os.fspath(config), encoding="utf-8") as f:
        return json.load(f)


def _write_config(cfg: Dict[str, Any], scratch: List[str]) -> str:
    return _config_file(cfg, scratch)


def _is_file_entry(value: Any) -> bool:
    """A text file the engine's config reads: a path (not Parquet) or {"path": ..., ...}."""
    if isinstance(value, (str, os.PathLike)):
        return not _arrow.is_parquet_path(value)
    return isinstance(value, Mapping) and isinstance(value.get("path"), (str, os.PathLike))


def _file_value(value: Any) -> Any:
    """A data-file value for a config: the path as text, or the entry with its path as text."""
    if isinstance(value, Mapping):
        return {**value, "path": os.fspath(value["path"])}
    return os.fspath(value)


def _text_source(entry: Any, section: Mapping[str, Any]) -> "_arrow.Source":
    """A text file of the config's layout (format csv: its columns in order, delimiter, header,
    skip_lines) as an Arrow stream of text columns, read as the engine reads a file's fields (a
    text column is parsed as the text path parses it: host/data/arrow_stream.h)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    fmt = str(section.get("format", "csv"))
    if fmt != "csv":
        raise UsageError(f"a {fmt} file cannot go beside tabular data=: give every split as a "
                         "file, or every split as tabular data")
    path = os.fspath(entry["path"] if isinstance(entry, Mapping) else entry)
    skip = int(entry.get("skip_lines", 0)) if isinstance(entry, Mapping) else 0
    if not os.path.isfile(path):
        raise UsageError(f"data file not found: {path}")
    names = [str(c["name"]) for c in section.get("columns") or []]
    delimiter = str(section.get("delimiter", ","))
    delimiter = "\t" if delimiter == "\\t" else delimiter
    skip += 1 if section.get("header", False) else 0

    def make() -> Any:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=skip),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False))
        return reader.__arrow_c_stream__()

    return _arrow.Source(path, make)


def _split_source(value: Any, section: Mapping[str, Any], spool_dir: str) -> "_arrow.Source":
    if _is_file_entry(value):
        return _text_source(value, section)
    src = _arrow.source(value, spool_dir=spool_dir)
    assert src is not None  # not a file entry, so tabular (or a TypeError above)
    return src


def _train_on_files(cfg: Dict[str, Any], section: Dict[str, Any], data: Any, validation: Any,
                    test: Any, **kw: Any) -> Union[Run, Seeds]:
    """train(data=PATH): the config reads the files as data.train / validation / test."""
    for name, value in (("validation", validation), ("test", test)):
        if value is not None and not _is_file_entry(value):
            raise TypeError(f"{name}= must be a path too when data= is a path")
    section["train"] = _file_value(data)
    if validation is not None:
        section["validation"] = _file_value(validation)
    if test is not None:
        section["test"] = _file_value(test)
    return train({**cfg, "data": section}, **kw)


def _seeds_on_data(cfg: Dict[str, Any], data: Any, validation: Any, test: Any,
                   **kw: Any) -> Seeds:
    """train(data=TABLE, seeds=[...]): a run per seed on its own prepared rows (the held-out
    validation share is drawn by the seed, as the CLI's --seeds draws it from the file), then
    the CLI's summary of the repeats."""
    seeds = [int(s) for s in _seed_list(kw.pop("seeds")).split(",")]
    for other in ("seed", "run_dir", "resume"):
        if kw.get(other) is not None:
            raise UsageError("--seeds trains one run directory per seed under --runs-dir: it "
                             "cannot be combined with --" + other.replace("_", "-"))
    runs: List[Run] = []
    for seed in seeds:
        one = _train_on_data(cfg, data, validation, test, **{**kw, "seed": seed})
        assert isinstance(one, Run)
        runs.append(one)
    summary, result_json = _core.summarize_repeats(seeds, [(r.summary, _result_text(r))
                                                           for r in runs])
    lines = "".join(f"== seed {s}\n{r.summary}" + ("" if r.summary.endswith("\n") else "\n")
                    for s, r in zip(seeds, runs))
    return Seeds(result=json.loads(result_json), runs=runs, summary=lines + summary)


def _train_on_data(config: ConfigLike, data: Any, validation: Any, test: Any = None,
                   **kw: Any) -> Union[Run, Seeds]:
    """train(config, data=..., validation=..., test=...): see train()."""
    if data is None:
        raise TypeError("validation= and test= need data= too")
    cfg = _config_dict(config)
    section = dict(cfg.get("data") or {})
    # The config's test file stays (a path as the config gives it) unless test= replaces it;
    # with a registry dataset its relative paths name the dataset's files, which data= replaces.
    kept_test = section.get("test")
    if test is None and kept_test is not None and (
            not section.get("dataset") or os.path.isabs(os.fspath(
                kept_test["path"] if isinstance(kept_test, Mapping) else kept_test))):
        test = kept_test
    for key in ("dataset", "train", "file", "path", "validation", "test", "prepared"):
        section.pop(key, None)
    if _is_file_entry(data):
        return _train_on_files(cfg, section, data, validation, test, **kw)
    if kw.get("seeds") is not None:
        return _seeds_on_data(cfg, data, validation, test, **kw)
    if kw.get("resume") is not None:
        return _resume_on_table(cfg, section, data, validation, test, **kw)
    # Prepared next to where the run goes, then moved into it (a run's directory must not exist
    # before the run starts).
    run_dir = kw.get("run_dir")
    if run_dir is not None:
        base = Path(run_dir).parent
    else:
        base = Path(kw.get("runs_dir") or (cfg.get("train") or {}).get("runs_dir") or "runs")
    prepared = _prepare_table(cfg, section, data, validation, test, kw.get("seed"), base)
    try:
        run = train({**cfg, "data": section}, **kw)
        if isinstance(run, Run) and run.run_dir is not None and run.run_dir.is_dir():
            shutil.move(str(prepared), str(run.run_dir / "data"))
            _point_config_at(run.run_dir / "config.json", prepared, run.run_dir / "data")
        return run
    finally:
        shutil.rmtree(prepared, ignore_errors=True)


def _prepare_table(cfg: Dict[str, Any], section: Dict[str, Any], data: Any, validation: Any,
                   test: Any, seed: Optional[int], base: Path) -> Path:
    """The tabular splits prepared (fitted and encoded as ``tessera prep`` does) into a new
    directory under ``base``; ``section`` (the config's data section) then names it as
    data.train and data.prepared, and ``cfg`` takes ``seed``. The caller removes the directory."""
    base.mkdir(parents=True, exist_ok=True)
    prepared = Path(tempfile.mkdtemp(prefix=".tessera-data-", dir=base))
    scratch: List[str] = []
    try:
        train_src = _split_source(data, section, str(prepared))
        val_src = _split_source(validation, section, str(prepared)) if validation is not None \
            else None
        test_src = _split_source(test, section, str(prepared)) if test is not None else None
        # The config as training will read it (data.read and the like apply with "prepared").
        section["train"] = section["prepared"] = str(prepared)
        if seed is not None:
            cfg["seed"] = int(seed)
        path = _write_config({**cfg, "data": section}, scratch)
        _core.prepare_arrow(path, str(prepared), train_src.stream,
                            val_src.stream if val_src is not None else None,
                            test_src.stream if test_src is not None else None, 1 << 18, True)
    except BaseException:
        shutil.rmtree(prepared, ignore_errors=True)
        raise
    finally:
        for p in scratch:
            os.unlink(p)
    return prepared


def _point_config_at(config_json: Path, old: Path, new: Path) -> None:
    """The run's saved config with its prepared rows' directory ``old`` (gone: moved) renamed
    ``new``, written atomically: RUN_DIR/config.json names the rows the run trained on where
    they are, so ``tessera train RUN_DIR/config.json`` trains on them again."""
    if not config_json.is_file():
        return
    saved = json.loads(config_json.read_text(encoding="utf-8"))
    section = saved.get("data")
    if not isinstance(section, dict):
        return
    for key in ("train", "prepared"):
        if section.get(key) == str(old):
            section[key] = str(new)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=config_json.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(saved, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, config_json)
    except BaseException:
        os.unlink(tmp)
        raise


def _same_prepared_rows(a: Path, b: Path) -> bool:
    """Whether two prepared directories hold the same encoded rows: the same shards (rows and
    CRC-32 of each) of each split and the same fitted preprocessor (its CRC-32)."""
    def digest(d: Path) -> Any:
        m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
        splits = {name: [[(s["rows"], s["crc32"]) for s in part.get("shards", [])]
                         for part in parts]
                  for name, parts in (m.get("splits") or {}).items()}
        return splits, (m.get("preprocessor_file") or {}).get("crc32"), m.get("complete")
    return digest(a) == digest(b)


def _resume_on_table(cfg: Dict[str, Any], section: Dict[str, Any], data: Any, validation: Any,
                     test: Any, **kw: Any) -> Union[Run, Seeds]:
    """train(data=TABLE, resume=RUN_DIR): the rows are prepared into RUN_DIR/data, a path that
    does not change between calls (the resume check hashes the config, which names it). A later
    call with the same rows finds them there and goes on from the run's checkpoint; other rows
    are refused, as a changed config is."""
    run_dir = Path(kw["resume"])
    final = run_dir / "data"
    prepared = _prepare_table(cfg, section, data, validation, test, kw.get("seed"), run_dir)
    try:
        if (final / "manifest.json").is_file():
            if not _same_prepared_rows(prepared, final):
                raise UsageError(f"resume={str(run_dir)!r}: data= holds other rows than the ones "
                                 f"the run was started on ({final}); resume with the same data, "
                                 "or start a new run")
        else:
            shutil.rmtree(final, ignore_errors=True)  # an earlier call's, killed mid-way
            os.replace(prepared, final)
        section["train"] = section["prepared"] = str(final)
        return train({**cfg, "data": section}, **kw)
    finally:
        shutil.rmtree(prepared, ignore_errors=True)


def _data_path(data: Any) -> str:
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    raise TypeError("this model's task reads files: data must be a path, not "
                    + type(data).__name__)


# Tasks whose models answer `tessera predict MODEL FILE` for one input file (the top classes).
_ONE_FILE_TASKS = ("image", "audio", "video")


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
        """``tessera predict MODEL DATA OUTPUT``, or ``tessera predict MODEL FILE``.

        A behaviour model returns the scores as a float64 numpy array, one per scored row in
        input order (and keeps ``output``, its CSV ``line,score``, when given). An image, audio
        or video model given one image, WAV file or clip and no ``output`` answers as
        ``tessera predict MODEL FILE``: its --json object (``top``: the 3 most likely classes,
        each ``class``, ``index``, ``probability``) with ``class`` (the most likely one) and
        ``probabilities`` ({class: probability} of those 3) added. Other tasks write ``output``
        (required) as the CLI does and return the command's --json object.

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
        if output is None and self.task in _ONE_FILE_TASKS:
            result = self._run("predict", [_data_path(data)], device=device, quiet=True)
            top = list(result.get("top") or [])
            if top:
                result["class"] = top[0]["class"]
                result["probabilities"] = {t["class"]: t["probability"] for t in top}
            return result
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
        """The model's embedding tables by name, as read-only numpy views of the model's memory.

        The model file is loaded once, in C++; every array views that memory (no per-table
        copy) and keeps it alive, also after this Model and the dict are gone. The arrays are
        read-only (``flags.writeable`` is False): ``np.array(t)`` makes a writable copy.

        Behaviour models (DLRM, DCN-v2, Wide & Deep, and the MLP when it has tables): one
        float32 ``[rows, embedding_dim]`` table per categorical column, named by the column, all
        views into the model's one flat table buffer (``embedding.tables``; the MLP's
        ``embedding.table``). Row r is the column's encoded id r: with a vocabulary, row 0 is
        the out-of-vocabulary row and the i-th token of the fitted vocabulary is row i + 1; with
        ``hash_buckets``, the bucket. A Wide & Deep model adds its wide tables, ``[rows, 1]``,
        as ``"wide:COLUMN"``. On libSVM / libFM rows the tables are the input layout's:
        ``"features"`` (libSVM) or ``"field F"`` (libFM, one per field), row i the feature index
        i; for the MLP they are the rows of its first layer's weight ``[features, hidden[0]]``.
        An MLP without categorical columns has none (an empty dict).

        Recommendation models (MF, two-tower): the tables ``tessera export`` writes (``user``,
        ``item``, and the bias tables), each with ``NAME_ids``, int64, the raw ids of its rows
        (tables of the same ids share one array's memory).

        16-bit tables (``model.table_dtype`` bf16 / f16): model files carry them as float32
        (widened exactly when written), so they are float32 here too, with no conversion, and
        hold the 16-bit values exactly. Other tasks' models raise UsageError; a damaged file
        raises IoError.
        """
        return dict(_core.model_tables(os.fspath(self.path)))


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


def make_synthetic(dir: PathLike, *, rows: Optional[int] = None, layout: Optional[str] = None,
                   size: Optional[Union[str, int]] = None, threads: Optional[int] = None,
                   max_table_rows: Optional[int] = None, min_count: Optional[int] = None,
                   seed: Optional[int] = None) -> Dict[str, Any]:
    """``tessera make-synthetic DIR``: a synthetic dataset and its config; returns the
    command's --json object. The keywords are the CLI's options: ``rows``, ``layout``
    ("behaviour" or "criteo"), ``seed``, and for ``layout="criteo"`` only ``size`` (e.g.
    "10GB"), ``threads``, ``max_table_rows`` and ``min_count`` (``tessera make-synthetic
    --help``); the CLI's checks and messages apply (UsageError)."""
    return _json_of(_core.command("make-synthetic", [os.fspath(dir)],
                                  _options(rows=rows, layout=layout, size=size, threads=threads,
                                           max_table_rows=max_table_rows,
                                           min_count=min_count, seed=seed)))


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
