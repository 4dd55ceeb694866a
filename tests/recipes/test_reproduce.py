"""`keras-eexit reproduce`: listing, printing, refusing, running, resuming."""

import csv
import dataclasses
import json

import keras
import pytest

from keras_eexit import recipes
from keras_eexit.cli.main import main


def test_list_names_every_recipe(capsys):
    assert main(["reproduce", "--list"]) == 0
    listed = [line.split("\t")[0]
              for line in capsys.readouterr().out.splitlines()]
    assert listed == recipes.names()
    for prefix in ("kubaty_", "zniber_", "rahmath_", "damping_"):
        assert any(n.startswith(prefix) for n in listed), prefix


def test_print_config_is_one_json_object(capsys):
    assert main(["reproduce", "damping_msdnet_cifar100",
                 "--print-config"]) == 0
    settings = json.loads(capsys.readouterr().out)
    assert settings["optimizer"] == {
        "name": "sgd", "learning_rate": 0.1, "momentum": 0.9,
        "nesterov": False, "weight_decay": 0.0, "clipnorm": None}
    assert settings["schedule"]["name"] == "cosine"
    assert settings["batch_size"] == 64 and settings["epochs"] == 300
    assert "004_c3d7fba32766f10f.txt:L834" in settings["sources"]["epochs"]


def test_unknown_recipe_is_refused_with_the_names(capsys):
    assert main(["reproduce", "kubaty_resnet", "--print-config"]) == 2
    error = capsys.readouterr().err
    assert "kubaty_resnet34_cifar10" in error


@pytest.mark.parametrize("data_dir", [None, "missing"])
def test_missing_data_fails_at_once(tmp_path, capsys, data_dir):
    out = tmp_path / "out"
    argv = ["reproduce", "kubaty_resnet34_cifar100", "--out", str(out)]
    if data_dir is not None:
        argv += ["--data-dir", str(tmp_path / data_dir)]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "cifar-100-python.tar.gz" in error and "tfds build" in error
    assert not out.exists()  # refused before anything was written


