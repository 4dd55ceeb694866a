"""The `keras-eexit` command line: train and report multi-exit models."""

import argparse
import json
import os
import sys
import time

DEFAULT_MODELS = {"digits": "small_cnn", "mnist1d": "cnn1d"}


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-eexit",
        description="Early-exit neural networks for Keras 3: train a "
        "multi-exit model and report per-exit accuracy and cost.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train",
        help="train a multi-exit model, print the per-exit table, write "
        "metrics.json and model.keras",
    )
    train.add_argument("--model", default="auto",
                       help="zoo model name; 'auto' picks small_cnn for "
                       "digits, cnn1d for mnist1d, cifar_resnet otherwise")
    train.add_argument("--dataset", default="digits",
                       help="'digits', 'mnist1d' or a TFDS name")
    train.add_argument("--regime", default="joint",
                       help="training regime: " + ", ".join(_regime_names()))
    train.add_argument("-p", "--param", action="append", default=[],
                       metavar="KEY=VALUE",
                       help="a regime parameter, repeatable (e.g. -p "
                       "backbone_epochs=5 -p heads=one_by_one); values are "
                       "read as Python literals, else as strings")
    train.add_argument("--weights", default=None,
                       help="per-exit loss weights of regimes with a joint "
                       "phase: uniform, linear, to_final, han, or "
                       "comma-separated numbers")
    for flag, kind, text in (
        ("--regularizer", str, "sequential regime: ewc or lwf"),
        ("--lam", float, "EWC strength λ (sequential) or damping λ"),
        ("--rho", float, "LwF strength ρ (sequential)"),
    ):
        train.add_argument(flag, type=kind, default=None,
                           help=f"shortcut for -p {flag[2:]}=...: {text}")
    train.add_argument("--loss", default="crossentropy",
                       choices=("crossentropy", "damping", "power_sqrt"),
                       help="joint regime loss; damping/power_sqrt give "
                       "every head a damping unit")
    train.add_argument("--dynamic", type=float, default=None,
                       metavar="ALPHA",
                       help="damping losses: sample-wise dynamic weights, "
                       "α in (0, 1] (paper: 0.8 CIFAR, 0.3 ImageNet)")
    train.add_argument("--head", default="linear", help="exit head type")
    train.add_argument("--epochs", type=int, default=None,
                       help="epochs; default: what the regime needs, or 30")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--num-samples", type=int, default=None,
                       help="size of generated data sets (mnist1d)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default="runs/latest",
                       help="output directory")
    train.add_argument("--deterministic", action="store_true",
                       help="deterministic ops and data order (with --seed: "
                       "bit-identical metrics across runs on CPU)")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in --out (its "
                       "recorded arguments are reused)")
    train.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2),
                       help="Keras progress output: 0 silent, 1 progress "
                       "bar, 2 one line per epoch")
    from keras_eexit.utils.distribution import PRECISIONS
    from keras_eexit.utils.distribution import STRATEGIES

    train.add_argument("--strategy", default="none", choices=STRATEGIES,
                       help="tf.distribute strategy: none (one device), "
                       "mirrored (every local GPU), multiworker (the "
                       "cluster in TF_CONFIG; the chief writes --out), tpu; "
                       "--batch-size is the global batch, split over "
                       "replicas")
    train.add_argument("--tpu", default=None,
                       help="--strategy tpu: TPU name or grpc:// address "
                       "(default: a local TPU, or TPU_NAME)")
    train.add_argument("--precision", default="float32", choices=PRECISIONS,
                       help="Keras dtype policy while the model is built and "
                       "trained: mixed_float16 (GPU, with loss scaling) or "
                       "mixed_bfloat16 (TPU, recent CPUs/GPUs); exit logits "
                       "and losses stay float32")
    from keras_eexit.cli import compare as compare_cli
    from keras_eexit.cli import evaluate as evaluate_cli
    from keras_eexit.cli import export as export_cli

    evaluate_cli.add_parser(sub)
    compare_cli.add_parser(sub)
    export_cli.add_parser(sub)
    return parser


def _regime_names():
    from keras_eexit.regimes import REGIMES

    return sorted(REGIMES)


def _weights(text):
    if text is None:
        return None
    if "," in text:
        return [float(v) for v in text.split(",")]
    return text


def _params(pairs):
    """Parses `KEY=VALUE` strings; values as Python literals when possible."""
    import ast

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


RUN_FILE = "run.json"
BACKUP_DIR = "backup"


