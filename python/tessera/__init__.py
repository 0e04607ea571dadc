"""tessera: train, evaluate and deploy recommendation, behaviour, text, image and audio models.

The engine (C++, CUDA where built) runs in this process; every function is the CLI verb of the
same name (``tessera --help``), with the same config files, results and error messages::

    import tessera
    run = tessera.train("pipelines/behaviour/uci-adult.json", epochs=2, device="cpu")
    print(run.metrics["auc"])
    model = tessera.load(run.model_path)
    scores = model.predict("adult.test", skip_lines=1)   # numpy array

Keras-style builders of the same configs are in :mod:`tessera.models` (MLP, DLRM, DCNv2,
WideAndDeep, TwoTower, MF: fit, evaluate, predict, save).
"""

from . import errors, models
from ._api import (
    Model,
    Run,
    Seeds,
    config_example,
    config_schema,
    load,
    make_synthetic,
    prep,
    report,
    run_pipeline,
    runs,
    tasks,
    train,
)
from .errors import (
    BackendError,
    ConfigError,
    DataError,
    Error,
    InternalError,
    IoError,
    ShapeError,
    TrainingDiverged,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ConfigError",
    "DataError",
    "Error",
    "InternalError",
    "IoError",
    "Model",
    "Run",
    "Seeds",
    "ShapeError",
    "TrainingDiverged",
    "UsageError",
    "config_example",
    "config_schema",
    "errors",
    "load",
    "make_synthetic",
    "models",
    "prep",
    "report",
    "run_pipeline",
    "runs",
    "tasks",
    "train",
]
