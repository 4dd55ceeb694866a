"""`keras-eexit compare`: every method × regime × seed, then one report.

Each (method, regime, seed) is one `ExperimentConfig` run by the same runner as
`train`; its record (`experiments.comparison_record`) is written to
`<out>/runs/` as soon as it finishes, holding the configuration it was
made with, so a re-run of the same command skips it and a different
command refuses it. The report is `evaluation.write_comparison_report`.
"""

import json
import os
import re

from keras_eexit.cli import options

RUNS_DIR = "runs"
DEFAULT_OUT = os.path.join("runs", "compare")


def add_parser(subparsers):
    """Adds the `compare` sub-command.

    Args:
        subparsers: the `argparse` sub-parsers of `keras-eexit`.

    Returns:
        The new sub-parser.
    """
    parser = subparsers.add_parser(
        "compare", formatter_class=options.HelpFormatter,
        help="train several regimes over several seeds; write report.md "
        "with budget tables, ANOVA/Tukey orderings and plots",
        description="Train every regime of --regimes with every seed, each "
        "fitted into the same epoch budget, and write report.md, "
        "summary.csv, summary.json and plots to --out.")
    parser.add_argument("--regimes", default="joint,mixed,two_stage",
                        help="comma-separated regimes; a regime may carry "
                        "parameters in brackets, e.g. "
                        "'sequential[objective=current,regularizer=ewc,"
                        "lam=100]' (a λ/ρ or warm-up sweep)")
    from keras_eexit import methods

    parser.add_argument("--methods", default="sdn",
                        help="comma-separated early-exit methods ("
                        + ", ".join(methods.METHODS) + "); every method "
                        "runs under every regime, reported as "
                        "METHOD-REGIME (plain REGIME for sdn alone)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds 0..N-1 per regime")
    options.add_training_options(
        parser, dataset="mnist1d",
        epochs_help="epoch budget of every regime, split over its phases "
        "(see docs/cli.md)")
    parser.add_argument("--converge", type=int, default=None,
                        metavar="PATIENCE",
                        help="run every phase to convergence instead of "
                        "splitting --epochs: a phase ends when the "
                        "validation metric of every exit it trains has "
                        "not improved for PATIENCE epochs, and restores "
                        "its best weights (Kubaty et al.'s protocol)")
    parser.add_argument("--max-phase-epochs", type=int, default=None,
                        help="with --converge: the most epochs of one "
                        "phase (default: the --epochs split)")
    parser.add_argument("--converge-metric", default="accuracy",
                        choices=("accuracy", "loss"),
                        help="with --converge: the per-exit validation "
                        "metric watched (accuracy: Kubaty et al.'s early "
                        "stopping, sec. 4)")
    parser.add_argument("--out", default=None,
                        help=f"output directory (default: {DEFAULT_OUT})")
    parser.set_defaults(handler=run)
    return parser


def parse_regimes(text):
    """Parses `--regimes`: `name` or `name[key=value,...]`, comma-separated.

    Args:
        text: the argument.

    Returns:
        A list of `(label, name, params)`; the label is the spec as written.
    """
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
        parsed.append((spec, match.group(1), options.parse_params(pairs)))
    labels = [label for label, _, _ in parsed]
    if not parsed or len(set(labels)) != len(labels):
        raise ValueError(f"--regimes needs distinct specs; got {labels}.")
    return parsed


def configs(args):
    """One `ExperimentConfig` per regime × seed, every one checked first."""
    from keras_eexit.experiments import ExperimentConfig
    from keras_eexit.experiments import Convergence
    from keras_eexit.utils.validation import check_positive_int

    specs = parse_regimes(args.regimes)
    check_positive_int("seeds", args.seeds)
    convergence = None
    if getattr(args, "converge", None) is not None:
        convergence = Convergence(args.converge, args.max_phase_epochs,
                                  f"val_{args.converge_metric}")
    elif getattr(args, "max_phase_epochs", None) is not None:
        raise ValueError("--max-phase-epochs needs --converge PATIENCE.")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(
            f"--methods needs distinct method names; got {args.methods!r}.")
    plain = methods == ["sdn"]
    return [ExperimentConfig(
        dataset=args.dataset, data_dir=args.data_dir, model=args.model,
        regime=name, regime_params=params, method=method, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        schedule=args.schedule, num_samples=args.num_samples, seed=seed,
        deterministic=args.deterministic, validation=False,
        label=label if plain else f"{method}-{label}",
        convergence=convergence)
        for method in methods for label, name, params in specs
        for seed in range(args.seeds)]


