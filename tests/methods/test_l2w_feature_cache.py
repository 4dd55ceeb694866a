"""L2W and the feature cache compose: L2W trains on cached head inputs."""

import keras
import numpy as np

from keras_eexit import MultiExitModel
from keras_eexit import regimes
from keras_eexit.methods import L2W
from keras_eexit.regimes.feature_cache import FeatureCache


def _frozen_chain(seed=3):
    keras.utils.set_random_seed(seed)
    segments = [keras.Sequential(
        [keras.Input((5 if k == 0 else 6,)),
         keras.layers.Dense(6, activation="tanh")],
        name=f"segment_{k + 1}") for k in range(3)]
    heads = [keras.layers.Dense(3, name=f"exit_{k + 1}") for k in range(3)]
    model = MultiExitModel(segments, heads, name="smooth")
    for segment in model.segments:
        segment.trainable = False
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def _data():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(32, 5)).astype("float32"),
            rng.integers(0, 3, 32))


def _train(cache, l2w):
    """Three epochs on a frozen backbone: count, fill, replay.

    The replay epoch is fed other inputs and labels: with the cache, the
    step trains on the cached samples (in their original order) instead.
    """
    x, y = _data()
    model = _frozen_chain()
    method = None
    if l2w:
        keras.utils.set_random_seed(1)
        method = L2W(hidden_units=8, meta_learning_rate=1e-2).attach(model)
    feature_cache = FeatureCache(model) if cache else None
    if cache:
        model.train_pipeline.install(feature_cache)
    for epoch in range(3):
        if cache and epoch:
            model.train_pipeline.next_epoch()
            if epoch == 2:
                feature_cache.store.order.assign(np.arange(32))
            model.refresh_train_function()
        inputs, labels = (x, y) if not (cache and epoch == 2) else (
            np.zeros_like(x), (y + 1) % 3)
        model.fit(inputs, labels, batch_size=16, shuffle=False, verbose=0)
    return model, method


def _heads(model):
    return [w.numpy() for h in model.heads for w in h.weights]


def test_l2w_and_the_feature_cache_compose():
    cached, cached_l2w = _train(cache=True, l2w=True)
    assert cached.train_step_plan() == [
        "1. batch: FeatureCache(mode='replay')", "2. step: L2W",
        "3. loss: L2W"]
    recomputed, recomputed_l2w = _train(cache=False, l2w=True)
    # The cache's effect: the replay epoch ignored its batches' content
    # and trained on the cached features, exactly as recomputing them.
    for a, b in zip(_heads(cached), _heads(recomputed)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # L2W's effect: its network was meta-learned on the cached features
    # exactly as on recomputed ones, and its weights changed the heads.
    for a, b in zip(cached_l2w.network.weights,
                    recomputed_l2w.network.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5,
                                   atol=1e-6)
    assert int(cached_l2w.steps.numpy()) == 3 * 2  # epochs x batches
    plain, _ = _train(cache=True, l2w=False)
    assert max(np.abs(a - b).max()
               for a, b in zip(_heads(cached), _heads(plain))) > 1e-3


def test_two_stage_caches_features_under_l2w(tiny_data, model_factory):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    l2w = L2W(hidden_units=4).attach(model)
    modes = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            modes.append([c.mode for c in
                          self.model.train_pipeline.active("batch")])

    history = model.fit(x, y, batch_size=16, verbose=0, callbacks=[
        regimes.TwoStage(1, 3, verbose=False), Probe()])
    assert modes == [[], ["count"], ["fill"], ["replay"]]
    assert np.isfinite(history.history["l2w_meta_loss"]).all()
    assert model.train_pipeline.contributors == (l2w,)
