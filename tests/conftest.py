"""Shared test fixtures: quiet TensorFlow and a tiny multi-exit model."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_eexit import MultiExitModel  # noqa: E402


def make_tiny_model(num_exits=3, num_classes=4, input_shape=(8, 8, 1),
                    seed=0):
    """A small chain of conv segments with dense heads (no zoo needed)."""
    keras.utils.set_random_seed(seed)
    segments, heads = [], []
    channels = input_shape[-1]
    for k in range(num_exits):
        shape = input_shape[:-1] + (channels,)
        segments.append(keras.Sequential(
            [keras.Input(shape),
             keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
             keras.layers.BatchNormalization()],
            name=f"seg_{k + 1}",
        ))
        channels = 4
        heads.append(keras.Sequential(
            [keras.layers.GlobalAveragePooling2D(),
             keras.layers.Dense(num_classes)],
            name=f"exit_{k + 1}",
        ))
    return MultiExitModel(segments, heads, name="tiny")


@pytest.fixture
def tiny_model():
    return make_tiny_model()


@pytest.fixture
def tiny_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, size=32)
    return x, y


@pytest.fixture
def model_factory():
    return make_tiny_model


class WeightRecorder(keras.callbacks.Callback):
    """Records, per epoch, which segments/heads changed and the phase.

    Place it after the regime in the callback list: it snapshots at epoch
    begin, after the regime has applied the epoch's phase.
    """

    def __init__(self):
        super().__init__()
        self.changed = []  # per epoch: (set of changed segs, set of heads)
        self.exit_weights = []
        self.snapshots = []

    @staticmethod
    def _values(layer):
        return [np.array(w) for w in layer.weights]

    def _snapshot(self):
        m = self.model
        return ([self._values(s) for s in m.segments],
                [self._values(h) for h in m.heads])

    def on_epoch_begin(self, epoch, logs=None):
        self._before = self._snapshot()
        self.exit_weights.append(np.array(self.model.exit_weights))

    def on_epoch_end(self, epoch, logs=None):
        after = self._snapshot()
        self.snapshots.append(after)

        def diff(before, now):
            return {k + 1 for k, (b, a) in enumerate(zip(before, now))
                    if any(not np.array_equal(x, y) for x, y in zip(b, a))}

        self.changed.append((diff(self._before[0], after[0]),
                             diff(self._before[1], after[1])))


@pytest.fixture
def recorder():
    return WeightRecorder()
