"""`keras-eexit evaluate`: tables and plots for a saved multi-exit model."""

import os


def add_parser(subparsers):
    """Adds the `evaluate` sub-command.

    `keras-eexit evaluate --model PATH --dataset NAME [--criterion C]
    [--thresholds N] [--out DIR]` runs the saved model once over the test
    split and writes, atomically, into `--out`: `report.md` (per-exit table,
    budget table), `exits.csv`, `budget.csv`, `sweep.csv`,
    `evaluation.json`, `tradeoff.png` and `exit_ratios.png`.

    Args:
        subparsers: the `argparse` sub-parsers of `keras-eexit`.

    Returns:
        The new sub-parser.
    """
    from keras_eexit.cli.options import HelpFormatter

    parser = subparsers.add_parser(
        "evaluate", formatter_class=HelpFormatter,
        help="per-exit table, threshold sweep and budget table of a saved "
        "model (Markdown, CSV, JSON) and plots")
    parser.add_argument("--model", required=True, help="a .keras file")
    parser.add_argument("--dataset", default="digits",
                        help="digits, mnist1d or a TFDS name prepared "
                        "offline (its test split is evaluated)")
    parser.add_argument("--criterion", default="max_softmax",
                        help="exit criterion of the sweep: max_softmax, "
                        "entropy, patience or static")
    parser.add_argument("--thresholds", type=int, default=100,
                        help="number of thresholds, evenly spaced over "
                        "[0, 1] (patience/static: every value)")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="size of generated data sets (mnist1d)")
    parser.add_argument("--batch-size", type=int, default=256)
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
    from keras_eexit import data
    from keras_eexit import evaluation
    from keras_eexit.evaluation import reports
    from keras_eexit.experiments.build import check_fits_data
    from keras_eexit.models.loading import load_model
    from keras_eexit.utils.atomic import write_text
    from keras_eexit.utils.validation import check_choice
    from keras_eexit.utils.validation import check_positive_int

    check_choice("criterion", args.criterion, evaluation.CRITERIA)
    check_positive_int("batch_size", args.batch_size)
    model = load_model(args.model)
    kwargs = {}
    if args.num_samples is not None:
        kwargs["num_samples"] = args.num_samples
    splits = data.load(args.dataset, batch_size=args.batch_size, **kwargs)
    check_fits_data(model, splits.info, f"Model {args.model}")
    outputs = evaluation.collect(model, splits.test)
    rows = evaluation.anytime_table(outputs)
    result = evaluation.sweep(outputs, criterion=args.criterion,
                              thresholds=args.thresholds)
    budget = evaluation.budget_table(result, outputs.flops)
    name = os.path.basename(args.model)
    samples = outputs.labels.shape[0]

    lines = [
        f"# {name} on {args.dataset}", "",
        f"Test split: {samples:,} samples. FLOPs are cumulative per exit "
        "(segments and heads up to the exit), per sample.", "",
        "## Static exits", "",
        reports.markdown_table(rows, ["exit", "params", "mflops",
                                      "accuracy"]).replace(
            "| mflops |", "| MFLOPs |"),
        "", f"## Early exit ({args.criterion}): accuracy within a FLOPs "
        "budget", "",
        "Budgets are fractions of the final exit's FLOPs "
        f"({outputs.flops[-1] / 1e6:.3f} MFLOPs); each cell is the last "
        "sweep point within the budget (no interpolation); `max` is the "
        f"best accuracy over the {len(result.thresholds)}-point sweep.", "",
        reports.markdown_table([budget]), "",
        "![trade-off](tradeoff.png)", "",
        "![exit ratios](exit_ratios.png)", ""]
    sweep_rows = [
        {"threshold": float(t), "accuracy": float(a),
         "mean_flops": float(f),
         **{f"ratio_{n}": float(r) for n, r in zip(outputs.exit_names,
                                                    ratios)}}
        for t, a, f, ratios in zip(result.thresholds, result.accuracy,
                                   result.mean_flops, result.exit_ratios)]
    files = {
        "report.md": "\n".join(lines),
        "exits.csv": reports.csv_text(rows),
        "budget.csv": reports.csv_text(reports.budget_rows(budget)),
        "sweep.csv": reports.csv_text(sweep_rows),
        "evaluation.json": reports.json_text({
            "model": args.model, "dataset": args.dataset,
            "num_samples": samples, "exits": rows, "budget": budget,
            "criterion": args.criterion,
            "thresholds": result.thresholds, "accuracy": result.accuracy,
            "mean_flops": result.mean_flops,
            "exit_ratios": result.exit_ratios,
        }),
    }
    os.makedirs(args.out, exist_ok=True)
    for filename, text in files.items():
        write_text(os.path.join(args.out, filename), text)
    evaluation.tradeoff_plot(
        {name: [result]}, os.path.join(args.out, "tradeoff.png"),
        static={f"{name} static exits": ([r["mflops"] for r in rows],
                                         [r["accuracy"] for r in rows])},
        title=f"{name} on {args.dataset}: accuracy vs compute")
    evaluation.exit_ratio_plot(
        result, list(outputs.exit_names),
        os.path.join(args.out, "exit_ratios.png"),
        title=f"{name} on {args.dataset}: share of samples per exit")
    print("\n".join(lines[:-5]))
    print(f"Wrote {', '.join(files)}, tradeoff.png and exit_ratios.png "
          f"to {args.out}")
    return 0
