"""tessera.train against `tessera train`: the same config and seed give the same run."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import tessera
from conftest import cli_json, comparable, read_jsonl, run_cli


def test_train_matches_cli(cli: str, synthetic: Path, trained: tessera.Run, tmp_path: Path) -> None:
    cli_dir = tmp_path / "cli"
    cli_result = cli_json(cli, "train", str(synthetic), "--device", "cpu", "--epochs", "2",
                          "--run-dir", str(cli_dir), "--quiet")
    assert comparable(trained.result) == comparable(cli_result)
    assert comparable(trained.history) == comparable(read_jsonl(cli_dir / "metrics.jsonl"))
    assert len(trained.history) == 2
    assert trained.metrics == trained.result["test"]
    assert 0.5 < trained.metrics["auc"] <= 1.0
    # The saved models are the same bytes.
    assert trained.model_path is not None and trained.run_dir is not None
    assert trained.model_path.read_bytes() == (cli_dir / "model.tsm").read_bytes()


def test_config_as_dict_and_json_string(synthetic: Path, trained: tessera.Run,
                                        tmp_path: Path) -> None:
    config = json.loads(synthetic.read_text())
    from_dict = tessera.train(config, device="cpu", epochs=2, run_dir=tmp_path / "d", quiet=True)
    from_text = tessera.train(json.dumps(config), device="cpu", epochs=2,
                              run_dir=tmp_path / "t", quiet=True)
    assert comparable(from_dict.result) == comparable(trained.result)
    assert comparable(from_text.history) == comparable(trained.history)


def test_callbacks_see_every_epoch_and_can_stop(synthetic: Path, tmp_path: Path) -> None:
    seen = []

    def stop_after_first(epoch: dict) -> bool:
        seen.append(epoch)
        return epoch["epoch"] < 1

    run = tessera.train(synthetic, device="cpu", epochs=4, run_dir=tmp_path / "r", quiet=True,
                        callbacks=[stop_after_first])
    assert [e["epoch"] for e in seen] == [1]
    assert run.history == seen  # the callback got metrics.jsonl's line
    assert run.model_path is not None and run.model_path.exists()


def test_callback_exception_propagates(synthetic: Path, tmp_path: Path) -> None:
    def fail(epoch: dict) -> None:
        raise RuntimeError(f"tracker down at epoch {epoch['epoch']}")

    with pytest.raises(RuntimeError, match="tracker down at epoch 1"):
        tessera.train(synthetic, device="cpu", epochs=3, run_dir=tmp_path / "r", quiet=True,
                      callbacks=[fail])


def test_progress_lines_unless_quiet(synthetic: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    tessera.train(synthetic, device="cpu", epochs=2, run_dir=tmp_path / "r")
    err = capsys.readouterr().err
    assert "epoch 1, train loss" in err and "epoch 2, train loss" in err


def test_gil_is_released_while_training(tmp_path: Path) -> None:
    # A Python thread notes the longest time it went without running while one train call (20
    # epochs, long enough to tell on a quiet machine; the engine holds the thread from reading
    # the data to the test metrics, bar one callback) ran. Held, the GIL would stop it for most of the call; released, the longest
    # stop is the OS's scheduling (tens of milliseconds on a busy machine).
    config = tessera.make_synthetic(tmp_path / "data", rows=60000)["config"]
    stop = threading.Event()
    longest = [0.0]
    beats = [0]

    def heartbeat() -> None:
        last = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            longest[0] = max(longest[0], now - last)
            last = now
            beats[0] += 1

    t = threading.Thread(target=heartbeat)
    t.start()
    try:
        started = time.monotonic()
        tessera.train(config, device="cpu", epochs=20, run_dir=tmp_path / "r", quiet=True)
        took = time.monotonic() - started
    finally:
        stop.set()
        t.join()
    assert took > 0.3, f"training took {took:.3f} s: too short to tell"
    assert beats[0] > 1000
    assert longest[0] < 0.25 * took, f"the thread stopped for {longest[0]:.3f} s of {took:.3f} s"


def test_ctrl_c_stops_at_the_next_step_with_the_last_checkpoint_kept(tmp_path: Path) -> None:
    # SIGINT arrives while the engine trains (the GIL released), right after the first mid-epoch
    # checkpoint (train.checkpoint_every_steps): the run stops at the next step, inside the first
    # epoch (an epoch is 1250 steps; the checkpoint comes at step 10), keeps that checkpoint, and
    # resumes from it to the end.
    config = json.loads(Path(tessera.make_synthetic(tmp_path / "data", rows=100000)["config"]).read_text())
    config["train"].update({"batch_size": 64, "checkpoint_every_steps": 10})
    run_dir = tmp_path / "r"
    stop = threading.Event()

    def interrupt_after_first_checkpoint() -> None:
        while not stop.is_set():
            if (run_dir / "checkpoint.tsc").exists():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=interrupt_after_first_checkpoint, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            tessera.train(config, device="cpu", epochs=3, resume=run_dir, quiet=True)
    finally:
        stop.set()
        watcher.join()
    metrics = run_dir / "metrics.jsonl"
    assert not metrics.exists() or read_jsonl(metrics) == [], "stopped inside the first epoch"
    assert (run_dir / "checkpoint.tsc").exists()
    run = tessera.train(config, device="cpu", epochs=3, resume=run_dir, quiet=True)
    assert [e["epoch"] for e in run.history] == [1, 2, 3]
