"""The analytic FLOP counter equals the TF-graph counter on the whole zoo.

`keras_eexit.models.analytic_flops` counts from the layers (no TensorFlow);
`keras_eexit.models.flops` walks the traced TF graph. Every segment and
head of one small instance per zoo family must get the same integer from
both, in both conventions; `costs.py` must give the same `flops_per_exit`
whichever counter it dispatches to. On JAX and PyTorch (no TF graph
there) the same figures are `tests/backends/test_cross_backend.py`'s.
"""

import sys

import keras
import pytest

from keras_eexit.methods.gpf import gpf
from keras_eexit.methods.ztw import ztw
from keras_eexit.models import analytic_flops
from keras_eexit.models import costs
from keras_eexit.models import text_transformer as tt
from keras_eexit.models.registry import get_model

CLASSES = 5

on_tf_graph = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the TF-graph counter (the reference) needs the TF backend")


def _graph_flops():
    from keras_eexit.models import flops

    return flops


def _text(backend):
    return lambda: tt.text_transformer_exits(
        num_classes=CLASSES, sequence_length=16, num_layers=3,
        hidden_dim=16, num_heads=2, intermediate_dim=32, dropout=0.0,
        backend=backend)


def _zoo(name, **kwargs):
    return lambda: get_model(name, num_classes=CLASSES, **kwargs)


# id -> builder: one small instance per family (as test_zoo_contract).
ZOO = {
    "small_cnn": _zoo("small_cnn", input_shape=(8, 8, 1), width=8),
    "cnn1d": _zoo("cnn1d", input_shape=(40, 1), width=8),
    "cifar_resnet": _zoo("cifar_resnet", depth=20, input_shape=(16, 16, 3)),
    "msdnet": _zoo("msdnet_cifar", input_shape=(16, 16, 3), channels=4,
                   growth_rate=2, head_filters=8, exits=3),
    "msdnet_imagenet": _zoo("msdnet_imagenet", input_shape=(32, 32, 3),
                            channels=4, growth_rate=2, exits=2, base=1,
                            step=1),
    "ranet": _zoo("ranet_cifar", input_shape=(16, 16, 3), channels=4,
                  growth_rate=4, head_filters=8, exits=3, base_blocks=1,
                  block_step=1, step=1, step_mode="even"),
    # Damping heads (a DampingHead around MSDNetHead).
    "msdnet_damping": _zoo("msdnet_cifar", input_shape=(16, 16, 3),
                           channels=4, growth_rate=2, head_filters=8,
                           exits=2, damping=True),
    "ranet_damping": _zoo("ranet_cifar", input_shape=(16, 16, 3), channels=4,
                          growth_rate=4, head_filters=8, exits=3,
                          base_blocks=1, block_step=1, step=1,
                          step_mode="even", damping=True),
    "vit": _zoo("vit_exits", image_size=16, patch_size=4, dim=16, depth=3,
                heads=2, mlp_dim=24, exits_after=(1, 2)),
    "text_builtin": _text("builtin"),
    "text_keras_hub": _text("keras_hub"),
    "vgg16": _zoo("vgg16_exits", input_shape=(32, 32, 3)),
    "mobilenet_v2": _zoo("mobilenet_v2_exits", input_shape=(32, 32, 3)),
    "resnet50": _zoo("resnet50_exits", input_shape=(32, 32, 3)),
}
# Heads of other kinds and the methods' heads, on a small CNN.
ZOO.update({
    "sdn_pool_heads": _zoo("small_cnn", input_shape=(8, 8, 3), width=8,
                           head="sdn_pool"),
    "conv_pool_heads": _zoo("small_cnn", input_shape=(8, 8, 3), width=8,
                            head="conv_pool"),
    "ztw_ensemble": lambda: ztw(ZOO["small_cnn"](), ensemble_final=True),
    "gpf": lambda: gpf(ZOO["cnn1d"]()),
})
SLOW = {"vgg16", "mobilenet_v2", "resnet50"}


def _param(name):
    marks = []
    if name in SLOW:
        marks.append(pytest.mark.large)
    if name == "text_keras_hub":
        marks.append(pytest.mark.skipif(not tt.keras_hub_available(),
                                        reason="keras-hub is not installed"))
    return pytest.param(name, marks=marks)


@pytest.fixture(scope="module", params=[_param(n) for n in ZOO])
def zoo_model(request):
    keras.utils.set_random_seed(0)
    return ZOO[request.param]()


def _stage_flops(model, convention, analytic, monkeypatch):
    monkeypatch.setattr(costs, "uses_tensorflow_graph", lambda: not analytic)
    stages = costs.compute_stage_costs(model, convention)
    return stages.segment_flops, stages.head_flops


