"""`keras_eexit.models.load_model`: safe loading with clear errors."""

import json
import zipfile

import keras
import numpy as np
import pytest

from keras_eexit.models import load_model
from keras_eexit.models.multi_exit_model import FORMAT_VERSION


def _rewrite_config(src, dst, edit):
    """Copies a .keras archive, passing its config.json through `edit`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(content)
                edit(config)
                content = json.dumps(config).encode()
            zout.writestr(item, content)


def test_round_trip_records_the_format_version(tiny_model, tmp_path):
    path = tmp_path / "m.keras"
    tiny_model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    assert config["config"]["format_version"] == FORMAT_VERSION
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    loaded = load_model(path)
    np.testing.assert_allclose(loaded(x)["exit_3"], tiny_model(x)["exit_3"],
                               atol=1e-6)


def test_model_from_a_newer_version_is_refused_clearly(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "m.keras")
    newer = tmp_path / "newer.keras"

    def bump(config):
        config["config"]["format_version"] = FORMAT_VERSION + 1

    _rewrite_config(tmp_path / "m.keras", newer, bump)
    with pytest.raises(ValueError, match="newer keras-eexit") as info:
        load_model(newer)
    assert str(newer) in str(info.value)
    assert "Upgrade keras-eexit" in str(info.value)


def test_config_without_format_version_loads_as_format_1(tiny_model,
                                                          tmp_path):
    tiny_model.save(tmp_path / "m.keras")
    old = tmp_path / "old.keras"
    _rewrite_config(tmp_path / "m.keras", old,
                    lambda c: c["config"].pop("format_version"))
    assert load_model(old).num_exits == tiny_model.num_exits


def test_a_plain_keras_model_is_not_a_multi_exit_model(tmp_path):
    inputs = keras.Input((3,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(ValueError, match="not a keras_eexit MultiExitModel"):
        load_model(tmp_path / "plain.keras")


def test_lambda_layers_are_refused_in_safe_mode(tmp_path):
    inputs = keras.Input((3,))
    lam = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="Could not load .*lambda.keras"):
        load_model(tmp_path / "lambda.keras")
