"""`keras-eexit train`: one configuration → model.keras and metrics.json."""

import os
import sys

from keras_eexit.cli import options

DEFAULT_OUT = os.path.join("runs", "latest")
# What `--resume` may be combined with: everything else is recorded.
RESUME_OPTIONS = {"resume", "out", "verbose", "connect_timeout"}


def add_arguments(parser, suppress=False):
    """Adds the options of `train` (see `options.explicit_options`)."""
    from keras_eexit import regimes
    from keras_eexit.utils import distribution

    def d(value):
        return options.default(value, suppress)

    parser.add_argument("--regime", default=d("joint"),
                        help="training regime: "
                        + ", ".join(sorted(regimes.REGIMES)))
    from keras_eexit import methods

    parser.add_argument("--method", default=d("sdn"),
                        help="early-exit method: "
                        + ", ".join(methods.METHODS)
                        + " (docs/methods.md)")
    parser.add_argument("-p", "--param", action="append", default=d([]),
                        metavar="KEY=VALUE",
                        help="a regime parameter, repeatable (e.g. -p "
                        "backbone_epochs=5 -p heads=one_by_one); values are "
                        "read as Python literals, else as strings; phase "
                        "lengths not given are split from --epochs")
    parser.add_argument("--weights", default=d(None),
                        help="per-exit loss weights of regimes with a joint "
                        "phase: uniform, linear, to_final, han, or "
                        "comma-separated numbers")
    for flag, kind, text in (
        ("--regularizer", str, "sequential regime: ewc or lwf"),
        ("--lam", float, "EWC strength λ (sequential) or damping λ"),
        ("--rho", float, "LwF strength ρ (sequential)"),
    ):
        parser.add_argument(flag, type=kind, default=d(None),
                            help=f"shortcut for -p {flag[2:]}=...: {text}")
    parser.add_argument("--loss", default=d("crossentropy"),
                        choices=("crossentropy", "damping", "power_sqrt"),
                        help="joint regime loss; damping/power_sqrt give "
                        "every head a damping unit")
    parser.add_argument("--dynamic", type=float, default=d(None),
                        metavar="ALPHA",
                        help="damping losses: sample-wise dynamic weights, "
                        "α in (0, 1] (paper: 0.8 CIFAR, 0.3 ImageNet)")
    parser.add_argument("--head", default=d("linear"),
                        help="exit head type")
    options.add_training_options(parser, suppress=suppress)
    parser.add_argument("--seed", type=int, default=d(0))
    parser.add_argument("--out", default=d(None),
                        help=f"output directory (default: {DEFAULT_OUT})")
    parser.add_argument("--resume", action="store_true", default=d(False),
                        help="continue the interrupted run in --out with "
                        "its recorded configuration")
    parser.add_argument("--verbose", type=int, default=d(2),
                        choices=(0, 1, 2),
                        help="0 silent, 1 Keras' progress bar, 2 one line "
                        "per epoch")
    parser.add_argument("--strategy", default=d("none"),
                        choices=distribution.STRATEGIES,
                        help="tf.distribute strategy: none (one device), "
                        "mirrored (every local GPU), multiworker (the "
                        "cluster in TF_CONFIG; the chief writes --out), "
                        "tpu; --batch-size is the global batch")
    parser.add_argument("--tpu", default=d(None),
                        help="--strategy tpu: TPU name or grpc:// address "
                        "(default: a local TPU, or TPU_NAME)")
    parser.add_argument("--precision", default=d("float32"),
                        choices=distribution.PRECISIONS,
                        help="Keras dtype policy while the model is built "
                        "and trained: mixed_float16 (GPU, with loss "
                        "scaling) or mixed_bfloat16 (TPU, recent "
                        "CPUs/GPUs); exit logits and losses stay float32")
    parser.add_argument("--connect-timeout", type=float,
                        default=d(distribution.DEFAULT_CONNECT_TIMEOUT),
                        metavar="SECONDS",
                        help="--strategy multiworker: how long to wait for "
                        "the other tasks of TF_CONFIG")


def add_parser(subparsers):
    """Adds the `train` sub-command.

    Args:
        subparsers: the `argparse` sub-parsers of `keras-eexit`.

    Returns:
        The new sub-parser.
    """
    parser = subparsers.add_parser(
        "train", formatter_class=options.HelpFormatter,
        help="train a multi-exit model, print the per-exit table, write "
        "metrics.json and model.keras",
        description="Train a multi-exit model under a regime and write "
        "model.keras and metrics.json to --out. The epoch budget (--epochs) "
        "is split over the regime's phases; -p sets a phase length "
        "explicitly.")
    add_arguments(parser)
    parser.set_defaults(handler=run)
    return parser


