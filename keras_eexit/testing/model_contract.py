"""The contract every multi-exit model honours, as reusable checks.

Like Keras' `run_layer_test`: the test suite runs them over a small
instance of every zoo architecture (`tests/models/test_zoo_contract.py`),
and a user can run them on a model of their own (a new backbone split,
custom segments or heads). Each check asserts behaviour that matters:
named logits, a `.keras` round trip in safe mode, a joint step that moves
every stage, two-stage training that moves exactly the stages it should,
and LiteRT exports that compute what Keras computes.
"""

import keras
import numpy as np

from keras_eexit.models.multi_exit_model import MultiExitModel
from keras_eexit import regimes


def _weights(layers):
    return [[np.array(w) for w in layer.weights] for layer in layers]


def _changed(before, after):
    """1-based numbers of the layers whose weights changed."""
    return {k + 1 for k, (b, a) in enumerate(zip(before, after))
            if any(not np.array_equal(u, v) for u, v in zip(b, a))}


def check_outputs(model, x, num_classes):
    """Calling the model returns `{exit_k: (batch, num_classes) logits}`.

    Args:
        model: a built `MultiExitModel`.
        x: a small batch of inputs.
        num_classes: the number of classes.

    Example:

    ```python
    from keras_eexit.testing import model_contract
    model_contract.check_outputs(model, x[:3], num_classes=10)
    model_contract.check_two_stage(model, x[:16], y[:16])
    ```
    """
    assert isinstance(model, MultiExitModel)
    names = [f"exit_{k}" for k in range(1, model.num_exits + 1)]
    assert model.exit_names == names
    out = model(x, training=False)
    assert list(out) == names
    assert all(tuple(v.shape) == (len(x), num_classes)
               for v in out.values())


def check_save_load(model, x, path):
    """A `.keras` file loads in safe mode and computes the same outputs.

    Args:
        model: a built `MultiExitModel`.
        x: a small batch of inputs.
        path: the `.keras` file to write.
    """
    expected = model(x, training=False)
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    assert loaded.exit_names == model.exit_names
    assert [type(h) for h in loaded.heads] == [type(h) for h in model.heads]
    got = loaded(x, training=False)
    for name in model.exit_names:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-6)
    assert loaded.params_per_exit() == model.params_per_exit()
    assert loaded.flops_per_exit() == model.flops_per_exit()


def check_joint_step(model, x, y):
    """One joint epoch changes every segment and every head.

    Args:
        model: a built `MultiExitModel` (compiled here with Adam).
        x: a small batch of inputs.
        y: their labels.
    """
    every = set(range(1, model.num_exits + 1))
    before = (_weights(model.segments), _weights(model.heads))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, y, epochs=1, batch_size=len(x), verbose=0,
                        callbacks=[regimes.Joint(verbose=False)])
    assert np.isfinite(history.history["loss"][0])
    assert _changed(before[0], _weights(model.segments)) == every
    assert _changed(before[1], _weights(model.heads)) == every


class _EpochSnapshots(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.snapshots.append((_weights(self.model.segments),
                               _weights(self.model.heads)))


def check_two_stage(model, x, y):
    """Two-stage: every segment and the final head, then internal heads.

    In the heads phase the segments (weights and BatchNorm statistics) and
    the final head stay bit-identical.

    Args:
        model: a built `MultiExitModel` (compiled here with Adam).
        x: a small batch of inputs.
        y: their labels.
    """
    k = model.num_exits
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    snap = _EpochSnapshots()
    snap.snapshots = [(_weights(model.segments), _weights(model.heads))]
    model.fit(x, y, batch_size=max(1, len(x) // 2), verbose=0,
              callbacks=[regimes.TwoStage(1, 1, verbose=False), snap])
    (s0, h0), (s1, h1), (s2, h2) = snap.snapshots
    assert _changed(s0, s1) == set(range(1, k + 1))
    assert _changed(h0, h1) == {k}
    assert _changed(s1, s2) == set()
    assert _changed(h1, h2) == set(range(1, k))


def check_litert(model, x, directory):
    """LiteRT exports in every mode compute Keras' probabilities.

    The early-exit file leaves at the first exit with threshold 0 and at
    the last with threshold 1 (max-softmax), for a batch and for one
    sample (its `one_row` signature).

    Args:
        model: a built `MultiExitModel`.
        x: a small batch of inputs.
        directory: a `pathlib.Path` to write the exports under.
    """
    from keras_eexit.export import LiteRTRunner
    from keras_eexit.export import export_litert

    logits = model(x, training=False)
    expected = np.stack([
        keras.ops.convert_to_numpy(keras.ops.softmax(logits[n]))
        for n in model.exit_names])
    export_litert(model, directory / "early", mode="early_exit")
    runner = LiteRTRunner(directory / "early")
    assert runner.input_shape == tuple(model.input_shape_)
    assert np.dtype(runner.input_dtype) == np.dtype(model.input_dtype)
    probs, index = runner.predict(x, 0.0)
    assert (index == 0).all()
    np.testing.assert_allclose(probs, expected[0], atol=1e-4)
    probs, index = runner.predict(x, 1.0)
    assert (index == model.num_exits - 1).all()
    np.testing.assert_allclose(probs, expected[-1], atol=1e-4)
    for threshold, exit_index in ((0.0, 0), (1.0, model.num_exits - 1)):
        probs, index = runner.predict(x[0], threshold)  # `one_row`
        assert index == exit_index
        np.testing.assert_allclose(probs, expected[exit_index, 0],
                                   atol=1e-4)
    for mode in ("per_exit", "segments"):
        export_litert(model, directory / mode, mode=mode)
        np.testing.assert_allclose(
            LiteRTRunner(directory / mode).predict_all(x), expected,
            atol=1e-4)
