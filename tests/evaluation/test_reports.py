"""Tables (Markdown, CSV, JSON) and multi-regime, multi-seed reports."""

import csv
import io
import json

import numpy as np
import pytest
from scipy import stats

from keras_eexit.evaluation import ExitOutputs
from keras_eexit.evaluation import aggregate
from keras_eexit.evaluation import comparison_report
from keras_eexit.evaluation import csv_text
from keras_eexit.evaluation import json_text
from keras_eexit.evaluation import markdown_table
from keras_eexit.evaluation import run_record
from keras_eexit.evaluation import significance
from keras_eexit.evaluation import threshold_sweep
from keras_eexit.evaluation import write_comparison_report

EXITS = ("exit_1", "exit_2", "exit_3")


def _record(regime, seed, skill):
    """A run whose exits are right with probability `skill` × depth."""
    rng = np.random.default_rng(seed + 100 * len(regime))
    n, c = 300, 4
    labels = rng.integers(0, c, n)
    probs = []
    for k in range(3):
        logits = rng.normal(size=(n, c))
        right = rng.random(n) < skill * (k + 1) / 3
        logits[right, labels[right]] += 4.0
        probs.append(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    outputs = ExitOutputs(np.stack(probs), labels,
                          np.array([1e6, 2e6, 3e6]), np.array([10, 20, 30]),
                          EXITS)
    history = {"exit_1_loss": [1.0, 0.8], "exit_2_loss": [1.1, 0.7],
               "exit_3_loss": [1.2, 0.6], "exit_1_accuracy": [0.4, 0.5],
               "exit_2_accuracy": [0.4, 0.6], "exit_3_accuracy": [0.4, 0.7]}
    dominance = {"steps": [0, 10, 20],
                 "cosines": [[0.9, 0.5, 0.2], [0.8, 0.6, 0.3],
                             [0.7, 0.6, 0.4]]}
    result = threshold_sweep(outputs, criterion="max_softmax", thresholds=21)
    return run_record(outputs, result,
                      regime=regime, seed=seed,
                      train_seconds=10.0 + seed + skill,
                      history=history, gradient_dominance=dominance)


@pytest.fixture(scope="module")
def records():
    return [_record(regime, seed, skill)
            for regime, skill in (("joint", 0.95), ("mixed", 0.93),
                                  ("two_stage", 0.6))
            for seed in range(3)]


def test_markdown_csv_and_json_tables():
    rows = [{"exit": "exit_1", "params": 12345, "accuracy": 0.5},
            {"exit": "a|b", "params": 7, "accuracy": float("nan")}]
    assert markdown_table(rows).splitlines() == [
        "| exit | params | accuracy |", "|---|---|---|",
        "| exit_1 | 12,345 | 0.5000 |", "| a\\|b | 7 | n/a |"]
    parsed = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert parsed[0] == {"exit": "exit_1", "params": "12345",
                         "accuracy": "0.5"}
    assert parsed[1]["accuracy"] == ""
    text = json_text({"a": np.float32(0.5), "b": np.array([1, 2]),
                      "c": float("nan"), "d": (np.int64(3),)})
    assert json.loads(text) == {"a": 0.5, "b": [1, 2], "c": None, "d": [3]}


def test_run_record_is_json_able(records):
    record = json.loads(json_text(records[0]))
    assert record["regime"] == "joint" and record["seed"] == 0
    assert record["exit_names"] == list(EXITS)
    assert len(record["thresholds"]) == 21
    assert np.asarray(record["exit_ratios"]).shape == (21, 3)
    assert list(record["budget"]) == ["25%", "50%", "75%", "100%", "max"]


def test_aggregate_and_significance_equal_scipy(records):
    metrics = aggregate(records)
    assert list(metrics) == ["25%", "50%", "75%", "100%", "max", *EXITS,
                             "train_seconds"]
    values = metrics["exit_3"]
    assert list(values) == ["joint", "mixed", "two_stage"]
    np.testing.assert_allclose(
        values["joint"], [r["exit_accuracy"][2] for r in records[:3]])
    tests = significance(metrics)
    assert isinstance(tests["25%"], str)  # nothing fits 25% of the FLOPs
    exit_3 = tests["exit_3"]
    groups = [metrics["exit_3"][n] for n in exit_3.names]
    assert exit_3.anova_p == pytest.approx(stats.f_oneway(*groups).pvalue)
    np.testing.assert_allclose(exit_3.tukey_p,
                               stats.tukey_hsd(*groups).pvalue)
    assert exit_3.ordering.endswith("≫ two_stage")
    # Time: lower is better.
    assert tests["train_seconds"].names[0] == "two_stage"


def test_comparison_report_text(records):
    text, summary = comparison_report(records, title="Test comparison")
    assert text.startswith("# Test comparison")
    assert "| regime | 25% | 50% | 75% | 100% | max |" in text
    assert "| MFLOPs | 1.000 | 2.000 | 3.000 |" in text
    assert "training time (s)" in text
    assert "- 25%: not tested: not every run has a value" in text
    ordering = summary["significance"]["exit_3"]["ordering"]
    assert f"- exit_3: {ordering} (ANOVA p = " in text
    assert "Tukey HSD" in text
    joint = summary["metrics"]["exit_3"]["joint"]
    assert joint["mean"] == pytest.approx(np.mean(joint["values"]))
    json.loads(json_text(summary))


def test_write_comparison_report(records, tmp_path):
    written = write_comparison_report(records, tmp_path / "report",
                                      title="Test comparison")
    names = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert names == sorted([
        "report.md", "summary.csv", "summary.json", "tradeoff.png",
        "exit_ratios.png", "significance.png", "training_joint.png",
        "training_mixed.png",
        "training_two_stage.png", "gradient_dominance_joint.png",
        "gradient_dominance_mixed.png", "gradient_dominance_two_stage.png"])
    for path in written.values():
        with open(path, "rb") as f:
            content = f.read()
        assert len(content) > 200
        if path.endswith(".png"):
            assert content[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "report" / "report.md").read_text()
    assert "![trade-off](tradeoff.png)" in report
    assert "![training joint](training_joint.png)" in report
    rows = list(csv.DictReader(io.StringIO(
        (tmp_path / "report" / "summary.csv").read_text())))
    assert {r["regime"] for r in rows} == {"joint", "mixed", "two_stage"}
    assert all(r["seeds"] == "3" for r in rows)


def test_bad_records(records):
    with pytest.raises(ValueError, match="at least one run record"):
        aggregate([])
    broken = dict(records[0])
    del broken["budget"]
    with pytest.raises(ValueError, match="misses keys \\['budget'\\]"):
        aggregate([broken])
    other = dict(records[3], exit_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="same exits"):
        aggregate([records[0], other])


def test_one_seed_or_one_regime_is_reported_not_tested(records):
    tests = significance(aggregate(records[:3]))
    assert tests["exit_3"] == "only one regime"
    tests = significance(aggregate([records[0], records[3]]))
    assert tests["exit_3"] == "needs at least two seeds per regime"


def test_public_names_of_the_old_module_still_import():
    """`evaluation.reports` was one module: its public names stay where
    users import them, and are the ones of the report modules."""
    from keras_eexit import evaluation
    from keras_eexit.evaluation import reports
    from keras_eexit.evaluation.reports import comparison
    from keras_eexit.evaluation.reports import records
    from keras_eexit.evaluation.reports import text

    assert evaluation.write_comparison_report is (
        comparison.write_comparison_report)
    assert evaluation.write_evaluation_report is (
        reports.evaluation.write_evaluation_report)
    assert evaluation.run_record is records.run_record
    assert evaluation.json_text is text.json_text
    for name in ("RECORD_KEYS", "EFFICIENCY", "CONVENTION_CAPTIONS",
                 "budget_rows", "group_records"):
        assert hasattr(reports, name), name
    for name in ("aggregate", "comparison_report", "csv_text",
                 "evaluation_report", "markdown_table", "reference_budgets",
                 "reference_convention", "significance"):
        assert getattr(evaluation, name) is getattr(reports, name), name
