"""`keras-eexit profile` and `keras-eexit evaluate --cost`."""

import json

from keras_eexit.cli.main import main
from keras_eexit.evaluation import CostProfile
from tests.cli.test_evaluate import untrained_model  # noqa: F401 (fixture)


def test_profile_then_evaluate_in_milliseconds(untrained_model,  # noqa: F811
                                               tmp_path, capsys):
    profile_path = tmp_path / "profile.json"
    assert main(["profile", str(untrained_model), "--batch-size", "8",
                 "--dataset", "digits", "--max-seconds", "0.5",
                 "--out", str(profile_path)]) == 0
    profile = CostProfile.load(profile_path)
    assert profile.runtime == "keras" and profile.batch_size == 8
    printed = capsys.readouterr().out
    assert "per sample" in printed and "exit_3" in printed
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(untrained_model), "--dataset",
                 "digits", "--thresholds", "20", "--cost",
                 str(profile_path), "--out", str(out)]) == 0
    latency = (out / "latency.md").read_text()
    assert "| ms |" in latency and "measured: keras, batch 8" in latency
    rows = (out / "latency_sweep.csv").read_text().splitlines()
    assert rows[0].startswith("threshold,accuracy,mean_ms") and len(
        rows) == 21
    assert (out / "latency_tradeoff.png").stat().st_size > 1000
    assert (out / "report.md").exists()  # the FLOPs report as before


def test_evaluate_refuses_a_profile_of_another_model(
        untrained_model, model_factory, tmp_path, capsys):  # noqa: F811
    other = model_factory(num_exits=2, num_classes=10)
    data = CostProfile((0.001, 0.002), (0.001, 0.002), "keras", 1,
                       "0123456789abcdef", other.exit_names,
                       model_name="other").to_dict()
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data))
    assert main(["evaluate", "--model", str(untrained_model), "--cost",
                 str(path), "--out", str(tmp_path / "eval")]) == 2
    error = capsys.readouterr().err
    assert "argument `--cost`" in error and "'other'" in error
    assert len(error.strip().splitlines()) == 1


def test_profile_refuses_threads_outside_litert(untrained_model,  # noqa: F811
                                                tmp_path, capsys):
    assert main(["profile", str(untrained_model), "--num-threads", "2",
                 "--out", str(tmp_path / "p.json")]) == 2
    assert "--num-threads" in capsys.readouterr().err
