"""The analyses' report renders exactly what it rendered before.

Three seeded `small_cnn` models, 32 digits samples, a 3 × 3 grid: every
analysis runs, through `keras-eexit analyze` and through the library call
`analysis.write_analysis_report`, and each text file is compared with the
copy kept in
`golden_analysis/` (`tests/golden.py`: Markdown byte for byte, CSV and JSON
with floats to 1e-4, as the losses are float32 sums). Regenerate after an
intended change, and review the diff:

    PYTHONPATH=. python tests/analysis/test_analysis_report_golden.py
"""

import argparse
import contextlib
import io
import pathlib
import sys

import keras
import numpy as np
import pytest

from keras_eexit import analysis
from keras_eexit import data
from keras_eexit import models
from keras_eexit.cli import analyze
from keras_eexit.models import load_model as load_model
from tests.golden import assert_same_file

GOLDEN = pathlib.Path(__file__).parent / "golden_analysis"
ARGS = ("--resolution", "3", "--max-samples", "32")


def save_models(folder):
    """Three seeded small CNNs saved as `.keras` files."""
    paths = {}
    for seed, name in enumerate(("joint", "mixed", "disjoint")):
        keras.utils.set_random_seed(seed)
        model = models.get_model("small_cnn", width=4)
        model(np.zeros((1, 8, 8, 1), "float32"))
        paths[name] = pathlib.Path(folder) / f"{name}.keras"
        model.save(paths[name])
    return paths


def run_cli(paths, out):
    """Runs `keras-eexit analyze`; returns what it printed."""
    parser = argparse.ArgumentParser()
    analyze.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["analyze", *(
        f"--model={name}={path}" for name, path in paths.items()),
        "--out", str(out), *ARGS])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert args.handler(args) == 0
    return printed.getvalue().replace(str(out), "OUT")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return save_models(tmp_path_factory.mktemp("models"))


def assert_golden(out):
    expected = sorted(p.name for p in GOLDEN.iterdir()
                      if p.name != "printed.txt")
    written = sorted(p.name for p in out.iterdir())
    assert [n for n in written if not n.endswith(".png")] == expected
    for name in expected:
        assert_same_file(out / name, GOLDEN / name, rel=1e-4)


@pytest.mark.large
def test_analyze_renders_what_it_rendered_before(saved, tmp_path):
    out = tmp_path / "out"
    printed = run_cli(saved, out)
    assert printed == (GOLDEN / "printed.txt").read_text()
    assert_golden(out)


@pytest.mark.large
def test_library_call_renders_the_same_report(saved, tmp_path):
    out = tmp_path / "out"
    splits = data.load("digits", batch_size=256)
    written = analysis.write_analysis_report(
        {name: load_model(path) for name, path in saved.items()},
        splits.train, splits.test, out, dataset="digits", resolution=3,
        max_samples=32)
    printed = (GOLDEN / "printed.txt").read_text()
    assert printed == f"Wrote {', '.join(written)} to OUT\n"
    assert_golden(out)


def regenerate():
    """Rewrites `golden_analysis/` from the current code."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "out"
        printed = run_cli(save_models(tmp), out)
        shutil.rmtree(GOLDEN, ignore_errors=True)
        GOLDEN.mkdir()
        for path in out.iterdir():
            if path.suffix != ".png":
                shutil.copyfile(path, GOLDEN / path.name)
        (GOLDEN / "printed.txt").write_text(printed)
    print(f"wrote {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    regenerate()
