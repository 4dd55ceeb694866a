"""`keras-eexit train` as a user meets it (issue 19), run in-process."""

import json

import pytest

from keras_eexit import experiments
from keras_eexit import regimes
from keras_eexit.cli.main import _parser
from keras_eexit.cli.main import main


@pytest.mark.parametrize("command", ["train", "compare"])
def test_help_shows_defaults(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 12)", "(default: 32)", "(default: 0.003)",
                    "(default: constant)"):
        assert default in text, default
    assert "runs/" in text  # where output goes without --out


def test_train_and_compare_share_one_set_of_defaults():
    train = vars(_parser().parse_args(["train"]))
    compare = vars(_parser().parse_args(["compare"]))
    for key in ("learning_rate", "batch_size", "epochs", "schedule",
                "model"):
        assert train[key] == compare[key], key
    assert train["learning_rate"] == experiments.DEFAULT_LEARNING_RATE


def test_without_out_it_says_where_output_goes(tmp_path, monkeypatch,
                                                capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--epochs", "1", "--batch-size", "128"]) == 0
    printed = capsys.readouterr().out
    assert "No --out given: writing to runs/latest" in printed
    assert ("Configuration: dataset digits, model small_cnn, regime joint, "
            "1-epoch budget, batch 128, Adam lr 0.003, seed 0.") in printed
    assert "Plan (3 exits): joint (until fit ends) for 1 epoch." in printed
    epoch_lines = [line for line in printed.splitlines()
                   if line.startswith("epoch ")]
    assert len(epoch_lines) == 1
    assert len(epoch_lines[0]) < 120 and "e+00" not in epoch_lines[0]
    assert "(1 epochs)" not in printed
    assert sorted(p.name for p in (tmp_path / "runs" / "latest").iterdir()) \
        == ["metrics.json", "model.keras"]


SLOW_REGIMES = {"branch_wise", "distillation", "joint_two_stage", "mixed",
                "pretrained_branch", "sequential"}
"""Regimes the CLI trains with `-m slow` only: the command's path is the
same for every regime, and each of these trains in CI in
`tests/regimes/test_regime_learning.py` or `test_release.py`."""


def _every_regime():
    quick = {"joint", "two_stage"}
    return [name if name in quick else pytest.param(
        name, marks=[pytest.mark.large]
        + [pytest.mark.slow] * (name in SLOW_REGIMES))
        for name in sorted(regimes.REGIMES)]


@pytest.mark.parametrize("name", _every_regime())
def test_every_regime_trains_with_an_epoch_budget_only(name, tmp_path,
                                                       capsys):
    out = tmp_path / name
    assert main(["train", "--regime", name, "--epochs", "3",
                 "--batch-size", "128", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    printed = capsys.readouterr().out
    regime = regimes.regime_for_budget(name, 3, 3, verbose=False)
    plan = regimes.plan_text(regime, 3, 3, budget=3)
    assert f"Plan (3 exits): {plan}" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["plan"] == plan
    assert metrics["epochs"] == (regime.epochs_for(3) or 3)
    assert len(metrics["history"]["loss"]) == metrics["epochs"]


class _CtrlC:
    """Replaces the epoch printer: Ctrl-C once, after epoch `after`."""

    fired = False

    def __init__(self, after):
        from keras_eexit.experiments.progress import EpochLine

        self.after = after
        self.base = EpochLine

    def __call__(self, regime):
        printer = self.base(regime)
        end, after, owner = printer.on_epoch_end, self.after, self

        def on_epoch_end(epoch, logs=None):
            end(epoch, logs)
            if epoch + 1 == after and not owner.fired:
                owner.fired = True
                raise KeyboardInterrupt

        printer.on_epoch_end = on_epoch_end
        return printer


def test_ctrl_c_says_where_the_backup_is_then_resume_keeps_history(
        tmp_path, capsys, monkeypatch):
    from keras_eexit.experiments import runner

    monkeypatch.setattr(runner, "EpochLine", _CtrlC(after=2))
    out = tmp_path / "run"
    argv = ["train", "--regime", "two_stage", "--epochs", "3",
            "--batch-size", "128", "--out", str(out)]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{out}/backup" in err
    assert f"keras-eexit train --resume --out {out}" in err
    assert sorted(p.name for p in out.iterdir()) == ["backup", "run.json"]

    assert main(["train", "--resume", "--epochs", "5", "--out",
                 str(out)]) == 2
    assert "cannot change --epochs" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "phase 2/2 heads" in printed and "phase 1/2" not in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3
    assert metrics["history"]["phase"] == [0, 0, 1]
    assert len(metrics["history"]["val_loss"]) == 3
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json",
                                                     "model.keras"]
