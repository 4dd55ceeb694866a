"""A training method's step composes with every regime phase."""

import keras
import numpy as np
import tensorflow as tf

from keras_eexit import regimes
from keras_eexit.models.train_step import HeadInputs
from keras_eexit.models.train_step import StepContributor


class CountingStep(StepContributor):
    """A method's step: counts the batches it drives, and cached ones."""

    roles = ("step",)

    def __init__(self):
        self.batches = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.cached = tf.Variable(0, dtype=tf.int64, trainable=False)

    def run(self, model, batch, update):
        self.batches.assign_add(1)
        if isinstance(batch.x, HeadInputs):
            self.cached.assign_add(1)
        return update(batch)


class PlanProbe(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.plans = []

    def on_epoch_end(self, epoch, logs=None):
        self.plans.append(self.model.train_step_plan())


def test_a_methods_step_trains_on_the_feature_cache(model_factory,
                                                    tiny_data):
    x, y = tiny_data
    model = model_factory()
    step = CountingStep()
    model.train_pipeline.install(step)
    model.compile(optimizer="adam")
    probe = PlanProbe()
    # TwoStage's head phase caches features: the method's step runs there
    # on the cached head inputs (fill and replay epochs).
    history = model.fit(x, y, batch_size=8, verbose=0,
                        callbacks=[regimes.TwoStage(1, 3, verbose=False),
                                   probe])
    assert history.history["phase"] == [0, 1, 1, 1]
    assert int(step.batches.numpy()) == 4 * 4
    assert int(step.cached.numpy()) == 2 * 4
    assert probe.plans == [
        ["1. step: CountingStep"],
        ["1. batch: FeatureCache(mode='count')", "2. step: CountingStep"],
        ["1. batch: FeatureCache(mode='fill')", "2. step: CountingStep"],
        ["1. batch: FeatureCache(mode='replay')", "2. step: CountingStep"]]
    assert model.train_pipeline.contributors == (step,)  # kept after fit
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # plain fit too
    assert int(step.batches.numpy()) == 5 * 4


def test_a_fisher_pass_replaces_a_methods_step_for_its_epoch(
        model_factory, tiny_data):
    x, y = tiny_data
    fishers, plans = [], []

    class Capture(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            store = self.model.regime_state.fisher_store
            fishers.append([np.array(f) for f in store.fisher])
            plans.append(self.model.train_step_plan())

    before = None
    for with_method in (False, True):
        model = model_factory()
        model.compile(optimizer="adam")
        step = CountingStep()
        if with_method:
            model.train_pipeline.install(step)
        before = [w.numpy() for w in model.weights]
        model.fit(x, y, batch_size=8, verbose=0, callbacks=[
            regimes.Regime([regimes.Phase("fisher", 1, fisher_exit=2)],
                           verbose=False), Capture()])
    # Nothing trained, the method's step never ran, and the Fisher is the
    # one measured without the method.
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())
    assert int(step.batches.numpy()) == 0
    assert plans[1] == ["1. step: CountingStep (replaced by "
                        "FisherPass(exit=2))", "2. step: FisherPass(exit=2)"]
    assert any(f.any() for f in fishers[1])
    for a, b in zip(*fishers):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # Afterwards the method drives the step again.
    assert model.train_step_plan() == ["1. step: CountingStep"]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(step.batches.numpy()) == 4
