"""MultiExitModel: outputs, labels, loss, saving and clear errors."""

import keras
import numpy as np
import pytest
from scipy.special import log_softmax

from keras_eexit import MultiExitModel


def _ce(logits, labels):
    return -log_softmax(logits, axis=-1)[np.arange(len(labels)), labels]


def test_outputs_are_named_logits(tiny_model, tiny_data):
    x, _ = tiny_data
    out = tiny_model(x)
    assert tiny_model.num_exits == 3
    assert tiny_model.exit_names == ["exit_1", "exit_2", "exit_3"]
    assert list(out) == tiny_model.exit_names
    assert all(tuple(v.shape) == (32, 4) for v in out.values())
    assert tiny_model.num_classes == 4


def test_loss_is_weighted_sum_of_exit_crossentropies(model_factory,
                                                      tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd", loss_weights=[0.5, 1.0, 2.0])
    logits = {k: np.asarray(v) for k, v in model(x).items()}
    expected = sum(
        w * _ce(logits[name], y).mean()
        for w, name in zip([0.5, 1.0, 2.0], model.exit_names)
    )
    result = model.evaluate(x, y, batch_size=32, return_dict=True,
                            verbose=0)
    assert result["loss"] == pytest.approx(expected, rel=1e-5)
    for name in model.exit_names:
        assert result[f"{name}_loss"] == pytest.approx(
            _ce(logits[name], y).mean(), rel=1e-5)


def test_sparse_onehot_and_dict_labels_agree(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    sparse = model.evaluate(x, y, return_dict=True, verbose=0)
    onehot = model.evaluate(x, keras.utils.to_categorical(y, 4),
                            return_dict=True, verbose=0)
    by_exit = model.evaluate(x, {n: y for n in model.exit_names},
                             return_dict=True, verbose=0)
    assert sparse["loss"] == pytest.approx(onehot["loss"], rel=1e-5)
    assert sparse["loss"] == pytest.approx(by_exit["loss"], rel=1e-5)


def test_zero_weight_exit_gets_no_gradient(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss_weights=[0.0, 0.0, 1.0])
    before = [np.copy(w) for w in model.heads[0].get_weights()]
    last_before = [np.copy(w) for w in model.heads[2].get_weights()]
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for a, b in zip(before, model.heads[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in
               zip(last_before, model.heads[2].get_weights()))


def test_training_reduces_every_exit_loss(model_factory):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(128, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64") * 3
    model = model_factory()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0).history
    for name in model.exit_names:
        assert history[f"{name}_loss"][-1] < history[f"{name}_loss"][0]


def test_per_exit_metrics_from_a_flat_list(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd", metrics=["accuracy"])
    result = model.evaluate(x, y, return_dict=True, verbose=0)
    logits = model.predict(x, verbose=0)
    for name in model.exit_names:
        expected = np.mean(np.argmax(logits[name], -1) == y)
        assert result[f"{name}_accuracy"] == pytest.approx(expected)


def test_save_and_load_safe_mode(tmp_path, model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss_weights="han")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, MultiExitModel)
    assert loaded.exit_names == model.exit_names
    a, b = model(x), loaded(x)
    for name in model.exit_names:
        np.testing.assert_allclose(a[name], b[name], atol=1e-6)
    np.testing.assert_allclose(loaded.exit_weights.numpy(),
                               model.exit_weights.numpy())
    loaded.fit(x, y, epochs=1, verbose=0)  # compiled from its config


def test_cost_per_exit_is_cumulative(tiny_model):
    flops = tiny_model.flops_per_exit()
    params = tiny_model.params_per_exit()
    assert flops == sorted(flops) and params == sorted(params)
    # stage 1: conv 3x3, 1->4 channels on 8x8; head dense 4->4.
    conv1 = 2 * 8 * 8 * 4 * 9 * 1
    head = 2 * 4 * 4
    assert flops[0] == conv1 + head
    conv2 = 2 * 8 * 8 * 4 * 9 * 4
    assert flops[1] == conv1 + head + conv2 + head
    weights = sum(
        w.size for w in tiny_model.get_weights()) - tiny_model.num_exits
    assert params[-1] == weights
    assert tiny_model.macs_per_exit() == [
        conv1 // 2 + head // 2,
        (conv1 + head + conv2 + head) // 2,
        flops[2] // 2,
    ]


# ----------------------------------------------------------- bad input
def test_input_shape_mismatch(tiny_model):
    with pytest.raises(ValueError, match="Input shape mismatch"):
        tiny_model(np.zeros((2, 8, 7, 1), "float32"))


def test_label_structure_mismatch(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="one entry per exit"):
        model.fit(x, {"exit_1": y}, verbose=0)
    with pytest.raises(ValueError, match="Label/exit structure mismatch"):
        model.fit(x, [y, y, y], verbose=0)


def test_labels_out_of_range(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
        model.fit(x, y + 4, verbose=0)
    with pytest.raises(ValueError, match="labels must be in"):
        model.evaluate(x, y - 1, verbose=0)
    with pytest.raises(ValueError, match="One-hot labels have 5 columns"):
        model.fit(x, keras.utils.to_categorical(y, 5), verbose=0)


def test_labels_checked_on_first_dataset_batch(model_factory, tiny_data):
    import tensorflow as tf

    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    ds = tf.data.Dataset.from_tensor_slices((x, y + 10)).batch(8)
    with pytest.raises(ValueError, match="Labels out of range"):
        model.fit(ds, verbose=0)


def test_heads_and_segments_must_pair(model_factory):
    model = model_factory()
    with pytest.raises(ValueError, match="one head per segment"):
        MultiExitModel(model.segments, model.heads[:2])
    with pytest.raises(ValueError, match="exit_names"):
        MultiExitModel(model.segments, model.heads, exit_names=["a", "a",
                                                                "b"])


def test_compile_rejects_loss_per_exit(tiny_model):
    with pytest.raises(ValueError, match="one loss applied to every exit"):
        tiny_model.compile(loss={"exit_1": "mse"})
