"""Engine errors are tessera.Error subclasses by kind, with the CLI's message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tessera
from conftest import run_cli


def cli_message(cli: str, *args: str) -> str:
    """The message `tessera ARGS` prints after `tessera: <kind>: `."""
    r = run_cli(cli, *args, ok=False)
    assert r.returncode != 0
    line = r.stderr.strip().splitlines()[-1]
    return line.split(": ", 2)[2]


def test_config_error_carries_the_cli_message_and_place(cli: str, synthetic: Path,
                                                         tmp_path: Path) -> None:
    config = json.loads(synthetic.read_text())
    config["train"]["epochs"] = "three"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(config, indent=2))
    with pytest.raises(tessera.ConfigError) as e:
        tessera.train(bad, device="cpu", run_dir=tmp_path / "r", quiet=True)
    assert str(e.value) == cli_message(cli, "train", str(bad), "--device", "cpu")
    assert isinstance(e.value, tessera.Error) and isinstance(e.value, ValueError)
    assert "$.train.epochs" in str(e.value)


def test_missing_config_is_an_io_error(cli: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(tessera.IoError) as e:
        tessera.train(missing)
    assert str(e.value) == cli_message(cli, "train", str(missing))


def test_bad_row_is_a_data_error(cli: str, trained: tessera.Run, synthetic: Path,
                                 tmp_path: Path) -> None:
    lines = (synthetic.parent / "test.csv").read_text().splitlines()
    lines[3] = "not,a,row"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    model = tessera.load(trained.model_path)
    with pytest.raises(tessera.DataError) as e:
        model.evaluate(bad, device="cpu")
    assert str(e.value) == cli_message(cli, "evaluate", str(trained.model_path), str(bad),
                                       "--device", "cpu")


def test_unknown_device_is_a_usage_or_backend_error(trained: tessera.Run, synthetic: Path) -> None:
    with pytest.raises((tessera.UsageError, tessera.BackendError, tessera.ConfigError)) as e:
        tessera.load(trained.model_path).evaluate(synthetic.parent / "test.csv", device="tpu")
    assert "tpu" in str(e.value)


def test_not_a_model_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tsm"
    junk.write_bytes(b"hello")
    with pytest.raises(tessera.IoError):
        tessera.load(junk)


def test_bad_epochs_option_is_a_usage_error(synthetic: Path) -> None:
    with pytest.raises(tessera.UsageError, match="--epochs expects a positive integer"):
        tessera.train(synthetic, epochs=0)
