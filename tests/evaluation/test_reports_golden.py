"""Every report renders exactly the text it rendered before (golden files).

Small fixed inputs (seeded NumPy, no model) go through the comparison and
the evaluation reports; each text file is compared with the copy kept in
`golden_reports/` (`tests/golden.py`: Markdown byte for byte, CSV and JSON
with floats to 1e-9).
The PNG files are checked to exist, not compared (they depend on the
Matplotlib version).

When a report is changed on purpose, regenerate the copies and review the
diff:

    PYTHONPATH=. python tests/evaluation/test_reports_golden.py
"""

import json
import pathlib
import sys

import numpy as np
import pytest

from keras_eexit import evaluation
from keras_eexit.evaluation import ExitOutputs
from keras_eexit.evaluation import Sweep
from tests.golden import assert_same_file

GOLDEN = pathlib.Path(__file__).parent / "golden_reports"
EXITS = ("exit_1", "exit_2", "exit_3")
COSTS = {"keras_eexit": ([2_000_000, 4_000_000, 6_000_000], 5_000_000.0),
         "fvcore": ([1_000_000, 2_000_000, 3_000_000], 2_500_000.0)}


def exit_outputs(seed, skill, costs=True, samples=80):
    """Three exits whose accuracy grows with depth (`skill` at the last)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, samples)
    probs = []
    for k in range(3):
        logits = rng.normal(size=(samples, 4))
        right = rng.random(samples) < skill * (k + 1) / 3
        logits[right, labels[right]] += 3.0
        probs.append(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    flops, base = COSTS["keras_eexit"]
    return ExitOutputs(np.stack(probs).astype("float32"), labels,
                       np.array(flops, dtype="int64"),
                       np.array([10, 20, 30]), EXITS,
                       base_flops=base if costs else None,
                       costs=COSTS if costs else None)


def history(seed, number):
    """Four epochs of per-exit metrics; later exits over-fit at epoch 3."""
    rng = np.random.default_rng(1000 + 10 * number + seed)
    out = {}
    for k, name in enumerate(EXITS):
        train = 1.5 - np.cumsum(rng.random(4)) / 4
        out[f"{name}_loss"] = list(np.round(train, 4))
        out[f"val_{name}_loss"] = list(np.round(
            train + 0.1 + (k > 0) * np.array([0, 0, 0.3, 0.5]), 4))
        for prefix in ("", "val_"):
            out[f"{prefix}{name}_accuracy"] = list(
                np.round(0.3 + np.cumsum(rng.random(4)) / 8, 4))
    return out


def comparison_records(full=True):
    """Run records: 3 regimes x 3 seeds with everything a record can
    carry, or 2 regimes x 1 seed of bare, hand-made outputs."""
    records = []
    regimes = ((("joint", 0.95), ("mixed", 0.9), ("two_stage", 0.6))
               if full else (("joint", 0.9), ("mixed", 0.7)))
    for number, (regime, skill) in enumerate(regimes):
        for seed in range(3 if full else 1):
            outputs = exit_outputs(10 * number + seed, skill, costs=full)
            result = evaluation.threshold_sweep(outputs, thresholds=11)
            extra = {}
            if full:
                extra = {
                    "train_seconds": 10.0 + 2 * number + seed,
                    "resources": {"host": {"peak_mb": 500.0 + 7 * seed
                                           + 30 * number}},
                    "history": history(seed, number),
                    "gradient_dominance": {
                        "steps": [0, 10],
                        "cosines": [[0.9, 0.5, 0.2], [0.8, 0.6, 0.3]]}}
            records.append(evaluation.run_record(
                outputs, result, regime=regime, seed=seed, **extra))
    return records


def budgeted_curve(outputs):
    """A hand-made per-exit-threshold curve (3 points) on `outputs`."""
    result = evaluation.threshold_sweep(outputs, thresholds=11)
    return Sweep("max_softmax",
                 np.array([[0.2, 0.2, 0.0], [0.6, 0.5, 0.0],
                           [0.9, 0.9, 0.0]], dtype="float32"),
                 result.accuracy[[2, 5, 9]], result.mean_flops[[2, 5, 9]],
                 result.exit_ratios[[2, 5, 9]])


def write_comparison(out, full):
    return evaluation.write_comparison_report(
        comparison_records(full), out, title="Golden comparison",
        plots=full)


def write_evaluation(out, full):
    outputs = exit_outputs(7, 0.9, costs=full)
    result = evaluation.threshold_sweep(outputs, thresholds=11)
    if full:
        return evaluation.write_evaluation_report(
            outputs, result, out, name="tiny.keras", dataset="digits",
            budgeted=budgeted_curve(outputs))
    return evaluation.write_evaluation_report(outputs, result, out)


CASES = {
    "comparison_full": lambda out: write_comparison(out, True),
    "comparison_bare": lambda out: write_comparison(out, False),
    "evaluation_full": lambda out: write_evaluation(out, True),
    "evaluation_bare": lambda out: write_evaluation(out, False),
}


def written_listing(written):
    """The file names written, in the order the report lists them."""
    return [pathlib.Path(p).name for p in written.values()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_report_renders_what_it_rendered_before(case, tmp_path):
    out = tmp_path / case
    written = CASES[case](out)
    golden = GOLDEN / case
    expected = json.loads((golden / "written.json").read_text())
    assert list(written) == expected["keys"]
    assert written_listing(written) == expected["files"]
    for path in map(pathlib.Path, written.values()):
        assert path.parent == out and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert_same_file(path, golden / path.name)


def regenerate():
    """Rewrites `golden_reports/` from the current code."""
    import shutil
    import tempfile

    for case, render in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            written = render(pathlib.Path(tmp) / case)
            target = GOLDEN / case
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for path in map(pathlib.Path, written.values()):
                if path.suffix != ".png":
                    shutil.copyfile(path, target / path.name)
            (target / "written.json").write_text(json.dumps(
                {"keys": list(written), "files": written_listing(written)},
                indent=2) + "\n")
        print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    regenerate()
