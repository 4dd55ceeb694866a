"""A regime gives the model back as a plain `fit` expects it.

When the regime's `fit` ends, fails or is interrupted: trainable flags,
exit weights, objective, learning rate and step override are restored, so
a following plain `fit` trains every exit and a saved file carries none of
the regime's state (issue 19, items 1 and 2).
"""

import keras
import numpy as np
import pytest

from keras_eexit import models
from keras_eexit import regimes


def _named(num_exits):
    """One instance of every named regime, as short as it gets."""
    return {
        "joint": regimes.Joint("to_final", verbose=False),
        "two_stage": regimes.TwoStage(1, 1, verbose=False),
        "mixed": regimes.Mixed(1, 1, weights="han", verbose=False),
        "branch_wise": regimes.BranchWise(1, verbose=False),
        "sequential": regimes.SequentialRegime(1, verbose=False),
        "distillation": regimes.Distillation(backbone_epochs=1,
                                             distill_epochs=1,
                                             verbose=False),
        "joint_branch": regimes.JointBranch(1, 1, verbose=False),
        "joint_two_stage": regimes.JointTwoStage(1, 1, verbose=False),
        "pretrained_branch": regimes.PretrainedBranch(1, 1, verbose=False),
    }


def _values(model):
    return [np.array(w) for w in model.weights]


def _changed_layers(model, before):
    """Names of segments/heads whose weights changed since `before`."""
    after = {layer.name: [np.array(w) for w in layer.weights]
             for layer in model.segments + model.heads}
    return {name for name, values in after.items()
            if any(not np.array_equal(a, b)
                   for a, b in zip(values, before[name]))}


def _snapshot(model):
    return {layer.name: [np.array(w) for w in layer.weights]
            for layer in model.segments + model.heads}


def _assert_plain(model):
    assert model.regime_state is None
    assert model.train_step_plan() == []
    assert model.gradient_equilibrium is False
    assert [t.name for t in model.objective.terms] == ["crossentropy"]
    assert all(layer.trainable for layer in model.segments + model.heads)
    np.testing.assert_array_equal(model.exit_weights.numpy(),
                                  np.ones(model.num_exits))


SLOW_RELEASES = {"joint_branch", "branch_wise"}
"""Released with `-m slow` only: their phases (a joint phase, then
frozen-backbone heads; heads one by one) release as `joint_two_stage`'s
and `two_stage`'s do in CI."""


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[pytest.mark.slow] * (name in SLOW_RELEASES))
    for name in sorted(_named(3))])
def test_plain_fit_after_a_named_regime_trains_every_exit(
        name, model_factory, tiny_data, tmp_path):
    x, y = tiny_data
    model = model_factory()
    regime = _named(model.num_exits)[name]
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    model.fit(x, y, batch_size=16, epochs=regime.epochs_for(model) or 1,
              verbose=0, callbacks=[regime])
    _assert_plain(model)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)

    before = _snapshot(model)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    every = {layer.name for layer in model.segments + model.heads}
    assert _changed_layers(model, before) == every

    path = str(tmp_path / "after.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    _assert_plain(loaded)
    np.testing.assert_allclose(loaded.predict(x[:4], verbose=0)["exit_1"],
                               model.predict(x[:4], verbose=0)["exit_1"],
                               atol=1e-6)


def test_compiled_loss_weights_come_back_after_a_regime(model_factory,
                                                         tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd", loss_weights=[0.2, 0.3, 0.5])
    model.fit(x, y, verbose=0, callbacks=[regimes.TwoStage(1, 1,
                                                           verbose=False)])
    np.testing.assert_allclose(model.exit_weights.numpy(), [0.2, 0.3, 0.5])


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch, error=KeyboardInterrupt):
        super().__init__()
        self.epoch, self.error = epoch, error

    def on_train_batch_end(self, batch, logs=None):
        if self.params and self._epoch == self.epoch and batch == 0:
            raise self.error("interrupted on purpose")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupted_regime_leaves_a_model_that_trains_normally(
        error, model_factory, tiny_data, tmp_path):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    # Epoch 3 is the second epoch of the cached heads phase: segments are
    # frozen and the feature-cache train step is installed.
    regime = regimes.TwoStage(1, 5, verbose=False)
    with pytest.raises(error, match="on purpose"):
        model.fit(x, y, batch_size=16, verbose=0,
                  callbacks=[regime, _Interrupt(3, error)])
    _assert_plain(model)

    before = _snapshot(model)
    model.fit(x[:24], y[:24], batch_size=8, epochs=1, verbose=0)
    every = {layer.name for layer in model.segments + model.heads}
    assert _changed_layers(model, before) == every
    path = str(tmp_path / "m.keras")
    model.save(path)
    _assert_plain(keras.saving.load_model(path, safe_mode=True))


def test_interrupted_regime_resumes_with_backup_and_restore(
        model_factory, tiny_data, tmp_path):
    x, y = tiny_data
    backup = str(tmp_path / "backup")
    model = model_factory()
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, verbose=0,
                  callbacks=[regimes.TwoStage(2, 2, verbose=False),
                             _Interrupt(3),
                             keras.callbacks.BackupAndRestore(backup)])
    history = model.fit(
        x, y, batch_size=16, verbose=0,
        callbacks=[regimes.TwoStage(2, 2, verbose=False),
                   keras.callbacks.BackupAndRestore(backup)])
    # Epochs 0-2 finished before the interrupt; the run resumes at epoch 3,
    # the second epoch of the heads phase.
    assert history.history["phase"] == [1]