def _weights(text):
    if text is None:
        return None
    if "," in text:
        try:
            return [float(v) for v in text.split(",")]
        except ValueError:
            raise ValueError(
                f"Invalid --weights {text!r}: expected a scheme name or "
                "comma-separated numbers, e.g. --weights 1,1,2."
            ) from None
    return text


def config_from_args(args):
    """The `ExperimentConfig` of parsed `train` arguments."""
    from keras_eexit.experiments import ExperimentConfig

    params = options.parse_params(args.param)
    for key in ("regularizer", "lam", "rho", "dynamic"):
        if getattr(args, key, None) is not None:
            params[key] = getattr(args, key)
    if args.loss != "crossentropy":
        params["loss"] = args.loss
    if args.weights is not None:
        params["weights"] = _weights(args.weights)
    return ExperimentConfig(
        dataset=args.dataset, data_dir=args.data_dir, model=args.model,
        regime=args.regime, regime_params=params, method=args.method,
        head=args.head, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        schedule=args.schedule, num_samples=args.num_samples,
        seed=args.seed, deterministic=args.deterministic,
        strategy=args.strategy, tpu=args.tpu, precision=args.precision)


def _resumed_config(args):
    from keras_eexit.experiments import ExperimentConfig
    from keras_eexit.experiments import RunDirectory
    from keras_eexit.utils import distribution

    given = options.explicit_options(add_arguments, getattr(args, "argv",
                                                            []))
    extra = sorted(given - RESUME_OPTIONS)
    if extra:
        flags = ", ".join("--" + name.replace("_", "-") for name in extra)
        raise ValueError(
            f"--resume continues the run recorded in {args.out} with its "
            f"own configuration; it cannot change {flags}. Drop "
            f"{'it' if len(extra) == 1 else 'them'}, or start a new run "
            "with another --out."
        )
    run_dir = RunDirectory(args.out)
    if not run_dir.interrupted() and os.environ.get("TF_CONFIG"):
        try:  # a multi-worker task other than the chief resumes its files
            run_dir = RunDirectory(distribution.task_dir(args.out))
        except ValueError:
            pass
    return ExperimentConfig.from_dict(run_dir.recorded_config())


def run(args):
    """Runs `keras-eexit train`.

    Returns:
        The process exit code.
    """
    from keras_eexit import evaluation
    from keras_eexit import experiments
    from keras_eexit.utils import distribution
    from keras_eexit.utils import native_logs

    out_given = args.out is not None
    args.out = args.out if out_given else DEFAULT_OUT
    config = _resumed_config(args) if args.resume else config_from_args(args)
    if config.strategy == "multiworker":
        distribution.read_tf_config()
        if not distribution.is_supervised():
            return distribution.supervise(
                [sys.executable, "-m", "keras_eexit", "train",
                 *getattr(args, "argv", [])], timeout=args.connect_timeout)
        distribution.bind_to_supervisor()
    if not out_given:
        print(f"No --out given: writing to {args.out}", flush=True)
    with native_logs.quiet():  # the first TensorFlow op probes devices
        strategy = distribution.make_strategy(config.strategy,
                                              tpu=config.tpu)
        native_logs.initialize_devices()
    try:
        result = experiments.run(config, out=args.out, resume=args.resume,
                                 verbose=args.verbose, strategy=strategy)
    except KeyboardInterrupt as interrupt:
        return _interrupted(args.out, interrupt)
    outputs = result.outputs
    print(f"\nTest set of {config.dataset} ({len(outputs.labels)} samples), "
          f"model {config.model_name}, "
          + (f"method {config.method}, " if config.method != "sdn" else "")
          + f"regime {config.name}:")
    print(evaluation.format_table(evaluation.exit_table(outputs)))
    budget = evaluation.budget_table(result.sweep, outputs)
    rule = result.sweep.criterion.replace("max_softmax", "max-softmax")
    print(f"Early exit ({rule} sweep), accuracy within a FLOPs budget: "
          + ", ".join(f"{k} {v:.4f}" for k, v in budget.items()))
    written = experiments.write_run(result, args.out)
    if written is not None:
        print(f"Wrote {written[0]} and {written[1]}")
    return 0


def _interrupted(out, interrupt):
    """One line saying what an interrupted run left; the exit code."""
    from keras_eexit.experiments import RunDirectory

    signal_name = getattr(interrupt, "signal_name", "Ctrl-C")
    code = getattr(interrupt, "exit_code", 130)
    run_dir = RunDirectory(out)
    if run_dir.interrupted() and run_dir.has_checkpoint():
        print(f"\nkeras-eexit: interrupted ({signal_name}); the backup of "
              f"the finished epochs is in {run_dir.backup}: resume with "
              f"`keras-eexit train --resume --out {out}`.", file=sys.stderr)
    else:
        print(f"\nkeras-eexit: interrupted ({signal_name}) before the first "
              "epoch ended; nothing was kept.", file=sys.stderr)
    return code

