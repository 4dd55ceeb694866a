"""`keras-eexit evaluate` on a saved model, and its clear load errors."""

import json

import pytest

from keras_eexit.cli.main import main


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    assert main(["train", "--dataset", "digits", "--epochs", "2",
                 "--verbose", "0", "--out", str(out)]) == 0
    return out / "model.keras"


def test_evaluate_writes_tables_and_plots(saved_model, tmp_path):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(saved_model), "--dataset",
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
