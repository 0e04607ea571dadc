# The engine's module (python/src/core.cpp). Use tessera.train / tessera.load instead: these are
# strings in, (summary, JSON) strings out.
from typing import Callable, Dict, List, Optional, Sequence, Tuple

def train(
    config: str, options: Dict[str, str], on_epoch: Optional[Callable[[str], bool]]
) -> Tuple[str, str]:
    """`tessera train CONFIG` with CLI options ("--epochs" -> "2", "--quiet" -> ""); on_epoch
    gets each epoch's metrics line and returns whether to go on. Returns (summary, json)."""

def command(verb: str, positionals: Sequence[str], options: Dict[str, str]) -> Tuple[str, str]:
    """Any other CLI verb (evaluate, predict, generate, perplexity, recommend, export, run, runs,
    report, config, make-synthetic, prep). Returns (summary, json)."""

def task_of_config(path: str) -> str:
    """The task a config file names."""

def task_of_model(path: str) -> str:
    """The task a model file was trained by."""

def tasks() -> List[Tuple[str, str, List[str]]]:
    """Every registered task: (name, description, model verbs)."""
