"""Tests of `DampingHead`, `get_head(damping=True)` and the zoo option."""

import keras
import numpy as np
import pytest

from keras_eexit import MultiExitModel
from keras_eexit.evaluation import collect
from keras_eexit.layers import ConvPoolHead
from keras_eexit.layers import DampingHead
from keras_eexit.layers import LinearHead
from keras_eexit.layers import MLPHead
from keras_eexit.layers import SDNPoolHead
from keras_eexit.layers import class_probabilities
from keras_eexit.layers import get_head
from keras_eexit.chain import has_damping_unit
from keras_eexit.models import get_model

N = 3
BATCH = 4
SHAPE = (8, 8, 3)


def _dense_factory(num_classes, name=None):
    return keras.layers.Dense(num_classes, name=name)


HEAD_CASES = [
    ("linear", {}),
    ("sdn_pool", {"reduced_size": 2}),
    ("conv_pool", {"filters": 4, "hidden_units": 5}),
    ("mlp", {"hidden_units": (6,), "activation": "gelu"}),
    (MLPHead, {"hidden_units": 3}),
]


def _features(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH,) + SHAPE).astype("float32")


def _model(head, head_kwargs, seed=0):
    """A two-exit chain with damping heads of the given kind."""
    keras.utils.set_random_seed(seed)
    segments = [
        keras.Sequential([keras.Input(SHAPE),
                          keras.layers.Conv2D(3, 3, padding="same")],
                         name=f"seg_{k}")
        for k in (1, 2)
    ]
    heads = [get_head(head, N, name=f"exit_{k}", damping=True,
                      **head_kwargs) for k in (1, 2)]
    return MultiExitModel(segments, heads, name="damped")


@pytest.mark.parametrize("head,kwargs", HEAD_CASES,
                         ids=lambda v: str(getattr(v, "__name__", v)))
def test_damping_head_shape_config_and_saving(head, kwargs, tmp_path):
    layer = get_head(head, N, name="exit_1", damping=True, **kwargs)
    assert isinstance(layer, DampingHead)
    assert layer.damping is True and has_damping_unit(layer)
    assert layer.num_classes == N
    assert layer.name == "exit_1"
    assert layer.compute_output_shape((None,) + SHAPE) == (None, N + 1)
    out = layer(_features())
    assert tuple(out.shape) == (BATCH, N + 1)
    assert layer.head.get_config()["name"] == "head"

    config = layer.get_config()
    clone = DampingHead.from_config(config)
    assert isinstance(clone, DampingHead)
    assert clone.get_config() == config
    clone(_features())  # builds a fresh, independent copy
    assert type(clone.head) is type(layer.head)

    model = _model(head, kwargs)
    x = _features(1)
    before = model(x)
    path = tmp_path / "damped.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert all(isinstance(h, DampingHead) for h in loaded.heads)
    assert loaded.num_classes == N
    after = loaded(x)
    for name in model.exit_names:
        assert tuple(after[name].shape) == (BATCH, N + 1)
        np.testing.assert_allclose(after[name], before[name], atol=1e-5)


def test_damping_head_from_class_and_instance():
    head = DampingHead(N, head=LinearHead, head_kwargs={"dropout": 0.1})
    assert isinstance(head.head, LinearHead)
    assert head.head.num_classes == N + 1
    assert head.head.dropout == 0.1
    inner = SDNPoolHead(N + 1)
    wrapped = DampingHead(N, head=inner)
    assert wrapped.head is inner
    assert tuple(wrapped(_features()).shape) == (BATCH, N + 1)
    via_factory = DampingHead(N, head=_dense_factory)
    assert tuple(via_factory(np.zeros((2, 5), "float32")).shape) == (2, N + 1)


