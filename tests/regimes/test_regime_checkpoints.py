"""Files saved while a regime runs, callbacks that stop it, its output.

Issue 24: a `ModelCheckpoint` taken in the middle of a regime must load as
a plain model (the user's trainable flags and exit weights, never the
phase's); `EarlyStopping` ending fit in an early phase is reported; the
phase lines follow fit's `verbose`; the CLI's plan line says when a
regime runs longer than its budget.
"""

import glob
import os
import warnings

import keras
import numpy as np
import pytest

from keras_eexit import methods
from keras_eexit import regimes
from keras_eexit.compat import flatten_layers
from keras_eexit.regimes.registry import regime_for_budget

USER_WEIGHTS = [0.2, 0.3, 0.5]


def _regime(name):
    # Epoch 2 (1-based) is inside a phase that freezes part of the model:
    # TwoStage's cached heads phase; BranchWise's stage 2 (segment 1 and
    # heads 1, 3 frozen); the sequential regime's stage 1 after warm-up.
    return {"two_stage": lambda: regimes.TwoStage(1, 2, verbose=False),
            "branch_wise": lambda: regimes.BranchWise(1, verbose=False),
            "sequential": lambda: regimes.SequentialRegime(
                1, warmup_epochs=1, verbose=False)}[name]()


def _all_layers(model):
    return [layer for stage in model.segments + model.heads
            for layer in flatten_layers(stage)]


