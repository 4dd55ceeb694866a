"""DFS (Deep Feature Surgery): gradient routing, forward equality, costs,
saving, damping heads, regimes and learning."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import MultiExitModel
from keras_eexit import chain
from keras_eexit import regimes
from keras_eexit.data import load_arrays
from keras_eexit.evaluation import collect
from keras_eexit.layers import DampingHead
from keras_eexit.layers import PartitionedHead
from keras_eexit.layers import PartitionedSegment
from keras_eexit.layers.feature_partition import partition_features
from keras_eexit.layers.feature_partition import shared_channels
from keras_eexit.methods import dfs
from keras_eexit.models import get_model

WIDTH = 6


def _dense_chain(num_exits=3, width=WIDTH, seed=0):
    """Each segment ends in a Dense whose kernel columns ARE the channels."""
    keras.utils.set_random_seed(seed)
    segments, heads = [], []
    for k in range(num_exits):
        segments.append(keras.Sequential(
            [keras.Input((5 if k == 0 else width,)),
             keras.layers.Dense(width, name=f"dense_{k + 1}")],
            name=f"segment_{k + 1}"))
        heads.append(keras.layers.Dense(3, name=f"exit_{k + 1}"))
    return MultiExitModel(segments, heads, name="dense_chain")


def _kernel(model, k):
    """The kernel producing the channels of state k (0-based)."""
    return model.segments[0].layers[0].kernel if k == 0 else (
        model.segments[k].segment.layers[0].kernel)


def _exit_gradients(model, x, k):
    """Gradient of each exit's loss on the kernel producing state k."""
    kernel = _kernel(model, k)
    grads = []
    for name in model.exit_names:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(x, training=True)[name]))
        grad = tape.gradient(loss, kernel)
        grads.append(None if grad is None else grad.numpy())
    return grads


def _dense(num_classes, name=None):
    return keras.layers.Dense(num_classes, name=name)


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(8, 5)).astype("float32")


@pytest.mark.parametrize("ratio", [0.5, 1 / 3])
def test_partitions_receive_only_their_exits_gradients(x, ratio):
    model = dfs(_dense_chain(), ratio=ratio)
    cut = shared_channels(WIDTH, ratio)
    for k in range(2):  # the internal cuts
        grads = _exit_gradients(model, x, k)
        assert grads[:k] == [None] * k  # earlier exits do not reach it
        own = grads[k]
        # Exit k+1 trains only the exit-specific columns f-.
        assert np.all(own[:, :cut] == 0.0)
        assert np.all(np.abs(own[:, cut:]).sum(0) > 0)
        for deeper in grads[k + 1:]:
            # Deeper exits train only the shared columns f+.
            assert np.all(deeper[:, cut:] == 0.0)
            assert np.all(np.abs(deeper[:, :cut]).sum(0) > 0)


def test_plain_model_mixes_the_gradients(x):
    # The control: without DFS both routes reach every column.
    grads = _exit_gradients(_dense_chain(), x, 0)
    for grad in grads:
        assert np.all(np.abs(grad).sum(0) > 0)


def test_exit_gradient_all_is_the_reroute_variant(x):
    model = dfs(_dense_chain(), exit_gradient="all")
    own, deeper, _ = _exit_gradients(model, x, 0)
    assert np.all(np.abs(own).sum(0) > 0)
    assert np.all(deeper[:, 3:] == 0.0)
    assert not any(isinstance(h, PartitionedHead) for h in model.heads)


def test_damping_papers_dfs_is_the_authors_msdnet_setting(x):
    """Paper 004 compares against DFS on MSDNet, whose code
    (`feature_reroute.py`) sends an exit's gradient to every channel: the
    registered `dfs_reroute`. `dfs` keeps the paper's definition."""
    from keras_eexit.methods import get_method

    model = get_method("dfs_reroute").build(_dense_chain())
    own, deeper, _ = _exit_gradients(model, x, 0)
    assert np.all(np.abs(own).sum(0) > 0)
    assert np.all(deeper[:, 3:] == 0.0)
    assert np.all(np.abs(deeper[:, :3]).sum(0) > 0)
    own = _exit_gradients(get_method("dfs").build(_dense_chain()), x, 0)[0]
    assert np.all(own[:, :3] == 0.0)


