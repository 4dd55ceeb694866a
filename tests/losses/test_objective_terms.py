"""The objective-term API: ExitTerm, Objective, labels, resolve_loss."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_eexit import losses
from keras_eexit.losses import ExitDistillation
from keras_eexit.losses import ExitCrossEntropy
from keras_eexit.losses import ExitDampingLoss
from keras_eexit.losses import ExitTerm
from keras_eexit.losses import LwFPenalty
from keras_eexit.losses import Objective
from keras_eexit.losses import SelectiveCrossEntropy
from keras_eexit.losses.labels import dense_labels
from keras_eexit.losses.labels import label_format
from keras_eexit.losses.labels import sparse_labels


class _Model:
    def __init__(self, weights=(1.0, 0.5, 2.0)):
        self.num_exits = len(weights)
        self.exit_names = [f"exit_{k + 1}" for k in range(self.num_exits)]
        self.exit_weights = tf.constant(weights)
        self.heads = [keras.layers.Dense(4) for _ in weights]


class _SquaredLogit(ExitTerm):
    """A new term is one small class: a per-sample loss of one exit."""

    name = "squared_logit"

    def exit_loss(self, labels, logits):
        return ops.sum(ops.square(logits), axis=-1)


def _batch(seed=0, n=5, classes=4, exits=3):
    rng = np.random.default_rng(seed)
    logits = {f"exit_{k + 1}": rng.normal(size=(n, classes)).astype(
        "float32") for k in range(exits)}
    labels = rng.integers(0, classes, size=n)
    return {name: labels for name in logits}, logits


def test_exit_term_weights_exits_by_model_exit_weights():
    y, logits = _batch()
    model = _Model()
    total, per_exit = _SquaredLogit()(model, None, y, logits)
    means = [np.square(logits[n]).sum(-1).mean() for n in model.exit_names]
    assert float(total) == pytest.approx(
        np.dot([1.0, 0.5, 2.0], means), rel=1e-5)
    for name, mean in zip(model.exit_names, means):
        assert float(per_exit[name]) == pytest.approx(mean, rel=1e-5)
    assert not _SquaredLogit.replaces_cross_entropy


def test_exit_term_fixed_weight_exit_numbers_and_sample_weights():
    y, logits = _batch()
    model = _Model()
    weights = np.array([1.0, 0.0, 2.0, 1.0, 1.0], "float32")
    term = _SquaredLogit(exits=[2, 3], weight=0.25)
    total, per_exit = term(model, None, y, logits, sample_weight=weights)
    expected = {n: (np.square(logits[n]).sum(-1) * weights).mean()
                for n in ("exit_2", "exit_3")}
    assert set(per_exit) == {"exit_2", "exit_3"}
    assert float(total) == pytest.approx(0.25 * sum(expected.values()),
                                         rel=1e-5)
    with pytest.raises(ValueError, match=r"exit\(s\) \[4\].*valid: 1\.\.3"):
        _SquaredLogit(exits=[4])(model, None, y, logits)


def test_exit_numbers_are_validated_and_one_based():
    with pytest.raises(ValueError, match="exit numbers in 1..K"):
        ExitDistillation(students=[0, 1])
    with pytest.raises(ValueError, match="argument `exits`"):
        LwFPenalty(1.0, [1, 1])
    assert ExitDistillation(students=[1, 2]).students == [1, 2]
    assert LwFPenalty(0.7, 2).exits == [2]


def test_distillation_covers_its_students_only():
    y, logits = _batch()
    model = _Model()
    term = ExitDistillation(students=[2], temperature=2.0, weight=0.9)
    total, per_exit = term(model, None, y, logits)
    assert set(per_exit) == {"exit_2"}
    t = tf.nn.softmax(logits["exit_3"] / 2.0).numpy()
    s = tf.nn.log_softmax(logits["exit_2"] / 2.0).numpy()
    kl = (t * (np.log(t) - s)).sum(-1) * 4.0
    assert float(total) == pytest.approx(0.9 * kl.mean(), rel=1e-5)


def test_replacing_the_cross_entropy_is_an_attribute():
    assert ExitCrossEntropy.replaces_cross_entropy
    assert SelectiveCrossEntropy.replaces_cross_entropy
    assert ExitDampingLoss.replaces_cross_entropy
    assert not ExitDistillation.replaces_cross_entropy
    term = SelectiveCrossEntropy(threshold=0.9)
    assert term.name != ExitCrossEntropy.name
    objective = Objective.with_terms([term])
    assert objective.terms == [term]
    assert objective.extra_names == []
    extra = ExitDistillation(students=[1])
    objective = Objective.with_terms([extra], loss=None)
    assert isinstance(objective.terms[0], ExitCrossEntropy)
    assert objective.extra_names == ["distillation"]
    with pytest.raises(ValueError, match="at most one"):
        Objective([ExitCrossEntropy(), term])
    with pytest.raises(ValueError, match="distinct names"):
        Objective([extra, ExitDistillation(students=[2])])
    with pytest.raises(ValueError, match="ObjectiveTerm"):
        Objective([lambda *a: (0.0, {})])


def test_objective_logs_replacing_term_per_exit():
    y, logits = _batch()
    model = _Model()
    objective = Objective([SelectiveCrossEntropy(label_smoothing=0.1),
                           _SquaredLogit(weight=0.0)])
    total, per_exit, extras = objective(model, None, y, logits)
    term = SelectiveCrossEntropy(label_smoothing=0.1)
    expected = [float(ops.mean(term.exit_loss(y[n], logits[n])))
                for n in model.exit_names]
    np.testing.assert_allclose([float(v) for v in per_exit], expected,
                               rtol=1e-5)
    assert set(extras) == {"squared_logit"}


def test_label_helper_reads_sparse_and_one_hot_labels():
    assert label_format((8,), 4) == "sparse"
    assert label_format((8, 1), 4) == "sparse"
    assert label_format((8, 4), 4) == "dense"
    with pytest.raises(ValueError, match="One-hot labels have 5 columns"):
        label_format((8, 5), 4)
    with pytest.raises(ValueError, match="Labels have shape"):
        label_format((8, 4, 1), 4)
    one_hot = np.eye(4, dtype="float32")[[2, 0, 3]]
    np.testing.assert_array_equal(sparse_labels(one_hot, 4), [2, 0, 3])
    np.testing.assert_array_equal(sparse_labels(np.array([[2], [1]]), 4),
                                  [2, 1])
    np.testing.assert_array_equal(dense_labels(np.array([2, 0, 3]), 4),
                                  one_hot)


@pytest.mark.parametrize("loss", ["mse", "kl_divergence", 3, [1]])
def test_resolve_loss_refuses_losses_that_cannot_take_logits(loss):
    with pytest.raises(ValueError, match="a cross-entropy name") as info:
        losses.resolve_loss(loss)
    assert "function (y_true, logits)" in str(info.value)


def test_user_loss_failing_on_logits_gets_a_clear_message():
    def bad(y_true, logits):  # returns a scalar, not one value per sample
        return ops.mean(logits)

    with pytest.raises(ValueError, match="one value per sample"):
        losses.resolve_loss(bad)(np.array([0, 1]), np.zeros((2, 3)))

    def broken(y_true, logits):
        return ops.square(ops.cast(y_true, "float32") - logits)

    with pytest.raises(ValueError, match="failed on logits of shape"):
        losses.resolve_loss(broken)(np.array([0, 1, 2]), np.zeros((3, 4)))
