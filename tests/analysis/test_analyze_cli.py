"""`keras-eexit analyze` on saved models: figures and numbers."""

import argparse
import json

import keras
import numpy as np
import pytest

from keras_eexit import models
from keras_eexit.cli import analyze


def _run(argv):
    parser = argparse.ArgumentParser()
    analyze.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["analyze", *argv])
    return args.handler(args)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for seed, name in enumerate(("joint", "mixed", "disjoint")):
        keras.utils.set_random_seed(seed)
        model = models.get_model("small_cnn", width=4)
        model(np.zeros((1, 8, 8, 1), "float32"))
        paths[name] = folder / f"{name}.keras"
        model.save(paths[name])
    return paths


@pytest.mark.large
def test_every_analysis_writes_figures_and_numbers(saved, tmp_path):
    out = tmp_path / "analysis"
    argv = [f"--model={name}={path}" for name, path in saved.items()]
    assert _run([*argv, "--out", str(out), "--resolution", "3",
                 "--max-samples", "48"]) == 0
    names = {p.name for p in out.iterdir()}
    for stem in ("ranks", "mutual_information"):
        assert {f"{stem}.png", f"{stem}.json", f"{stem}.csv"} <= names
    assert {"landscapes.png", "landscapes.json", "paths.png", "paths.json",
            "connectivity.png", "connectivity.json", "analysis.md"} <= names
    ranks = json.loads((out / "ranks.json").read_text())
    assert set(ranks) == set(saved)
    assert list(ranks["joint"]) == ["stage1_conv", "stage2_conv",
                                    "stage3_conv"]
    plane = json.loads((out / "connectivity.json").read_text())
    assert plane["names"] == ["joint", "mixed", "disjoint"]
    assert np.asarray(plane["losses"]).shape == (3, 3, 3)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_bad_requests_are_refused_before_any_work(saved, tmp_path):
    out = tmp_path / "nothing"
    one = f"--model=joint={saved['joint']}"
    with pytest.raises(ValueError, match="exactly three models"):
        _run([one, "--analyses", "connectivity", "--out", str(out)])
    with pytest.raises(ValueError, match="analyses"):
        _run([one, "--analyses", "rank,wobble", "--out", str(out)])
    with pytest.raises(ValueError, match="labelled 'joint'"):
        _run([one, one, "--out", str(out)])
    assert not out.exists()


def test_model_that_does_not_fit_the_data_is_refused(saved, tmp_path):
    with pytest.raises(ValueError, match="Model 'joint'"):
        _run([f"--model=joint={saved['joint']}", "--dataset", "mnist1d",
              "--num-samples", "200", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_paths_with_recomputed_batchnorm_statistics(saved, tmp_path):
    out = tmp_path / "paths"
    argv = [f"--model={name}={saved[name]}" for name in ("joint", "mixed")]
    assert _run([*argv, "--analyses", "paths", "--batchnorm", "recompute",
                 "--max-samples", "32", "--out", str(out)]) == 0
    paths = json.loads((out / "paths.json").read_text())
    assert [p["batchnorm"] for p in paths.values()] == ["recompute"]
    assert "recomputed at every point" in (out / "analysis.md").read_text()
