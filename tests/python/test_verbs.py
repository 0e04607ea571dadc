"""The CLI's verbs and options the package gained last (README "CLI | Python"): each Python call
against the CLI on the same input."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pandas as pd
import pytest

import tessera
from conftest import cli_json, comparable, read_jsonl, run_cli


# ---- train --seeds ----------------------------------------------------------------------------


def test_seeds_give_the_cli_summary(cli: str, synthetic: Path, tmp_path: Path) -> None:
    seeds = tessera.train(synthetic, seeds=[3, 11], device="cpu", epochs=1,
                          runs_dir=tmp_path / "py", quiet=True)
    theirs = cli_json(cli, "train", str(synthetic), "--seeds", "3,11", "--device", "cpu",
                      "--epochs", "1", "--runs-dir", str(tmp_path / "cli"), "--quiet")
    assert isinstance(seeds, tessera._api.Seeds)
    assert seeds.seeds == [3, 11] == theirs["seeds"]
    assert comparable(seeds.result) == comparable(theirs)
    assert comparable(seeds.mean) == comparable(theirs["mean"])
    assert comparable(seeds.std) == comparable(theirs["std"])
    # One Run per seed, each its own run directory with its history and model.
    assert len(seeds.runs) == 2
    assert seeds.runs[0].run_dir != seeds.runs[1].run_dir
    for run, cli_run in zip(seeds.runs, theirs["runs"]):
        assert run.run_dir is not None and run.run_dir.parent == tmp_path / "py"
        assert run.model_path is not None and run.model_path.is_file()
        cli_result = json.loads((Path(cli_run["run_dir"]) / "result.json").read_text())
        assert comparable(run.result) == comparable(cli_result)
        assert run.metrics["auc"] == pytest.approx(cli_run["test"]["auc"], abs=1e-12)
        assert comparable(run.history) == comparable(
            read_jsonl(Path(cli_run["run_dir"]) / "metrics.jsonl"))
    # The summary is of these runs: the mean and sample std of their test AUCs.
    aucs = [r.metrics["auc"] for r in seeds.runs]
    assert aucs[0] != aucs[1]  # different seeds, different runs
    assert seeds.mean["test.auc"] == pytest.approx(statistics.mean(aucs), abs=1e-12)
    assert seeds.std["test.auc"] == pytest.approx(statistics.stdev(aucs), abs=1e-12)
    assert seeds.min["test.auc"] == min(aucs) and seeds.max["test.auc"] == max(aucs)
    # A seed's run equals a single run with that seed.
    one = tessera.train(synthetic, seed=11, device="cpu", epochs=1, run_dir=tmp_path / "one",
                        quiet=True)
    assert comparable(one.result) == comparable(seeds.runs[1].result)


def test_seeds_callbacks_see_every_runs_epochs(synthetic: Path, tmp_path: Path) -> None:
    seen = []
    tessera.train(synthetic, seeds=[1, 2], device="cpu", epochs=2, runs_dir=tmp_path,
                  quiet=True, callbacks=[lambda e: seen.append(e["epoch"])])
    assert seen == [1, 2, 1, 2]


def test_seeds_misuse_is_the_cli_refusal(cli: str, synthetic: Path, tmp_path: Path) -> None:
    r = run_cli(cli, "train", str(synthetic), "--seeds", "1,2", "--seed", "3", ok=False)
    assert r.returncode != 0 and "cannot be combined with --seed" in r.stderr
    with pytest.raises(tessera.UsageError, match="cannot be combined with --seed"):
        tessera.train(synthetic, seeds=[1, 2], seed=3, runs_dir=tmp_path, quiet=True)
    r = run_cli(cli, "train", str(synthetic), "--seeds", "1,1", ok=False)
    message = r.stderr.strip().splitlines()[-1]
    with pytest.raises(tessera.UsageError) as caught:
        tessera.train(synthetic, seeds=[1, 1], runs_dir=tmp_path, quiet=True)
    assert str(caught.value).split(": ", 1)[-1] in message
    with pytest.raises(TypeError, match="integers"):
        tessera.train(synthetic, seeds=["1"], runs_dir=tmp_path, quiet=True)
    with pytest.raises(tessera.UsageError, match="at least one seed"):
        tessera.train(synthetic, seeds=[], runs_dir=tmp_path, quiet=True)


# ---- train --deterministic-reduction ----------------------------------------------------------


def test_deterministic_reduction_is_the_cli_flag(cli: str, synthetic: Path, trained: tessera.Run,
                                                 tmp_path: Path) -> None:
    # One process (no mpirun): the flag is accepted and the run is the plain run, in both.
    ours = tessera.train(synthetic, device="cpu", epochs=2, run_dir=tmp_path / "py",
                         deterministic_reduction=True, quiet=True)
    theirs = cli_json(cli, "train", str(synthetic), "--device", "cpu", "--epochs", "2",
                      "--run-dir", str(tmp_path / "cli"), "--deterministic-reduction", "--quiet")
    assert comparable(ours.result) == comparable(theirs)
    assert comparable(ours.result) == comparable(trained.result)
    assert ours.model_path is not None
    assert ours.model_path.read_bytes() == (tmp_path / "cli" / "model.tsm").read_bytes()


# ---- make-synthetic's options -----------------------------------------------------------------


def _synthetic_facts(result: Dict[str, Any]) -> Dict[str, Any]:
    """make-synthetic's result without its paths and its speed."""
    return {k: v for k, v in comparable(result).items() if k not in ("pipeline", "mb_per_s")}