def _checkpoint_mid_regime(model_factory, tiny_data, tmp_path, name, suffix):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss_weights=USER_WEIGHTS)
    path = str(tmp_path / f"ckpt_{{epoch}}{suffix}")
    checkpoint = keras.callbacks.ModelCheckpoint(
        path, save_weights_only=suffix == ".weights.h5")
    seen = {}

    class Frozen(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # what the checkpoint of epoch 2 sees
                seen["frozen"] = [layer.name for layer in _all_layers(
                    self.model) if not layer.trainable]
                seen["weights"] = np.array(self.model.exit_weights)

    model.fit(x, y, batch_size=16, verbose=0,
              callbacks=[_regime(name), Frozen(), checkpoint])
    # The file of epoch 2 was written while part of the model was frozen
    # and the phase's exit weights were set.
    assert seen["frozen"]
    assert not np.allclose(seen["weights"], USER_WEIGHTS)
    return model, path.format(epoch=2)


@pytest.mark.parametrize("name", ["two_stage", "branch_wise", "sequential"])
def test_keras_checkpoint_mid_regime_loads_as_a_plain_model(
        name, model_factory, tiny_data, tmp_path):
    x, y = tiny_data
    _, path = _checkpoint_mid_regime(model_factory, tiny_data, tmp_path,
                                     name, ".keras")
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert all(layer.trainable for layer in _all_layers(loaded))
    np.testing.assert_allclose(loaded.exit_weights.numpy(), USER_WEIGHTS)
    assert loaded.regime_state is None
    before = [np.array(w) for w in loaded.segments[0].weights]
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)
    after = [np.array(w) for w in loaded.segments[0].weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("name", ["two_stage", "branch_wise"])
def test_weights_checkpoint_mid_regime_holds_the_users_exit_weights(
        name, model_factory, tiny_data, tmp_path):
    x, y = tiny_data
    _, path = _checkpoint_mid_regime(model_factory, tiny_data, tmp_path,
                                     name, ".weights.h5")
    fresh = model_factory(seed=1)
    fresh.compile(optimizer=keras.optimizers.SGD(0.05))
    fresh.load_weights(path)
    np.testing.assert_allclose(fresh.exit_weights.numpy(), USER_WEIGHTS)
    before = [np.array(w) for w in fresh.segments[0].weights]
    fresh.fit(x, y, batch_size=16, epochs=1, verbose=0)
    after = [np.array(w) for w in fresh.segments[0].weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_a_layer_the_user_froze_stays_frozen_in_memory_and_in_files(
        model_factory, tiny_data, tmp_path):
    """Flags nested in a segment are the user's, not the segment's."""
    x, y = tiny_data
    model = model_factory()
    norm = model.segments[0].layers[-1]
    norm.trainable = False
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    path = str(tmp_path / "mid_{epoch}.keras")
    model.fit(x, y, batch_size=16, verbose=0,
              callbacks=[regimes.TwoStage(1, 2, verbose=False),
                         keras.callbacks.ModelCheckpoint(path)])
    frozen = [layer.name for layer in _all_layers(model)
              if not layer.trainable]
    assert frozen == [norm.name]
    loaded = keras.saving.load_model(path.format(epoch=2), safe_mode=True)
    assert [layer.name for layer in _all_layers(loaded)
            if not layer.trainable] == [norm.name]


def test_model_in_memory_is_plain_while_a_checkpoint_is_written(
        model_factory, tiny_data, tmp_path):
    """Saving shows the user's flags, then gives the phase's back."""
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    flags = []

    class SaveAndLook(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            before = [layer.trainable for layer in _all_layers(self.model)]
            self.model.save(str(tmp_path / f"m{epoch}.keras"))
            after = [layer.trainable for layer in _all_layers(self.model)]
            flags.append((before, after))

    recorder_weights = []

    class Heads(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            recorder_weights.append(
                [np.array(w) for w in self.model.segments[0].weights])

    model.fit(x, y, batch_size=16, verbose=0,
              callbacks=[regimes.TwoStage(1, 2, verbose=False),
                         SaveAndLook(), Heads()])
    assert all(before == after for before, after in flags)
    assert not all(flags[1][0])  # frozen in the heads phase
    # The backbone stayed frozen through the heads phase (saving did not
    # unfreeze the traced step).
    for a, b in zip(recorder_weights[1], recorder_weights[2]):
        np.testing.assert_array_equal(a, b)


def _early_stop():
    return keras.callbacks.EarlyStopping(monitor="loss", patience=0,
                                         min_delta=100.0)


def test_early_stopping_in_the_first_phase_is_reported(model_factory,
                                                       tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.warns(UserWarning, match=r"callback stopped fit.*phase "
                      r"1/2 'backbone'; phases not run: 'heads'.*patience"):
        history = model.fit(x, y, verbose=0, callbacks=[
            regimes.TwoStage(3, 2, verbose=False), _early_stop()])
    assert history.history["phase"] == [0, 0]
    assert history.regime_phases_skipped == ["heads"]


def test_early_stopping_at_a_phase_boundary_names_the_next_phases(
        model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.warns(UserWarning, match=r"phases not run: 'branch_2', "
                      r"'branch_3'"):
        history = model.fit(x, y, verbose=0, callbacks=[
            regimes.BranchWise(2, verbose=False), _early_stop()])
    assert history.regime_phases_skipped == ["branch_2", "branch_3"]


def test_a_short_fit_under_a_monitored_phase_names_what_did_not_run(
        model_factory, tiny_data):
    """No warning at the start (the phase may end early): one at the end."""
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    regime = regimes.Regime([
        regimes.Phase("a", 5, monitor="loss", patience=10),
        regimes.Phase("b", 1)], verbose=False)
    with pytest.warns(UserWarning, match=r"fit\(epochs=2\) ended after "
                      r"epoch 2, in phase 1/2 'a'; phases not run: 'b'"):
        history = model.fit(x, y, epochs=2, verbose=0, callbacks=[regime])
    assert history.regime_phases_skipped == ["b"]


def test_a_regime_that_runs_every_phase_reports_nothing_skipped(
        model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = model.fit(x, y, verbose=0, callbacks=[
            regimes.TwoStage(1, 1, verbose=False)])
    assert history.regime_phases_skipped == []


@pytest.mark.parametrize("verbose,fit_verbose,prints", [
    ("auto", 0, False), ("auto", 2, True), (True, 0, True),
    (False, 2, False)])
def test_phase_lines_follow_fits_verbose(verbose, fit_verbose, prints,
                                         model_factory, tiny_data, capsys):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    model.fit(x, y, epochs=3, verbose=fit_verbose,
              callbacks=[regimes.TwoStage(1, 1, verbose=verbose)])
    out = capsys.readouterr().out
    assert ("phase 1/2 'backbone'" in out) is prints
    assert ("will end after 2 epochs" in out) is prints


def test_named_regimes_follow_fits_verbose_by_default():
    assert regimes.TwoStage(1, 1).verbose == "auto"
    assert (regimes.TwoStage(1, 1) + regimes.Joint()).verbose == "auto"
    assert (regimes.TwoStage(1, 1, verbose=False)
            + regimes.Joint()).verbose is False


def test_plan_line_says_when_short_phases_exceed_the_budget():
    regime = regime_for_budget("sequential", 3, 3, verbose=False)
    text = regimes.plan_text(regime, 3, budget=3)
    assert text.endswith("= 4 epochs (1 more than the budget of 3: every "
                         "phase runs at least one epoch)")
    fitting = regime_for_budget("two_stage", 12, 3, verbose=False)
    assert regimes.plan_text(fitting, 3, budget=12) == (
        "backbone 8 + heads 4 = 12 epochs")


def test_plan_line_says_ztw_trains_its_ensembles_after_the_budget():
    regime = methods.get_method("ztw").adapt(
        regime_for_budget("joint", 3, 3, verbose=False), epochs=3)
    text = regimes.plan_text(regime, 3, regime.epochs_for(3), budget=3)
    assert text == ("joint 3 + ztw_ensemble 2 = 5 epochs (ztw_ensemble 2 "
                    "added by method ztw after the budget)")


def test_a_regime_with_a_teacher_resumes_under_itself(model_factory,
                                                      tiny_data, tmp_path):
    """The state's own signature decides; its teacher's weights load too."""
    x, y = tiny_data
    backup = str(tmp_path / "backup")

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    def regime():
        return regimes.Distillation(backbone_epochs=1, distill_epochs=1,
                                    verbose=False)

    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, verbose=0, callbacks=[
            regime(), Kill(), keras.callbacks.BackupAndRestore(backup)])
    model = model_factory()
    model.compile(optimizer="sgd")
    history = model.fit(x, y, batch_size=16, verbose=0, callbacks=[
        regime(), keras.callbacks.BackupAndRestore(backup)])
    assert history.history["phase"] == [1, 2]


def test_no_checkpoint_file_is_left_unreadable(model_factory, tiny_data,
                                               tmp_path):
    """Every file ModelCheckpoint wrote during a regime loads plainly."""
    _checkpoint_mid_regime(model_factory, tiny_data, tmp_path,
                           "two_stage", ".keras")
    files = sorted(glob.glob(os.path.join(tmp_path, "ckpt_*.keras")))
    assert len(files) == 3
    for path in files:
        loaded = keras.saving.load_model(path, safe_mode=True)
        assert all(layer.trainable for layer in _all_layers(loaded))
        np.testing.assert_allclose(loaded.exit_weights.numpy(),
                                   USER_WEIGHTS)
