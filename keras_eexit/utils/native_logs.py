"""Quiet TensorFlow's native start-up lines under the `keras-eexit` command.

TensorFlow 2.21 logs through absl before absl is initialised, so its
start-up lines ("All log messages before absl::InitializeLog()", the CUDA
driver probe, oneDNN and CPU-feature notes) reach stderr whatever
`TF_CPP_MIN_LOG_LEVEL` says. Under the command line, and only when the user
has not set `TF_CPP_MIN_LOG_LEVEL` themselves, `for_command_line` sets it
to 2 and imports TensorFlow with the process's stderr captured; the native
lines below error level, and the driver probe's error on machines without a
GPU, are dropped, everything else is written back. `quiet()` does the same
around the first TensorFlow operation (device set-up), where the CUDA probe
logs again.

This module must not import TensorFlow at module level: the package's
`__init__` imports it first.
"""

import contextlib
import os
import re
import sys
import tempfile

LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
_ACTIVE = False

# absl/glog prefixes: I(nfo), W(arning), E(rror), F(atal) + MMDD.
_PREFIX = re.compile(r"^[IWEF]\d{4} ")
_NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog"),
    re.compile(r"^[IW]\d{4} "),
    re.compile(r"^E\d{4} .*(cuInit|cuda_platform|cuda drivers|CUDA error)"),
)


def _is_command_line(argv, orig_argv):
    if argv and os.path.basename(argv[0]) == "keras-eexit":
        return True
    return any(a == "-m" and b in ("keras_eexit", "keras_eexit.cli.main")
               for a, b in zip(orig_argv, orig_argv[1:]))


def filter_lines(text):
    """`text` without TensorFlow's native start-up noise.

    Args:
        text: captured stderr.

    Returns:
        The lines to show, joined (continuation lines of a dropped log line
        are dropped with it).
    """
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        if any(p.match(line) for p in _NOISE):
            dropping = True
            continue
        if dropping and not _PREFIX.match(line) and line.strip() and \
                not line.startswith(("Traceback", "WARNING:")):
            continue  # e.g. "To enable the following instructions: ..."
        dropping = False
        kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def quiet():
    """Captures fd 2 in the block and writes back what is not noise.

    A no-op unless `for_command_line` switched quieting on.
    """
    if not _ACTIVE:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = filter_lines(capture.read().decode("utf-8", "replace"))
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


def child_environ(environ):
    """`environ` for a child `keras-eexit`, which quiets TensorFlow itself.

    The level this module set is dropped (the user's own is kept), so the
    child sees the user's choice, not ours.
    """
    environ = dict(environ)
    if _ACTIVE:
        environ.pop(LEVEL_ENV, None)
    return environ


def initialize_devices():
    """Sets TensorFlow's devices up now (call it inside `quiet()`)."""
    import tensorflow as tf

    tf.config.list_logical_devices()


def for_command_line(argv=None, orig_argv=None, environ=None):
    """Imports TensorFlow quietly when this process is `keras-eexit`.

    Called by `keras_eexit/__init__.py` before anything imports
    TensorFlow. Does nothing for library use, or when the user set
    `TF_CPP_MIN_LOG_LEVEL` (their choice wins).

    Returns:
        Whether quieting is on.
    """
    global _ACTIVE
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else \
        orig_argv
    environ = os.environ if environ is None else environ
    if LEVEL_ENV in environ or not _is_command_line(argv, orig_argv) or \
            "tensorflow" in sys.modules:
        return False
    environ[LEVEL_ENV] = "2"
    _ACTIVE = True
    with quiet():
        import tensorflow  # noqa: F401
    return True