def test_forward_costs_and_weights_are_the_plain_models(x):
    plain = _dense_chain()
    model = dfs(plain)
    for name in plain.exit_names:
        np.testing.assert_array_equal(plain(x)[name], model(x)[name])
    assert model.flops_per_exit() == plain.flops_per_exit()
    assert model.params_per_exit() == plain.params_per_exit()
    assert {id(v) for v in model.weights} >= {
        id(v) for v in plain.weights if v.path != "exit_weights"}
    assert isinstance(model.heads[-1], keras.layers.Dense)  # last exit
    assert not isinstance(model.segments[0], PartitionedSegment)


def test_without_referencing_consumers_read_zeros(x):
    plain = _dense_chain()
    model = dfs(plain, referencing=False)
    state = plain.segments[0](x)
    cut = shared_channels(WIDTH, 0.5)
    zeroed = np.concatenate(
        [np.zeros_like(state[:, :cut]), state[:, cut:]], axis=1)
    np.testing.assert_allclose(model(x)["exit_1"],
                               plain.heads[0](zeroed), rtol=1e-6)


def test_partition_function_values_and_edges():
    x = tf.reshape(tf.range(12, dtype=tf.float32), (2, 6))
    for route in ("shared", "specific"):
        for ratio in (0.0, 0.5, 1.0):
            np.testing.assert_array_equal(
                partition_features(x, ratio, route), x)
    with pytest.raises(ValueError, match="floating-point"):
        partition_features(tf.zeros((2, 4), tf.int32), 0.5, "shared")


def test_tuple_state_partitions_only_the_head_tensor():
    inputs = keras.Input((6, 6, 2))
    a = keras.layers.Conv2D(4, 3, padding="same", name="tap")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="conv_b")(a)
    out = keras.layers.Add(name="skip")([a, b])
    out = keras.layers.Conv2D(4, 3, padding="same", name="conv_c")(out)
    backbone = keras.Model(inputs, out)
    plain = MultiExitModel.from_backbone(
        backbone, taps=["conv_b"], num_classes=3)
    assert isinstance(chain.state_specs(plain)[0], (list, tuple))
    model = dfs(plain)
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 2)).astype("float32")
    for name in plain.exit_names:
        np.testing.assert_allclose(plain(x)[name], model(x)[name],
                                   rtol=1e-6)
    state = [tf.constant(v) for v in plain.segments[0](x)]
    seen = []

    class Spy(keras.layers.Layer):
        def call(self, s):
            seen.append(s)
            return s[0]

    spy = PartitionedSegment(Spy(), ratio=0.5)
    spy(state)
    assert seen[0][1] is state[1]  # the skip tensor passes untouched


def test_damping_heads_keep_their_unit_and_train(x):
    plain = _dense_chain()
    heads = [DampingHead(3, head=_dense, name=h.name) for h in plain.heads]
    model = dfs(MultiExitModel(plain.segments, heads))
    assert model.num_classes == 3
    assert all(chain.has_damping_unit(h) for h in model.heads)
    assert chain.extra_units(model.heads[0]) == 1
    y = np.arange(8) % 3
    model.compile(optimizer="adam", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0,
                        callbacks=[regimes.Joint(loss="power_sqrt",
                                                 verbose=False)])
    assert np.isfinite(history.history["loss"][-1])
    assert "exit_1_accuracy" in history.history
    assert collect(model, (x, y)).probs.shape == (3, 8, 3)


