"""`keras-eexit reproduce`: a paper's experiment in one command.

`--list` names every recipe; `NAME --print-config` prints its resolved
set-up as one JSON object (with the source of every value); `NAME
--data-dir DIR` runs it (learning-rate search, every arm × seed,
resumable: run the same command again after an interruption), and
`--scale smoke` runs the same recipe on synthetic data in minutes. The
library call is `keras_eexit.recipes.reproduce`.
"""

import json

from keras_eexit.cli import options


def add_parser(subparsers):
    """Adds the `reproduce` sub-command.

    Args:
        subparsers: the `argparse` sub-parsers of `keras-eexit`.

    Returns:
        The new sub-parser.
    """
    parser = subparsers.add_parser(
        "reproduce", formatter_class=options.HelpFormatter,
        help="run a paper's experiment (a recipe) and report our numbers "
        "next to the paper's",
        description="Run one experiment of one paper with its full set-up "
        "(see docs/reproduce.md), or list / print the recipes.")
    parser.add_argument("name", nargs="?", default=None,
                        help="the recipe (see --list)")
    parser.add_argument("--list", action="store_true",
                        help="list the recipes and exit")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved set-up as JSON and exit")
    parser.add_argument("--scale", default="full",
                        choices=("full", "smoke"),
                        help="full: the paper's set-up; smoke: synthetic "
                        "images, a tiny model and a few epochs (numbers "
                        "NOT comparable with the paper's)")
    parser.add_argument("--data-dir", default=None,
                        help="directory of the prepared data set (the "
                        "CIFAR Python archives or a TFDS directory)")
    parser.add_argument("--out", default=None,
                        help="output directory (default: "
                        "runs/reproduce/NAME-SCALE)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds instead of the "
                        "recipe's")
    parser.add_argument("--verbose", type=int, default=2,
                        choices=(0, 1, 2), help="0 quiet, 1 progress "
                        "bars, 2 one line per epoch")
    parser.set_defaults(handler=run)
    return parser


def _seeds(text):
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(
            "Invalid value received for argument `--seeds`. Expected "
            f"comma-separated integers. Received: --seeds={text}") from None


def run(args):
    """Runs `keras-eexit reproduce` (returns the exit code)."""
    from keras_eexit import recipes

    if args.list:
        for name in recipes.names():
            recipe = recipes.get(name)
            print(f"{name}\t{recipe.experiment}\t{recipe.title}")
        return 0
    if args.name is None:
        raise ValueError("Name a recipe (keras-eexit reproduce --list shows "
                         "them).")
    recipe = recipes.get(args.name)
    if args.print_config:
        settings = recipe.settings(args.scale)
        seeds = _seeds(args.seeds)
        if seeds is not None:
            settings["seeds"] = seeds
        print(json.dumps(settings, indent=2, ensure_ascii=False))
        return 0
    summary = recipes.reproduce(recipe, data_dir=args.data_dir,
                                out=args.out, scale=args.scale,
                                seeds=_seeds(args.seeds),
                                verbose=args.verbose)
    if args.scale == "smoke":
        print(f"WARNING: {summary['settings']['warning']}")
    return 0
