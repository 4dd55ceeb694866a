"""`keras-eexit analyze`: Kubaty et al.'s analyses of saved models.

    keras-eexit analyze --model joint=runs/joint/model.keras \\
        --model mixed=runs/mixed/model.keras \\
        --model disjoint=runs/disjoint/model.keras --dataset digits

writes into `--out`, atomically, figures with their numbers beside them:

- `ranks.png`, `ranks.json`, `ranks.csv`: numerical rank per backbone layer
  (D.5: operation outputs before BatchNorm/activation, 6000 features, test
  set), one line per model;
- `mutual_information.png`, `.json`, `.csv`: I(X; Z) per layer (§3.4, D.6,
  Jensen estimate by default, test set);
- `landscapes.png`, `landscapes.json`: loss landscapes of every exit on the
  training data (appendix A, D.7), a row per model;
- with three models, `connectivity.png`, `connectivity.json`: the loss over
  the plane through them, the last two aligned to the first by weight
  matching (§3.1, D.8); with two or more, `paths.png`, `paths.json`: the
  aligned linear paths between every pair and their loss barriers;
- `analysis.md`, a summary with the figures.
"""

import os

ANALYSES = ("rank", "mi", "landscape", "connectivity", "paths")


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
    parser.add_argument("--analyses", default="auto",
                        help="comma-separated subset of " + ", ".join(
                            ANALYSES) + "; 'auto' runs rank, mi and "
                        "landscape, plus paths with two or more models and "
                        "connectivity with three (default: %(default)s)")
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
                        choices=("interpolate", "recompute"),
                        help="BatchNorm moving statistics along paths and "
                        "over the plane: interpolated like every weight, "
                        "or recomputed on the training data at every point "
                        "(default: %(default)s)")
    parser.add_argument("--mi-estimator", default="jensen",
                        choices=("jensen", "monte_carlo"),
                        help="I(X; Z) estimator (default: %(default)s)")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="size of generated data sets (mnist1d)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of landscape directions and sampled "
                        "features (default: %(default)s)")
    parser.add_argument("--out", default="runs/analyze",
                        help="output directory (default: %(default)s)")
    parser.set_defaults(handler=run)
    return parser


def _models(specs):
    from keras_eexit.models.loading import load_model

    models = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = os.path.splitext(os.path.basename(spec))[0], spec
        if not name or not path:
            raise ValueError(
                f"Invalid value received for argument `--model`. Expected "
                f"NAME=PATH. Received: --model={spec}")
        if name in models:
            raise ValueError(f"Two models are labelled {name!r}: give each "
                             "--model a distinct NAME=PATH.")
        models[name] = load_model(path)
    return models


def _analyses(text, count):
    from keras_eexit.utils.validation import check_choice

    if text == "auto":
        chosen = ["rank", "mi", "landscape"]
        if count >= 2:
            chosen.append("paths")
        if count == 3:
            chosen.append("connectivity")
        return chosen
    chosen = [a.strip() for a in text.split(",") if a.strip()]
    for name in chosen:
        check_choice("analyses", name, ANALYSES)
    if "connectivity" in chosen and count != 3:
        raise ValueError(
            "The connectivity plane needs exactly three models (--model "
            f"given {count} time(s)).")
    if "paths" in chosen and count < 2:
        raise ValueError("Linear paths need at least two models.")
    return chosen