def test_an_empty_data_dir_names_what_to_put_there(tmp_path, capsys):
    assert main(["reproduce", "zniber_resnet34_cifar100", "--data-dir",
                 str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "is not in" in error and "cifar-100-python" in error


def test_a_model_the_zoo_lacks_is_refused(monkeypatch, tmp_path):
    from keras_eexit import models

    (tmp_path / "imagenet2012").mkdir()
    monkeypatch.delitem(models.MODELS, "msdnet_imagenet", raising=False)
    with pytest.raises(ValueError, match="msdnet_imagenet"):
        recipes.reproduce("damping_msdnet_imagenet", data_dir=str(tmp_path),
                          out=str(tmp_path / "out"), verbose=0)


DAMPING = [n for n in recipes.names() if n.startswith("damping_")]


class _Loaded(Exception):
    """Raised where a run would start loading data."""


@pytest.mark.parametrize("name", DAMPING)
def test_damping_recipes_pass_the_checks_of_a_full_run(name, monkeypatch,
                                                        tmp_path):
    # Their Damping / Power-sqrt / Dynamic arms need damping heads: every
    # paper architecture (MSDNet, RANet) builds them, so the full run gets
    # past its checks to loading the data.
    from keras_eexit.recipes import data as data_lib

    def loader(*args):
        raise _Loaded

    monkeypatch.setattr(data_lib, "check_data_dir", lambda *args: None)
    monkeypatch.setattr(data_lib, "loader", loader)
    recipe = recipes.get(name)
    assert any(a.regime_params.get("loss") for a in recipe.arms)
    with pytest.raises(_Loaded):
        recipes.reproduce(recipe, data_dir=str(tmp_path),
                          out=str(tmp_path / "out"), verbose=0)


def test_a_damping_arm_on_a_model_without_damping_heads_is_refused(
        monkeypatch, tmp_path):
    from keras_eexit import models
    from keras_eexit.recipes import data as data_lib

    def plain_msdnet(num_classes=100, exits=7):
        return None

    monkeypatch.setattr(data_lib, "check_data_dir", lambda *args: None)
    monkeypatch.setitem(models.MODELS, "msdnet_cifar", plain_msdnet)
    with pytest.raises(ValueError, match="no damping heads"):
        recipes.reproduce("damping_msdnet_cifar100", data_dir=str(tmp_path),
                          out=str(tmp_path / "out"), verbose=0)
    assert not (tmp_path / "out").exists()  # refused before writing


def _csv_rows(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


class _Starts(keras.callbacks.Callback):
    """Counts `fit` calls (one per run trained)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def on_train_begin(self, logs=None):
        self.count += 1


def test_smoke_run_killed_in_its_second_run_resumes_there(tmp_path):
    # Kubaty et al.'s ViT recipe with two of its arms, at smoke scale.
    recipe = recipes.get("kubaty_vit_cifar10")
    recipe = dataclasses.replace(recipe, arms=recipe.arms[:2])
    out = str(tmp_path / "vit")
    starts = _Starts()
    messages = []

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if starts.count == 2:  # the second run: disjoint
                raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        recipes.reproduce(recipe, scale="smoke", out=out, verbose=0,
                          callbacks=[starts, Crash()], log=messages.append)
    assert starts.count == 2
    starts.count = 0
    summary = recipe.run(scale="smoke", out=out, verbose=0,
                         callbacks=[starts], log=messages.append)
    # joint finished before the crash (not retrained); disjoint resumed at
    # its saved epoch: one `fit` call.
    assert starts.count == 1
    assert any(m.startswith("Resuming the interrupted run") and
               "disjoint" in m for m in messages)
    disjoint = [r for r in summary["records"] if r["regime"] == "disjoint"]
    # The whole history: the epoch before the crash and those after.
    assert disjoint[0]["epochs"] == len(disjoint[0]["history"]["loss"]) > 1
    assert [r["regime"] for r in summary["records"]] == ["joint",
                                                         "disjoint"]
    report = (tmp_path / "vit" / "report.md").read_text()
    assert report.count("NOT comparable") >= 2  # top and results table
    rows = _csv_rows(summary["files"]["csv"])
    assert {r["arm"] for r in rows} == {"joint", "disjoint"}
    assert {r["column"] for r in rows} == {"25%", "50%", "75%", "100%",
                                           "max"}
    assert all(r["differs"].startswith("SMOKE") for r in rows)
    assert (tmp_path / "vit" / "comparison" / "report.md").is_file()


# Every recipe runs end to end at smoke scale in the suite. CI runs the
# cheapest (the BERT set-up: three arms of a 2-layer text transformer; it
# also runs the cosine per phase); kubaty_vit_cifar10 runs in CI above,
# two arms killed and resumed. The others (up to twelve arms) are slow.
CI_SMOKE = ("kubaty_bert_sst2",)
SMOKE = [pytest.param(n, marks=() if n in CI_SMOKE else pytest.mark.slow)
         for n in recipes.names()]


@pytest.mark.parametrize("name", SMOKE)
def test_every_recipe_runs_at_smoke_scale(name, tmp_path):
    recipe = recipes.get(name)
    if name in DAMPING:
        # The damping paper's networks, narrowed, with damping heads.
        assert recipe.settings("smoke")["model"] == recipe.model
    summary = recipe.run(scale="smoke", out=str(tmp_path), verbose=0)
    labels = {a.label for a in recipe.arms}
    assert {r["regime"] for r in summary["records"]} == labels
    rows = _csv_rows(summary["files"]["csv"])
    assert {r["arm"] for r in rows} == labels
    assert all(r["differs"].startswith("SMOKE") for r in rows)
    ours = {r["column"] for r in rows}
    if any(set(t.columns) & ours and set(t.rows) & {a.row for a in
                                                   recipe.arms}
           for t in recipe.paper_tables):
        assert any(r["paper"] for r in rows)  # transcribed cells matched
    comparison = (tmp_path / "comparison" / "report.md").read_text()
    for label in labels:
        assert f"| {label} |" in comparison, label


def test_ci_smoke_recipes_exist():
    assert set(CI_SMOKE) <= set(recipes.names())


def test_epochs_per_phase_caps_every_phase():
    # Kubaty et al.'s recipes (the authors' train.py): each phase its own
    # `epochs` (BERT, appendix D.4: 5; CIFAR: 1000); Zniber et al.'s split
    # their budget over the phases.
    bert = recipes.get("kubaty_bert_sst2")
    config = bert.config(bert.arms[0], 0, bert.settings("full"))
    assert config.convergence.max_epochs == 5
    assert config.schedule == "cosine"
    for name in ("kubaty_resnet34_cifar10", "kubaty_vit_cifar10",
                 "kubaty_msdnet_cifar100", "kubaty_methods_vit_cifar10"):
        recipe = recipes.get(name)
        config = recipe.config(recipe.arms[0], 0, recipe.settings("full"))
        assert config.convergence.max_epochs == 1000, name
    zniber = recipes.get("zniber_resnet34_cifar100")
    config = zniber.config(zniber.arms[0], 0, zniber.settings("full"))
    assert config.convergence.max_epochs is None
    with pytest.raises(ValueError, match="early_stopping"):
        dataclasses.replace(bert, early_stopping=None)


def test_an_out_with_runs_of_other_settings_is_refused(tmp_path):
    # Its finished runs would otherwise be read back as this recipe's.
    settings = recipes.get("rahmath_vgg_cifar10").settings("smoke")
    settings["model_params"] = {"width": 4}
    settings["seeds"] = [7]
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    with pytest.raises(ValueError, match=r"\(model_params differ\)"):
        recipes.reproduce("rahmath_vgg_cifar10", scale="smoke",
                          out=str(tmp_path), verbose=0)
    assert not (tmp_path / "runs").exists()
