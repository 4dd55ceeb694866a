"""Bad input to regimes and their state: one clear message each.

Issue 24: a resume under a regime other than the one the backup was saved
with (items 3), a `Phase` given an empty list of exits (item 13), a
regime's `verbose` of the wrong kind (item 15).
"""

import keras
import numpy as np
import pytest

from keras_eexit import regimes
from keras_eexit.regimes import Phase
from keras_eexit.regimes import Regime
from tests.conftest import make_tiny_model

SAVED = dict(backbone_epochs=2, heads_epochs=2)


class _Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 2:  # after BackupAndRestore saved epochs 1-2
            raise KeyboardInterrupt


def _data():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(32, 8, 8, 1)).astype("float32"),
            rng.integers(0, 4, size=32))


@pytest.fixture(scope="module")
def backups(tmp_path_factory):
    """A TwoStage(2, 2) run killed in its heads phase, and a plain one."""
    x, y = _data()
    made = {}
    for kind in ("regime", "plain"):
        backup = str(tmp_path_factory.mktemp(kind) / "backup")
        model = make_tiny_model()
        model.compile(optimizer="sgd")
        callbacks = ([regimes.TwoStage(**SAVED, verbose=False)]
                     if kind == "regime" else [])
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, batch_size=16, epochs=4, verbose=0,
                      callbacks=callbacks + [
                          _Kill(), keras.callbacks.BackupAndRestore(backup)])
        made[kind] = backup
    return made


@pytest.mark.parametrize("regime,message", [
    (lambda: regimes.TwoStage(4, 4, verbose=False),
     r"phase 1 saved as 'backbone': 2 epochs, .*; this fit gives "
     r"'backbone': 4 epochs"),
    (lambda: regimes.TwoStage(2, 3, verbose=False),
     r"phase 2 saved as 'heads': 2 epochs.*this fit gives 'heads': 3 "
     r"epochs"),
    (lambda: regimes.TwoStage(2, 2, heads_learning_rate=0.1,
                              verbose=False),
     r"phase 2 saved as .*this fit gives .*learning_rate 0.1"),
    (lambda: regimes.TwoStage(2, 2, cache_features=False, verbose=False),
     r"phase 2 saved as .*cache_features.*this fit gives 'heads'"),
    (lambda: regimes.TwoStage(2, 2, reduction="sum", verbose=False),
     r"phase 2 saved as 'heads': .*weights \[0.333333, 0.333333, 0\].*"
     r"this fit gives 'heads': .*weights \[1, 1, 0\]"),
    (lambda: regimes.TwoStage(2, 2, reset_optimizer=False, verbose=False),
     r"phase 2 saved as 'heads': .*cache_features, reset_optimizer; this "
     r"fit gives 'heads': [^;]*, cache_features\."),
    (lambda: regimes.TwoStage(2, 2, heads="one_by_one", verbose=False),
     r"it has 2 phases \('backbone', 'heads'\), this fit has 3 "
     r"\('backbone', 'head_1', 'head_2'\)"),
    (lambda: regimes.TwoStage(2, 2, patience=1, metric="loss",
                              verbose=False),
     r"phase 1 saved as 'backbone': 2 epochs.*this fit gives 'backbone': "
     r"until val_exit_3_loss stall 1"),
    (lambda: regimes.Mixed(2, 2, verbose=False),
     r"it was saved by TwoStage, this fit runs Mixed"),
    (lambda: regimes.BranchWise(2, verbose=False),
     r"it was saved by TwoStage, this fit runs BranchWise"),
    (lambda: regimes.Joint(verbose=False),
     r"it was saved by TwoStage, this fit runs Joint"),
], ids=["longer_phases", "longer_heads", "heads_lr", "no_cache",
        "summed_heads", "kept_optimizer", "one_by_one", "patience", "mixed",
        "branch_wise", "joint"])