def record_path(runs_dir, config):
    """Where the record of one (regime, seed) run is kept."""
    safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", config.name).strip("_")
    return os.path.join(runs_dir, f"{safe}_seed{config.seed}.json")


def _plain_config(config):
    return json.loads(json.dumps(config.to_dict()))


def load_record(path, config):
    """Reads a finished run's record, checking it belongs to this command.

    Args:
        path: the record file.
        config: the `ExperimentConfig` the record must have been made with.

    Returns:
        The record (a dict).

    Raises:
        ValueError: for an unreadable record or one of another command.
    """
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Cannot read the run record {path} ({error}). Delete it to run "
            "that (regime, seed) again."
        ) from None
    expected = _plain_config(config)
    recorded = record.get("config") if isinstance(record, dict) else None
    if recorded != expected:
        recorded = recorded if isinstance(recorded, dict) else {}
        differ = sorted(k for k in set(expected) | set(recorded)
                        if recorded.get(k) != expected.get(k))
        detail = ", ".join(
            f"{k}: recorded {recorded.get(k)!r}, now {expected.get(k)!r}"
            for k in differ)
        raise ValueError(
            f"The run record {path} was made by a different command "
            f"({detail}). Use another --out, or delete the record to run it "
            "again."
        )
    return record


def run(args):
    """Runs `keras-eexit compare`; finished (regime, seed) runs are skipped.

    Returns:
        The process exit code.
    """
    from keras_eexit import evaluation
    from keras_eexit import experiments
    from keras_eexit.utils.atomic import write_text
    from keras_eexit.utils.native_logs import initialize_devices
    from keras_eexit.utils.native_logs import quiet

    runs = configs(args)
    out = args.out or DEFAULT_OUT
    if args.out is None:
        print(f"No --out given: writing to {out}", flush=True)
    print(f"Configuration: {runs[0].describe()} "
          f"(methods {args.methods}, regimes {args.regimes}, seeds "
          f"0..{args.seeds - 1}).",
          flush=True)
    runs_dir = os.path.join(out, RUNS_DIR)
    records = []
    for i, config in enumerate(runs):
        path = record_path(runs_dir, config)
        head = f"[{i + 1}/{len(runs)}] {config.name} seed {config.seed}"
        if os.path.exists(path):
            records.append(load_record(path, config))
            print(f"{head}: done earlier, skipped", flush=True)
            continue
        with quiet():
            initialize_devices()
        try:
            result = experiments.run(config, verbose=0)
        except KeyboardInterrupt as interrupt:
            done = len(records)
            interrupt.args = (
                f"{done} finished run{'' if done == 1 else 's'} kept in "
                f"{runs_dir}; run the same command again to continue",)
            raise
        record = experiments.comparison_record(result)
        os.makedirs(runs_dir, exist_ok=True)
        write_text(path, evaluation.json_text(record))
        records.append(record)
        print(f"{head}: {result.plan}; final exit "
              f"{record['exit_accuracy'][-1]:.4f}, "
              f"{record['train_seconds']:.0f} s", flush=True)
    title = (f"Regime comparison on {runs[0].dataset} "
             f"({runs[0].model_name}, {runs[0].budget}-epoch budget)")
    written = evaluation.write_comparison_report(records, out, title=title)
    print(f"Wrote {', '.join(os.path.basename(p) for p in written.values())} "
          f"to {out}")
    return 0
