"""`keras-eexit evaluate`: tables and plots for a saved multi-exit model."""

import os
import sys


def add_parser(subparsers):
    """Adds the `evaluate` sub-command.

    `keras-eexit evaluate --model PATH --dataset NAME [--criterion C]
    [--thresholds N] [--out DIR]` runs the saved model once over the test
    split and writes, atomically, into `--out`: `report.md` (per-exit table,
    budget table, best-accuracy and budgeted-batch curves), `exits.csv`,
    `budget.csv`, `sweep.csv`, `best_accuracy.csv`, `budgeted_batch.csv`,
    `evaluation.json`, `tradeoff.png`, `exit_ratios.png`,
    `best_accuracy.png` and `budgeted_batch.png`. Both curves read their
    thresholds from the validation split: the best-accuracy curve (the
    per-exit search, `keras_eexit.inference.best_accuracy_curve`) first,
    then MSDNet's budgeted batch (the paper's protocol). They rank samples
    by the chosen criterion's score when it is continuous
    (`Criterion.continuous`), by max-softmax otherwise (patience, static;
    the report names the criterion it used).

    Args:
        subparsers: the `argparse` sub-parsers of `keras-eexit`.

    Returns:
        The new sub-parser.
    """
    from keras_eexit.cli.options import EVALUATION_BATCH_SIZE
    from keras_eexit.cli.options import HelpFormatter
    from keras_eexit.cli.options import add_data_dir_option

    parser = subparsers.add_parser(
        "evaluate", formatter_class=HelpFormatter,
        help="per-exit table, threshold sweep and budget table of a saved "
        "model (Markdown, CSV, JSON) and plots")
    parser.add_argument("--model", required=True, help="a .keras file")
    parser.add_argument("--dataset", default="digits",
                        help="digits, mnist1d or a TFDS name prepared "
                        "offline (its test split is evaluated)")
    add_data_dir_option(parser)
    parser.add_argument("--criterion", default="max_softmax",
                        help="exit criterion of the sweep: max_softmax, "
                        "entropy, patience, static or one added with "
                        "keras_eexit.criteria.register")
    parser.add_argument("--thresholds", type=int, default=100,
                        help="number of thresholds, evenly spaced over "
                        "[0, 1] (patience/static: every value)")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="size of generated data sets (mnist1d)")
    parser.add_argument("--batch-size", type=int,
                        default=EVALUATION_BATCH_SIZE,
                        help="batch size of the evaluation passes (an "
                        "integer >= 1; it changes speed and memory, not "
                        "the results)")
    parser.add_argument("--cost", default=None,
                        help="a cost profile of this model (`keras-eexit "
                        "profile`): also write latency.md, "
                        "latency_budget.csv, latency_sweep.csv and "
                        "latency_tradeoff.png, the sweep and budgets in "
                        "measured milliseconds per sample")
    parser.add_argument("--out", default="runs/evaluate",
                        help="output directory")
    parser.set_defaults(handler=run)
    return parser


def run(args):
    """Runs `keras-eexit evaluate`.

    Args:
        args: the parsed arguments (see `add_parser`).

    Returns:
        The process exit code (0; bad input raises `ValueError`, which
        `keras-eexit` reports with exit code 2).
    """
    from keras_eexit import criteria
    from keras_eexit import data
    from keras_eexit import evaluation
    from keras_eexit import inference
    from keras_eexit.evaluation import reports
    from keras_eexit.experiments.build import check_fits_data
    from keras_eexit.models.loading import load_model
    from keras_eexit.utils.validation import check_positive_int

    criterion = criteria.get(args.criterion)
    check_positive_int("batch_size", args.batch_size)
    model = load_model(args.model)
    profile = None
    if args.cost is not None:
        profile = evaluation.CostProfile.load(args.cost)
        profile.check_model(model, argument="--cost")
    kwargs = {"data_dir": args.data_dir}
    if args.num_samples is not None:
        kwargs["num_samples"] = args.num_samples
    splits = data.load(args.dataset, batch_size=args.batch_size, **kwargs)
    check_fits_data(model, splits.info, f"Model {args.model}")
    outputs = evaluation.collect(model, splits.test)
    result = evaluation.threshold_sweep(outputs, criterion=args.criterion,
                                        thresholds=args.thresholds)
    # Calibrated curves, thresholds from the validation split and samples
    # ranked by a continuous score (the criterion's if it has one): the
    # best-accuracy search first (the default policy), then MSDNet's
    # budgeted batch (the paper's procedure).
    validation = evaluation.collect(model, splits.validation)
    curves = {"best_accuracy": None, "budgeted": None}
    minimum = inference.calibration.MIN_CALIBRATION_SAMPLES
    if len(validation.labels) >= minimum:
        ranked = criterion if criterion.continuous else criteria.DEFAULT
        curves = {"best_accuracy": inference.best_accuracy_curve(
                      validation, outputs, criterion=ranked),
                  "budgeted": inference.budgeted_batch_curve(
                      validation, outputs, criterion=ranked)}
    else:
        print(f"keras-eexit: warning: the validation split has "
              f"{len(validation.labels)} samples, fewer than the "
              f"{minimum} that "
              "calibrating thresholds needs: the best-accuracy and "
              "budgeted-batch curves are left out.", file=sys.stderr)
    # Tables, captions and plots in Kubaty et al.'s (fvcore) convention.
    written = reports.write_evaluation_report(
        outputs, result, args.out, name=os.path.basename(args.model),
        dataset=args.dataset, **curves)
    if profile is not None:
        written.update(reports.write_latency_report(
            outputs, result, profile, args.out,
            name=os.path.basename(args.model), dataset=args.dataset))
    for report in ("report.md", "latency.md"):
        if report in written:
            with open(written[report], encoding="utf-8") as f:
                print(f.read().split("\n![", 1)[0].rstrip())
    print(f"Wrote {', '.join(written)} to {args.out}")
    return 0
