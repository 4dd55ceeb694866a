"""A training method's step override runs under every regime phase."""

import keras
import numpy as np
import tensorflow as tf

from keras_eexit import regimes


class CountingStep:
    """A method's step: Keras' own step, counting the batches it trains."""

    def __init__(self):
        self.batches = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.epochs = 0

    def train_step(self, model, data):
        self.batches.assign_add(1)
        return model.keras_train_step(data)

    def next_epoch(self):
        self.epochs += 1
        return False


def test_regimes_keep_a_methods_step_override(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    step = CountingStep()
    object.__setattr__(model, "step_override", step)
    model.compile(optimizer="adam")
    # TwoStage's head phase caches features by default: with a method
    # installed, the method's step runs there too.
    history = model.fit(x, y, batch_size=8, verbose=0,
                        callbacks=[regimes.TwoStage(2, 2, verbose=False)])
    assert int(step.batches.numpy()) == 4 * 4
    assert history.history["phase"] == [0, 0, 1, 1]
    assert step.epochs == 2  # once per epoch after a phase's first
    assert model.step_override is step  # given back after fit
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # plain fit too
    assert int(step.batches.numpy()) == 5 * 4


def test_without_a_method_the_feature_cache_still_runs(model_factory,
                                                       tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="adam")
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(type(self.model.step_override).__name__)

    model.fit(x, y, batch_size=8, verbose=0,
              callbacks=[regimes.TwoStage(1, 2, verbose=False), Spy()])
    assert seen == ["NoneType", "FeatureCache", "FeatureCache"]
    assert model.step_override is None
    assert np.isfinite(model.evaluate(x, y, verbose=0)[0])