def test_saves_and_loads_with_safe_mode(tmp_path, x):
    model = dfs(_dense_chain(), ratio=1 / 3, exit_gradient="specific")
    path = str(tmp_path / "dfs.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.heads[0], PartitionedHead)
    assert isinstance(loaded.segments[1], PartitionedSegment)
    assert loaded.heads[0].ratio == pytest.approx(1 / 3)
    for name in model.exit_names:
        np.testing.assert_allclose(model(x)[name], loaded(x)[name],
                                   rtol=1e-6)
    # The loaded model routes gradients as the saved one did.
    grads = _exit_gradients(loaded, x, 0)
    assert np.all(grads[0][:, :2] == 0.0)


def test_two_stage_never_trains_the_exit_specific_channels():
    # The documented consequence: under TwoStage only the final exit trains
    # the backbone, and it sends no gradient to f-.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5)).astype("float32")
    y = rng.integers(0, 3, size=32)
    model = dfs(_dense_chain())
    kernel = _kernel(model, 0)
    before = kernel.numpy().copy()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(x, y, batch_size=8, verbose=0,
              callbacks=[regimes.TwoStage(2, 1, verbose=False)])
    after = kernel.numpy()
    np.testing.assert_array_equal(after[:, 3:], before[:, 3:])
    assert np.abs(after[:, :3] - before[:, :3]).max() > 1e-3


@pytest.mark.large
def test_learns_digits_under_joint():
    # ~10 s on 2 CPUs; seed 0: exits 28% / 87% / 97.5%.
    keras.utils.set_random_seed(0)
    data = load_arrays("digits")
    info = data["info"]
    model = dfs(get_model("small_cnn", input_shape=info.input_shape,
                          num_classes=info.num_classes, width=16))
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  metrics=["accuracy"])
    model.fit(data["x_train"], data["y_train"], epochs=4, batch_size=32,
              verbose=0, callbacks=[regimes.Joint(verbose=False)])
    logits = model.predict(data["x_test"], verbose=0)
    accuracy = [float(np.mean(np.argmax(logits[n], -1) == data["y_test"]))
                for n in model.exit_names]
    assert accuracy[-1] >= 0.85, accuracy
    assert accuracy[0] >= 0.2, accuracy  # chance: 0.1


@pytest.mark.large
def test_dfs_models_honour_the_model_contract(tmp_path):
    # ~10 s: outputs, safe-mode .keras round trip, a joint epoch moves
    # every stage, TwoStage moves exactly its stages, LiteRT in every mode.
    pytest.importorskip("ai_edge_litert")
    from keras_eexit.testing import model_contract

    def fresh():
        return dfs(get_model("small_cnn", input_shape=(8, 8, 1),
                             num_classes=10, width=8))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 16)
    model_contract.check_outputs(fresh(), x[:3], num_classes=10)
    model_contract.check_save_load(fresh(), x[:3], tmp_path / "m.keras")
    model_contract.check_joint_step(fresh(), x, y)
    model_contract.check_two_stage(fresh(), x, y)
    model_contract.check_litert(fresh(), x[:4], tmp_path)


def test_batched_early_exit_decides_as_the_sweep():
    from keras_eexit.inference import ExitPolicy
    from keras_eexit.inference import predict_early_exit

    model = dfs(get_model("cnn1d", input_shape=(40, 1), num_classes=3,
                          width=4))
    x = np.random.default_rng(0).normal(size=(64, 40, 1)).astype("float32")
    outputs = collect(model, (x, np.zeros(64, "int64")))
    thresholds = np.median(outputs.probs.max(-1), axis=1).astype("float32")
    policy = ExitPolicy("max_softmax", thresholds)
    expected = policy.exit_indices(outputs.probs)
    _, index, flops = predict_early_exit(model, x, policy=policy,
                                         batch_size=32)
    np.testing.assert_array_equal(index, expected)
    assert len(np.unique(index)) >= 2
    np.testing.assert_array_equal(
        flops, np.asarray(model.flops_per_exit())[expected])


def test_registry_and_composition_with_ztw(x):
    from keras_eexit.methods import get_method
    from keras_eexit.methods import ztw

    model = get_method("dfs").build(_dense_chain())
    assert isinstance(model.heads[0], PartitionedHead)
    with pytest.raises(ValueError, match=r"apply dfs\(\) first"):
        dfs(ztw(_dense_chain()))
    cascaded = ztw(dfs(_dense_chain()))  # DFS first, then ZTW's heads
    assert cascaded(x)["exit_2"].shape == (8, 3)
