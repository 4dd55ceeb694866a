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


def _package_imports():
    """`{sub-package: sub-packages it imports}` read from the source."""
    import ast
    import pathlib

    root = pathlib.Path(keras_eexit.__file__).parent
    edges = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        source = parts[0]
        targets = edges.setdefault(source, set())
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [
                    f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                pieces = name.split(".")
                if pieces[0] == "keras_eexit" and len(pieces) > 1 and (
                        pieces[1] != source):
                    targets.add(pieces[1])
    return edges


def test_no_import_circle_between_packages():
    edges = _package_imports()
    seen, cycles = {}, []

    def visit(node, path):
        state = seen.get(node)
        if state == "done":
            return
        if state == "open":
            cycles.append(path[path.index(node):] + [node])
            return
        seen[node] = "open"
        for target in sorted(edges.get(node, ())):
            if target in edges:
                visit(target, path + [node])
        seen[node] = "done"

    for node in sorted(edges):
        visit(node, [])
    assert not cycles, f"import circles between packages: {cycles}"


def test_no_private_keras_or_tensorflow_name_outside_compat():
    import pathlib
    import re

    root = pathlib.Path(keras_eexit.__file__).parent
    private = re.compile(
        r"^\s*(from|import)\s+(keras\.src|tensorflow\.python)\b", re.M)
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "compat.py" and private.search(p.read_text())]
    assert not offenders, offenders