@on_tf_graph
@pytest.mark.parametrize("convention", ["keras_eexit", "fvcore"])
def test_analytic_equals_tf_graph_per_stage(zoo_model, convention,
                                            monkeypatch):
    expected = _stage_flops(zoo_model, convention, False, monkeypatch)
    assert _stage_flops(zoo_model, convention, True, monkeypatch) == expected
    assert all(f > 0 for f in expected[0])


@on_tf_graph
def test_flops_per_exit_unchanged_on_the_analytic_path(monkeypatch):
    keras.utils.set_random_seed(0)
    model = ZOO["cifar_resnet"]()
    on_graph = model.flops_per_exit()
    keras.utils.set_random_seed(0)
    fresh = ZOO["cifar_resnet"]()
    monkeypatch.setattr(costs, "uses_tensorflow_graph", lambda: False)
    monkeypatch.setattr(_graph_flops(), "count_flops", _forbidden)
    assert fresh.flops_per_exit() == on_graph
    assert fresh.macs_per_exit() == [f // 2 for f in on_graph]


def _forbidden(*args, **kwargs):
    raise AssertionError("the TF-graph counter ran on the analytic path")


def test_dispatch_follows_the_backend():
    assert costs.uses_tensorflow_graph() == (
        keras.backend.backend() == "tensorflow")


def test_dispatch_without_tensorflow_is_analytic(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # not importable
    assert not costs.uses_tensorflow_graph()
    assert costs.flops_counter() is analytic_flops.count_flops


# -- layer rules the zoo does not reach ---------------------------------------


def _both(layer, shape):
    import tensorflow as tf

    if isinstance(shape, list):
        spec = [keras.KerasTensor(s) for s in shape]
        tf_spec = [tf.TensorSpec(s) for s in shape]
    else:
        dtype = "int32" if isinstance(layer, keras.layers.Embedding) else (
            "float32")
        spec = keras.KerasTensor(shape, dtype)
        tf_spec = tf.TensorSpec(shape, dtype)
    return [
        (analytic_flops.count_flops(layer, spec, convention=c),
         _graph_flops().count_flops(layer, tf_spec, convention=c))
        for c in analytic_flops.CONVENTIONS
    ]


@on_tf_graph
@pytest.mark.parametrize("layer, shape", [
    (keras.layers.Conv2D(4, 3, groups=2, strides=2), (1, 9, 9, 4)),
    (keras.layers.DepthwiseConv2D(3, depth_multiplier=2), (1, 8, 8, 3)),
    (keras.layers.SeparableConv2D(4, 3), (1, 8, 8, 3)),
    (keras.layers.Conv2DTranspose(4, 3, strides=2), (1, 5, 5, 3)),
    (keras.layers.Dense(6, activation="gelu"), (1, 4, 7)),
    (keras.layers.Dense(6, activation="silu"), (1, 7)),
    (keras.layers.Conv1D(6, 3, activation="tanh"), (1, 9, 2)),
    (keras.layers.Activation("log_softmax"), (1, 9)),
    (keras.layers.Add(), [(1, 3, 4), (1, 3, 4)]),
    (keras.layers.Add(), [(1, 1, 4), (1, 1, 4)]),  # lowered to BiasAdd
    (keras.layers.Average(), [(1, 3, 4), (1, 3, 4), (1, 3, 4)]),
    (keras.layers.Multiply(), [(1, 3, 4), (1, 3, 4)]),
    (keras.layers.Embedding(10, 4), (1, 6)),
    (keras.layers.EinsumDense("abc,cd->abd", (4, 6), bias_axes="d"),
     (1, 4, 7)),
    (keras.layers.LayerNormalization(center=False), (1, 4, 8)),
    (keras.layers.GlobalAveragePooling2D(), (1, 5, 5, 3)),
    (keras.layers.Softmax(), (1, 9)),
])
def test_layer_rule_equals_tf_graph(layer, shape):
    for analytic, graph in _both(layer, shape):
        assert analytic == graph


def test_unknown_leaf_layer_is_an_error():
    class Scale(keras.layers.Layer):
        def call(self, x):
            return 2.0 * x

    with pytest.raises(ValueError, match="no counting rule for Scale"):
        analytic_flops.count_flops(Scale(), keras.KerasTensor((1, 3)))


def test_register_rule_counts_a_custom_layer():
    class Scale(keras.layers.Layer):
        def call(self, x):
            return 2.0 * x

    analytic_flops.register_rule(Scale)(
        lambda layer, call: (0, call.output_size))
    spec = keras.KerasTensor((1, 3))
    assert analytic_flops.count_flops(Scale(), spec) == 0
    assert analytic_flops.count_flops(Scale(), spec,
                                      convention="fvcore") == 3


