"""`analysis.write_analysis_report`: the analyses' report without the CLI."""

import json

import numpy as np
import pytest

from keras_eexit import analysis
from keras_eexit import models


@pytest.fixture(scope="module")
def two_models():
    built = {}
    for name in ("joint", "mixed"):
        model = models.get_model("small_cnn", width=4)
        model(np.zeros((1, 8, 8, 1), "float32"))
        built[name] = model
    return built


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    return (rng.random((24, 8, 8, 1)).astype("float32"),
            rng.integers(0, 10, 24))


def test_library_call_writes_figures_numbers_and_summary(two_models, arrays,
                                                         tmp_path):
    joint = {"joint": two_models["joint"]}
    written = analysis.write_analysis_report(
        joint, arrays, arrays, tmp_path / "out", analyses="mi,rank",
        max_samples=16)
    assert list(written) == ["ranks.json", "ranks.csv", "ranks.png",
                             "mutual_information.json",
                             "mutual_information.csv",
                             "mutual_information.png", "analysis.md"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        written)
    ranks = json.loads((tmp_path / "out" / "ranks.json").read_text())
    assert ranks == {"joint": analysis.layer_ranks(joint["joint"],
                                                   arrays[0][:16])}
    text = (tmp_path / "out" / "analysis.md").read_text()
    assert text.startswith("# Analyses\n\nModels: joint.\n")
    assert text.index("## Numerical rank") < text.index("## Mutual info")
    assert "Test set (16 samples)" in text
    assert "![Numerical rank per layer](ranks.png)" in text
    assert "Loss landscapes" not in text


def test_auto_chooses_by_the_number_of_models(two_models):
    one = {"joint": two_models["joint"]}
    three = {**two_models, "third": two_models["joint"]}
    assert analysis.choose_analyses(one) == ["rank", "mi", "landscape"]
    assert analysis.choose_analyses(two_models) == [
        "rank", "mi", "landscape", "paths"]
    assert analysis.choose_analyses(three)[-2:] == ["paths", "connectivity"]
    assert analysis.choose_analyses(one, ["mi", " rank "]) == ["mi", "rank"]


@pytest.mark.parametrize("kwargs, message", [
    ({"analyses": "connectivity"}, "exactly three models; received 2"),
    ({"analyses": "rank,wobble"}, "analyses"),
    ({"resolution": 0}, "resolution"),
    ({"max_samples": -1}, "max_samples"),
    ({"mi_estimator": "kde"}, "mi_estimator"),
])
def test_bad_requests_are_refused_before_any_work(two_models, arrays,
                                                  tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        analysis.write_analysis_report(two_models, arrays, arrays,
                                       tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_paths_need_two_models_and_models_must_be_a_dict(two_models):
    with pytest.raises(ValueError, match="at least two models"):
        analysis.choose_analyses({"joint": two_models["joint"]}, "paths")
    with pytest.raises(ValueError, match="models"):
        analysis.choose_analyses([two_models["joint"]])
