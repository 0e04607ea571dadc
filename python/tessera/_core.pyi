# The engine's module (python/src/core.cpp). Use tessera.train / tessera.load instead: these are
# strings in, (summary, JSON) strings out.
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

def train(
    config: str, options: Dict[str, str], on_epoch: Optional[Callable[[str], bool]]
) -> Tuple[str, str]:
    """`tessera train CONFIG` with CLI options ("--epochs" -> "2", "--quiet" -> ""); on_epoch
    gets each epoch's metrics line and returns whether to go on. Returns (summary, json).
    "--seeds" -> "1,2,3" trains once per seed (on_epoch sees every run's epochs) and returns the
    CLI's repeats summary: {"seeds", "runs" (each run's result), "mean", "std", "min", "max"}."""

def command(verb: str, positionals: Sequence[str], options: Dict[str, str]) -> Tuple[str, str]:
    """Any other CLI verb (evaluate, predict, generate, perplexity, recommend, export, run, runs,
    report, config, make-synthetic, prep). Returns (summary, json)."""

def summarize_repeats(seeds: Sequence[int], runs: Sequence[Tuple[str, str]]) -> Tuple[str, str]:
    """Each metric's mean, std (sample), min and max over `runs` ((summary, result json) of the
    run trained with the seed at the same place), as `train --seeds` reports them (the JSON's
    "seeds", "runs", "mean", "std", "min", "max"). Returns (summary, json)."""

def task_of_config(path: str) -> str:
    """The task a config file names."""

def task_of_model(path: str) -> str:
    """The task a model file was trained by."""

def tasks() -> List[Tuple[str, str, List[str]]]:
    """Every registered task: (name, description, model verbs)."""

def model_tables(path: str) -> Dict[str, np.ndarray]:
    """A behaviour or recommendation model file's embedding tables by name (Model.embeddings):
    read-only float32 [rows, dim] arrays (and int64 NAME_ids of recommendation models) viewing
    the model's memory, loaded once in C++ (no per-table copy) and kept alive by the arrays.
    Model files carry 16-bit tables as float32, so they are float32 here with no conversion.
    UsageError for other tasks' models."""

# Arrow input (host/data/arrow_stream.h). A stream is the PyCapsule "arrow_array_stream" that
# `__arrow_c_stream__()` returns; the engine takes it over (the capsule is left released) and
# reads its batches where they are. Engine errors raise tessera.errors classes (DataError for the
# rows, naming the column and row).

def prepare_arrow(
    config: str,
    dir: str,
    train: Callable[[], Any],
    validation: Optional[Callable[[], Any]],
    test: Optional[Callable[[], Any]],
    shard_rows: int,
    quiet: bool,
) -> Tuple[str, str]:
    """A behaviour config's rows from Arrow streams as a prepared dataset in `dir`: `train()`,
    `validation()` and `test()` each return a fresh stream capsule of the same rows per call
    (fitting and encoding read them once each; validation None: the config's
    validation_fraction of train; test None: no test split). Returns the prep command's
    (summary, json)."""

def predict_arrow(
    model: str, stream: Any, name: str, device: str, on_error: str, batch_size: int
) -> Tuple[np.ndarray, str]:
    """A behaviour model's probabilities for every good row of `stream` (float64, the engine's
    buffer handed over without a copy) and the predict command's JSON. `name` names the input
    in messages ("DataFrame"); device and on_error "" take the defaults."""

def evaluate_arrow(
    model: str, stream: Any, name: str, device: str, on_error: str, batch_size: int
) -> str:
    """A behaviour model's metrics on `stream`'s labelled rows: the summary, then '\x1e', then
    the evaluate command's JSON object."""
