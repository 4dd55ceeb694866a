"""`keras-eexit compare`: every regime × seed, then one report."""

import json
import math
import os
import re
import time

RUNS_DIR = "runs"


def add_parser(subparsers):
    """Adds the `compare` sub-command.

    Args:
        subparsers: the `argparse` sub-parsers of `keras-eexit`.

    Returns:
        The new sub-parser.
    """
    parser = subparsers.add_parser(
        "compare",
        help="train several regimes over several seeds; write report.md "
        "with budget tables, ANOVA/Tukey orderings and plots")
    parser.add_argument("--regimes", default="joint,mixed,two_stage",
                        help="comma-separated regimes; a regime may carry "
                        "parameters in brackets, e.g. "
                        "'sequential[objective=current,regularizer=ewc,"
                        "lam=100]' (a λ/ρ or warm-up sweep)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--model", default="auto")
    parser.add_argument("--epochs", type=int, default=12,
                        help="epoch budget of every regime (split between "
                        "its phases, see `regime_for`)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic ops and data order: a resumed "
                        "comparison then reports exactly what an "
                        "uninterrupted one does")
    parser.set_defaults(handler=run)
    return parser


def parse_regimes(text):
    """Parses `--regimes`: `name` or `name[key=value,...]`, comma-separated.

    Args:
        text: the argument.

    Returns:
        A list of `(label, name, params)`; the label is the spec as written.
    """
    import re

    from keras_eexit.cli.main import _params

    specs, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            specs.append(current)
            current = ""
        else:
            current += char
    specs.append(current)
    parsed = []
    for spec in (s.strip() for s in specs if s.strip()):
        match = re.fullmatch(r"([a-z_0-9]+)(?:\[([^\]]*)\])?", spec)
        if match is None:
            raise ValueError(
                f"Invalid regime spec {spec!r}: expected NAME or "
                "NAME[key=value,...]."
            )
        pairs = [p for p in (match.group(2) or "").split(",") if p.strip()]
        parsed.append((spec, match.group(1), _params(pairs)))
    labels = [label for label, _, _ in parsed]
    if not parsed or len(set(labels)) != len(labels):
        raise ValueError(f"--regimes needs distinct specs; got {labels}.")
    return parsed


