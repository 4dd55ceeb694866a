"""The train step is an ordered, inspectable list of contributors."""

import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit.models.train_step import StepContributor
from keras_eexit.models.train_step import TrainStep


class Source(StepContributor):
    roles = ("batch",)


class Method(StepContributor):
    """A method's step and loss: counts the updates it drives."""

    roles = ("step", "loss")

    def __init__(self):
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False)

    def run(self, model, batch, update):
        self.updates.assign_add(1)
        return update(batch)


class Replacement(StepContributor):
    roles = ("step",)
    replaces = ("step", "loss", "gradients")
    incompatible = ("batch",)


def test_the_plan_lists_roles_in_the_order_they_run(model_factory):
    model = model_factory()
    assert model.train_step_plan() == []
    method, source = Method(), Source()
    model.train_pipeline.install(method)
    model.gradient_equilibrium = True
    model.train_pipeline.install(source)
    assert model.train_step_plan() == [
        "1. batch: Source", "2. step: Method", "3. loss: Method",
        "4. gradients: GradientEquilibrium"]
    assert repr(model.train_pipeline).startswith("TrainStep([1. batch:")
    model.train_pipeline.remove(source)
    model.gradient_equilibrium = False
    assert model.train_step_plan() == ["1. step: Method", "2. loss: Method"]


def test_a_whole_step_replacement_sets_the_others_aside():
    step = TrainStep()
    method, fisher = Method(), Replacement()
    step.install(method)
    step.install(fisher)
    assert step.plan() == [
        "1. step: Method (replaced by Replacement)",
        "2. step: Replacement",
        "3. loss: Method (replaced by Replacement)"]
    assert step.active("step") == [fisher] and step.active("loss") == []
    step.remove(fisher)
    assert step.active("step") == [method]


def test_contributors_that_cannot_compose_are_refused_with_a_message():
    step = TrainStep()
    step.install(Method())
    with pytest.raises(ValueError, match="Method and Method both drive the "
                                         "train step"):
        step.install(Method())
    step.install(Source())
    with pytest.raises(ValueError, match="Replacement cannot run with "
                                         "Source: it refuses a 'batch'"):
        step.install(Replacement())
    with pytest.raises(ValueError, match="Expected a keras_eexit.models."
                                         "train_step.StepContributor"):
        step.install(object())
    replacing = TrainStep()
    replacing.install(Replacement())
    with pytest.raises(ValueError, match="both replace the train step"):
        replacing.install(Replacement())
    bad = Source()
    bad.roles = ("forward",)
    with pytest.raises(ValueError, match="Invalid roles"):
        step.install(bad)


def test_a_methods_step_drives_every_update_and_retraces_only_on_change(
        model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    method = Method()
    model.train_pipeline.install(method)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(method.updates.numpy()) == 4
    model.refresh_train_function()
    traced = model.train_function
    model.refresh_train_function()  # nothing changed: the trace stays
    assert model.train_function is traced
    model.gradient_equilibrium = True
    model.refresh_train_function()
    assert model.train_function is not traced
    traced = model.train_function
    model.gradient_equilibrium = True  # as a next phase would set it
    model.refresh_train_function()
    assert model.train_function is traced
    model.train_pipeline.remove(method)
    model.gradient_equilibrium = False
    model.refresh_train_function()
    assert model.train_function is not traced
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(method.updates.numpy()) == 4


def test_without_contributors_a_step_is_keras_own(model_factory, tiny_data):
    # The loss contributor path (our update) and Keras' own step give the
    # same weights for an identity objective change.
    class Identity(StepContributor):
        roles = ("loss",)

    x, y = tiny_data
    results = []
    for contributors in ((), (Identity(),)):
        model = model_factory()
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        for c in contributors:
            model.train_pipeline.install(c)
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        results.append([w.numpy() for w in model.weights])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_training_slots_have_one_owner(model_factory):
    model = model_factory()
    layer = keras.layers.Dense(2)
    model.attach_state("eexit_snapshot_teacher", layer)
    assert model.eexit_snapshot_teacher is layer
    assert layer not in model.layers
    model.attach_state("eexit_snapshot_teacher", None)
    with pytest.raises(ValueError, match="Invalid value received for "
                                         "argument `name`"):
        model.attach_state("step_override", layer)


def test_no_module_but_the_model_writes_its_slots():
    package = pathlib.Path(__file__).parents[2] / "keras_eexit"
    writers = sorted(
        str(path.relative_to(package)) for path in package.rglob("*.py")
        if re.search(r"object\.__setattr__\((model|self\.model)\b",
                     path.read_text()))
    assert writers == []