def _same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        if name.endswith(".json"):  # configs name their own directory
            continue
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_make_synthetic_criteo_options_match_the_cli(cli: str, tmp_path: Path) -> None:
    ours = tessera.make_synthetic(tmp_path / "py", layout="criteo", size="200K", threads=2,
                                  max_table_rows=500, min_count=2, seed=9)
    theirs = cli_json(cli, "make-synthetic", str(tmp_path / "cli"), "--layout", "criteo",
                      "--size", "200K", "--threads", "2", "--max-table-rows", "500",
                      "--min-count", "2", "--seed", "9")
    assert _synthetic_facts(ours) == _synthetic_facts(theirs)
    assert ours["threads"] == 2 and ours["max_table_rows"] == 500
    assert max(ours["table_rows"]) <= 500
    _same_files(tmp_path / "py", tmp_path / "cli")
    # Another seed, other rows.
    other = tessera.make_synthetic(tmp_path / "seed10", layout="criteo", size="200K", threads=2,
                                   max_table_rows=500, min_count=2, seed=10)
    assert (tmp_path / "seed10" / "train.txt").read_bytes() != \
        (tmp_path / "py" / "train.txt").read_bytes()
    assert other["threads"] == 2


def test_make_synthetic_behaviour_seed_and_refusals(cli: str, tmp_path: Path) -> None:
    ours = tessera.make_synthetic(tmp_path / "py", rows=300, seed=4)
    theirs = cli_json(cli, "make-synthetic", str(tmp_path / "cli"), "--rows", "300",
                      "--seed", "4")
    assert comparable(ours) == comparable(theirs)
    _same_files(tmp_path / "py", tmp_path / "cli")
    r = run_cli(cli, "make-synthetic", str(tmp_path / "x"), "--size", "1M", ok=False)
    assert "--size applies to --layout criteo only" in r.stderr
    with pytest.raises(tessera.UsageError, match="--size applies to --layout criteo only"):
        tessera.make_synthetic(tmp_path / "y", size="1M")
    with pytest.raises(tessera.UsageError, match="give one of --rows and --size"):
        tessera.make_synthetic(tmp_path / "z", layout="criteo", rows=1000, size="1M")