def _resume_args(args):
    """The recorded arguments of the interrupted run in `args.out`."""
    import argparse as _argparse

    from keras_eexit.utils.distribution import task_dir

    run_dir = args.out
    try:  # a multi-worker task other than the chief resumes its own files
        if os.path.exists(os.path.join(task_dir(args.out), RUN_FILE)):
            run_dir = task_dir(args.out)
    except ValueError:
        pass
    path = os.path.join(run_dir, RUN_FILE)
    backup = os.path.join(run_dir, BACKUP_DIR)
    if not os.path.exists(path) or not os.path.isdir(backup):
        raise ValueError(
            f"Nothing to resume in {args.out}: it has no interrupted run "
            f"({RUN_FILE} and {BACKUP_DIR}/ are written when a run starts "
            "and removed when it finishes)."
        )
    with open(path, encoding="utf-8") as f:
        recorded = json.load(f)
    recorded.update(resume=True, verbose=args.verbose, out=args.out)
    return _argparse.Namespace(**recorded)


def train(args):
    """Runs `keras-eexit train`; returns the metrics dict it wrote.

    The strategy (`--strategy`) is created first; its scope covers building
    and compiling the model. The dtype policy (`--precision`) holds while
    the model is built and trained and is restored afterwards.
    """
    from keras_eexit.utils import distribution
    from keras_eexit.utils.validation import check_positive_int

    if args.resume:
        args = _resume_args(args)
    # Runs recorded before these flags existed trained on one device.
    for key, default in (("strategy", "none"), ("precision", "float32"),
                         ("tpu", None)):
        if not hasattr(args, key):
            setattr(args, key, default)
    if args.strategy == "multiworker":
        distribution.read_tf_config()
    if not args.resume and os.path.isdir(
            os.path.join(_task_out(args), BACKUP_DIR)):
        raise ValueError(
            f"{args.out} holds an interrupted run: pass --resume to continue "
            "it, or choose another --out."
        )
    if args.epochs is not None:
        check_positive_int("epochs", args.epochs)
    check_positive_int("batch_size", args.batch_size)
    strategy = distribution.make_strategy(args.strategy, tpu=args.tpu)
    with distribution.precision_policy(args.precision):
        return _train(args, strategy)


def _task_out(args):
    """Where this process writes: --out, or its task's directory under it.

    In a multi-worker job every worker trains; only the chief writes to
    --out, the others into `<out>/<type>_<index>/` (their backups), which
    they remove when the run ends.
    """
    if args.strategy != "multiworker":
        return args.out
    from keras_eexit.utils.distribution import task_dir

    return task_dir(args.out)


