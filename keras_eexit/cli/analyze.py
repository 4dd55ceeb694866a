"""`keras-eexit analyze`: Kubaty et al.'s analyses of saved models.

    keras-eexit analyze --model joint=runs/joint/model.keras \\
        --model mixed=runs/mixed/model.keras \\
        --model disjoint=runs/disjoint/model.keras --dataset digits

loads the models and the data set, then writes into `--out` what
`keras_eexit.analysis.write_analysis_report` writes: numerical rank and
mutual information per layer, loss landscapes, aligned linear paths and
the mode-connectivity plane (figures with JSON/CSV beside them) and
`analysis.md`, a summary with the figures.
"""

import os

from keras_eexit import analysis
from keras_eexit import data
from keras_eexit.analysis.mutual_information import ESTIMATORS
from keras_eexit.analysis.weight_space import BATCHNORM
from keras_eexit.cli.options import add_data_dir_option
from keras_eexit.experiments.build import check_fits_data
from keras_eexit.models.loading import load_model


def _add_analysis_options(parser):
    """The options that `analysis.write_analysis_report` takes."""
    parser.add_argument("--resolution", type=int, default=31,
                        help="grid points per axis of landscapes and the "
                        "plane (the paper: 100 and 150; default: "
                        "%(default)s)")
    parser.add_argument("--span", type=float, default=1.0,
                        help="landscape grid covers [-span, span] along "
                        "both directions (default: %(default)s)")
    parser.add_argument("--max-samples", type=int, default=None,
                        help="use at most this many samples per analysis "
                        "(default: all)")
    parser.add_argument("--batchnorm", default="interpolate",
                        choices=BATCHNORM,
                        help="BatchNorm moving statistics along paths and "
                        "over the plane: interpolated like every weight, "
                        "or recomputed on the training data at every point "
                        "(default: %(default)s)")
    parser.add_argument("--mi-estimator", default="jensen",
                        choices=ESTIMATORS,
                        help="I(X; Z) estimator (default: %(default)s)")


def add_parser(subparsers):
    """Adds the `analyze` sub-command.

    Args:
        subparsers: the `argparse` sub-parsers of `keras-eexit`.

    Returns:
        The new sub-parser.
    """
    parser = subparsers.add_parser(
        "analyze",
        help="Kubaty et al.'s analyses of saved models (numerical rank, "
        "mutual information, loss landscapes, mode connectivity): figures "
        "plus JSON/CSV",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True,
                        metavar="NAME=PATH",
                        help="a saved .keras model and its label (e.g. the "
                        "regime it was trained with); repeat for several. "
                        "A bare PATH is labelled by its file name")
    parser.add_argument("--dataset", default="digits",
                        help="digits, mnist1d or a TFDS name prepared "
                        "offline (default: %(default)s)")
    add_data_dir_option(parser)
    parser.add_argument("--analyses", default="auto",
                        help="comma-separated subset of " + ", ".join(
                            analysis.ANALYSES) + "; 'auto' runs rank, mi and "
                        "landscape, plus paths with two or more models and "
                        "connectivity with three (default: %(default)s)")
    _add_analysis_options(parser)
    parser.add_argument("--num-samples", type=int, default=None,
                        help="size of generated data sets (mnist1d)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of landscape directions and sampled "
                        "features (default: %(default)s)")
    parser.add_argument("--out", default="runs/analyze",
                        help="output directory (default: %(default)s)")
    parser.set_defaults(handler=run)
    return parser


def _label(spec):
    """`(name, path)` of one `--model NAME=PATH` (or bare PATH)."""
    name, sep, path = spec.partition("=")
    if not sep:
        name, path = os.path.splitext(os.path.basename(spec))[0], spec
    if not name or not path:
        raise ValueError(
            f"Invalid value received for argument `--model`. Expected "
            f"NAME=PATH. Received: --model={spec}")
    return name, path


def _models(specs):
    """`{name: model}` of the `--model` arguments, each loaded once."""
    models = {}
    for spec in specs:
        name, path = _label(spec)
        if name in models:
            raise ValueError(f"Two models are labelled {name!r}: give each "
                             "--model a distinct NAME=PATH.")
        models[name] = load_model(path)
    return models


def run(args):
    """Runs `keras-eexit analyze`.

    Args:
        args: the parsed arguments (see `add_parser`).

    Returns:
        The process exit code (0; bad input raises `ValueError`).
    """
    models = _models(args.model)
    chosen = analysis.choose_analyses(
        models, args.analyses, resolution=args.resolution,
        max_samples=args.max_samples, mi_estimator=args.mi_estimator)
    kwargs = {"data_dir": args.data_dir}
    if args.num_samples is not None:
        kwargs["num_samples"] = args.num_samples
    splits = data.load(args.dataset, batch_size=256, **kwargs)
    for name, model in models.items():
        check_fits_data(model, splits.info, f"Model {name!r}")
    written = analysis.write_analysis_report(
        models, splits.train, splits.test, args.out, analyses=chosen,
        dataset=args.dataset, resolution=args.resolution, span=args.span,
        max_samples=args.max_samples, mi_estimator=args.mi_estimator,
        seed=args.seed, batchnorm=args.batchnorm)
    print(f"Wrote {', '.join(written)} to {args.out}")
    return 0