# ---- predict IMAGE_MODEL IMAGE ----------------------------------------------------------------


def _digits_csv(path: Path, rows: int) -> None:
    """sklearn-digits layout (64 pixels in [0, 16], then the label): class 0 bright on the
    left half, class 1 on the right."""
    rng = np.random.default_rng(6)
    with path.open("w") as f:
        for i in range(rows):
            label = i % 2
            pixels = [int(12 + rng.integers(5)) if ((p % 8 < 4) == (label == 0))
                      else int(rng.integers(4)) for p in range(64)]
            f.write(",".join(map(str, pixels + [label])) + "\n")


@pytest.fixture(scope="module")
def image_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("image")
    _digits_csv(d / "digits.csv", 80)
    config = {
        "task": "image", "name": "verbs", "seed": 2, "device": "cpu",
        "data": {"format": "digits_csv", "train": str(d / "digits.csv"), "test_fraction": 0.2,
                 "validation_fraction": 0.2, "classes": 10},
        "model": {"layers": [{"type": "conv", "filters": 4, "kernel": 3, "padding": 1},
                             {"type": "relu"}, {"type": "flatten"}]},
        "train": {"epochs": 2, "batch_size": 8, "optimizer": {"type": "adam", "lr": 0.01}},
    }
    run = tessera.train(config, device="cpu", run_dir=d / "run", quiet=True)
    assert run.model_path is not None
    return run.model_path


