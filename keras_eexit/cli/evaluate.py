"""`keras-eexit evaluate`: tables and plots for a saved multi-exit model."""

import csv
import io
import json
import os


def add_parser(subparsers):
    """Adds the `evaluate` sub-command.

    Args:
        subparsers: the `argparse` sub-parsers of `keras-eexit`.

    Returns:
        The new sub-parser.
    """
    parser = subparsers.add_parser(
        "evaluate",
        help="per-exit table, threshold sweep and budget table of a saved "
        "model (Markdown, CSV, JSON) and plots")
    parser.add_argument("--model", required=True, help="a .keras file")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--criterion", default="max_softmax",
                        help="max_softmax, entropy or patience")
    parser.add_argument("--thresholds", type=int, default=100)
    parser.add_argument("--num-samples", type=int, default=None)
    parser.add_argument("--out", default="runs/evaluate")
    parser.set_defaults(handler=run)
    return parser


def load_model(path):
    """Loads a `.keras` multi-exit model with `safe_mode=True`.

    Args:
        path: the file.

    Returns:
        The `MultiExitModel`.

    Raises:
        ValueError: naming the path when it is missing, not a Keras model
            file, or not a multi-exit model.
    """
    import zipfile

    import keras

    from keras_eexit import MultiExitModel

    if not os.path.isfile(path):
        raise ValueError(f"Model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a Keras model file (.keras archives are zip "
            "files written by model.save)."
        )
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises several types here.
        raise ValueError(
            f"Could not load {path} as a keras-eexit model: {error}"
        ) from error
    if not isinstance(model, MultiExitModel):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a keras_eexit "
            "MultiExitModel."
        )
    return model


def run(args):
    """Runs `keras-eexit evaluate`.

    Returns:
        The process exit code.
    """
    from keras_eexit import data
    from keras_eexit import evaluation
    from keras_eexit.utils.atomic import write_text
    from keras_eexit.utils.validation import check_choice

    check_choice("criterion", args.criterion,
                 ("max_softmax", "entropy", "patience"))
    model = load_model(args.model)
    kwargs = {}
    if args.num_samples is not None:
        kwargs["num_samples"] = args.num_samples
    splits = data.load(args.dataset, **kwargs)
    outputs = evaluation.collect(model, splits.test)
    rows = evaluation.anytime_table(outputs)
    result = evaluation.sweep(outputs, criterion=args.criterion,
                              thresholds=args.thresholds)
    budget = evaluation.budget_table(result, outputs.flops)
    os.makedirs(args.out, exist_ok=True)

    lines = [f"# {os.path.basename(args.model)} on {args.dataset}", "",
             "| exit | params | MFLOPs | accuracy |", "|---|---|---|---|"]
    lines += [f"| {r['exit']} | {r['params']:,} | {r['mflops']:.3f} | "
              f"{r['accuracy']:.4f} |" for r in rows]
    lines += ["", f"Early exit ({args.criterion}), accuracy within a FLOPs "
              "budget:", "", "| " + " | ".join(budget) + " |",
              "|" + "---|" * len(budget),
              "| " + " | ".join(f"{v:.4f}" for v in budget.values()) + " |",
              "", "![trade-off](tradeoff.png)", "",
              "![exit ratios](exit_ratios.png)", ""]
    write_text(os.path.join(args.out, "report.md"), "\n".join(lines))

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(os.path.join(args.out, "exits.csv"), buffer.getvalue())
    write_text(os.path.join(args.out, "evaluation.json"), json.dumps({
        "exits": rows, "budget": budget, "criterion": args.criterion,
        "thresholds": result.thresholds.tolist(),
        "accuracy": result.accuracy.tolist(),
        "mean_flops": result.mean_flops.tolist(),
        "exit_ratios": result.exit_ratios.tolist(),
    }, indent=2))
    evaluation.tradeoff_plot(
        {os.path.basename(args.model): [result]},
        os.path.join(args.out, "tradeoff.png"),
        static={"static exits": ([r["mflops"] for r in rows],
                                 [r["accuracy"] for r in rows])})
    evaluation.exit_ratio_plot(result, list(outputs.exit_names),
                               os.path.join(args.out, "exit_ratios.png"))
    print("\n".join(lines[:len(rows) + 8]))
    print(f"Wrote {args.out}/report.md, exits.csv, evaluation.json and "
          "plots")
    return 0
