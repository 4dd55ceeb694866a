"""Options shared by the sub-commands that train (`train`, `compare`, ...)."""

import argparse
import ast

from keras_eexit.experiments import config as defaults


EVALUATION_BATCH_SIZE = 256
"""Default `--batch-size` of the sub-commands that only run a trained model
(`evaluate`): inference batches, which change speed and memory, never the
results."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows every option's default (none for flags)."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or \
                action.nargs == 0 or action.default == []:
            return action.help
        return super()._get_help_string(action)


def default(value, suppress=False):
    """`value`, or `argparse.SUPPRESS` to see which options were given."""
    return argparse.SUPPRESS if suppress else value


def add_data_dir_option(parser, suppress=False):
    """Adds `--data-dir` (`data_dir` of `keras_eexit.data.load`)."""
    parser.add_argument("--data-dir", default=default(None, suppress),
                        help="the data set's directory: a prepared TFDS "
                        "data_dir, or for cifar10/cifar100 one holding the "
                        "official archive (cifar-10-python.tar.gz, "
                        "cifar-100-python.tar.gz) or its folder")


def add_training_options(parser, dataset="digits", epochs_help=None,
                         suppress=False):
    """Adds the options of one training configuration.

    Args:
        parser: an `argparse` parser.
        dataset: the default `--dataset`.
        epochs_help: the help text of `--epochs`.
        suppress: leave every default out (see `explicit_options`).
    """
    def d(value):
        return default(value, suppress)

    parser.add_argument("--dataset", default=d(dataset),
                        help="'digits', 'mnist1d' or a TFDS name prepared "
                        "offline")
    add_data_dir_option(parser, suppress)
    parser.add_argument("--model", default=d("auto"),
                        help="zoo model name; 'auto' picks small_cnn for "
                        "digits, cnn1d for mnist1d, cifar_resnet otherwise")
    parser.add_argument("--epochs", type=int,
                        default=d(defaults.DEFAULT_EPOCHS),
                        help=epochs_help or "epoch budget, split over the "
                        "regime's phases (see docs/cli.md)")
    parser.add_argument("--batch-size", type=int,
                        default=d(defaults.DEFAULT_BATCH_SIZE),
                        help="global batch size")
    parser.add_argument("--learning-rate", type=float,
                        default=d(defaults.DEFAULT_LEARNING_RATE),
                        help="Adam's learning rate (> 0)")
    parser.add_argument("--schedule", default=d(defaults.DEFAULT_SCHEDULE),
                        choices=defaults.SCHEDULES,
                        help="learning-rate schedule over the run (cosine: "
                        "over each phase from its own rate where the "
                        "regime's phases set their own rates)")
    parser.add_argument("--num-samples", type=int, default=d(None),
                        help="size of generated data sets (mnist1d; "
                        "default: its standard size)")
    parser.add_argument("--deterministic", action="store_true",
                        default=d(False),
                        help="deterministic ops and data order (with a "
                        "seed: bit-identical metrics across runs on CPU)")


def parse_params(pairs):
    """Parses `KEY=VALUE` strings; values as Python literals when possible.

    Args:
        pairs: an iterable of strings.

    Returns:
        A dict.

    Raises:
        ValueError: for a string without `=` or with an empty key.
    """
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"Invalid regime parameter {pair!r}: expected KEY=VALUE, "
                "e.g. -p backbone_epochs=5."
            )
        try:
            params[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            params[key.strip()] = value.strip()
    return params


def explicit_options(add_arguments, argv):
    """The destinations of the options written on the command line.

    Args:
        add_arguments: `f(parser, suppress)` adding a sub-command's options
            (with `suppress=True`, every default is `argparse.SUPPRESS`).
        argv: the sub-command's arguments.

    Returns:
        A set of `dest` names (options left at their defaults are absent).
    """
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser, suppress=True)
    seen, _ = parser.parse_known_args(argv)
    return set(vars(seen))
