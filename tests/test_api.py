"""The public API: `__all__` in every package, a generated listing kept
current, renamed names that warn for one release, one meaning per name."""

import ast
import importlib
import os
import pathlib
import pkgutil
import re
import subprocess
import sys
import types

import keras
import numpy as np
import pytest

import keras_eexit
from keras_eexit.testing import api_listing
from keras_eexit.utils.deprecation import DEPRECATED

ROOT = pathlib.Path(keras_eexit.__file__).parents[1]
PACKAGES = ["keras_eexit"] + sorted(
    f"keras_eexit.{m.name}" for m in pkgutil.iter_modules(keras_eexit.__path__)
    if m.ispkg and not m.name.startswith("_"))

# (module, old name, new name): every alias of DEPRECATED, checked below.
RENAMED = [
    ("keras_eexit.regimes", "Sequential", "SequentialRegime"),
    ("keras_eexit.losses", "Distillation", "ExitDistillation"),
    ("keras_eexit.evaluation.sweep", "sweep", "threshold_sweep"),
]


def test_listing_is_current():
    # A fresh process: registrations made by other tests do not count.
    path = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-m", "keras_eexit.testing.api_listing", "--check"],
        capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, (
        (done.stdout or done.stderr[-2000:]) + "(or run `scripts/api_gen`)")


def test_listing_command_checks_and_writes(tmp_path):
    path = tmp_path / "api.txt"
    path.write_text("stale\n")
    assert api_listing.main(["--check", "--output", str(path)]) == 1
    assert api_listing.main(["--output", str(path)]) == 0
    assert path.read_text() == api_listing.api_listing()
    assert api_listing.main(["--check", "--output", str(path)]) == 0


def test_listing_has_signatures_and_no_addresses():
    text = api_listing.api_listing()
    assert "threshold_sweep: function (probs, labels=None" in text
    assert "SequentialRegime: class(Regime) (epochs_per_exit" in text
    assert "keras_eexit.regimes.Sequential -> " in text
    assert not re.search(r"0x[0-9a-f]{6,}", text)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_package_declares_its_public_names(name):
    package = importlib.import_module(name)
    assert isinstance(getattr(package, "__all__", None), list), (
        f"{name} has no `__all__`")
    names = package.__all__
    assert len(names) == len(set(names)), f"{name}.__all__ repeats names"
    missing = [n for n in names if not hasattr(package, n)]
    assert not missing, f"{name}.__all__ lists missing names: {missing}"
    defined_here = [
        n for n, value in vars(package).items()
        if not n.startswith("_") and not isinstance(value, types.ModuleType)
        and (getattr(value, "__module__", None) or "").startswith(name)
        and n not in names]
    assert not defined_here, (
        f"{name} defines public names left out of `__all__`: {defined_here}")


def test_criteria_means_the_same_dict_everywhere():
    assert keras_eexit.evaluation.CRITERIA is keras_eexit.criteria.CRITERIA
    assert keras_eexit.export.CRITERIA is keras_eexit.criteria.CRITERIA


def test_a_public_name_means_one_thing():
    keras_names = {n for n in dir(keras) if not n.startswith("_")
                   and not isinstance(getattr(keras, n), types.ModuleType)}
    first, clashes = {}, []
    for module_name in api_listing.public_modules():
        if module_name not in PACKAGES:
            continue
        package = importlib.import_module(module_name)
        for name in package.__all__:
            value = getattr(package, name)
            if isinstance(value, types.ModuleType):
                continue
            if name in keras_names:
                clashes.append(f"{module_name}.{name} shadows keras.{name}")
            owner, known = first.setdefault(name, (module_name, value))
            if known is not value:
                clashes.append(f"{module_name}.{name} is not {owner}.{name}")
    assert not clashes, clashes


def test_every_deprecated_alias_is_tested_here():
    tested = {f"{m}.{old}" for m, old, _ in RENAMED}
    tested.add("keras_eexit.evaluation.sweep(...)")
    assert set(DEPRECATED) == tested


@pytest.mark.parametrize("module_name, old, new", RENAMED)
def test_old_name_warns_and_is_the_new_object(module_name, old, new):
    module = importlib.import_module(module_name)
    with pytest.warns(DeprecationWarning,
                      match=rf"`{module_name}\.{new}`") as caught:
        value = getattr(module, old)
    assert value is getattr(module, new)
    assert caught[0].filename == __file__  # points at the caller's line
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        getattr(module, "NoSuchName")


def test_evaluation_sweep_is_the_module_and_calling_it_warns():
    from keras_eexit import evaluation

    assert isinstance(evaluation.sweep, types.ModuleType)
    assert evaluation.sweep.Sweep is evaluation.Sweep
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=(3, 30))
    labels, flops = rng.integers(0, 4, 30), [1.0, 2.0, 3.0]
    with pytest.warns(DeprecationWarning,
                      match=r"evaluation\.threshold_sweep\(\.\.\.\)"):
        old = evaluation.sweep(probs, labels, flops, thresholds=11)
    new = evaluation.threshold_sweep(probs, labels, flops, thresholds=11)
    np.testing.assert_array_equal(old.accuracy, new.accuracy)
    np.testing.assert_array_equal(old.exit_ratios, new.exit_ratios)


def _deprecated_uses(path, names, calls):
    """`[(line, old name)]` of deprecated names a Python file uses."""
    tree = ast.parse(path.read_text())
    bound, found = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                bound[alias.asname or alias.name] = full
                if full in names:
                    found.append((node.lineno, full))

    def dotted(node):
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        if isinstance(node, ast.Attribute):
            base = dotted(node.value)
            return base and f"{base}.{node.attr}"
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and dotted(node) in names:
            found.append((node.lineno, dotted(node)))
        if isinstance(node, ast.Call) and dotted(node.func) in calls:
            found.append((node.lineno, f"{dotted(node.func)}(...)"))
    return found


def test_the_project_uses_no_deprecated_name():
    names = {old for old in DEPRECATED if not old.endswith("(...)")}
    calls = {old.removesuffix("(...)") for old in DEPRECATED
             if old.endswith("(...)")}
    sources = [p for folder in ("keras_eexit", "tests", "examples",
                                "benchmarks")
               for p in sorted((ROOT / folder).rglob("*.py"))
               if p != pathlib.Path(__file__)]
    uses = [f"{p.relative_to(ROOT)}:{line}: {old} -> {DEPRECATED[old]}"
            for p in sources
            for line, old in _deprecated_uses(p, names, calls)]
    # Documentation: the dotted spellings (`regimes.Sequential`,
    # `evaluation.sweep(`), except in the README's table of renames.
    for doc in [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")):
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            uses += [f"{doc.relative_to(ROOT)}:{number}: {old} -> "
                     f"{DEPRECATED[old]}"
                     for old in DEPRECATED
                     if _doc_pattern(old).search(line)
                     and not line.startswith(f"| `{_short(old)}")]
    assert not uses, "deprecated names still used:\n" + "\n".join(
        sorted(uses))


def _short(old):
    """`regimes.Sequential` for `keras_eexit.regimes.Sequential`."""
    return ".".join(old.removesuffix("(...)").split(".")[-2:])


def _doc_pattern(old):
    end = r"\(" if old.endswith("(...)") else r"\b"
    return re.compile(r"\b" + re.escape(_short(old)) + end)
