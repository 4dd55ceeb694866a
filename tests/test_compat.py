"""Canaries for `keras_eexit.compat`: one per private Keras/TF name used.

Each test fails with a message naming the private symbol when a Keras or
TensorFlow upgrade renames or changes it, so the breakage shows here and
not as a silent change of behaviour elsewhere.
"""

import inspect

import keras
import numpy as np
import tensorflow as tf

from keras_eexit import compat


def _model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    norm = keras.layers.BatchNormalization(name="norm")(hidden)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(norm))


def test_flatten_layers_walks_nested_layers():
    model = _model()
    names = [layer.name for layer in compat.flatten_layers(model)]
    assert names[0] == model.name
    assert {"hidden", "norm", "out"} <= set(names), (
        "Layer._flatten_layers changed")


def test_nodes_by_depth_of_a_functional_model():
    model = _model()
    assert compat.is_functional(model)
    assert not compat.is_functional(keras.layers.Dense(2))
    depths = compat.nodes_by_depth(model)
    ops = {getattr(n.operation, "name", None) for nodes in depths.values()
           for n in nodes}
    assert {"hidden", "out"} <= ops, "Functional._nodes_by_depth changed"


def test_trainable_parameters_survive_freezing():
    model = _model()
    before = [v.path for v in compat.trainable_parameters(model)]
    assert len(before) == 6  # 2 kernels, 2 biases, gamma, beta
    model.trainable = False
    after = [v.path for v in compat.trainable_parameters(model)]
    assert after == before, "Layer._trainable_variables changed"
    assert not any("moving" in p for p in after)


def test_model_strategy_is_none_outside_a_scope():
    assert compat.model_strategy(_model()) is None, (
        "Model._distribute_strategy changed")


def test_keras_ops_modules_hold_the_ops_layers_call():
    modules = compat.keras_ops_modules()
    for name in ("conv", "matmul", "einsum", "take", "add"):
        assert all(callable(getattr(m, name)) for m in modules), name


def test_unscale_loss_for_distribution_is_identity_on_one_device():
    value = compat.unscale_loss_for_distribution(tf.constant(2.5))
    assert float(value) == 2.5


def test_update_loss_tracker_feeds_the_logged_loss():
    model = _model()
    model.compile("sgd", loss="mse")
    compat.update_loss_tracker(model, tf.constant(3.0), 4)
    assert float(model.metrics[0].result()) == 3.0, (
        "Trainer._loss_tracker changed")


def test_trainer_hook_still_exists_with_its_signature():
    from keras.src.backend.tensorflow import trainer

    hook = getattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build", None)
    assert hook is not None, "TensorFlowTrainer._maybe_symbolic_build gone"
    assert list(inspect.signature(hook).parameters) == [
        "self", "iterator", "data_batch"]


def test_in_multi_worker_mode_reads_the_strategy():
    assert not compat.in_multi_worker_mode(tf.distribute.get_strategy())
    from tensorflow.python.distribute import collective_all_reduce_strategy

    extended = collective_all_reduce_strategy.CollectiveAllReduceExtended
    assert hasattr(extended, "_in_multi_worker_mode"), (
        "CollectiveAllReduceExtended._in_multi_worker_mode gone")


def test_graph_function_finds_called_functions():
    @tf.function
    def inner(x):
        return x * 2.0

    @tf.function
    def outer(x):
        return inner(x) + 1.0

    graph = outer.get_concrete_function(
        tf.TensorSpec((2,), tf.float32)).graph
    calls = [op for op in graph.get_operations()
             if op.type in ("PartitionedCall", "StatefulPartitionedCall")]
    assert calls
    name = calls[0].get_attr("f").name
    body = compat.graph_function(graph, name)
    assert body is not None, "FuncGraph._functions changed"
    assert any(op.type == "Mul" for op in body.get_operations())
    assert np.isclose(float(outer(tf.ones(2))[0]), 3.0)


def test_freeze_concrete_function_bakes_variables_in():
    variable = tf.Variable(3.0)
    concrete = tf.function(lambda x: x * variable).get_concrete_function(
        tf.TensorSpec((), tf.float32))
    frozen = compat.freeze_concrete_function(concrete)
    assert not frozen.graph.variables, "convert_variables_to_constants_v2"
    assert float(frozen(tf.constant(2.0))[0]) == 6.0


def test_silence_deprecation_is_a_context_manager():
    with compat.silence_deprecation():
        pass


def test_autocast_like_follows_the_layer_policy():
    layer = keras.layers.Dense(2, dtype="mixed_float16")
    layer.build((None, 3))
    seen = {}

    class Probe(keras.layers.Layer):
        def call(self, x):
            seen["dtype"] = compat.autocast_like(
                layer.kernel, tf.convert_to_tensor(layer.kernel)).dtype
            return x

    probe = Probe(dtype="mixed_float16")
    probe(tf.ones((1, 3)))
    assert hasattr(layer.kernel, "_maybe_autocast"), (
        "Variable._maybe_autocast gone")
    assert seen["dtype"] == tf.float16


def test_optimizer_slots_and_weight_decay_follow_the_optimizers_state():
    variable = keras.Variable(np.ones((2,), "float32"), name="w")
    grad = np.full((2,), 0.5, "float32")
    sgd = keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.1)
    adam = keras.optimizers.Adam(0.1, amsgrad=True)
    for optimizer in (sgd, adam):
        optimizer.build([variable])
        optimizer.apply_gradients([(grad, variable)])
    momentum = compat.optimizer_slots(sgd, variable)["momentum"]
    # SGD.momentums[_get_variable_index(v)]: v = -lr·g after one step.
    np.testing.assert_allclose(momentum.numpy(), -0.05, rtol=1e-6)
    slots = compat.optimizer_slots(adam, variable)
    assert set(slots) == {"momentum", "velocity", "velocity_hat"}, (
        "Adam._momentums/_velocities/_velocity_hats changed")
    np.testing.assert_allclose(slots["momentum"].numpy(), 0.05, rtol=1e-5)
    np.testing.assert_allclose(slots["velocity"].numpy(), 0.00025,
                               rtol=1e-5)
    assert compat.uses_weight_decay(sgd, variable), (
        "BaseOptimizer._use_weight_decay changed")
    assert not compat.uses_weight_decay(adam, variable)
    sgd.exclude_from_weight_decay(var_names=["w"])
    fresh = keras.Variable(np.ones((2,), "float32"), name="w")
    assert not compat.uses_weight_decay(sgd, fresh)
