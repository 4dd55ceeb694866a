"""Deprecated names kept for one release after a rename.

A renamed public object keeps its old name for one release: reading the old
name returns the new object and emits a `DeprecationWarning` that names the
replacement. `DEPRECATED` records every such name, so the public API listing
(`keras_eexit.testing.api_listing`) shows them and a test checks that each
one warns and that no code of the project still uses it.
"""

import sys
import types
import warnings

DEPRECATED = {}
"""`{old dotted name: new dotted name}` of every deprecated alias."""


def _warn(old, new):
    warnings.warn(
        f"`{old}` is deprecated and will be removed in the next release; "
        f"use `{new}` instead.", DeprecationWarning, stacklevel=3)


def deprecated_aliases(module_name, aliases):
    """Builds a module `__getattr__` serving renamed objects by old names.

    Args:
        module_name: the module's `__name__`.
        aliases: `{old_name: new_name}`; `new_name` is an attribute of the
            same module.

    Returns:
        A function to assign to the module's `__getattr__`: reading an old
        name warns (`DeprecationWarning` naming the new name) and returns
        the new object; any other missing name raises `AttributeError`.

    Example:

    ```python
    # in keras_eexit/regimes/__init__.py
    __getattr__ = deprecated_aliases(__name__,
                                     {"Sequential": "SequentialRegime"})
    ```
    """
    aliases = dict(aliases)
    for old, new in aliases.items():
        DEPRECATED[f"{module_name}.{old}"] = f"{module_name}.{new}"

    def __getattr__(name):
        if name not in aliases:
            raise AttributeError(
                f"module {module_name!r} has no attribute {name!r}")
        _warn(f"{module_name}.{name}", f"{module_name}.{aliases[name]}")
        return getattr(sys.modules[module_name], aliases[name])

    return __getattr__


def deprecated_module_call(module_name, function_name):
    """Lets a module still be called as the function that used to hide it.

    Before a rename, a package attribute could be a function named like its
    module (`keras_eexit.evaluation.sweep`), which hid the module. After it,
    the attribute is the module again; calling the module calls the renamed
    function with a `DeprecationWarning`, for one release.

    Args:
        module_name: the module's `__name__`.
        function_name: the function of that module that calls go to.

    Example:

    ```python
    # at the end of keras_eexit/evaluation/sweep.py
    deprecated_module_call(__name__, "threshold_sweep")
    ```
    """
    old = f"{module_name}(...)"
    new = f"{module_name.rpartition('.')[0]}.{function_name}(...)"
    DEPRECATED[old] = new

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            _warn(old, new)
            return getattr(self, function_name)(*args, **kwargs)

    sys.modules[module_name].__class__ = CallableModule
