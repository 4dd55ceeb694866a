"""Bad input to the L2W and DFS methods: one clear message each, refused
before anything is built, attached or trained."""

import keras
import pytest

from keras_eexit.layers import PartitionedHead
from keras_eexit.layers import PartitionedSegment
from keras_eexit.methods import L2W
from keras_eexit.methods import WeightPredictionNetwork
from keras_eexit.methods import dfs
from keras_eexit.methods import get_method
from keras_eexit.models.unshared import unshared_prefixes


@pytest.mark.parametrize("make,argument", [
    (lambda m: dfs(m, ratio=1.5), "ratio"),
    (lambda m: dfs(m, ratio=True), "ratio"),
    (lambda m: dfs(m, referencing="yes"), "referencing"),
    (lambda m: dfs(m, referencing=False, exit_gradient="all"),
     "exit_gradient"),
    (lambda m: dfs("model"), "model"),
    (lambda m: PartitionedHead("linear"), "head"),
    (lambda m: PartitionedSegment(m.segments[0], ratio=-0.1), "ratio"),
    (lambda m: L2W(epsilon=0), "epsilon"),
    (lambda m: L2W(epsilon=float("nan")), "epsilon"),
    (lambda m: L2W(target_ratio=-1), "target_ratio"),
    (lambda m: L2W(meta_interval=0), "meta_interval"),
    (lambda m: L2W(hidden_units=2.5), "hidden_units"),
    (lambda m: L2W(meta_learning_rate=0), "meta_learning_rate"),
    (lambda m: L2W(meta_weight_decay=-1e-4), "meta_weight_decay"),
    (lambda m: L2W(lookahead_learning_rate=-1.0),
     "lookahead_learning_rate"),
    (lambda m: L2W(exchange="yes"), "exchange"),
    (lambda m: L2W().attach("model"), "model"),
    (lambda m: WeightPredictionNetwork(num_exits=0), "num_exits"),
])
def test_arguments_are_named(make, argument, tiny_model):
    with pytest.raises(ValueError,
                       match=f"Invalid value received for argument "
                             f"`{argument}`"):
        make(tiny_model)
    assert tiny_model.train_step_plan() == []


@pytest.mark.parametrize("value,choices", [
    ("ff", "exit_gradient"), ("rows", "centering")])
def test_unknown_choices_list_the_valid_ones(value, choices, tiny_model):
    make = (lambda: dfs(tiny_model, exit_gradient=value)) if (
        choices == "exit_gradient") else (lambda: L2W(centering=value))
    with pytest.raises(ValueError, match=f"Unknown {choices} '{value}'. "
                                         "Valid choices"):
        make()


def test_dfs_refuses_models_it_cannot_partition(model_factory):
    model = dfs(model_factory())
    with pytest.raises(ValueError, match="already partitioned"):
        dfs(model)
    with pytest.raises(ValueError, match="unshared prefixes"):
        dfs(unshared_prefixes(model_factory()))
    unbuilt = keras.Sequential([keras.layers.Dense(4)])
    from keras_eexit import MultiExitModel

    lazy = MultiExitModel([unbuilt, keras.layers.Dense(4)],
                          [keras.layers.Dense(2), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="needs a built model"):
        dfs(lazy)


def test_l2w_refuses_models_it_cannot_train(model_factory):
    model = model_factory()
    L2W().attach(model)
    with pytest.raises(ValueError, match="both drive the train step"):
        L2W().attach(model)
    single = model_factory(num_exits=1)
    with pytest.raises(ValueError, match="has one exit"):
        L2W().attach(single)
    assert single.train_step_plan() == []
    other = model_factory(num_exits=2)
    built = L2W()
    built.attach(model_factory())
    with pytest.raises(ValueError, match="built for 3 exits"):
        built.attach(other)
    assert other.train_step_plan() == []


def test_registry_names_the_unknown_method():
    with pytest.raises(ValueError, match="Unknown method 'l2ww'.*l2w"):
        get_method("l2ww")
