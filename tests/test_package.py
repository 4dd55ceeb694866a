"""`import keras_eexit` reaches every public sub-package."""

import importlib
import pkgutil

import keras_eexit


def test_every_public_subpackage_is_an_attribute():
    names = [m.name for m in pkgutil.iter_modules(keras_eexit.__path__)
             if m.ispkg and not m.name.startswith("_")]
    missing = [n for n in names
               if n != "cli" and not hasattr(keras_eexit, n)]
    assert not missing, f"not reachable from `import keras_eexit`: {missing}"


def test_top_level_shortcuts():
    assert keras_eexit.load_model is importlib.import_module(
        "keras_eexit.models").load_model
    assert keras_eexit.get_model is keras_eexit.models.get_model
    assert keras_eexit.MultiExitModel is keras_eexit.models.MultiExitModel