def test_fit_takes_its_length_from_the_regime(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    regime = regimes.Mixed(2, 1, verbose=False)
    history = model.fit(x, y, verbose=0, callbacks=[regime])
    assert len(history.epoch) == 3 == regime.epochs_for(model)


def test_monitored_phases_count_their_maximum(model_factory):
    regime = regimes.Regime([
        regimes.Phase("a", epochs=4, monitor="val_loss", patience=1),
        regimes.Phase("b", epochs=2),
    ])
    assert regime.epochs_for(model_factory()) == 6
    unbounded = regimes.Regime([
        regimes.Phase("a", monitor="val_loss", patience=1),
        regimes.Phase("b", epochs=2),
    ])
    assert unbounded.epochs_for(3) is None


def test_a_regime_without_length_needs_epochs(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    regime = regimes.Joint(verbose=False)
    assert regime.epochs_for(model) is None
    with pytest.raises(ValueError, match=r"pass `epochs=` to fit"):
        model.fit(x, y, verbose=0, callbacks=[regime])


def test_the_regime_says_when_it_ends_fit_early(model_factory, tiny_data,
                                                capsys):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    history = model.fit(x, y, epochs=10, verbose=0,
                        callbacks=[regimes.TwoStage(2, 1, verbose=True)])
    assert len(history.epoch) == 3
    out = capsys.readouterr().out
    assert out.count("will end after 3 epochs") == 1
    assert "backbone 2 + heads 1" in out


def test_zoo_model_plain_fit_after_two_stage_learns_every_exit():
    """The issue's case: after TwoStage, a plain fit trains the final exit."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images[..., None] / 16.0).astype("float32")
    y = digits.target
    keras.utils.set_random_seed(0)
    model = models.small_cnn(input_shape=(8, 8, 1), num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  metrics=["accuracy"])
    model.fit(x[:1200], y[:1200], batch_size=32, verbose=0,
              callbacks=[regimes.TwoStage(1, 1, verbose=False)])
    model.fit(x[:1200], y[:1200], batch_size=32, epochs=4, verbose=0)
    scores = model.evaluate(x[1200:], y[1200:], verbose=0,
                            return_dict=True)
    assert scores["exit_3_accuracy"] > 0.8


def test_repeated_fits_under_an_unchanged_regime_reuse_the_trace(
        model_factory, tiny_data):
    """A regime rebuilds the train step only when what it traced changes."""
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    regime = regimes.Joint(verbose=False)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[regime])
    traced = model.train_function
    for _ in range(2):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[regime])
        model.fit(x, y, epochs=1, verbose=0)
    assert model.train_function is traced
    # A regime that freezes stages needs (and gets) another trace, and the
    # plain fit after it one with every stage trainable again.
    model.fit(x, y, verbose=0, callbacks=[regimes.TwoStage(1, 1,
                                                           verbose=False)])
    assert model.train_function is not traced
    before = _snapshot(model)
    model.fit(x, y, epochs=1, verbose=0)
    assert _changed_layers(model, before) == {
        layer.name for layer in model.segments + model.heads}
