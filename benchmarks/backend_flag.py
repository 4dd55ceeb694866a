"""`--backend` for the benchmark scripts, read before Keras is imported.

Keras fixes its backend when it is first imported, so a script that takes
`--backend` must set `KERAS_BACKEND` before its first `import keras`:

    import backend_flag
    backend_flag.select_from_argv()   # then: import keras
"""

import argparse
import os
import sys

CHOICES = ("tensorflow", "jax")
"""The backends every benchmark takes (a script may take more)."""


def select_from_argv(argv=None, choices=CHOICES):
    """Sets `KERAS_BACKEND` from `--backend` (default: the environment's,
    else TensorFlow) and returns it; other arguments are left alone.

    Args:
        argv: the arguments (default `sys.argv[1:]`).
        choices: the backends the script takes.

    Returns:
        The selected backend name.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--backend", choices=choices,
                        default=os.environ.get("KERAS_BACKEND",
                                               "tensorflow"))
    args = sys.argv[1:] if argv is None else argv
    backend = parser.parse_known_args(args)[0].backend
    os.environ["KERAS_BACKEND"] = backend
    return backend
