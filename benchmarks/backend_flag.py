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


def select_from_argv(argv=None):
    """Sets `KERAS_BACKEND` from `--backend` (default: the environment's,
    else TensorFlow) and returns it; other arguments are left alone.

    Args:
        argv: the arguments (default `sys.argv[1:]`).

    Returns:
        The selected backend name.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--backend", choices=CHOICES,
                        default=os.environ.get("KERAS_BACKEND",
                                               "tensorflow"))
    args = sys.argv[1:] if argv is None else argv
    backend = parser.parse_known_args(args)[0].backend
    os.environ["KERAS_BACKEND"] = backend
    return backend
