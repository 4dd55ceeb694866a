"""`keras-eexit profile`: measure a saved model's per-exit costs."""

import os


def add_parser(subparsers):
    """Adds the `profile` sub-command.

    `keras-eexit profile MODEL [--runtime keras|saved_model|litert]
    [--batch-size N] [--dataset NAME] --out profile.json` measures each
    exit's cumulative cost through the runtime's own early-exit call
    (`keras_eexit.inference.measure_costs`) and writes the
    `CostProfile` as JSON (atomically), for `keras-eexit evaluate
    --cost profile.json` and `cost=` in Python.

    Args:
        subparsers: the `argparse` sub-parsers of `keras-eexit`.

    Returns:
        The new sub-parser.
    """
    from keras_eexit.cli.options import HelpFormatter
    from keras_eexit.cli.options import add_data_dir_option

    parser = subparsers.add_parser(
        "profile", formatter_class=HelpFormatter,
        help="measure each exit's cumulative time per sample on a runtime "
        "(Keras, SavedModel, LiteRT) and write a cost profile (JSON)")
    parser.add_argument("model", help="a .keras file")
    parser.add_argument("--runtime", default="keras",
                        help="keras (predict_early_exit's graph), "
                        "saved_model (its with_thresholds signature) or "
                        "litert (the early-exit file through LiteRTRunner)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per call: measure at the batch size you "
                        "serve (default: 256 for keras and saved_model, 1 "
                        "for litert)")
    parser.add_argument("--dataset", default=None,
                        help="time on this data set's test inputs (digits, "
                        "mnist1d or a prepared TFDS name); default: "
                        "seeded random inputs")
    add_data_dir_option(parser)
    parser.add_argument("--num-threads", type=int, default=None,
                        help="LiteRT interpreter threads (litert only)")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="time cap of the timed repeats (stops earlier "
                        "once the repeats agree within 5%%)")
    parser.add_argument("--out", required=True, help="the JSON file")
    parser.set_defaults(handler=run)
    return parser


def run(args):
    """Runs `keras-eexit profile`.

    Args:
        args: the parsed arguments (see `add_parser`).

    Returns:
        The process exit code (0; bad input raises `ValueError`, which
        `keras-eexit` reports with exit code 2).
    """
    from keras_eexit.evaluation.cost import format_cost
    from keras_eexit.inference import measure_costs
    from keras_eexit.models.loading import load_model

    if not os.path.isfile(args.model):
        raise ValueError(f"Model file not found: {args.model}")
    options = {}
    if args.num_threads is not None:
        if args.runtime != "litert":
            raise ValueError("--num-threads is only used with --runtime "
                             "litert.")
        options["num_threads"] = args.num_threads
    model = load_model(args.model)
    data = None
    if args.dataset is not None:
        from keras_eexit.data import load_arrays

        data = load_arrays(args.dataset, data_dir=args.data_dir)["x_test"]
    profile = measure_costs(model, runtime=args.runtime,
                            batch_size=args.batch_size, data=data,
                            max_seconds=args.max_seconds, **options)
    profile.save(args.out)
    print(f"{model.name} ({profile.describe()}; {profile.repeats} repeats, "
          f"spread {profile.spread:.1%}):")
    calls = profile.seconds_per_call or (None,) * profile.num_exits
    for name, seconds, batch, call in zip(profile.exit_names,
                                          profile.seconds_per_sample,
                                          profile.seconds_per_batch, calls):
        fixed = "" if call is None else (
            f"{format_cost(call, 's'):>14} fixed per call")
        print(f"  {name:<10}{format_cost(seconds, 's'):>14} per sample"
              f"{format_cost(batch, 's'):>14} per batch{fixed}")
    print(f"Wrote {args.out}")
    return 0
