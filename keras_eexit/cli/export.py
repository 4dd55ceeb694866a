"""`keras-eexit export`: a saved multi-exit model to LiteRT files."""

import json
import os

QUANTIZATION_NAMES = {"none": None, "float32": None, "dynamic": "dynamic",
                      "float16": "float16", "int8": "int8"}


def add_parser(subparsers):
    """Adds the `export` command to an `argparse` subparsers object.

    Args:
        subparsers: the object returned by `parser.add_subparsers()`.

    Returns:
        The new sub-parser (its default `handler` is `run`).
    """
    from keras_eexit.cli.options import HelpFormatter

    parser = subparsers.add_parser(
        "export", formatter_class=HelpFormatter,
        help="export a trained model (.keras) to LiteRT: one early-exit "
        "file, one file per exit or one per stage, plus a JSON sidecar",
    )
    parser.add_argument("--model", required=True,
                        help="path of a saved MultiExitModel (.keras, as "
                        "written by `keras-eexit train`)")
    parser.add_argument("--mode", default="early_exit",
                        help="early_exit (one file that stops at the first "
                        "confident exit), per_exit or segments")
    parser.add_argument("--criterion", default="max_softmax",
                        help="exit criterion: max_softmax or entropy")
    parser.add_argument("--threshold", type=float, default=None,
                        help="default threshold stored in the sidecar "
                        "(0.9 for max_softmax, 0.1 for entropy)")
    parser.add_argument("--quantization", default="none",
                        help="none, dynamic, float16 or int8 (int8 needs "
                        "--calibration-data)")
    parser.add_argument("--calibration-data", default=None,
                        help="int8 calibration inputs: a data set name "
                        "('digits', 'mnist1d' or a prepared TFDS set; its "
                        "training split is used) or a .npy array of shape "
                        "(num_samples, *input_shape)")
    parser.add_argument("--calibration-samples", type=int, default=500,
                        help="number of calibration samples (default 500)")
    parser.add_argument("--out", required=True,
                        help="output directory")
    parser.set_defaults(handler=run)
    return parser


def _quantization(name):
    key = str(name).lower()
    if key not in QUANTIZATION_NAMES:
        raise ValueError(
            f"Unknown quantization {name!r}. Valid choices: "
            f"{sorted(QUANTIZATION_NAMES)}."
        )
    return QUANTIZATION_NAMES[key]


def _calibration(args, quantization):
    import numpy as np

    from keras_eexit.utils.validation import check_positive_int

    if quantization != "int8":
        if args.calibration_data is not None:
            raise ValueError(
                "--calibration-data is only used with --quantization int8."
            )
        return None
    if args.calibration_data is None:
        raise ValueError(
            "--quantization int8 needs calibration inputs: pass "
            "--calibration-data with a data set name or a .npy file."
        )
    count = check_positive_int("calibration_samples",
                               args.calibration_samples)
    source = args.calibration_data
    if source.endswith(".npy"):
        data = np.load(source, allow_pickle=False)
    else:
        from keras_eexit.data import load_arrays

        data = load_arrays(source)["x_train"]
    return data[:count]


def run(args):
    """Runs `keras-eexit export`.

    Args:
        args: the parsed `argparse.Namespace`.

    Returns:
        The process exit code: 0 on success (bad input raises
        `ValueError`, an unwritable output `OSError`: `keras-eexit` reports
        them with exit codes 2 and 1).
    """
    from keras_eexit.export import export_litert
    from keras_eexit.models.loading import load_model

    quantization = _quantization(args.quantization)
    if not os.path.isfile(args.model):
        raise ValueError(f"Model file not found: {args.model}")
    representative = _calibration(args, quantization)
    model = load_model(args.model)
    sidecar = export_litert(
        model,
        args.out,
        mode=args.mode,
        criterion=args.criterion,
        quantization=quantization,
        representative_data=representative,
        thresholds=args.threshold,
    )
    with open(sidecar, encoding="utf-8") as f:
        meta = json.load(f)
    print(f"Exported {meta['model_name']} ({meta['num_exits']} exits, mode "
          f"{meta['mode']}, quantization {meta['quantization'] or 'none'}, "
          f"criterion {meta['criterion']}) to {args.out}:")
    for entry in meta["files"]:
        print(f"  {entry['file']:<22}{entry['bytes']:>12,} bytes")
    print(f"  {os.path.basename(sidecar)}")
    return 0
