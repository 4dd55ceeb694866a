"""Every zoo model exports to LiteRT with built-in ops only."""

import keras
import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from keras_eexit.export import LiteRTRunner  # noqa: E402
from keras_eexit.export import export_litert  # noqa: E402
from keras_eexit.models import get_model  # noqa: E402

SMALL = {
    "small_cnn": {"width": 8},
    "cnn1d": {"width": 8},
    "cifar_resnet": {"depth": 20, "input_shape": (16, 16, 3)},
}
LARGE = {
    "vgg16_exits": {},
    "mobilenet_v2_exits": {"alpha": 0.35},
    "resnet50_exits": {},
}


def _check_early_exit(model, path):
    """Threshold 0 stops at exit 1, threshold 1 runs to the end (float)."""
    shape = model.input_shape_
    x = np.random.default_rng(0).normal(size=(3,) + shape).astype("float32")
    logits = model(x, training=False)
    expected = [keras.ops.convert_to_numpy(keras.ops.softmax(logits[n]))
                for n in model.exit_names]
    export_litert(model, path, mode="early_exit")
    runner = LiteRTRunner(path)
    probs, index = runner.predict(x, 0.0)
    assert (index == 0).all()
    np.testing.assert_allclose(probs, expected[0], atol=1e-4)
    probs, index = runner.predict(x, 1.0)
    assert (index == model.num_exits - 1).all()
    np.testing.assert_allclose(probs, expected[-1], atol=1e-4)
    return x, expected


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_zoo_models_export_in_every_mode(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = get_model(name, num_classes=5, **SMALL[name])
    x, expected = _check_early_exit(model, tmp_path / "early")
    for mode in ("per_exit", "segments"):
        export_litert(model, tmp_path / mode, mode=mode)
        np.testing.assert_allclose(
            LiteRTRunner(tmp_path / mode).predict_all(x),
            np.stack(expected), atol=1e-4)


@pytest.mark.large
@pytest.mark.parametrize("name", [
    # One keras.applications builder makes all three: MobileNetV2 (the
    # phone case) runs in CI, the bigger two with `-m slow`.
    pytest.param(name, marks=[pytest.mark.slow] * (
        name != "mobilenet_v2_exits")) for name in sorted(LARGE)])
def test_large_zoo_models_export_early_exit(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = get_model(name, num_classes=10, input_shape=(32, 32, 3),
                      **LARGE[name])
    _check_early_exit(model, tmp_path)