def test_resume_under_another_regime_is_refused(regime, message, backups,
                                                model_factory):
    x, y = _data()
    model = model_factory()
    model.compile(optimizer="sgd")
    before = [np.array(w) for w in model.weights]
    with pytest.raises(ValueError, match=r"^Cannot resume from .*latest"
                       r"\.weights\.h5: it was saved under another regime: "
                       + message + r".*Resume with the regime it was saved "
                       r"with, or delete the backup"):
        model.fit(x, y, batch_size=16, epochs=8, verbose=0, callbacks=[
            regime(), keras.callbacks.BackupAndRestore(
                backups["regime"], delete_checkpoint=False)])
    # Nothing of the refused file stays in the model, which is plain.
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, np.array(b))
    assert model.regime_state is None and model.user_settings is None
    assert all(s.trainable for s in model.segments + model.heads)


def test_resume_of_a_plain_backup_under_a_regime_is_refused(backups,
                                                            model_factory):
    x, y = _data()
    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"^Cannot resume from .*: it holds "
                       r"no regime progress \(saved outside a regime's fit"):
        model.fit(x, y, batch_size=16, verbose=0, callbacks=[
            regimes.TwoStage(**SAVED, verbose=False),
            keras.callbacks.BackupAndRestore(backups["plain"],
                                             delete_checkpoint=False)])


def test_resume_under_the_same_regime_continues_in_its_phase(
        backups, model_factory, tmp_path):
    import shutil

    x, y = _data()
    copy = str(tmp_path / "backup")
    shutil.copytree(backups["regime"], copy)
    model = model_factory()
    model.compile(optimizer="sgd")
    history = model.fit(x, y, batch_size=16, verbose=0, callbacks=[
        regimes.TwoStage(**SAVED, verbose=False),
        keras.callbacks.BackupAndRestore(copy)])
    assert history.history["phase"] == [1, 1]


@pytest.mark.parametrize("argument", ["train_segments", "train_heads"])
@pytest.mark.parametrize("empty", [[], (), set()])
def test_phase_with_an_empty_list_of_exits(argument, empty):
    with pytest.raises(ValueError, match=(
            rf"Invalid value received for argument `{argument}`\. Expected "
            r"'all', 'none' \(nothing trains\) or a non-empty list of "
            r"1-based exit numbers\. Received: ")):
        Phase("p", 1, **{argument: empty})


@pytest.mark.parametrize("verbose", [1, 0, "yes", None, 2.0])
def test_regime_verbose_of_the_wrong_kind(verbose):
    with pytest.raises(ValueError, match=(
            r"Invalid value received for argument `verbose`\. Expected "
            r"'auto', True or False\. Received: verbose=")):
        Regime([Phase("p", 1)], verbose=verbose)


def test_named_regime_verbose_of_the_wrong_kind():
    with pytest.raises(ValueError, match=r"argument `verbose`"):
        regimes.TwoStage(1, 1, verbose="loud")


@pytest.mark.parametrize("regime", [
    regimes.TwoStage(1, 1), regimes.TwoStage(1, 1, heads="one_by_one"),
    regimes.Distillation(backbone_epochs=1, distill_epochs=1),
    regimes.Distillation(mode="joint", distill_epochs=1),
], ids=["two_stage", "two_stage_one_by_one", "distillation",
        "distillation_joint"])
def test_regimes_about_internal_exits_refuse_a_single_exit(regime):
    """Their definitions train internal exits; with one exit TwoStage died
    on an exit-weights message and Distillation ran one epoch silently."""
    model = make_tiny_model(num_exits=1)
    model.compile(optimizer="adam")
    before = [w.copy() for w in model.get_weights()]
    x = np.zeros((8, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match="at least 2 exits") as error:
        model.fit(x, np.zeros(8, int), epochs=2, verbose=0,
                  callbacks=[regime])
    assert "\n" not in str(error.value)
    assert all((a == b).all() for a, b in zip(before, model.get_weights()))
    assert all(layer.trainable for layer in model.layers)
