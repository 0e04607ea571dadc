"""tessera's exceptions: one class per kind of engine error (host/core/error.h).

Every exception carries the message the CLI prints (``tessera: <kind>: <message>``) and, when the
error is about one place of the user's input, that place: ``file``, ``line``, ``column`` and, for
a config value, ``json_path`` (``"$.train.epochs"``).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional


class Error(Exception):
    """Any error the tessera engine reports."""

    kind: str = "internal"

    def __init__(
        self,
        message: str,
        *,
        file: Optional[str] = None,
        line: Optional[int] = None,
        column: Optional[int] = None,
        json_path: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.json_path = json_path


class ConfigError(Error, ValueError):
    """The config is invalid (the CLI's exit code 2)."""

    kind = "config"


class UsageError(Error, ValueError):
    """A call's arguments are invalid: an unknown option, a verb the model does not answer."""

    kind = "usage"


class DataError(Error):
    """The data is malformed (a row, a column, a value), or training diverged."""

    kind = "data"


class IoError(Error, OSError):
    """A file could not be read or written, or is not what it should be."""

    kind = "io"


class BackendError(Error):
    """The compute backend failed (a device not present, a CUDA error)."""

    kind = "backend"


class ShapeError(Error):
    """An internal check of tensor shapes or arguments failed."""

    kind = "shape"


class InternalError(Error):
    """A bug in tessera, or out of memory."""

    kind = "internal"


class TrainingDiverged(DataError):
    """Training produced non-finite values and stopped; ``result`` is the run's result.json."""

    def __init__(self, message: str, *, result: Dict[str, Any], **where: Any) -> None:
        super().__init__(message, **where)
        self.result = result


_BY_KIND = {
    cls.kind: cls
    for cls in (ConfigError, UsageError, DataError, IoError, BackendError, ShapeError, InternalError)
}


def _from_engine(
    kind: str, message: str, file: str, line: int, column: int, json_path: str, result_json: str
) -> Error:
    """The exception for an engine error (called by tessera._core)."""
    where: Dict[str, Any] = {
        "file": file or None,
        "line": line or None,
        "column": column or None,
        "json_path": json_path or None,
    }
    if result_json:
        return TrainingDiverged(message, result=json.loads(result_json), **where)
    return _BY_KIND.get(kind, InternalError)(message, **where)
