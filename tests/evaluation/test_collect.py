"""collect carries the base network's FLOPs in both conventions; reports
are written in Kubaty et al.'s (fvcore) convention and say so."""

import json

import numpy as np
import pytest

from keras_eexit import evaluation
from keras_eexit import models
from keras_eexit.models import costs


@pytest.fixture(scope="module")
def collected():
    model = models.get_model("small_cnn", width=4, num_classes=4)
    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, 40)
    model(x)
    return model, evaluation.collect(model, (x, y), batch_size=16)


def test_base_flops_and_both_conventions(collected):
    model, outputs = collected
    assert outputs.base_flops == model.base_flops()
    np.testing.assert_array_equal(outputs.flops, model.flops_per_exit())
    reference = outputs.with_convention("fvcore")
    fvcore = costs.stage_costs(model, "fvcore")
    np.testing.assert_array_equal(reference.flops,
                                  fvcore.cumulative_flops())
    assert reference.base_flops == fvcore.base_flops()
    assert reference.flops_convention == "fvcore"
    assert outputs.with_convention("keras_eexit") is outputs
    hand_made = evaluation.ExitOutputs(outputs.probs, outputs.labels,
                                       outputs.flops, outputs.params,
                                       outputs.exit_names)
    with pytest.raises(ValueError, match="no 'fvcore' FLOPs"):
        hand_made.with_convention("fvcore")


def test_budget_table_of_outputs_uses_the_base_network(collected):
    model, outputs = collected
    result = evaluation.threshold_sweep(outputs)
    assert evaluation.budget_table(result, outputs) == (
        evaluation.budget_table(result, base_flops=model.base_flops()))


def test_records_and_reports_use_the_reference_convention(collected,
                                                          tmp_path):
    _, outputs = collected
    result = evaluation.threshold_sweep(outputs, thresholds=11)
    record = evaluation.run_record(outputs, result, regime="joint")
    reference = outputs.with_convention("fvcore")
    assert record["flops_convention"] == "fvcore"
    assert record["flops"] == reference.flops.tolist()
    assert record["base_flops"] == reference.base_flops
    exact = evaluation.threshold_sweep(reference, thresholds=11)
    np.testing.assert_allclose(record["mean_flops"], exact.mean_flops)
    written = evaluation.write_evaluation_report(outputs, result,
                                                 tmp_path / "eval",
                                                 name="tiny",
                                                 dataset="digits")
    assert sorted(written) == sorted([
        "report.md", "exits.csv", "budget.csv", "sweep.csv",
        "evaluation.json", "tradeoff.png", "exit_ratios.png"])
    text = (tmp_path / "eval" / "report.md").read_text()
    assert "Kubaty et al.'s reference code (fvcore" in text
    assert "base network's FLOPs" in text and "can be below `100%`" in text
    data = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert data["flops_convention"] == "fvcore"
    assert data["base_flops"] == reference.base_flops


def test_repeated_collects_reuse_one_trace_and_read_current_weights():
    """Evaluating a model again (as after every training round) does not
    trace again, yet sees weights changed since; batch sizes may vary."""
    from keras_eexit.evaluation.collect import inference_function

    model = models.get_model("small_cnn", width=4, num_classes=4)
    rng = np.random.default_rng(1)
    x = rng.random((40, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, 40)
    first = evaluation.collect(model, (x, y), batch_size=16)
    function = inference_function(model)
    traces = function.experimental_get_tracing_count()
    for batch_size in (16, 7, 40):
        evaluation.collect(model, (x, y), batch_size=batch_size)
    assert inference_function(model) is function
    assert function.experimental_get_tracing_count() == traces
    kernel = model.heads[-1].weights[0]
    kernel.assign(kernel + rng.normal(size=kernel.shape).astype("float32"))
    again = evaluation.collect(model, (x, y), batch_size=16)
    assert not np.allclose(again.probs[-1], first.probs[-1])
    np.testing.assert_array_equal(again.probs[0], first.probs[0])
