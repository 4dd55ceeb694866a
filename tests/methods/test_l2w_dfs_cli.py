"""`keras-eexit train/compare --method l2w|dfs` through the runner."""

import json
import os

import keras
import pytest

from keras_eexit.cli.main import main
from keras_eexit.layers import PartitionedHead


@pytest.mark.slow  # the methods CLI runs in CI (test_methods_cli.py)
def test_compare_and_train_l2w_and_dfs(tmp_path):
    # ~25 s on 2 CPUs: one compare over both methods, one DFS train.
    out = tmp_path / "cmp"
    assert main(["compare", "--methods", "l2w,dfs", "--regimes", "mixed",
                 "--seeds", "1", "--dataset", "digits", "--epochs", "2",
                 "--batch-size", "128", "--out", str(out)]) == 0
    assert sorted(os.listdir(out / "runs")) == [
        "dfs-mixed_seed0.json", "l2w-mixed_seed0.json"]
    report = (out / "report.md").read_text()
    assert "| l2w-mixed |" in report and "| dfs-mixed |" in report
    run = tmp_path / "dfs"
    assert main(["train", "--method", "dfs", "--regime", "joint",
                 "--dataset", "digits", "--epochs", "1", "--batch-size",
                 "128", "--out", str(run), "--verbose", "0"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["config"]["method"] == "dfs"
    model = keras.saving.load_model(str(run / "model.keras"),
                                    safe_mode=True)
    assert isinstance(model.heads[0], PartitionedHead)
