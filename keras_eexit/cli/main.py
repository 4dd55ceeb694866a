"""The `keras-eexit` command line: parse → configuration → runner.

Every sub-command is a module of `keras_eexit.cli` with two functions:
`add_parser(subparsers)` (adds its `argparse` sub-parser and sets
`handler=run` on it) and `run(args)` (returns the exit code). A new
sub-command is one module plus its name in `SUBCOMMANDS`.
"""

import argparse
import importlib
import signal
import sys

from keras_eexit.utils import interrupts

SUBCOMMANDS = ("train", "evaluate", "compare", "export", "profile",
               "analyze", "reproduce")
"""Sub-command modules, in `--help` order (absent ones are skipped)."""

SETS_UP_DEVICES = ("train", "compare")
"""Sub-commands that set TensorFlow's devices up themselves: a distribution
strategy (multi-worker above all) must be made before the first device
operation. Every other sub-command has its devices set up, quietly, first."""


Terminated = interrupts.Terminated
"""SIGTERM, raised like Ctrl-C so runs stop the same way."""


def _modules():
    for name in SUBCOMMANDS:
        module_name = f"keras_eexit.cli.{name}"
        try:
            yield importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-eexit",
        description="Early-exit neural networks for Keras 3: train a "
        "multi-exit model and report per-exit accuracy and cost.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in _modules():
        module.add_parser(sub)
    return parser


def describe_os_error(error):
    """One line for an `OSError`: what went wrong and with which path.

    Example:

    >>> describe_os_error(NotADirectoryError(20, "Not a directory", "/f/x"))
    "Not a directory: '/f/x' (cannot read or write it)"
    """
    if error.strerror and error.filename:
        return f"{error.strerror}: {error.filename!r} (cannot read or " \
            "write it)"
    return str(error)


def _initialize_devices_quietly():
    """TensorFlow probes for a GPU at its first device operation and logs
    the failed CUDA call on CPU machines; under the command line that line
    is filtered (`utils.native_logs`), so it is done here, inside `quiet()`.
    """
    from keras_eexit.utils import native_logs

    with native_logs.quiet():
        native_logs.initialize_devices()


def main(argv=None):
    """Entry point of the `keras-eexit` console script.

    Args:
        argv: argument list (defaults to `sys.argv[1:]`).

    Returns:
        The process exit code: 0 on success, 2 for bad input (one message
        naming the problem), 1 for an unwritable output or a cluster that
        did not connect, 130/143 after Ctrl-C/SIGTERM.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = argv[argv.index(args.command) + 1:]
    previous = {}
    interrupts.clear()
    try:
        # Both recorded, so a run whose interrupt native code swallowed
        # stops at its next batch (`utils.interrupts`).
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number,
                                             interrupts.handle_signal)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        if args.command not in SETS_UP_DEVICES:
            _initialize_devices_quietly()
        return args.handler(args)
    except ValueError as error:
        print(f"keras-eexit: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # full disk, unwritable output, ...
        print(f"keras-eexit: error: {describe_os_error(error)}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        interrupts.clear()
        detail = f": {interrupt.args[0]}" if interrupt.args else ""
        print(f"\nkeras-eexit: interrupted "
              f"({getattr(interrupt, 'signal_name', 'Ctrl-C')}){detail}.",
              file=sys.stderr)
        return getattr(interrupt, "exit_code", 130)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


if __name__ == "__main__":
    sys.exit(main())
