"""`keras-eexit compare`: regimes × seeds, report, resumable."""

import os

import pytest

from keras_eexit.cli.main import main


def test_compare_writes_report_and_skips_finished_runs(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--regimes", "joint,mixed", "--seeds", "2",
            "--dataset", "digits", "--epochs", "2", "--batch-size", "128",
            "--out", str(out)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.count("final exit") == 4
    report = (out / "report.md").read_text()
    for section in ("Accuracy within a FLOPs budget", "| joint |",
                    "| mixed |", "Accuracy per exit", "Significance",
                    "tradeoff.png"):
        assert section in report
    assert sorted(os.listdir(out / "runs")) == [
        "joint_seed0.json", "joint_seed1.json", "mixed_seed0.json",
        "mixed_seed1.json"]
    assert (out / "tradeoff.png").stat().st_size > 1000
    assert (out / "exit_ratios.png").stat().st_size > 1000

    # A rerun (as after a kill) skips what is recorded: same report.
    os.remove(out / "runs" / "mixed_seed1.json")
    assert main(args) == 0
    second = capsys.readouterr().out
    assert second.count("skipped") == 3 and second.count("final exit") == 1
    assert (out / "report.md").read_text().splitlines()[:8] == \
        report.splitlines()[:8]


def test_compare_bad_regime(tmp_path, capsys):
    assert main(["compare", "--regimes", "joint,jointt", "--out",
                 str(tmp_path / "c")]) == 2
    assert "Unknown regime 'jointt'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_regime_specs_with_parameters():
    from keras_eexit.cli.compare import parse_regimes

    specs = parse_regimes(
        "joint, sequential[objective=current,regularizer=ewc,lam=100],"
        "sequential[objective=current,regularizer=lwf,rho=0.7]")
    assert [s[1] for s in specs] == ["joint", "sequential", "sequential"]
    assert specs[1][2] == {"objective": "current", "regularizer": "ewc",
                           "lam": 100}
    assert specs[2][0] == "sequential[objective=current,regularizer=lwf," \
        "rho=0.7]"


def test_regime_spec_errors(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["compare", "--regimes", "sequential[lam=-1,"
                 "regularizer=ewc]", "--out", str(out)]) == 2
    assert "lam" in capsys.readouterr().err
    assert main(["compare", "--regimes", "joint,joint", "--out",
                 str(out)]) == 2
    assert "distinct" in capsys.readouterr().err


def _without_timing(report):
    """The report less its efficiency (wall-time) lines."""
    lines, skip = [], False
    for line in report.splitlines():
        if line.startswith("## "):
            skip = line.startswith("## Efficiency")
        if not skip and "training time" not in line:
            lines.append(line)
    return "\n".join(lines)


@pytest.mark.slow  # compare skipping finished runs, and a killed train
# resuming, run in CI (test_compare_writes_report..., test_cli.py)
def test_killed_comparison_resumes_to_the_same_report(tmp_path, capsys):
    import subprocess
    import sys
    import time

    args = ["compare", "--regimes", "joint,two_stage", "--seeds", "1",
            "--dataset", "digits", "--epochs", "2", "--deterministic"]
    killed = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_eexit", *args, "--out", str(killed)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    first = killed / "runs" / "joint_seed0.json"
    deadline = time.monotonic() + 900  # a ceiling only
    try:
        while not first.exists():
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no run finished in 900 s"
            time.sleep(0.02)
        process.kill()  # during the second run
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
        process.stderr.close()
    assert process.returncode < 0  # killed, not finished
    assert not (killed / "report.md").exists()
    assert os.listdir(killed / "runs") == ["joint_seed0.json"]

    assert main(args + ["--out", str(killed)]) == 0
    resumed = capsys.readouterr().out
    assert resumed.count("skipped") == 1 and resumed.count("final exit") == 1
    whole = tmp_path / "whole"
    assert main(args + ["--out", str(whole)]) == 0
    assert _without_timing((killed / "report.md").read_text()) == \
        _without_timing((whole / "report.md").read_text())


def test_records_of_another_command_are_not_reused(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--regimes", "joint", "--seeds", "1", "--dataset",
            "digits", "--epochs", "1", "--batch-size", "128", "--out",
            str(out)]
    assert main(args) == 0
    record = out / "runs" / "joint_seed0.json"
    before = record.read_text()
    capsys.readouterr()
    assert main(args[:-6] + ["--epochs", "2", "--batch-size", "128",
                             "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(record) in err and "epochs: recorded 1, now 2" in err
    assert record.read_text() == before
    record.write_text("{not json")
    assert main(args) == 2
    assert "Cannot read the run record" in capsys.readouterr().err


def test_converge_watches_validation_accuracy_by_default():
    """Kubaty et al. (sec. 4) and the regimes' own default stop each phase
    on the heads' validation accuracy."""
    import argparse

    from keras_eexit.cli import compare

    parser = argparse.ArgumentParser()
    compare.add_parser(parser.add_subparsers())
    args = parser.parse_args(["compare", "--converge", "3"])
    assert args.converge_metric == "accuracy"
    convergence = compare.configs(args)[0].convergence
    assert convergence.monitor == "val_accuracy"
    args = parser.parse_args(["compare", "--converge", "3",
                              "--converge-metric", "loss"])
    assert compare.configs(args)[0].convergence.monitor == "val_loss"
