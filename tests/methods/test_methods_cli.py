"""`--method` in `keras-eexit train` and `--methods` in `compare`."""

import json
import os

import keras
import pytest

from keras_eexit.cli.main import main
from keras_eexit.experiments import ExperimentConfig
from keras_eexit.layers import ZTWHead


def test_config_checks_the_method():
    with pytest.raises(ValueError, match="Unknown method"):
        ExperimentConfig(method="zwt")
    config = ExperimentConfig(method="ztw")
    assert "method ztw" in config.describe()
    assert ExperimentConfig.from_dict(config.to_dict()).method == "ztw"


@pytest.mark.large
def test_train_a_ztw_network(tmp_path, capsys):
    out = tmp_path / "ztw"
    assert main(["train", "--method", "ztw", "--regime", "mixed",
                 "--dataset", "digits", "--epochs", "2", "--batch-size",
                 "128", "--out", str(out), "--verbose", "0"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["method"] == "ztw"
    assert metrics["plan"].endswith(
        "ztw_ensemble 2 = 4 epochs (ztw_ensemble 2 added by method ztw "
        "after the budget)")
    assert metrics["history"]["phase"] == [0, 1, 2, 2]
    assert "method ztw" in capsys.readouterr().out
    model = keras.saving.load_model(str(out / "model.keras"),
                                    safe_mode=True)
    heads = [h for h in model.heads if isinstance(h, ZTWHead)]
    assert len(heads) == model.num_exits - 1
    assert all(float(h.ensemble_ready) == 1.0 for h in heads)


@pytest.mark.large
def test_compare_methods_by_regimes(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--methods", "sdn,pbee", "--regimes", "joint",
                 "--seeds", "1", "--dataset", "digits", "--epochs", "1",
                 "--batch-size", "128", "--out", str(out)]) == 0
    assert sorted(os.listdir(out / "runs")) == [
        "pbee-joint_seed0.json", "sdn-joint_seed0.json"]
    report = (out / "report.md").read_text()
    assert "| pbee-joint |" in report and "| sdn-joint |" in report
    assert main(["compare", "--methods", "sdn,sdn", "--out",
                 str(tmp_path / "bad")]) == 2
    assert "distinct method names" in capsys.readouterr().err
