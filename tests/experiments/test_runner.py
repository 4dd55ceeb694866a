"""The experiment runner: config → trained model + record, resumable."""

import json

import keras
import pytest

from keras_eexit import experiments
from keras_eexit.experiments import ExperimentConfig
from keras_eexit.experiments.progress import epoch_line


@pytest.mark.parametrize("field,value,message", [
    ("learning_rate", -1.0, "learning_rate"),
    ("learning_rate", 0.0, "learning_rate"),
    ("learning_rate", float("inf"), "learning_rate"),
    ("epochs", 0, "epochs"),
    ("batch_size", 0, "batch_size"),
    ("regime", "jiont", "Did you mean 'joint'"),
    ("model", "resnet9000", "Unknown model"),
    ("schedule", "step", "Unknown schedule"),
    ("regime_params", {"nope": 1}, "Valid parameters"),
])
def test_config_is_checked_when_made(field, value, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig(**{field: value})


def test_config_round_trip_and_defaults():
    config = ExperimentConfig(regime="two_stage",
                              regime_params={"heads": "one_by_one"},
                              convergence=experiments.Convergence(2, 9))
    again = ExperimentConfig.from_dict(json.loads(json.dumps(
        config.to_dict())))
    assert again == config
    assert config.budget == experiments.DEFAULT_EPOCHS
    assert config.model_name == "small_cnn"
    assert "Adam lr 0.003" in config.describe()
    with pytest.raises(ValueError, match="another version"):
        ExperimentConfig.from_dict({**config.to_dict(), "extra": 1})


class _Interrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt after `after` epochs, like Ctrl-C."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_with_its_whole_history(tmp_path, capsys):
    config = ExperimentConfig(regime="two_stage", epochs=3, seed=2,
                              batch_size=64)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        experiments.run(config, out=str(out), callbacks=[_Interrupt(2)])
    run_dir = experiments.RunDirectory(out)
    assert run_dir.interrupted() and run_dir.has_checkpoint()
    result = experiments.run(config, out=str(out), resume=True)
    assert result.epochs == 3
    assert result.history["phase"] == [0, 0, 1]
    assert all(len(v) == 3 for v in result.history.values())
    printed = capsys.readouterr().out
    assert "Plan (3 exits): backbone 2 + heads 1 = 3 epochs." in printed
    assert "epoch 3/3  phase 2/2 heads" in printed
    assert "epoch 1/3" in printed  # the first run's lines
    experiments.write_run(result, str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"]["phase"] == [0, 0, 1]
    assert metrics["config"] == config.to_dict()
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json",
                                                     "model.keras"]


def test_run_interrupted_before_an_epoch_leaves_nothing(tmp_path):
    out = tmp_path / "new" / "run"
    config = ExperimentConfig(epochs=1, batch_size=64)

    class Early(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        experiments.run(config, out=str(out), verbose=0, callbacks=[Early()])
    assert not (tmp_path / "new").exists()


def test_comparison_record_goes_through_evaluation_reports():
    from keras_eexit.evaluation.reports import RECORD_KEYS

    config = ExperimentConfig(regime="mixed", epochs=2, validation=False,
                              label="mixed[x]", batch_size=64)
    result = experiments.run(config, verbose=0)
    record = experiments.comparison_record(result)
    assert set(RECORD_KEYS) <= set(record)
    assert record["regime"] == "mixed[x]" and record["epochs"] == 2
    assert record["plan"] == "backbone 1 + joint 1 = 2 epochs"
    assert record["config"]["regime"] == "mixed"
    # The resources of the run, as "Strategies at a glance" records them.
    resources = record["resources"]
    assert len(resources["epoch_seconds"]) == 2
    assert resources["epoch_phases"] == [0, 1]
    assert resources["host"]["peak_mb"] > 0


def test_epoch_line_is_compact_and_shows_the_phase_as_an_index():
    logs = {"loss": 0.51234, "phase": 1.0, "val_loss": 0.7,
            **{f"exit_{k}_loss": 0.1 for k in (1, 2, 3)},
            **{f"exit_{k}_accuracy": 0.1 * k for k in (1, 2, 3)},
            **{f"val_exit_{k}_accuracy": 0.3 for k in (1, 2, 3)},
            "exit_3_accuracy": 1.0}
    line = epoch_line(2, 12, logs, 1.234, ["backbone", "heads"])
    assert line.startswith("epoch  3/12  phase 2/2 heads  loss 0.5123")
    assert "acc .100/.200/1.00" in line and "val_acc .300/.300/.300" in line
    assert "e+00" not in line and len(line) < 120