def regime_for(name, epochs, num_exits, **params):
    """The regime `name` with its phases fitted into an epoch budget.

    Args:
        name: a regime name of `keras_eexit.regimes.REGIMES`.
        epochs: total epochs E.
        num_exits: K.

    Returns:
        A `Regime`. Joint: E epochs; two-stage: 2E/3 backbone then the rest
        for heads; mixed, distillation: E/2 and E/2; branch-wise, separate:
        E/K per exit; sequential: E/2 warm-up then the rest over K-1
        stages; hybrids likewise (every phase at least one epoch).
    """
    from keras_eexit import regimes

    half = max(1, epochs // 2)
    rest = max(1, epochs - half)
    two_thirds = max(1, math.ceil(2 * epochs / 3))
    per_exit = max(1, epochs // num_exits)
    per_stage = max(1, rest // max(1, num_exits - 1))
    table = {
        "joint": {},
        "two_stage": {"backbone_epochs": two_thirds,
                      "heads_epochs": max(1, epochs - two_thirds)},
        "disjoint": {"backbone_epochs": two_thirds,
                     "heads_epochs": max(1, epochs - two_thirds)},
        "mixed": {"backbone_epochs": half, "joint_epochs": rest},
        "branch_wise": {"epochs_per_exit": per_exit},
        "separate": {"epochs_per_exit": per_exit},
        "sequential": {"warmup_epochs": half, "epochs_per_exit": per_stage},
        "distillation": {"backbone_epochs": half, "distill_epochs": rest},
        "joint_branch": {"joint_epochs": half,
                         "epochs_per_exit": max(1, rest // num_exits)},
        "joint_two_stage": {"joint_epochs": two_thirds,
                            "heads_epochs": max(1, epochs - two_thirds)},
        "pretrained_branch": {"backbone_epochs": half,
                              "epochs_per_exit": per_stage},
    }
    return regimes.get_regime(name, verbose=False,
                              **{**table[name], **params})


def run_config(args, spec, seed, model_name):
    """What a recorded run depends on; a record is reused only if it matches.

    Args:
        args: the parsed `compare` arguments.
        spec: `(label, name, params)` from `parse_regimes`.
        seed: the run's seed.
        model_name: the zoo model trained.

    Returns:
        A JSON-serialisable dict.
    """
    return {"regime": spec[0], "seed": seed, "dataset": args.dataset,
            "model": model_name, "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "deterministic": bool(args.deterministic)}


def _load_record(path, config):
    """Reads a finished run's record, checking it belongs to this command."""
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Cannot read the run record {path} ({error}). Delete it to run "
            "that (regime, seed) again."
        ) from None
    recorded = record.get("config") if isinstance(record, dict) else None
    if recorded != config:
        recorded = recorded if isinstance(recorded, dict) else {}
        differ = sorted(k for k in set(config) | set(recorded)
                        if recorded.get(k) != config.get(k))
        detail = ", ".join(
            f"{k}: recorded {recorded.get(k)!r}, now {config.get(k)!r}"
            for k in differ)
        raise ValueError(
            f"The run record {path} was made by a different command "
            f"({detail}). Use another --out, or delete the record to run it "
            "again."
        )
    return record


def _one_run(args, spec, seed, model_name):
    import keras

    from keras_eexit import data
    from keras_eexit import evaluation
    from keras_eexit import models
    from keras_eexit import regimes

    # Seeds first, then fresh pipelines: a run sees the same initial weights
    # and data order whether it follows other runs in this process or
    # starts a resumed comparison.
    keras.utils.set_random_seed(seed)
    splits = data.load(args.dataset, batch_size=args.batch_size, seed=0,
                       deterministic=args.deterministic)
    model = models.get_model(model_name,
                             input_shape=splits.info.input_shape,
                             num_classes=splits.info.num_classes)
    label, name, params = spec
    regime = regime_for(name, args.epochs, model.num_exits, **params)
    if isinstance(regime, regimes.Separate):
        model = regimes.Separate.prepare_model(model)
    epochs = regime.epochs_for(model) or args.epochs
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(splits.train, epochs=epochs, verbose=0, callbacks=[regime])
    seconds = time.perf_counter() - start
    outputs = evaluation.collect(model, splits.test)
    result = evaluation.sweep(outputs, thresholds=100)
    return {
        "config": run_config(args, spec, seed, model_name),
        "regime": label, "seed": seed, "epochs": epochs,
        "train_seconds": round(seconds, 3),
        "exit_names": list(outputs.exit_names),
        "flops": outputs.flops.tolist(),
        "exit_accuracy": outputs.accuracy().tolist(),
        "thresholds": result.thresholds.tolist(),
        "accuracy": result.accuracy.tolist(),
        "mean_flops": result.mean_flops.tolist(),
        "exit_ratios": result.exit_ratios.tolist(),
        "budget": evaluation.budget_table(result, outputs.flops),
    }


def run(args):
    """Runs `keras-eexit compare`; finished (regime, seed) runs are skipped.

    Returns:
        The process exit code.
    """
    import tensorflow as tf

    from keras_eexit import regimes
    from keras_eexit.cli.main import DEFAULT_MODELS
    from keras_eexit.utils.atomic import write_text
    from keras_eexit.utils.validation import check_choice
    from keras_eexit.utils.validation import check_positive_int

    specs = parse_regimes(args.regimes)
    for _, name, params in specs:
        check_choice("regime", name, regimes.REGIMES)
        regime_for(name, 4, 3, **params)  # bad parameters fail up front
    check_positive_int("seeds", args.seeds)
    check_positive_int("epochs", args.epochs)
    model_name = args.model
    if model_name == "auto":
        model_name = DEFAULT_MODELS.get(args.dataset, "cifar_resnet")
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    runs_dir = os.path.join(args.out, RUNS_DIR)
    os.makedirs(runs_dir, exist_ok=True)
    results = {}
    total = len(specs) * args.seeds
    for i, (spec, seed) in enumerate(
        (p, s) for p in specs for s in range(args.seeds)
    ):
        name = spec[0]
        safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_")
        path = os.path.join(runs_dir, f"{safe}_seed{seed}.json")
        config = run_config(args, spec, seed, model_name)
        if os.path.exists(path):
            record = _load_record(path, config)
            print(f"[{i + 1}/{total}] {name} seed {seed}: done earlier, "
                  "skipped", flush=True)
        else:
            record = _one_run(args, spec, seed, model_name)
            write_text(path, json.dumps(record))
            print(f"[{i + 1}/{total}] {name} seed {seed}: final exit "
                  f"{record['exit_accuracy'][-1]:.4f}, "
                  f"{record['train_seconds']:.0f} s", flush=True)
        results.setdefault(name, []).append(record)
    _report(args, results)
    return 0


def _report(args, results):
    from keras_eexit import evaluation
    from keras_eexit.evaluation.sweep import Sweep
    from keras_eexit.utils.atomic import write_text

    import numpy as np

    columns = list(next(iter(results.values()))[0]["budget"])
    lines = [f"# Regime comparison on {args.dataset}", "",
             f"{args.seeds} seed(s) per regime, {args.epochs}-epoch budget "
             "each; test accuracy (mean ± std over seeds).", "",
             "## Accuracy within a FLOPs budget (max-softmax sweep)", "",
             "| regime | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name, records in results.items():
        cells = [evaluation.mean_std([r["budget"][c] for r in records])
                 for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    exit_names = next(iter(results.values()))[0]["exit_names"]
    lines += ["", "## Accuracy per exit (static exits)", "",
              "| regime | " + " | ".join(exit_names) + " |",
              "|---|" + "---|" * len(exit_names)]
    for name, records in results.items():
        cells = [evaluation.mean_std([r["exit_accuracy"][k] for r in records])
                 for k in range(len(exit_names))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if len(results) > 1 and args.seeds > 1:
        lines += ["", "## Significance (one-way ANOVA, Tukey HSD, α = 0.05)",
                  "", "`A ≫ B`: Tukey finds A better at α = 0.05; "
                  "`A > B`: higher mean, not significant.", ""]
        for column in columns:
            values = {n: [r["budget"][column] for r in rs]
                      for n, rs in results.items()}
            if any(np.isnan(v).any() for v in values.values()):
                lines.append(f"- {column}: not every run fits this budget")
                continue
            if all(np.ptp(v) == 0 for v in values.values()):
                lines.append(f"- {column}: no spread across seeds")
                continue
            comparison = evaluation.compare(values)
            lines.append(f"- {column}: {comparison.ordering} "
                         f"(ANOVA p = {comparison.anova_p:.3g})")
    curves = {
        name: [Sweep("max_softmax", np.array(r["thresholds"]),
                     np.array(r["accuracy"]), np.array(r["mean_flops"]),
                     np.array(r["exit_ratios"])) for r in records]
        for name, records in results.items()
    }
    static = {
        f"{name} (static exits)": (
            np.array(records[0]["flops"]) / 1e6,
            np.mean([r["exit_accuracy"] for r in records], axis=0))
        for name, records in results.items()
    }
    evaluation.tradeoff_plot(curves, os.path.join(args.out, "tradeoff.png"),
                             static=static)
    first = next(iter(results))
    evaluation.exit_ratio_plot(curves[first][0], exit_names,
                               os.path.join(args.out, "exit_ratios.png"),
                               title=f"Share of samples per exit ({first}, "
                               "seed 0)")
    lines += ["", "![trade-off](tradeoff.png)", "",
              "![exit ratios](exit_ratios.png)", ""]
    write_text(os.path.join(args.out, "report.md"), "\n".join(lines))
    print(f"Wrote {os.path.join(args.out, 'report.md')}")