def test_num_classes_and_labels_use_the_class_units():
    model = _model("linear", {})
    assert model.num_classes == N  # not N + 1
    x = np.zeros((BATCH,) + SHAPE, "float32")
    model.compile(optimizer="sgd")
    model.fit(x, np.array([0, 1, 2, 2]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        model.fit(x, np.array([0, 1, 2, N]), epochs=1, verbose=0)


def test_compiled_accuracy_ignores_the_damping_unit():
    # The damping unit dominates every logit vector: an arg-max over N + 1
    # would always pick it (accuracy 0); predictions use the N class units.
    model = _model("linear", {})
    for head in model.heads:
        dense = head.head.logits
        bias = np.zeros(N + 1, "float32")
        bias[-1] = 100.0
        dense.bias.assign(bias)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64,) + SHAPE).astype("float32")
    y = rng.integers(0, N, size=64)
    model.compile(optimizer="sgd", metrics=["accuracy"])
    result = model.evaluate(x, y, return_dict=True, verbose=0)
    logits = model.predict(x, verbose=0)
    for name in model.exit_names:
        assert np.all(logits[name].argmax(-1) == N)
        expected = np.mean(logits[name][:, :N].argmax(-1) == y)
        assert expected > 0.1
        assert result[f"{name}_accuracy"] == pytest.approx(expected)


def test_class_probabilities_modes():
    logits = np.array([[1.0, 2.0, 0.5, 3.0]], "float32")
    full = np.exp(logits) / np.exp(logits).sum()
    n_plus_1 = np.asarray(class_probabilities(logits, "n_plus_1"))
    renormalized = np.asarray(class_probabilities(logits))
    np.testing.assert_allclose(n_plus_1, full[:, :3], rtol=1e-6)
    np.testing.assert_allclose(renormalized, full[:, :3] / full[:, :3].sum(),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="Unknown mode"):
        class_probabilities(logits, "softmax")


@pytest.mark.parametrize("mode", ["renormalized", "n_plus_1"])
def test_collect_drops_the_damping_unit(mode):
    model = _model("linear", {})
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10,) + SHAPE).astype("float32")
    y = rng.integers(0, N, size=10)
    out = collect(model, (x, y), damping_probs=mode)
    assert out.probs.shape == (2, 10, N)
    logits = model.predict(x, verbose=0)
    for k, name in enumerate(model.exit_names):
        np.testing.assert_allclose(
            out.probs[k], class_probabilities(logits[name], mode),
            rtol=1e-5, atol=1e-6)
        sums = out.probs[k].sum(-1)
        if mode == "renormalized":
            np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
        else:
            assert np.all(sums < 1.0)
        np.testing.assert_array_equal(out.probs[k].argmax(-1),
                                      logits[name][:, :N].argmax(-1))
    with pytest.raises(ValueError, match="damping_probs"):
        collect(model, (x, y), damping_probs="full")


@pytest.mark.parametrize("name,kwargs", [
    ("small_cnn", {}),
    ("cnn1d", {}),
    ("cifar_resnet", {"depth": 20, "head": "sdn_pool"}),
])
def test_zoo_builders_take_damping(name, kwargs):
    model = get_model(name, num_classes=5, damping=True, **kwargs)
    assert all(isinstance(h, DampingHead) for h in model.heads)
    assert model.num_classes == 5
    plain = get_model(name, num_classes=5, **kwargs)
    assert not any(has_damping_unit(h) for h in plain.heads)
    assert plain.num_classes == 5


def test_unshared_copies_keep_damping_heads():
    from keras_eexit.models.unshared import unshared_prefixes

    separate = unshared_prefixes(get_model("small_cnn", damping=True))
    assert all(isinstance(h, DampingHead) for h in separate.heads)
    assert separate.num_classes == 10


def test_mixed_precision_logits_are_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        head = get_head("mlp", N, damping=True, hidden_units=(4,))
        out = head(_features())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert tuple(out.shape) == (BATCH, N + 1)


def test_bad_damping_arguments():
    with pytest.raises(ValueError, match="argument `damping`"):
        get_head("linear", N, damping="yes")
    with pytest.raises(ValueError, match="not a layer instance"):
        get_head(LinearHead(N), N, damping=True)
    with pytest.raises(ValueError, match="argument `num_classes`"):
        DampingHead(1)
    with pytest.raises(ValueError, match="heads do not nest"):
        DampingHead(N, head=lambda n, name=None: DampingHead(n - 1,
                                                             name=name))
    with pytest.raises(ValueError, match="argument `head_kwargs`"):
        DampingHead(N, head=LinearHead(N + 1), head_kwargs={"dropout": 0.1})
    wrong = DampingHead(N, head=ConvPoolHead(N, filters=2, hidden_units=2))
    with pytest.raises(ValueError, match="needs num_classes \\+ 1 = 4"):
        wrong(_features())
