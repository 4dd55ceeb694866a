"""The public API of keras-eexit as text, checked in as `docs/api.txt`.

Like Keras' `api_gen`, the listing is generated, not written: every public
name of every public module, with its kind and call signature, then the
deprecated aliases. A test compares it with the checked-in file, so a
change of the public API is visible in review and needs one command:

    python -m keras_eexit.testing.api_listing        # or scripts/api_gen

Public modules are `keras_eexit`, each sub-package, and each module of
keras-eexit named in a public module's `__all__` (such as
`keras_eexit.chain`); their names are `__all__` where a module defines it
(every package does), otherwise every name the module itself defines
without a leading underscore. Signatures are given for keras-eexit's own
classes and functions only, and nothing depends on memory addresses or on
the Keras and TensorFlow versions, so the listing is the same on every
machine.

Example:

```python
from keras_eexit.testing import api_listing

text = api_listing.api_listing()
print(text.splitlines()[0])
```
"""

import argparse
import difflib
import importlib
import inspect
import pathlib
import pkgutil
import re
import sys
import types

import keras_eexit
from keras_eexit.utils.deprecation import DEPRECATED

PACKAGE = "keras_eexit"
COMMAND = "python -m keras_eexit.testing.api_listing"
"""The command that regenerates the checked-in listing."""

LISTING = pathlib.Path(keras_eexit.__file__).parents[1] / "docs" / "api.txt"
"""Where the listing is checked in (`docs/api.txt` of the source tree)."""

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_SCALARS = (bool, int, float, str, type(None))


def _ours(obj):
    return getattr(obj, "__module__", "").split(".")[0] == PACKAGE


def public_names(module):
    """The public names of a module.

    Args:
        module: a module of keras-eexit.

    Returns:
        Its `__all__` as a list, or, where it has none, the sorted names
        without a leading underscore that the module itself defines
        (imported classes, functions and modules excluded).
    """
    if hasattr(module, "__all__"):
        return list(module.__all__)
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        defined_here = getattr(value, "__module__", module.__name__)
        if (inspect.isclass(value) or callable(value)) and (
                defined_here != module.__name__):
            continue
        names.append(name)
    return sorted(names)


def public_modules():
    """The public modules of keras-eexit, by name.

    Returns:
        A sorted list: `keras_eexit`, its sub-packages (names without a
        leading underscore), and every keras-eexit module named in the
        `__all__` of one of them, transitively.
    """
    found = {PACKAGE}
    found.update(f"{PACKAGE}.{m.name}"
                 for m in pkgutil.iter_modules(keras_eexit.__path__)
                 if m.ispkg and not m.name.startswith("_"))
    pending = sorted(found)
    while pending:
        module = importlib.import_module(pending.pop())
        for name in public_names(module):
            value = getattr(module, name)
            if (isinstance(value, types.ModuleType)
                    and value.__name__.split(".")[0] == PACKAGE
                    and value.__name__ not in found):
                found.add(value.__name__)
                pending.append(value.__name__)
    return sorted(found)


def _signature(function, drop_first=False):
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return "(...)"
    if drop_first:
        parameters = list(signature.parameters.values())[1:]
        signature = signature.replace(parameters=parameters)
    return _ADDRESS.sub("", str(signature))


def _class_entry(cls):
    bases = ", ".join(base.__name__ for base in cls.__bases__)
    owner = next(c for c in cls.__mro__ if "__init__" in vars(c))
    if _ours(owner):
        signature = _signature(vars(owner)["__init__"], drop_first=True)
    elif owner is object:
        signature = "()"
    else:
        signature = f"(inherits {owner.__name__}.__init__)"
    return f"class({bases}) {signature}"


def _value_entry(value):
    kind = type(value).__name__
    if isinstance(value, _SCALARS):
        return f"{kind} = {value!r}"
    if isinstance(value, (tuple, list, frozenset, set)) and all(
            isinstance(v, _SCALARS) for v in value):
        items = sorted(value) if isinstance(value, (set, frozenset)) else (
            value)
        return f"{kind} = {list(items)!r}"
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return f"{kind} with keys {sorted(value)!r}"
    return kind


def entry(value):
    """One public object as text: its kind and, if it has one, signature.

    Args:
        value: a public object.

    Returns:
        A string such as `"function (probs, labels=None)"`,
        `"class(Regime) (epochs=1)"`, `"module keras_eexit.chain"` or
        `"float = 0.001"`.
    """
    if isinstance(value, types.ModuleType):
        return f"module {value.__name__}"
    if inspect.isclass(value):
        if not _ours(value):
            return f"class from {value.__module__.split('.')[0]}"
        return _class_entry(value)
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        if not _ours(value):
            return f"function from {value.__module__.split('.')[0]}"
        return f"function {_signature(value)}"
    return _value_entry(value)


def api_listing():
    """The listing of the public API, as checked into `docs/api.txt`.

    Returns:
        The text: a header naming `COMMAND`, a section per public module
        (`[keras_eexit.regimes]`, then one `name: kind signature` line per
        public name, sorted), and the deprecated aliases.
    """
    lines = [
        "# The public API of keras-eexit. Generated: do not edit; after a",
        f"# change of the API run `{COMMAND}`.",
    ]
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        lines += ["", f"[{module_name}]"]
        for name in sorted(public_names(module)):
            lines.append(f"{name}: {entry(getattr(module, name))}")
    lines += ["", "[deprecated: removed in the next release]"]
    lines += [f"{old} -> {new}" for old, new in sorted(DEPRECATED.items())]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Writes the listing (or, with `--check`, compares it).

    Args:
        argv: command-line arguments (`[--check] [--output PATH]`).

    Returns:
        The exit code: 0, or 1 when `--check` finds the file out of date
        (it then prints the difference).
    """
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Write the public API listing.")
    parser.add_argument("--output", type=pathlib.Path, default=LISTING,
                        help=f"where to write it (default: {LISTING})")
    parser.add_argument("--check", action="store_true",
                        help="only check that the file is up to date")
    args = parser.parse_args(argv)
    text = api_listing()
    current = args.output.read_text() if args.output.exists() else None
    if args.check:
        if current != text:
            diff = difflib.unified_diff(
                (current or "").splitlines(True), text.splitlines(True),
                str(args.output), "generated", n=0)
            print(f"{args.output} is out of date (the public API changed): "
                  f"run `{COMMAND}` and commit it.\n"
                  + "".join(list(diff)[:60]))
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