def _train(args, strategy):
    import shutil

    import keras
    import tensorflow as tf

    from keras_eexit.callbacks import StopOnNonFinite

    from keras_eexit import data
    from keras_eexit import evaluation
    from keras_eexit import models
    from keras_eexit import regimes
    from keras_eexit.utils.atomic import atomic_path
    from keras_eexit.utils.atomic import write_text
    from keras_eexit.utils.validation import check_choice

    out = _task_out(args)
    chief = out == args.out
    params = _params(args.param)
    for key in ("regularizer", "lam", "rho", "dynamic"):
        if getattr(args, key, None) is not None:
            params[key] = getattr(args, key)
    if getattr(args, "loss", "crossentropy") != "crossentropy":
        params["loss"] = args.loss
    damping = params.get("loss", "crossentropy") != "crossentropy"
    if args.weights is not None:
        params["weights"] = _weights(args.weights)
    regime = regimes.get_regime(args.regime, **params)
    model_name = args.model
    if model_name == "auto":
        model_name = DEFAULT_MODELS.get(args.dataset, "cifar_resnet")
    check_choice("model", model_name, models.MODELS)
    keras.utils.set_random_seed(args.seed)
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    load_kwargs = {"batch_size": args.batch_size, "seed": args.seed,
                   "deterministic": args.deterministic}
    if args.num_samples is not None:
        load_kwargs["num_samples"] = args.num_samples
    splits = data.load(args.dataset, **load_kwargs)
    with strategy.scope():
        model = models.get_model(
            model_name,
            **_builder_kwargs(model_name, splits.info, args.head, damping),
        )
        if isinstance(regime, regimes.Separate):
            model = regimes.Separate.prepare_model(model)
        epochs = args.epochs or regime.epochs_for(model) or 30
        steps = int(splits.train.cardinality())
        learning_rate = args.learning_rate
        if steps > 0 and regime.epochs_for(model) is None and not any(
            p.learning_rate for p in regime.phases_for(model.num_exits)
        ):
            learning_rate = keras.optimizers.schedules.CosineDecay(
                args.learning_rate, decay_steps=steps * epochs)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            metrics=["accuracy"],
        )
    os.makedirs(out, exist_ok=True)
    if not args.resume:
        write_text(os.path.join(out, RUN_FILE),
                   json.dumps(vars(args), indent=2))
    backup = os.path.join(out, BACKUP_DIR)
    start = time.perf_counter()
    history = model.fit(
        splits.train,
        validation_data=splits.validation,
        epochs=epochs,
        callbacks=[regime, StopOnNonFinite(backup),
                   keras.callbacks.BackupAndRestore(backup)],
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    outputs = evaluation.collect(model, splits.test)
    rows = evaluation.exit_table(outputs)
    print(f"\nTest set of {args.dataset} ({len(outputs.labels)} samples), "
          f"model {model_name}, regime {args.regime}:")
    print(evaluation.format_table(rows))
    budget = evaluation.budget_table(evaluation.sweep(outputs),
                                     outputs.flops)
    print("Early exit (max-softmax sweep), accuracy within a FLOPs budget: "
          + ", ".join(f"{k} {v:.4f}" for k, v in budget.items()))
    metrics = {
        "model": model_name,
        "dataset": args.dataset,
        "regime": args.regime,
        "regime_params": params,
        "head": args.head,
        "damping": damping,
        "epochs": history.epoch[-1] + 1 if history.epoch else 0,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "strategy": args.strategy,
        "replicas": strategy.num_replicas_in_sync,
        "precision": args.precision,
        "train_seconds": round(seconds, 3),
        "exits": rows,
        "budget_max_softmax": budget,
        "history": {
            k: [float(v) for v in values]
            for k, values in history.history.items()
        },
    }
    if not chief:
        shutil.rmtree(out, ignore_errors=True)
        return metrics
    model_path = os.path.join(out, "model.keras")
    with atomic_path(model_path) as tmp:
        model.save(tmp)
    write_text(os.path.join(out, "metrics.json"),
               json.dumps(metrics, indent=2))
    os.remove(os.path.join(out, RUN_FILE))
    print(f"Wrote {model_path} and {os.path.join(out, 'metrics.json')}")
    return metrics


def _builder_kwargs(model_name, info, head, damping):
    """The zoo builder's arguments for a data set and the CLI's head flags.

    Builders differ: most take `input_shape`, the ViT takes `image_size`
    and `channels`, and the paper architectures (MSDNet, RANet, ViT) have
    their own exit heads. A flag a builder cannot honour is an error, never
    silently dropped.
    """
    import inspect

    from keras_eexit import models

    params = inspect.signature(models.MODELS[model_name]).parameters
    shape = tuple(info.input_shape)
    kwargs = {"num_classes": info.num_classes}
    if "input_shape" in params:
        kwargs["input_shape"] = shape
    elif "image_size" in params and len(shape) == 3 and shape[0] == shape[1]:
        kwargs.update(image_size=shape[0], channels=shape[2])
    else:
        raise ValueError(
            f"Model {model_name!r} cannot take this data set's inputs of "
            f"shape {shape}; pick a model for them (--model auto chooses "
            "one)."
        )
    if "head" in params:
        kwargs["head"] = head
    elif head != "linear":
        raise ValueError(
            f"Model {model_name!r} has its own exit heads (those of its "
            f"paper); --head {head} is not supported for it."
        )
    if "damping" in params:
        kwargs["damping"] = damping
    elif damping:
        raise ValueError(
            f"Model {model_name!r} has no damping heads; the damping losses "
            "need a model built with `damping=True`."
        )
    return kwargs


def main(argv=None):
    """Entry point of the `keras-eexit` console script.

    Args:
        argv: argument list (defaults to `sys.argv[1:]`).

    Returns:
        The process exit code.
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            train(args)
        elif args.command == "evaluate":
            from keras_eexit.cli import evaluate as evaluate_cli

            return evaluate_cli.run(args)
        elif args.command == "compare":
            from keras_eexit.cli import compare as compare_cli

            return compare_cli.run(args)
        elif args.command == "export":
            from keras_eexit.cli import export as export_cli

            return export_cli.run(args)
    except ValueError as error:
        print(f"keras-eexit: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # full disk, unwritable output, ...
        print(f"keras-eexit: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
