"""`keras-eexit train --strategy ... --precision ...` and their helpers."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_eexit.cli.main import main
from keras_eexit.utils import distribution

# Logical CPU devices must be configured before TensorFlow initialises, so
# the mirrored run has a process of its own.
MIRRORED_RUN = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_eexit.cli.main import main
sys.exit(main(["train", "--strategy", "mirrored", "--dataset", "digits",
               "--epochs", "1", "--verbose", "0", "--out", sys.argv[1]]))
"""


@pytest.mark.parametrize("flag,value", [("--strategy", "gpu"),
                                        ("--precision", "float16")])
def test_bad_values_are_argparse_errors_listing_choices(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", flag, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"invalid choice: '{value}'" in err
    choices = (distribution.STRATEGIES if flag == "--strategy"
               else distribution.PRECISIONS)
    assert all(f"'{choice}'" in err for choice in choices)


def test_mixed_bfloat16_run_keeps_float32_logits_and_restores_policy(
        tmp_path):
    out = tmp_path / "run"
    assert keras.config.dtype_policy().name == "float32"
    assert main(["train", "--precision", "mixed_bfloat16", "--dataset",
                 "digits", "--epochs", "1", "--verbose", "0",
                 "--out", str(out)]) == 0
    assert keras.config.dtype_policy().name == "float32"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["precision"] == "mixed_bfloat16"
    assert metrics["strategy"] == "none" and metrics["replicas"] == 1
    assert all(np.isfinite(v) for v in metrics["history"]["loss"])
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert model.dtype_policy.name == "mixed_bfloat16"
    conv = next(layer for layer in model.segments[0].layers if layer.weights)
    assert conv.compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    logits = model(np.zeros((2, 8, 8, 1), "float32"))
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32"
               for v in logits.values())


@pytest.mark.large
def test_mirrored_over_two_logical_cpus(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_RUN, str(out)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "mirrored" and metrics["replicas"] == 2
    assert all(np.isfinite(v) for v in metrics["history"]["loss"])
    for k in (1, 2, 3):  # compiled metrics for every exit, not the first
        assert f"exit_{k}_accuracy" in metrics["history"]
    assert sorted(os.listdir(out)) == ["metrics.json", "model.keras"]


@pytest.mark.parametrize("tf_config,message", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}}', "`cluster` and a `task`"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, '
     '"task": {"type": "worker", "index": 1}}', "must name a member"),
])
def test_multiworker_needs_a_valid_tf_config(tmp_path, capsys, monkeypatch,
                                             tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    out = tmp_path / "run"
    assert main(["train", "--strategy", "multiworker", "--epochs", "1",
                 "--verbose", "0", "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_tpu_without_a_tpu_fails_clearly(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    out = tmp_path / "run"
    assert main(["train", "--strategy", "tpu", "--epochs", "1",
                 "--verbose", "0", "--out", str(out)]) == 2
    assert "No TPU found" in capsys.readouterr().err
    assert not out.exists()


def test_read_tf_config_accepts_a_cluster_member():
    text = json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                       "task": {"type": "worker", "index": 1}})
    config = distribution.read_tf_config({"TF_CONFIG": text})
    assert config["task"]["index"] == 1


def test_precision_policy_restores_the_previous_policy_on_error():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        with pytest.raises(RuntimeError):
            with distribution.precision_policy("mixed_bfloat16"):
                assert keras.config.dtype_policy().name == "mixed_bfloat16"
                raise RuntimeError("boom")
        assert keras.config.dtype_policy().name == "mixed_float16"
    finally:
        keras.config.set_dtype_policy("float32")
    with pytest.raises(ValueError, match="Unknown precision"):
        with distribution.precision_policy("float16"):
            pass


def test_none_strategy_is_the_default():
    import tensorflow as tf

    assert distribution.make_strategy("none") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="Valid choices"):
        distribution.make_strategy("mirorred")


@pytest.mark.parametrize("cluster,task,chief", [
    ({"worker": ["a:1", "b:1"]}, ("worker", 0), True),
    ({"worker": ["a:1", "b:1"]}, ("worker", 1), False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0), False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0), True),
])
def test_only_the_chief_writes_to_out(cluster, task, chief):
    environ = {"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": task[0], "index": task[1]}})}
    assert distribution.is_chief(environ) is chief
    expected = "out" if chief else os.path.join("out", f"{task[0]}_{task[1]}")
    assert distribution.task_dir("out", environ) == expected
    assert distribution.is_chief({})


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two workers' identical weights: tests/distribute/
# test_multiworker.py; the supervised CLI's start: tests/cli/test_signals.py
def test_multiworker_run_with_two_local_workers(tmp_path):
    out = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    processes, logs = [], []
    try:
        for index in range(2):
            config = {"cluster": cluster,
                      "task": {"type": "worker", "index": index}}
            logs.append(open(tmp_path / f"w{index}.log", "w"))
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "keras_eexit", "train", "--strategy",
                 "multiworker", "--dataset", "digits", "--epochs", "1",
                 "--verbose", "0", "--out", str(out)],
                stdout=logs[-1], stderr=subprocess.STDOUT,
                env={**os.environ, "TF_CONFIG": json.dumps(config),
                     "TF_CPP_MIN_LOG_LEVEL": "2"}))
        codes = [p.wait(timeout=900) for p in processes]  # ceiling only
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
        for log in logs:
            log.close()
    text = [(tmp_path / f"w{i}.log").read_text()[-2000:] for i in range(2)]
    assert codes == [0, 0], text
    # Only the chief (worker 0) writes; worker 1 removed its scratch dir.
    assert sorted(os.listdir(out)) == ["metrics.json", "model.keras"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "multiworker" and metrics["replicas"] == 2
    assert "exit_3_accuracy" in metrics["history"]
