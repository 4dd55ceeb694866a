"""Bad input to evaluation, reports, plots and analyses: one clear message
naming the problem, and nothing written."""

import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import analysis
from keras_eexit import evaluation
from keras_eexit.evaluation import ExitOutputs
from keras_eexit.evaluation import threshold_sweep


def _outputs():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 50, 4))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return ExitOutputs(probs.astype("float32"), rng.integers(0, 4, 50),
                       np.array([10, 20, 30]), np.array([1, 2, 3]),
                       ("exit_1", "exit_2", "exit_3"), base_flops=25.0)


@pytest.fixture(scope="module")
def model():
    from keras_eexit import models

    m = models.get_model("small_cnn", width=4)
    m(np.zeros((1, 8, 8, 1), "float32"))
    return m


@pytest.mark.parametrize("data,match", [
    (tf.data.Dataset.from_tensor_slices(
        np.zeros((8, 8, 8, 1), "float32")).batch(4),
     "needs labelled data.*single tensors"),
    (np.zeros((8, 8, 8, 1), "float32"), "without labels"),
    ((np.zeros((8, 8, 8, 1)), np.zeros(8), np.zeros(8)), r"\(x, y\)"),
    (tf.data.Dataset.from_tensor_slices(
        {"image": np.zeros((8, 8, 8, 1), "float32")}).batch(4),
     "dicts with keys"),
])
def test_collect_needs_labels(model, data, match):
    with pytest.raises(ValueError, match=match):
        evaluation.collect(model, data)


def test_collect_bad_convention(model):
    data = (np.zeros((4, 8, 8, 1), "float32"), np.zeros(4, int))
    with pytest.raises(ValueError, match="convention"):
        evaluation.collect(model, data, convention="macs")


def test_plot_into_a_missing_folder_names_the_folder(tmp_path):
    result = threshold_sweep(_outputs())
    missing = tmp_path / "no" / "such"
    for draw in (
        lambda p: evaluation.tradeoff_plot({"a": result}, p),
        lambda p: evaluation.exit_ratio_plot(result, ["a", "b", "c"], p),
        lambda p: evaluation.training_curves_plot(
            {"exit_1_loss": [1.0, 0.5]}, p),
        lambda p: evaluation.gradient_dominance_plot(
            {"steps": [0], "cosines": [[0.5]]}, ["a"], p),
        lambda p: analysis.path_plot({"x": analysis.LinearPath(
            np.array([0.0, 1.0]), np.ones((2, 1)), ("e",), np.zeros(1),
            True)}, p),
    ):
        with pytest.raises(FileNotFoundError,
                           match=f"folder {missing} does not exist"):
            draw(missing / "plot.png")
    assert not (tmp_path / "no").exists()


def test_tradeoff_plot_accepts_a_sweep_and_refuses_other_values(tmp_path):
    result = threshold_sweep(_outputs())
    figure = evaluation.tradeoff_plot({"a": result})  # not a list: fine
    assert len(figure.axes[0].lines) == 1
    assert len(evaluation.tradeoff_plot(result).axes[0].lines) == 1
    with pytest.raises(ValueError, match="value of 'a' must be a Sweep"):
        evaluation.tradeoff_plot({"a": "curve.csv"})
    with pytest.raises(ValueError, match=r"expected \{label: Sweep"):
        evaluation.tradeoff_plot([1, 2])
    with pytest.raises(ValueError, match="must hold Sweeps"):
        evaluation.tradeoff_plot({"a": [result, 3]})


@pytest.mark.parametrize("kwargs,match", [
    ({"base_flops": 0}, "base_flops"),
    ({"base_flops": float("inf")}, "base_flops"),
    ({"fractions": (0.5, -1)}, "fractions"),
    ({"fractions": ()}, "fractions"),
])
def test_budget_table_arguments(kwargs, match):
    outputs = _outputs()
    with pytest.raises(ValueError, match=match):
        evaluation.budget_table(threshold_sweep(outputs), outputs, **kwargs)


def test_budget_table_results():
    outputs = _outputs()
    with pytest.raises(ValueError, match="a Sweep or a list"):
        evaluation.budget_table(["not a sweep"], outputs)
    with pytest.raises(ValueError, match="non-empty list"):
        evaluation.budget_table([], outputs)
    with pytest.raises(ValueError, match="same thresholds"):
        evaluation.budget_table(
            [threshold_sweep(outputs, thresholds=5),
             threshold_sweep(outputs, thresholds=6)], outputs)


def test_reports_refuse_before_writing(tmp_path):
    out = tmp_path / "report"
    with pytest.raises(ValueError, match="at least one run record"):
        evaluation.write_comparison_report([], out)
    with pytest.raises(ValueError, match="misses keys"):
        evaluation.write_comparison_report([{"regime": "a"}], out)
    assert not out.exists()


def test_statistics_and_dynamics():
    with pytest.raises(ValueError, match="finite numbers"):
        evaluation.compare({"a": [1.0, float("nan")], "b": [1.0, 2.0]})
    with pytest.raises(ValueError, match="validation_data"):
        evaluation.training_dynamics({"exit_1_loss": [1.0, 0.5]})
    with pytest.raises(ValueError, match="History"):
        evaluation.training_dynamics([1.0, 2.0])
    with pytest.raises(ValueError, match="no comparisons"):
        evaluation.significance_plot({})


def test_resource_monitor_interval():
    from keras_eexit.callbacks import ResourceMonitor

    for bad in (0, -1.0, float("nan"), "1s", True):
        with pytest.raises(ValueError, match="interval"):
            ResourceMonitor(interval=bad)


def test_analyses(model):
    x = np.zeros((6, 8, 8, 1), "float32")
    y = np.zeros(6, int)
    with pytest.raises(ValueError, match="resolution"):
        analysis.loss_landscape(model, (x, y), resolution=1)
    with pytest.raises(ValueError, match="span"):
        analysis.loss_landscape(model, (x, y), span=-1)
    with pytest.raises(ValueError, match="exactly three"):
        analysis.connectivity_plane({"a": model, "b": model}, (x, y))
    with pytest.raises(ValueError, match="as many labels as inputs"):
        analysis.linear_path(model, model, (x, y[:3]))
    with pytest.raises(ValueError, match="labelled data"):
        analysis.linear_path(model, model, tf.data.Dataset.from_tensor_slices(
            x).batch(2))
    with pytest.raises(ValueError, match="estimator"):
        analysis.mutual_information(np.eye(3), estimator="kde")
    with pytest.raises(ValueError, match="layers"):
        analysis.layer_ranks(model, x, layers="everything")


def test_architecture_mismatch_and_unsupported(model, model_factory):
    from keras_eexit import models

    wider = models.get_model("small_cnn", width=8)
    wider(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="does not have the architecture"):
        analysis.WeightSpace(model).vector(wider)
    tiny = model_factory()
    tiny(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="Weight matching does not support"):
        analysis.linear_path(tiny, tiny, (np.zeros((2, 8, 8, 1)),
                                          np.zeros(2)))
