"""`keras-eexit evaluate`: every table and plot, strictly valid; clear load
errors."""

import csv
import io
import json

import pytest

from keras_eexit.cli.main import main


@pytest.fixture
def untrained_model(model_factory, tmp_path):
    """An untrained 3-exit model for digits (8×8×1 inputs, 10 classes)."""
    model = model_factory(num_classes=10, input_shape=(8, 8, 1))
    model.compile(optimizer="sgd")
    path = tmp_path / "tiny.keras"
    model.save(path)
    return path


def test_evaluate_writes_tables_and_plots(untrained_model, tmp_path):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(untrained_model), "--dataset",
                 "digits", "--criterion", "entropy", "--thresholds", "30",
                 "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "| exit_1 |" in report and "25%" in report
    rows = (out / "exits.csv").read_text().splitlines()
    assert rows[0] == "exit,params,flops,mflops,accuracy" and len(rows) == 4
    result = json.loads((out / "evaluation.json").read_text())
    assert len(result["thresholds"]) == 30
    assert result["criterion"] == "entropy"
    assert (out / "tradeoff.png").stat().st_size > 1000


@pytest.mark.parametrize("content,message", [
    (None, "Model file not found"),
    (b"not a zip", "is not a Keras model file"),
])
def test_evaluate_bad_model_file(tmp_path, capsys, content, message):
    path = tmp_path / "m.keras"
    if content is not None:
        path.write_bytes(content)
    assert main(["evaluate", "--model", str(path), "--out",
                 str(tmp_path / "e")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def _strict_json(text):
    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("criterion,count", [("patience", 3),
                                             ("max_softmax", 11)])
def test_evaluate_writes_all_files(untrained_model, tmp_path, capsys,
                                   criterion, count):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(untrained_model), "--dataset",
                 "digits", "--criterion", criterion, "--thresholds", "11",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "best_accuracy.csv", "best_accuracy.png",
        "budget.csv", "budgeted_batch.csv", "budgeted_batch.png",
        "evaluation.json", "exit_ratios.png", "exits.csv", "report.md",
        "sweep.csv", "tradeoff.png"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    result = _strict_json((out / "evaluation.json").read_text())
    assert result["criterion"] == criterion
    assert len(result["thresholds"]) == count
    assert result["num_samples"] > 100
    assert len(result["exits"]) == 3
    budget = list(csv.DictReader(io.StringIO(
        (out / "budget.csv").read_text())))
    assert [r["budget"] for r in budget] == ["25%", "50%", "75%", "100%",
                                             "max"]
    sweep_rows = list(csv.DictReader(io.StringIO(
        (out / "sweep.csv").read_text())))
    assert len(sweep_rows) == count
    assert set(sweep_rows[0]) == {"threshold", "accuracy", "mean_flops",
                                  "ratio_exit_1", "ratio_exit_2",
                                  "ratio_exit_3"}
    report = (out / "report.md").read_text()
    assert "| exit | params | MFLOPs | accuracy |" in report
    assert "| 25% | 50% | 75% | 100% | max |" in report
    printed = capsys.readouterr().out
    assert "| 25% | 50% | 75% | 100% | max |" in printed
    for png in ("tradeoff.png", "exit_ratios.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_unknown_criterion(untrained_model, tmp_path, capsys):
    assert main(["evaluate", "--model", str(untrained_model), "--criterion",
                 "margin", "--out", str(tmp_path / "e")]) == 2
    assert "Unknown criterion 'margin'" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_evaluate_reports_the_budgeted_batch_curve(untrained_model, tmp_path):
    # MSDNet's 39 budgets, thresholds from the validation split, next to
    # the global sweep in the report, the CSV, the JSON and a plot.
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(untrained_model), "--dataset",
                 "digits", "--thresholds", "20", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "## Budgeted batch classification (max_softmax, thresholds " \
        "from the validation split)" in report
    assert "| point | MFLOPs | budget | accuracy | global_sweep_accuracy |" \
        in report
    assert "![budgeted batch](budgeted_batch.png)" in report
    rows = list(csv.DictReader(io.StringIO(
        (out / "budgeted_batch.csv").read_text())))
    assert len(rows) == 39
    assert {"threshold_exit_1", "threshold_exit_3", "ratio_exit_2",
            "global_sweep_accuracy"} <= set(rows[0])
    assert all(float(r["threshold_exit_3"]) == 0.0 for r in rows)
    curve = _strict_json((out / "evaluation.json").read_text())[
        "budgeted_batch"]
    assert len(curve["accuracy"]) == 39 and len(curve["thresholds"][0]) == 3
    costs = [float(r["mflops"]) for r in rows]
    assert costs[0] <= costs[-1]  # more budget, later exits
    assert (out / "budgeted_batch.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_leads_with_the_best_accuracy_curve(untrained_model,
                                                     tmp_path):
    # The per-exit search is the first calibrated curve of the report;
    # MSDNet's budgeted batch follows under its own name.
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(untrained_model), "--dataset",
                 "digits", "--thresholds", "20", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    best = report.index("## Best accuracy within a budget (max_softmax, "
                        "thresholds from the validation split)")
    assert best < report.index("## Budgeted batch classification")
    assert "![best accuracy](best_accuracy.png)" in report
    rows = list(csv.DictReader(io.StringIO(
        (out / "best_accuracy.csv").read_text())))
    assert len(rows) == 39
    assert all(float(r["threshold_exit_3"]) == 0.0 for r in rows)
    curve = _strict_json((out / "evaluation.json").read_text())[
        "best_accuracy"]
    assert len(curve["accuracy"]) == 39 and len(curve["thresholds"][0]) == 3
    assert (out / "best_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_batch_size_has_help_and_default(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    option = "--batch-size BATCH_SIZE batch size of the evaluation passes"
    assert option in help_text
    described = help_text.split(option, 1)[1].split("--out", 1)[0]
    assert "(default: 256)" in described


def test_evaluate_leaves_out_the_curve_on_a_tiny_validation_split(
        tmp_path, capsys):
    # MNIST-1D of 100 samples: 8 validation samples, too few to calibrate
    # thresholds; the report is written without the calibrated curves.
    from keras_eexit.models import get_model

    model = get_model("cnn1d", width=4, num_classes=10)
    model.compile(optimizer="sgd")
    model.save(tmp_path / "tiny.keras")
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(tmp_path / "tiny.keras"),
                 "--dataset", "mnist1d", "--num-samples", "100",
                 "--thresholds", "10", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: the validation split has 8 samples, fewer than the " \
        "30 that calibrating thresholds needs" in err
    assert (out / "report.md").exists()
    assert not (out / "budgeted_batch.csv").exists()
    assert not (out / "best_accuracy.csv").exists()
    summary = json.loads((out / "evaluation.json").read_text())
    assert "budgeted_batch" not in summary and "best_accuracy" not in summary
