"""Each method learns on digits under a regime, and exits as it should."""

import keras
import numpy as np
import pytest

from keras_eexit import criteria
from keras_eexit.evaluation import collect
from keras_eexit.methods import get_method
from keras_eexit.regimes import Joint
from keras_eexit.regimes import Mixed
from keras_eexit.regimes import TwoStage
from tests.methods.test_methods_inference import check_decisions

pytestmark = pytest.mark.large

# One regime per method keeps this short; each regime runs with every
# method in benchmarks/methods_comparison.py.
REGIMES = {
    "pbee": lambda: Joint(),
    "ztw": lambda: TwoStage(3, 3),
    "gpf": lambda: Mixed(3, 3),
}


@pytest.fixture(scope="module")
def digits():
    from keras_eexit.data import load_arrays

    arrays = load_arrays("digits")
    return (arrays["x_train"].astype("float32"), arrays["y_train"],
            arrays["x_test"].astype("float32"), arrays["y_test"])


@pytest.fixture(scope="module", params=sorted(REGIMES))
def trained(request, digits):
    from keras_eexit.models import get_model

    x, y, x_test, y_test = digits
    name = request.param
    method = get_method(name)
    keras.utils.set_random_seed(0)
    model = method.build(get_model("small_cnn", num_classes=10, width=16))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    regime = method.adapt(REGIMES[name](), epochs=6)
    model.fit(x, y, batch_size=32, epochs=regime.epochs_for(model) or 6,
              callbacks=[regime], verbose=0)
    return name, model, collect(model, (x_test, y_test))


def test_every_exit_learns(trained):
    name, model, outputs = trained
    accuracy = outputs.accuracy()  # chance: 0.1
    # small_cnn's first exit learns slowly in every method (about 0.1 at
    # width 8 after 6 epochs even for plain SDN heads).
    assert accuracy[0] > 0.15, (name, accuracy)
    assert accuracy[1] > 0.4, (name, accuracy)
    assert accuracy[-1] > 0.8, (name, accuracy)


def test_batched_early_exit_with_the_methods_criterion(trained, digits):
    name, model, outputs = trained
    criterion = get_method(name).criterion
    thresholds = [1, 1, 0] if criterion == "patience" else None
    check_decisions(model, digits[2][:200], criterion, thresholds)


def test_litert_early_exit_with_the_methods_criterion(trained, digits,
                                                      tmp_path):
    """The single LiteRT early-exit file decides as the sweep, with the
    method's rule (PABEE's patience carried from stage to stage)."""
    from keras_eexit.export import LiteRTRunner
    from keras_eexit.export import export_litert
    from keras_eexit.inference import ExitPolicy

    name, model, _ = trained
    criterion = get_method(name).criterion
    x = digits[2][:64]
    outputs = collect(model, (x, np.zeros(len(x), "int64")))
    if criterion == "patience":
        thresholds = [1, 1, 0]
    else:  # about half the samples leave at each exit
        thresholds = [float(t) for t in np.median(
            criteria.get(criterion).scores(outputs.probs), axis=1)]
    export_litert(model, tmp_path, mode="early_exit", criterion=criterion)
    probs, index = LiteRTRunner(tmp_path).predict(x, thresholds)
    expected = ExitPolicy(criterion, thresholds).exit_indices(outputs.probs)
    np.testing.assert_array_equal(index, expected)
    assert len(np.unique(index)) >= 2
    np.testing.assert_allclose(
        probs, outputs.probs[expected, np.arange(len(x))], atol=1e-4)
