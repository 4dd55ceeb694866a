"""The `keras-eexit` command line."""

import json
import os
import subprocess
import sys

import keras
import pytest

from keras_eexit.cli.main import main


def test_train_writes_table_metrics_and_model(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "digits", "--epochs", "2",
                 "--seed", "1", "--verbose", "0", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "exit_1" in printed and "FLOPs" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "small_cnn" and metrics["epochs"] == 2
    rows = metrics["exits"]
    assert [r["exit"] for r in rows] == ["exit_1", "exit_2", "exit_3"]
    assert rows[-1]["accuracy"] > 0.8  # two epochs at the defaults learn
    assert rows[0]["flops"] < rows[-1]["flops"]
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert model.num_exits == 3
    assert sorted(os.listdir(out)) == ["metrics.json", "model.keras"]


@pytest.mark.parametrize("flag,value,message", [
    ("--model", "resnet9000", "Unknown model"),
    ("--regime", "jointt", "Unknown regime"),
    ("--dataset", "digitz", "digits"),
    ("--head", "linaer", "Unknown head"),
    ("--epochs", "0", "epochs"),
])
def test_bad_arguments_fail_clearly_and_write_nothing(tmp_path, capsys,
                                                      flag, value, message):
    out = tmp_path / "run"
    code = main(["train", flag, value, "--epochs", "1", "--verbose", "0",
                 "--out", str(out)] if flag != "--epochs" else
                ["train", flag, value, "--verbose", "0", "--out", str(out)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (out / "model.keras").exists()
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize("regime,params,epochs", [
    ("two_stage", ["-p", "backbone_epochs=1", "-p", "heads_epochs=1",
                   "-p", "heads=one_by_one"], 3),
    # The regimes themselves run in CI (tests/regimes); these three only
    # add their parameters' parsing, which the others share.
    pytest.param("separate", ["-p", "epochs_per_exit=1"], 3,
                 marks=pytest.mark.slow),
    ("joint", ["--loss", "power_sqrt", "--lam", "0.5", "--dynamic", "0.8",
               "--epochs", "2"], 2),
    pytest.param("sequential", ["-p", "epochs_per_exit=1", "-p",
                                "warmup_epochs=1", "-p", "objective=current",
                                "--regularizer", "ewc", "--lam", "10"], 6,
                 marks=pytest.mark.slow),  # warm-up, 3 stages, 2 Fishers
    pytest.param("distillation", ["-p", "backbone_epochs=1", "-p",
                                  "distill_epochs=1", "-p", "alpha=0.5"], 3,
                 marks=pytest.mark.slow),  # backbone, 2 distills
])
def test_train_accepts_every_regime_with_parameters(tmp_path, regime,
                                                    params, epochs):
    out = tmp_path / regime
    code = main(["train", "--regime", regime, *params, "--verbose", "0",
                 "--batch-size", "128", "--out", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == epochs
    phases = [0] * epochs if regime == "joint" else list(range(epochs))
    assert metrics["history"]["phase"] == phases


@pytest.mark.parametrize("params,message", [
    (["-p", "backbone_epochs"], "expected KEY=VALUE"),
    (["-p", "backbone_epochs=1", "-p", "heads_epochs=1", "-p", "nope=2"],
     "Valid parameters"),
    (["-p", "backbone_epochs=0", "-p", "heads_epochs=1"],
     "backbone_epochs"),
])
def test_bad_regime_parameters(tmp_path, capsys, params, message):
    code = main(["train", "--regime", "two_stage", *params, "--verbose",
                 "0", "--out", str(tmp_path / "run")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.large
def test_console_script_help_without_tensorflow_noise():
    env = {k: v for k, v in os.environ.items()
           if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "keras_eexit", "train", "--help"],
        capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0
    assert "--regime" in result.stdout and "--dataset" in result.stdout
    assert result.stderr == ""  # no absl/CUDA start-up lines


def test_deterministic_runs_give_identical_metrics(tmp_path):
    results = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert main(["train", "--dataset", "digits", "--epochs", "2",
                     "--seed", "3", "--deterministic", "--verbose", "0",
                     "--batch-size", "128", "--out", str(out)]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        results.append((metrics["exits"], metrics["history"]))
    assert results[0] == results[1]


def test_resume_needs_an_interrupted_run(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2
    assert "Nothing to resume" in capsys.readouterr().err
    (tmp_path / "backup").mkdir()
    assert main(["train", "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "pass --resume" in capsys.readouterr().err


@pytest.mark.large
def test_killed_train_resumes_in_its_phase(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    command = [sys.executable, "-m", "keras_eexit", "train", "--dataset",
               "digits", "--regime", "two_stage", "-p", "backbone_epochs=3",
               "-p", "heads_epochs=40", "--verbose", "2", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    metadata = out / "backup" / "training_metadata.json"
    deadline = time.time() + 900  # a ceiling, not a speed claim
    try:
        while time.time() < deadline:
            if metadata.exists() and json.loads(
                    metadata.read_text() or "{}").get("epoch", 0) >= 5:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the run never reached epoch 5")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert not (out / "model.keras").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "keras_eexit", "train", "--resume",
         "--verbose", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "phase 2/2 'heads'" in resumed.stdout
    assert "phase 1/2" not in resumed.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 43
    assert len(metrics["history"]["loss"]) == 43  # before the kill too
    assert sorted(os.listdir(out)) == ["metrics.json", "model.keras"]