def _pgm(path: Path, left_bright: bool) -> Path:
    rows = []
    for _ in range(8):
        rows.append(" ".join(("200" if (x < 4) == left_bright else "10") for x in range(8)))
    path.write_text("P2\n8 8\n255\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("left_bright", [True, False])
def test_predict_one_image_is_the_cli_answer(cli: str, image_model: Path, tmp_path: Path,
                                             left_bright: bool) -> None:
    image = _pgm(tmp_path / "x.pgm", left_bright)
    model = tessera.load(image_model)
    assert model.task == "image"
    ours = model.predict(image, device="cpu")
    theirs = cli_json(cli, "predict", str(image_model), str(image), "--device", "cpu")
    assert ours["top"] == theirs["top"]
    assert {k: v for k, v in ours.items() if k not in ("class", "probabilities")} == theirs
    assert len(ours["top"]) == 3
    assert ours["class"] == theirs["top"][0]["class"]
    assert ours["probabilities"] == {t["class"]: t["probability"] for t in theirs["top"]}
    probabilities = [t["probability"] for t in ours["top"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-9
    # The CLI's text answer names the same class first.
    text = run_cli(cli, "predict", str(image_model), str(image), "--device", "cpu").stdout
    assert text.splitlines()[0].split()[1] == ours["class"]


def test_predict_one_image_errors_are_the_clis(cli: str, image_model: Path,
                                               tmp_path: Path) -> None:
    missing = tmp_path / "nope.pgm"
    r = run_cli(cli, "predict", str(image_model), str(missing), ok=False)
    assert r.returncode != 0
    with pytest.raises(tessera.Error) as caught:
        tessera.load(image_model).predict(missing)
    assert str(missing) in str(caught.value) and str(missing) in r.stderr


# ---- train(data=FRAME) beside files: the config's data.test, validation= and test= paths --------


def _frame(path: Path, columns: Any) -> pd.DataFrame:
    """A CSV of the synthetic layout as a DataFrame: numbers numeric, categories text."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in columns:
        if c["type"] in ("numeric", "label"):
            df[c["name"]] = pd.to_numeric(df[c["name"]])
    return df


def test_a_frame_keeps_the_configs_test_file(cli: str, synthetic: Path, trained: tessera.Run,
                                             tmp_path: Path) -> None:
    config = json.loads(synthetic.read_text())
    df = _frame(Path(config["data"]["train"]), config["data"]["columns"])
    run = tessera.train(synthetic, data=df, device="cpu", epochs=2, run_dir=tmp_path / "py",
                        quiet=True)
    # `trained` is the CLI's run of the same config (test_train.py checks it equals it).
    assert "test" in run.result
    assert comparable(run.result["test"]) == comparable(trained.result["test"])
    assert comparable(run.history) == comparable(trained.history)
    assert run.metrics == run.result["test"]
    assert run.run_dir is not None and (run.run_dir / "data" / "manifest.json").is_file()


def _split_csv(source: Path, first: Path, rest: Path, rows: int) -> None:
    lines = source.read_text().splitlines(keepends=True)
    first.write_text("".join(lines[:1 + rows]))
    rest.write_text("".join(lines[:1] + lines[1 + rows:]))


@pytest.mark.parametrize("entry", [False, True])
def test_validation_and_test_paths_beside_a_frame(cli: str, synthetic: Path, tmp_path: Path,
                                                  entry: bool) -> None:
    config = json.loads(synthetic.read_text())
    data = config["data"]
    train_csv, valid_csv = tmp_path / "train.csv", tmp_path / "valid.csv"
    _split_csv(Path(data["train"]), train_csv, valid_csv, 1500)
    files = {**config, "data": {**data, "train": str(train_csv), "validation": str(valid_csv)}}
    (tmp_path / "files.json").write_text(json.dumps(files))
    theirs = cli_json(cli, "train", str(tmp_path / "files.json"), "--device", "cpu", "--epochs",
                      "2", "--run-dir", str(tmp_path / "cli"), "--quiet")
    # The config names no files; the frame, the validation path and the test path are given.
    bare = {**config, "data": {k: v for k, v in data.items() if k not in ("train", "test")}}
    as_entry = (lambda p: {"path": str(p), "skip_lines": 0}) if entry else str
    ours = tessera.train(bare, data=_frame(train_csv, data["columns"]),
                         validation=as_entry(valid_csv), test=as_entry(data["test"]),
                         device="cpu", epochs=2, run_dir=tmp_path / "py", quiet=True)
    assert comparable(ours.result["validation"]) == comparable(theirs["validation"])
    assert comparable(ours.result["test"]) == comparable(theirs["test"])
    assert comparable(ours.history) == comparable(read_jsonl(tmp_path / "cli" / "metrics.jsonl"))
    assert ours.result["validation"]["count"] == 500


def test_a_file_beside_a_frame_is_checked(synthetic: Path, tmp_path: Path) -> None:
    config = json.loads(synthetic.read_text())
    df = _frame(Path(config["data"]["train"]), config["data"]["columns"])
    with pytest.raises(tessera.UsageError, match="data file not found"):
        tessera.train(synthetic, data=df, validation=tmp_path / "none.csv", epochs=1,
                      run_dir=tmp_path / "a", quiet=True)
    with pytest.raises(TypeError, match="validation= must be a path too"):
        tessera.train(synthetic, data=config["data"]["train"], validation=df, epochs=1,
                      run_dir=tmp_path / "b", quiet=True)
    libsvm = {**config, "data": {**config["data"], "format": "libsvm"}}
    with pytest.raises(tessera.UsageError, match="a libsvm file cannot go beside"):
        tessera.train(libsvm, data=df, test=config["data"]["test"], epochs=1,
                      run_dir=tmp_path / "c", quiet=True)


# ---- predict AUDIO_MODEL FILE.wav -------------------------------------------------------------


def _tone(path: Path, hz: float, seed: int) -> Path:
    """A quarter second of a sine at `hz` with a little noise, 16-bit mono 8 kHz."""
    import wave

    rate = 8000
    t = np.arange(rate // 4) / rate
    noise = np.random.default_rng(seed).normal(0, 0.05, t.size)
    samples = np.clip(0.5 * np.sin(2 * np.pi * hz * t) + noise, -1, 1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def audio_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("audio")
    (d / "wav").mkdir()
    for label, hz in ((0, 400.0), (1, 1500.0)):
        for speaker in ("a", "b"):
            for index in range(5):
                _tone(d / "wav" / f"{label}_{speaker}_{index}.wav", hz + 20 * index,
                      seed=label * 100 + index + (50 if speaker == "b" else 0))
    config = {
        "task": "audio", "name": "verbs", "seed": 3, "device": "cpu",
        "data": {"dir": str(d / "wav"), "test_max_index": 0, "validation_fraction": 0.0,
                 "classes": 2},
        "features": {"sample_rate": 8000, "n_fft": 256, "win_length": 200, "hop_length": 80,
                     "n_mels": 16, "fmin": 20, "frames": 16},
        "model": {"layers": [{"type": "conv", "filters": 4, "kernel": 3, "padding": 1},
                             {"type": "relu"}, {"type": "flatten"}]},
        "train": {"epochs": 2, "batch_size": 4, "optimizer": {"type": "adam", "lr": 0.01}},
    }
    run = tessera.train(config, device="cpu", run_dir=d / "run", quiet=True)
    assert run.model_path is not None
    return run.model_path


def test_predict_one_recording_is_the_cli_answer(cli: str, audio_model: Path,
                                                 tmp_path: Path) -> None:
    wav = _tone(tmp_path / "x.wav", 1500.0, seed=7)
    model = tessera.load(audio_model)
    assert model.task == "audio"
    ours = model.predict(wav, device="cpu")
    theirs = cli_json(cli, "predict", str(audio_model), str(wav), "--device", "cpu")
    assert {k: v for k, v in ours.items() if k not in ("class", "probabilities")} == theirs
    assert ours["class"] == theirs["top"][0]["class"]
    assert ours["probabilities"] == {t["class"]: t["probability"] for t in theirs["top"]}
    # Two classes: both listed, their probabilities summing to one.
    assert sorted(ours["probabilities"]) == ["0", "1"]
    assert sum(ours["probabilities"].values()) == pytest.approx(1.0, abs=1e-9)


def test_seeds_on_a_frame_are_the_cli_seeds_on_its_file(cli: str, synthetic: Path,
                                                        tmp_path: Path) -> None:
    config = json.loads(synthetic.read_text())
    df = _frame(Path(config["data"]["train"]), config["data"]["columns"])
    ours = tessera.train(synthetic, data=df, seeds=[5, 6], device="cpu", epochs=1,
                         runs_dir=tmp_path / "py", quiet=True)
    theirs = cli_json(cli, "train", str(synthetic), "--seeds", "5,6", "--device", "cpu",
                      "--epochs", "1", "--runs-dir", str(tmp_path / "cli"), "--quiet")
    assert isinstance(ours, tessera._api.Seeds)
    for stat in ("mean", "std", "min", "max"):
        assert comparable(getattr(ours, stat)) == comparable(theirs[stat]), stat
    assert ours.seeds == theirs["seeds"]
    # The runs' results are the CLI's, but for how the prepared rows were read (memory).
    prepared_only = [{k: v for k, v in r.items() if k != "data_read"} for r in ours.result["runs"]]
    assert [r["data_read"] for r in ours.result["runs"]] == ["memory", "memory"]
    assert comparable(prepared_only) == comparable(theirs["runs"])
    # Each seed's rows prepared into its run; no scratch directory left beside the runs.
    for run in ours.runs:
        assert run.run_dir is not None and (run.run_dir / "data" / "manifest.json").is_file()
    assert sorted(p.name for p in (tmp_path / "py").iterdir()) == \
        sorted(r.run_dir.name for r in ours.runs if r.run_dir is not None)
    assert ours.summary.startswith("== seed 5\n")
    with pytest.raises(tessera.UsageError, match="cannot be combined with --run-dir"):
        tessera.train(synthetic, data=df, seeds=[5, 6], run_dir=tmp_path / "r", quiet=True)