def run(args):
    """Runs `keras-eexit analyze`.

    Args:
        args: the parsed arguments (see `add_parser`).

    Returns:
        The process exit code (0; bad input raises `ValueError`).
    """
    import itertools

    import numpy as np

    from keras_eexit import analysis
    from keras_eexit import data
    from keras_eexit.analysis.weight_space import as_arrays
    from keras_eexit.evaluation import reports
    from keras_eexit.experiments.build import check_fits_data
    from keras_eexit.utils.atomic import write_text
    from keras_eexit.utils.validation import check_positive_int

    check_positive_int("resolution", args.resolution)
    if args.max_samples is not None:
        check_positive_int("max_samples", args.max_samples)
    models = _models(args.model)
    chosen = _analyses(args.analyses, len(models))
    if any(a in chosen for a in ("connectivity", "paths")):
        for name, model in models.items():
            analysis.permutation_spec(model)  # refuse early, clearly
    kwargs = {} if args.num_samples is None else {
        "num_samples": args.num_samples}
    splits = data.load(args.dataset, batch_size=256, **kwargs)
    for name, model in models.items():
        check_fits_data(model, splits.info, f"Model {name!r}")
    test_x, _ = as_arrays(splits.test, args.max_samples)
    train = as_arrays(splits.train, args.max_samples)
    os.makedirs(args.out, exist_ok=True)
    written, lines = [], [f"# Analyses on {args.dataset}", "",
                          "Models: " + ", ".join(models) + ".", ""]

    def save(name, text):
        path = os.path.join(args.out, name)
        write_text(path, text)
        written.append(name)

    def profile(kind, values, ylabel, title, caption):
        analysis.layer_profile_plot(values, os.path.join(
            args.out, f"{kind}.png"), ylabel=ylabel, title=title)
        save(f"{kind}.json", reports.json_text(values))
        rows = [{"model": m, "layer": layer, "value": v}
                for m, profile_ in values.items()
                for layer, v in profile_.items()]
        save(f"{kind}.csv", reports.csv_text(rows))
        written.append(f"{kind}.png")
        lines.extend([f"## {title}", "", caption, "",
                      f"![{title}]({kind}.png)", ""])

    if "rank" in chosen:
        ranks = {name: analysis.layer_ranks(m, test_x, seed=args.seed)
                 for name, m in models.items()}
        profile("ranks", ranks, "numerical rank",
                "Numerical rank per layer",
                f"Test set ({len(test_x)} samples), convolution and dense "
                "outputs before BatchNorm and activation, 6000 sampled "
                "features (Kubaty et al. D.5).")
    if "mi" in chosen:
        mi = {name: analysis.layer_mutual_information(
            m, test_x, estimator=args.mi_estimator, seed=args.seed)
            for name, m in models.items()}
        profile("mutual_information", mi, "I(X; Z) (nats)",
                "Mutual information per layer",
                f"Test set ({len(test_x)} samples), {args.mi_estimator} "
                "estimate through Gaussian noise of 0.1 × the layer's total "
                f"variance; at most log N = {np.log(len(test_x)):.2f} nats "
                "(Kubaty et al. §3.4, D.6).")
    if "landscape" in chosen:
        landscapes = {name: analysis.loss_landscape(
            m, train, resolution=args.resolution, span=args.span,
            seed=args.seed) for name, m in models.items()}
        analysis.landscape_plot(landscapes, path=os.path.join(
            args.out, "landscapes.png"))
        written.append("landscapes.png")
        save("landscapes.json", reports.json_text(
            {name: ls.to_dict() for name, ls in landscapes.items()}))
        lines.extend([
            "## Loss landscapes", "",
            f"Training data ({len(train[0])} samples), every exit, "
            f"{args.resolution} × {args.resolution} grid over "
            f"[-{args.span:g}, {args.span:g}]² along two filter-normalised "
            "Gaussian directions (Li et al. 2018; Kubaty et al. appendix "
            "A).", "", "![Loss landscapes](landscapes.png)", ""])
    if "paths" in chosen:
        paths = {f"{a} → {b}": analysis.linear_path(
            models[a], models[b], train, batchnorm=args.batchnorm)
                 for a, b in itertools.combinations(models, 2)}
        analysis.path_plot(paths, os.path.join(args.out, "paths.png"))
        written.append("paths.png")
        save("paths.json", reports.json_text(
            {label: p.to_dict() for label, p in paths.items()}))
        lines.extend(["## Linear paths (aligned by weight matching)", ""]
                     + [f"- {label}: final-exit loss barrier "
                        f"{p.barrier[-1]:.4f}" for label, p in paths.items()]
                     + ["", f"BatchNorm moving statistics: {args.batchnorm}"
                        "d at every point."]
                     + ["", "![Linear paths](paths.png)", ""])
    if "connectivity" in chosen:
        plane = analysis.connectivity_plane(models, train,
                                            resolution=args.resolution,
                                            batchnorm=args.batchnorm)
        analysis.connectivity_plot(plane, os.path.join(args.out,
                                                       "connectivity.png"))
        written.append("connectivity.png")
        save("connectivity.json", reports.json_text(plane.to_dict()))
        lines.extend([
            "## Mode connectivity", "",
            f"Final-exit training loss over the plane through the three "
            f"models, {plane.names[1]} and {plane.names[2]} aligned to "
            f"{plane.names[0]} by weight matching (Kubaty et al. §3.1, "
            "Figure 2).", "", "![Mode connectivity](connectivity.png)", ""])
    save("analysis.md", "\n".join(lines))
    print(f"Wrote {', '.join(written)} to {args.out}")
    return 0
