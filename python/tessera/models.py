"""Keras-style model objects over tessera's config machinery.

Each builder assembles the same config a JSON file would hold, and ``fit`` trains it with
:func:`tessera.train`, so a model built here is exactly a config run::

    from tessera.models import DLRM

    model = DLRM(columns={"age": "numeric", "country": "categorical", "clicked": "label"},
                 embedding_dim=16, bottom=[64], hidden=[128, 64])
    model.fit("train.csv", validation_data="valid.csv", epochs=5, batch_size=512)
    print(model.evaluate("test.csv")["auc"])
    scores = model.predict("test.csv")           # numpy float64, one score per row
    model.save("my_model")                       # my_model/model.tsm and my_model/config.json

``tessera train my_model/config.json`` reruns the same training (same seed, same metrics).

The behaviour (tabular) models are :class:`MLP`, :class:`DLRM`, :class:`DCNv2` and
:class:`WideAndDeep` (model.type "mlp", "dlrm", "dcn_v2", "wide_deep";
``tessera config behaviour --example`` documents every key). The recommendation models are
:class:`TwoTower` and :class:`MF` ("two_tower", "mf"; ``tessera config recommend --example``).

Data (``train``, ``validation_data``, ``evaluate``/``predict``'s ``data``) is a path to a file in
the config's format, a data-file entry ``{"path": ..., "skip_lines": N}``, or a pandas DataFrame /
pyarrow Table. A frame goes to the engine through ``tessera.train(data=...)`` /
``Model.predict(frame)`` where this build has them (the Arrow C stream), files given beside it
(``validation_data``, ``test_data``) through ``validation=`` / ``test=``; a build without them
writes the frame as CSV in the model's scratch folder first (same rows, same results).
Without ``columns``, a frame's columns are typed by dtype (numbers numeric, the rest
categorical, ``label`` the label, those named in ``ignore`` left out).
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _api
from ._api import Callback, Model, PathLike, Run

Columns = Union[Mapping[str, Any], Sequence[Mapping[str, Any]]]
Data = Any  # a path, a data-file entry {"path": ..., "skip_lines": N}, a DataFrame, an Arrow table

__all__ = ["MLP", "DLRM", "DCNv2", "WideAndDeep", "TwoTower", "MF", "load_model", "BaseModel"]

_CONFIG_FILE = "config.json"
_MODEL_FILE = "model.tsm"


def _is_frame(data: Any) -> bool:
    """A pandas DataFrame, an Arrow table / record batch reader (anything with the Arrow C
    stream or pandas' columns) or a dict of numpy columns, as opposed to a path or a data-file
    entry."""
    if isinstance(data, Mapping):  # a dict of numpy arrays, not a data-file entry
        return "path" not in data and bool(data) and all(
            hasattr(v, "__len__") and not isinstance(v, str) for v in data.values())
    if isinstance(data, (str, os.PathLike)):
        return False
    return hasattr(data, "__arrow_c_stream__") or hasattr(data, "to_pandas") or (
        hasattr(data, "columns") and hasattr(data, "dtypes"))


def _to_pandas(frame: Any) -> Any:
    if isinstance(frame, Mapping):
        return _pandas().DataFrame({k: np.asarray(v) for k, v in frame.items()})
    if hasattr(frame, "dtypes") and hasattr(frame, "to_csv"):
        return frame
    if hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    if hasattr(frame, "to_table"):  # a pyarrow dataset
        return frame.to_table().to_pandas()
    if hasattr(frame, "read_all"):
        return frame.read_all().to_pandas()
    raise TypeError("cannot read " + type(frame).__name__ + " as a table")


def _one_pass(frame: Any) -> bool:
    """A stream that can be read once (a pyarrow RecordBatchReader), unlike a table or frame."""
    return hasattr(frame, "read_all") and not hasattr(frame, "to_pandas")


def _kinds_of(frame: Any) -> List[tuple]:
    """(name, numpy kind) of every column, from an Arrow schema where the frame has one (so a
    stream is not read), else from pandas' dtypes."""
    schema = getattr(frame, "schema", None)
    if schema is not None and hasattr(schema, "names") and hasattr(schema, "types"):
        import pyarrow as pa

        def kind(t: Any) -> str:
            if pa.types.is_boolean(t):
                return "b"
            return "f" if pa.types.is_integer(t) or pa.types.is_floating(t) else "O"

        return [(str(n), kind(t)) for n, t in zip(schema.names, schema.types)]
    df = _to_pandas(frame)
    return [(str(n), getattr(d, "kind", "O")) for n, d in zip(df.columns, df.dtypes)]


def _file_entry(data: Any) -> Any:
    """A config's data-file value for a path or entry: the path made absolute, so the saved
    config reruns from any working directory."""
    if isinstance(data, (str, os.PathLike)):
        return str(Path(data).resolve())
    if isinstance(data, Mapping):
        if "path" not in data:
            raise ValueError('a data-file entry needs "path": ' + json.dumps(dict(data)))
        entry = dict(data)
        entry["path"] = str(Path(entry["path"]).resolve())
        return entry
    raise TypeError("data must be a path, a {\"path\": ..., \"skip_lines\": N} entry, a pandas "
                    "DataFrame or a pyarrow Table, not " + type(data).__name__)


def _path_and_skip(entry: Any) -> "tuple[str, Optional[int]]":
    if isinstance(entry, Mapping):
        skip = entry.get("skip_lines")
        return str(entry["path"]), int(skip) if skip is not None else None
    return str(entry), None


def _engine_takes(function: Any, keyword: str) -> bool:
    try:
        return keyword in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _engine_takes_frames() -> bool:
    """Whether this build's tessera.train takes tabular ``data=`` (and Model.predict /
    evaluate a DataFrame or Arrow table: the Arrow C stream route, which came together)."""
    return _engine_takes(_api.train, "data")


def _optimizer(value: Union[str, Mapping[str, Any], None],
               learning_rate: Optional[float], key: str = "type") -> Optional[Dict[str, Any]]:
    """An optimizer section from a name or a dict, with learning_rate as its "lr"."""
    if value is None and learning_rate is None:
        return None
    section: Dict[str, Any] = {}
    if isinstance(value, str):
        section[key] = value
    elif isinstance(value, Mapping):
        section.update(value)
    elif value is not None:
        raise TypeError("an optimizer is a name or a dict, not " + type(value).__name__)
    if learning_rate is not None:
        section["lr"] = float(learning_rate)
    return section


def _set(section: Dict[str, Any], key: str, value: Any) -> None:
    """section[key] = value unless value is None (None leaves the engine's default)."""
    if value is None:
        return
    if isinstance(value, tuple):
        value = list(value)
    section[key] = value


class BaseModel:
    """What every builder shares: the config, fit's run, the trained model file, save."""

    task = ""
    model_type = ""

    def __init__(self, *, name: Optional[str], seed: Optional[int]) -> None:
        self._config: Dict[str, Any] = {"task": self.task}
        _set(self._config, "name", name)
        _set(self._config, "seed", seed)
        self.run: Optional[Run] = None
        self._model: Optional[Model] = None
        self._scratch: Optional[tempfile.TemporaryDirectory] = None

    # ---- the config -----------------------------------------------------------------------

    def config(self) -> Dict[str, Any]:
        """The config this model trains with (after fit: the one it trained with, data paths
        absolute): the dict ``tessera.train`` gets and ``save`` writes."""
        return copy.deepcopy(self._config)

    def _section(self, name: str) -> Dict[str, Any]:
        return self._config.setdefault(name, {})

    def _scratch_dir(self) -> Path:
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="tessera-model-")
        return Path(self._scratch.name)

    # ---- after fit ------------------------------------------------------------------------

    @property
    def model(self) -> Model:
        """The trained model file as a :class:`tessera.Model` (after fit or load_model)."""
        if self._model is None:
            raise RuntimeError(f"this {type(self).__name__} has not been trained: call fit first")
        return self._model

    @property
    def history(self) -> List[Dict[str, Any]]:
        """One dict per epoch of the last fit (its metrics.jsonl)."""
        return list(self.run.history) if self.run is not None else []

    def _train(self, config: Dict[str, Any], *, device: Optional[str],
               run_dir: Optional[PathLike], runs_dir: Optional[PathLike],
               callbacks: Optional[Iterable[Callback]], quiet: bool,
               **engine_data: Any) -> Run:
        """tessera.train on `config` (which becomes this model's config; a device given is
        written into it, so the saved config reruns on the same device)."""
        _set(config, "device", device)
        self._config = config
        run = _api.train(config, device=device, run_dir=run_dir, runs_dir=runs_dir, quiet=quiet,
                         callbacks=callbacks, **engine_data)
        self.run = run
        if run.model_path is None:
            raise RuntimeError("the run saved no model file: " + str(run.run_dir))
        self._model = _api.load(run.model_path)
        return run

    def save(self, path: PathLike) -> Path:
        """Writes the trained model and its config into the folder ``path``: ``model.tsm`` (as
        ``tessera.load`` and the CLI read it) and ``config.json``, which ``tessera train``
        reruns to the same model (data given as frames is written beside it as CSV first).
        Returns the folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.model.path, folder / _MODEL_FILE)
        config = self._config_for_save(folder)
        with open(folder / _CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        return folder

    def _config_for_save(self, folder: Path) -> Dict[str, Any]:
        return self.config()

    def __repr__(self) -> str:
        state = f"trained: {self._model.path}" if self._model is not None else "not trained"
        return f"tessera.models.{type(self).__name__}({state})"


class TabularModel(BaseModel):
    """A behaviour model (binary classifier on a table of numeric and categorical columns)."""

    task = "behaviour"

    def __init__(self, *, columns: Optional[Columns] = None, label: Optional[str] = None,
                 embedding_dim: Optional[int] = None, hidden: Optional[Sequence[int]] = None,
                 dropout: Optional[float] = None, activation: Optional[str] = None,
                 optimizer: Union[str, Mapping[str, Any], None] = None,
                 learning_rate: Optional[float] = None,
                 lr_schedule: Optional[Mapping[str, Any]] = None,
                 early_stopping_patience: Optional[int] = None,
                 data_options: Optional[Mapping[str, Any]] = None,
                 ignore: Sequence[str] = (),
                 name: Optional[str] = None, seed: Optional[int] = None) -> None:
        super().__init__(name=name, seed=seed)
        self._columns = self._column_list(columns, label) if columns is not None else None
        self._label = label
        self._ignore = set(ignore)
        self._data_options = dict(data_options or {})
        model = self._section("model")
        model["type"] = self.model_type
        _set(model, "embedding_dim", embedding_dim)
        _set(model, "hidden", hidden)
        _set(model, "dropout", dropout)
        _set(model, "activation", activation)
        train = self._section("train")
        _set(train, "optimizer", _optimizer(optimizer, learning_rate))
        _set(train, "lr_schedule", dict(lr_schedule) if lr_schedule is not None else None)
        if early_stopping_patience is not None:
            train["early_stopping"] = {"patience": int(early_stopping_patience)}
        self._frames: Dict[str, Any] = {}

    @staticmethod
    def _column_list(columns: Columns, label: Optional[str]) -> List[Dict[str, Any]]:
        """data.columns from a list of column dicts or a {name: type or dict} mapping."""
        if isinstance(columns, Mapping):
            out = []
            for name, spec in columns.items():
                entry = {"type": spec} if isinstance(spec, str) else dict(spec)
                out.append({"name": name, **entry})
        else:
            out = [dict(c) for c in columns]
        if label is not None:
            for c in out:
                if c.get("name") == label and c.get("type") != "label":
                    c["type"] = "label"
        return out

    def _columns_of_frame(self, frame: Any) -> List[Dict[str, Any]]:
        if self._label is None:
            raise ValueError("a DataFrame's label column is needed: give label= (or columns=)")
        kinds = _kinds_of(frame)
        names = [n for n, _ in kinds]
        if self._label not in names:
            raise ValueError(f"label column {self._label!r} is not among the frame's columns: "
                             + ", ".join(names))
        unknown = sorted(self._ignore - set(names))
        if unknown:
            raise ValueError("ignore= names columns the frame lacks: " + ", ".join(unknown))
        out = []
        for name, kind in kinds:
            if name == self._label:
                kind = "label"
            elif name in self._ignore:
                kind = "ignore"
            else:
                kind = "numeric" if kind in "iufb" else "categorical"
            out.append({"name": name, "type": kind})
        return out

    # ---- data -----------------------------------------------------------------------------

    def _frame_csv(self, frame: Any, role: str) -> Path:
        """The frame as a CSV of the config's columns in order, in the scratch folder (a header
        line when the config's data has header on, as a frame-trained model's has): the route
        for a build whose engine takes no frames, and what save writes for a frame."""
        df = _to_pandas(frame)
        names = [c["name"] for c in self._columns or []]
        missing = [n for n in names if n not in df.columns]
        if missing:
            raise ValueError("the frame lacks the model's columns: " + ", ".join(missing))
        out = df[names].copy()
        delimiter = str(self._data().get("delimiter", ","))
        if delimiter == "\\t":
            delimiter = "\t"
        for name in names:
            column = out[name]
            if column.dtype.kind == "b":
                out[name] = column.astype(np.int8)
            elif column.dtype.kind not in "iuf":
                text = column.astype("string")
                bad = text.str.contains(delimiter, regex=False) | text.str.contains(
                    "\n", regex=False)
                if bad.fillna(False).any():
                    raise ValueError(f"column {name!r} has values holding the delimiter "
                                     f"{delimiter!r} or a line break: pass the data as a file")
        path = self._scratch_dir() / f"{role}.csv"
        out.to_csv(path, sep=delimiter, index=False, na_rep="",
                   header=bool(self._data().get("header", False)))
        return path

    def _data(self) -> Dict[str, Any]:
        return self._config.setdefault("data", {})

    def _entry(self, data: Any, role: str) -> Any:
        if _is_frame(data):
            path = self._frame_csv(data, role)
            self._frames[role] = path  # written once: a stream is read once
            return str(path)
        return _file_entry(data)

    def _prepare_data(self, train: Any, validation_data: Any, test_data: Any,
                      validation_split: Optional[float]) -> Dict[str, Any]:
        """The data section for a fit; frames become CSV files (header on) unless the engine
        takes them (then the returned keywords carry them to tessera.train)."""
        self._frames = {}
        if self._columns is None:
            if not _is_frame(train):
                raise ValueError("columns= is needed to read a file (a list of {\"name\", "
                                 "\"type\"} or a {name: type} dict); a DataFrame's are read "
                                 "from its dtypes")
            self._columns = self._columns_of_frame(train)
        data = self._data()
        data.clear()
        data.update(self._data_options)
        data["columns"] = self._columns
        engine: Dict[str, Any] = {}
        frames = _is_frame(train)
        if frames:
            data["header"] = True
        # The engine's data= route (the Arrow C stream) takes the frames, and files beside them
        # (validation=, test=) where this build's tessera.train has test=; an older one takes
        # a train frame and a validation frame only, and the rest is written as CSV.
        takes_all = _engine_takes(_api.train, "test")
        if frames and _engine_takes_frames() and (takes_all or (test_data is None and (
                validation_data is None or _is_frame(validation_data)))):
            engine["data"] = train
            self._frames["train"] = train
            for role, given in (("validation", validation_data), ("test", test_data)):
                if given is None:
                    continue
                if _is_frame(given):
                    self._frames[role] = given
                    engine[role] = given
                else:  # a file: named in the config (saved with it) and passed to the engine
                    data[role] = _file_entry(given)
                    engine[role] = data[role]
        else:
            data["train"] = self._entry(train, "train")
            if validation_data is not None:
                data["validation"] = self._entry(validation_data, "validation")
            if test_data is not None:
                data["test"] = self._entry(test_data, "test")
        if validation_data is None and validation_split is not None:
            data["validation_fraction"] = float(validation_split)
        return engine

    # ---- Keras verbs ----------------------------------------------------------------------

    def fit(self, train: Data, validation_data: Optional[Data] = None, *,
            epochs: Optional[int] = None, batch_size: Optional[int] = None,
            callbacks: Optional[Iterable[Callback]] = None, device: Optional[str] = None,
            run_dir: Optional[PathLike] = None, runs_dir: Optional[PathLike] = None,
            validation_split: Optional[float] = None, test_data: Optional[Data] = None,
            quiet: bool = True) -> Run:
        """Trains on ``train`` (a run of ``tessera train`` on this model's config).

        ``validation_data`` is a file or frame scored after every epoch, else
        ``validation_split`` (default 0.1) of ``train`` is held out; ``test_data`` is scored
        once at the end (the run's ``metrics``). ``callbacks`` get each epoch's metrics (one
        returning False stops training). Returns the :class:`tessera.Run`; the trained model
        then answers evaluate, predict and save."""
        if validation_data is not None and validation_split is not None:
            raise ValueError("give validation_data or validation_split, not both")
        config = copy.deepcopy(self._config)
        self._config = config
        engine = self._prepare_data(train, validation_data, test_data, validation_split)
        _set(config["train"], "epochs", epochs)
        _set(config["train"], "batch_size", batch_size)
        return self._train(config, device=device, run_dir=run_dir, runs_dir=runs_dir,
                           callbacks=callbacks, quiet=quiet, **engine)

    def _with_frames(self, verb: str, data: Data, **options: Any) -> Any:
        """Model.evaluate / predict on `data`: a frame straight to the engine where it takes
        one, else through a CSV of the model's columns; a file as it is."""
        method = getattr(self.model, verb)
        if _is_frame(data):
            if _engine_takes_frames():
                return method(data, **options)
            return method(str(self._frame_csv(data, verb)), **options)
        path, skip = _path_and_skip(_file_entry(data))
        return method(path, skip_lines=skip, **options)

    def evaluate(self, data: Data, *, device: Optional[str] = None) -> Dict[str, Any]:
        """The metrics on labelled data (AUC, logloss, accuracy, ...: ``tessera evaluate``'s
        "metrics"); the full --json object is ``self.model.evaluate(path)``."""
        result = self._with_frames("evaluate", data, device=device)
        return dict(result.get("metrics", result))

    def predict(self, data: Data, *, batch_size: Optional[int] = None,
                device: Optional[str] = None) -> np.ndarray:
        """The predicted probability of the positive class for every row of ``data``, in
        order, as a float64 numpy array."""
        return self._with_frames("predict", data, batch_size=batch_size, device=device)

    def _config_for_save(self, folder: Path) -> Dict[str, Any]:
        config = self.config()
        data = config.setdefault("data", {})
        for role, frame in self._frames.items():
            if isinstance(frame, Path):
                written = frame
            elif _one_pass(frame):
                raise ValueError(f"the {role} data was a one-pass stream, read by fit: save cannot "
                                 "write it beside the config (fit on a Table or DataFrame)")
            else:
                written = self._frame_csv(frame, role)
            path = folder / f"{role}.csv"
            shutil.copyfile(written, path)
            data[role] = str(path.resolve())
            data["header"] = True
        return config


def _table_keys(model: Dict[str, Any], sparse_optimizer: Any, sparse_learning_rate: Any,
                shards: Any, placement: Any, table_dtype: Any, stochastic_rounding: Any) -> None:
    _set(model, "sparse_optimizer", _optimizer(sparse_optimizer, sparse_learning_rate))
    _set(model, "shards", shards)
    _set(model, "placement", placement)
    _set(model, "table_dtype", table_dtype)
    _set(model, "stochastic_rounding", stochastic_rounding)


class MLP(TabularModel):
    """model.type "mlp": the numeric features and one embedding per categorical column into
    hidden layers ``hidden`` (default [128, 64]) with ``dropout`` and ``activation``."""

    model_type = "mlp"


class _TableModel(TabularModel):
    def __init__(self, *, sparse_optimizer: Union[str, Mapping[str, Any], None] = None,
                 sparse_learning_rate: Optional[float] = None, shards: Optional[int] = None,
                 placement: Optional[str] = None, table_dtype: Optional[str] = None,
                 stochastic_rounding: Optional[bool] = None, **keys: Any) -> None:
        super().__init__(**keys)
        _table_keys(self._section("model"), sparse_optimizer, sparse_learning_rate, shards,
                    placement, table_dtype, stochastic_rounding)


class DLRM(_TableModel):
    """model.type "dlrm": embedding tables, a bottom MLP ``bottom`` on the numeric features,
    the dot interaction and a top MLP ``hidden``; ``sparse_optimizer`` ("rowwise_adagrad",
    "adagrad", "sgd", "lazy_adam" or a dict) and ``sparse_learning_rate`` train the tables."""

    model_type = "dlrm"

    def __init__(self, *, bottom: Optional[Sequence[int]] = None, **keys: Any) -> None:
        super().__init__(**keys)
        _set(self._section("model"), "bottom", bottom)


class DCNv2(_TableModel):
    """model.type "dcn_v2": DCN-V2's cross network (``cross_layers``, full rank or
    ``low_rank``, ``structure`` "stacked" or "parallel") with a deep tower ``hidden``."""

    model_type = "dcn_v2"

    def __init__(self, *, bottom: Optional[Sequence[int]] = None,
                 cross_layers: Optional[int] = None, low_rank: Optional[int] = None,
                 structure: Optional[str] = None, **keys: Any) -> None:
        super().__init__(**keys)
        model = self._section("model")
        _set(model, "bottom", bottom)
        cross: Dict[str, Any] = {}
        _set(cross, "layers", cross_layers)
        _set(cross, "low_rank", low_rank)
        _set(cross, "structure", structure)
        if cross:
            model["cross"] = cross


class WideAndDeep(_TableModel):
    """model.type "wide_deep": a wide linear part beside a deep tower ``hidden``."""

    model_type = "wide_deep"


# ---- recommendation -----------------------------------------------------------------------


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - pandas is in the test extras
        raise ImportError("this call returns a pandas DataFrame: pip install pandas") from e
    return pandas


class RecommendModel(BaseModel):
    """A recommendation model on (user, item[, rating[, timestamp]]) interactions."""

    task = "recommend"

    def __init__(self, *, dim: Optional[int] = None, init_scale: Optional[float] = None,
                 optimizer: Union[str, Mapping[str, Any], None] = None,
                 learning_rate: Optional[float] = None, l2: Optional[float] = None,
                 bias_l2: Optional[float] = None, shards: Optional[int] = None,
                 name: Optional[str] = None, seed: Optional[int] = None) -> None:
        super().__init__(name=name, seed=seed)
        self._config["model"] = self.model_type
        embeddings = self._section("embeddings")
        _set(embeddings, "dim", dim)
        _set(embeddings, "init_scale", init_scale)
        _set(embeddings, "optimizer", _optimizer(optimizer, learning_rate, key="kind"))
        _set(embeddings, "shards", shards)
        train = self._section("train")
        _set(train, "l2", l2)
        _set(train, "bias_l2", bias_l2)
        self._data_keys: Dict[str, Any] = {}  # data keys of the model's own (mf: test_fraction)

    def _ratings_entry(self, data: Any, role: str) -> Any:
        """A ratings file for the config: a path, or a frame's first columns (user, item,
        rating[, timestamp]) written as CSV in the scratch folder."""
        if _is_frame(data):
            df = _to_pandas(data)
            path = self._scratch_dir() / f"{role}.csv"
            df.iloc[:, :4].to_csv(path, index=False, header=True)
            self._frames[role] = path
            return str(path)
        return _file_entry(data)

    def fit(self, train: Data = None, *, test_data: Optional[Data] = None,
            dataset: Optional[str] = None, epochs: Optional[int] = None,
            batch_size: Optional[int] = None, callbacks: Optional[Iterable[Callback]] = None,
            device: Optional[str] = None, run_dir: Optional[PathLike] = None,
            runs_dir: Optional[PathLike] = None, quiet: bool = True) -> Run:
        """Trains on ``train``: a ratings file (``user,item,rating[,timestamp]``), a frame with
        those columns first, or with ``dataset`` (a registry name such as "ml-latest-small") a
        file of that dataset (default: the config's, "ratings.csv"). ``test_data`` is the
        fixed test file (pipelines/recommend/README.md). Returns the :class:`tessera.Run`."""
        self._frames: Dict[str, Any] = {}
        config = copy.deepcopy(self._config)
        data = config.setdefault("data", {})
        data.clear()
        data.update(self._data_keys)
        if dataset is not None:
            data["dataset"] = dataset
            if train is not None:
                data["train"] = os.fspath(train)
        elif train is None:
            raise ValueError("fit needs train data (a ratings file or frame) or dataset=")
        else:  # no "dataset": train is a local path
            data["train"] = self._ratings_entry(train, "train")
        if test_data is not None:
            data["test"] = self._ratings_entry(test_data, "test")
        _set(config["train"], "epochs", epochs)
        _set(config["train"], "batch_size", batch_size)
        return self._train(config, device=device, run_dir=run_dir, runs_dir=runs_dir,
                           callbacks=callbacks, quiet=quiet)

    def evaluate(self, data: Data) -> Dict[str, Any]:
        """``tessera evaluate MODEL RATINGS``: the metrics on a ratings (test) file."""
        return self.model.evaluate(self._ratings_entry(data, "evaluate"))

    def _predict_file(self, rows_path: str, k: Optional[int]) -> Any:
        out = self._scratch_dir() / "predict-out.csv"
        self.model.predict(rows_path, out, k=k)
        return _pandas().read_csv(out)

    def predict(self, pairs: Data) -> np.ndarray:
        """The score of every (user, item) row of ``pairs`` (a file or a frame whose first two
        columns are user and item), in order, as float64 (NaN where the model lacks the user or
        the item): mf's predicted rating, two_tower's ``<u, v_i> + b_i``."""
        if _is_frame(pairs):
            df = _to_pandas(pairs)
            path = self._scratch_dir() / "pairs.csv"
            df.iloc[:, :2].to_csv(path, index=False, header=["user", "item"])
            pairs = path
        scores = self._predict_file(os.fspath(pairs), None)["score"]
        return scores.to_numpy(dtype=np.float64, na_value=np.nan)

    def recommend(self, users: Optional[Iterable[int]] = None, k: int = 10) -> Any:
        """Each user's top ``k`` items, the items seen in training left out, as a pandas
        DataFrame with columns user, rank, item, score (``tessera recommend``; for ``users``
        given, those users only, as ``tessera predict`` on a user list)."""
        if users is None:
            out = self._scratch_dir() / "recommend.csv"
            self.model.recommend(out, k=k)
            return _pandas().read_csv(out)
        path = self._scratch_dir() / "users.csv"
        with open(path, "w", encoding="utf-8") as f:
            f.write("user\n")
            for u in users:
                f.write(f"{int(u)}\n")
        return self._predict_file(str(path), k)

    def embeddings(self) -> Dict[str, np.ndarray]:
        """The model's tables by name (user, item, the biases), each with ``NAME_ids``:
        read-only views of the model's memory (``tessera.Model.embeddings``)."""
        return self.model.embeddings()

    def _config_for_save(self, folder: Path) -> Dict[str, Any]:
        config = self.config()
        for role, path in self._frames.items():
            target = folder / f"{role}.csv"
            shutil.copyfile(path, target)
            config["data"][role] = str(target.resolve())
        return config


class TwoTower(RecommendModel):
    """model "two_tower": user and item embeddings of width ``dim``, score ``<u, v_i> + b_i``,
    trained on implicit feedback with ``negatives`` sampled items per positive (``loss`` "bce"
    or "bpr"); evaluated by HR@``k`` / NDCG@``k``."""

    model_type = "two_tower"

    def __init__(self, *, negatives: Optional[int] = None, loss: Optional[str] = None,
                 k: Optional[int] = None, eval_negatives: Optional[int] = None,
                 full_ranking: Optional[bool] = None, **keys: Any) -> None:
        super().__init__(**keys)
        train = self._section("train")
        _set(train, "negatives", negatives)
        _set(train, "loss", loss)
        evaluate: Dict[str, Any] = {}
        _set(evaluate, "k", k)
        _set(evaluate, "negatives", eval_negatives)
        _set(evaluate, "full_ranking", full_ranking)
        if evaluate:
            self._config["evaluate"] = evaluate


class MF(RecommendModel):
    """model "mf": biased matrix factorisation ``mu + b_u + b_i + <p_u, q_i>`` on explicit
    ratings (test RMSE), ``test_fraction`` of the ratings held out unless test_data is given."""

    model_type = "mf"

    def __init__(self, *, test_fraction: Optional[float] = None, **keys: Any) -> None:
        super().__init__(**keys)
        _set(self._data_keys, "test_fraction", test_fraction)


# ---- loading ------------------------------------------------------------------------------

_BUILDERS = {("behaviour", c.model_type): c for c in (MLP, DLRM, DCNv2, WideAndDeep)}
_BUILDERS.update({("recommend", c.model_type): c for c in (TwoTower, MF)})


def load_model(path: PathLike) -> BaseModel:
    """A model that ``save`` wrote (a folder with config.json and model.tsm), as its builder's
    class, trained: evaluate, predict, save (and refitting) work as after fit."""
    folder = Path(path)
    with open(folder / _CONFIG_FILE, encoding="utf-8") as f:
        config = json.load(f)
    task = config.get("task")
    kind = config.get("model") if task == "recommend" else config.get("model", {}).get("type")
    builder = _BUILDERS.get((task, kind))
    if builder is None:
        raise ValueError(f"{folder / _CONFIG_FILE} is a {task!r} config of model {kind!r}, "
                         "which tessera.models has no builder for")
    model = builder.__new__(builder)
    BaseModel.__init__(model, name=None, seed=None)
    model._config = config
    model._frames = {}
    if isinstance(model, TabularModel):
        data = config.get("data", {})
        model._columns = data.get("columns")
        model._label = next((c["name"] for c in model._columns or [] if c.get("type") == "label"),
                            None)
        model._ignore = set()
        model._data_options = {k: v for k, v in data.items()
                               if k not in ("train", "validation", "test", "columns")}
    if isinstance(model, RecommendModel):
        data = config.get("data", {})
        model._data_keys = {k: data[k] for k in ("test_fraction",) if k in data}
    model._model = _api.load(folder / _MODEL_FILE)
    return model
