"""`reproduce`: a recipe → its runs (lr search, arms × seeds) → report.

Every run has its own directory under `out/runs/` and goes through
`keras_eexit.experiments.run`, so it is resumable the way `keras-eexit
train` is (`run.json` + `BackupAndRestore`'s `backup/`). A finished run
leaves `record.json`; running the recipe again skips finished runs, resumes
the interrupted one at the epoch it had saved, and starts the rest.
"""

import json
import os

from keras_eexit.recipes import data as data_lib
from keras_eexit.recipes.recipe import SCALES
from keras_eexit.utils.atomic import write_text
from keras_eexit.utils.validation import check_choice

RECORD_FILE = "record.json"
SEARCH_FILE = "lr_search.json"


def _score(record, param):
    """A search candidate's validation score (our choice, see docs).

    The backbone's rate is chosen on the final exit's validation accuracy
    (the backbone phase trains that exit only); any later phase's rate on
    the mean validation accuracy over the exits.
    """
    accuracy = record["validation_accuracy"]
    if param.startswith("backbone"):
        return accuracy[-1]
    return sum(accuracy) / len(accuracy)


def _run_one(config, path, load, callbacks, verbose, log,
             validation=False):
    """One resumable run; its record (read back when it had finished)."""
    from keras_eexit import evaluation
    from keras_eexit import experiments
    from keras_eexit.experiments.run_dir import RunDirectory

    record_file = os.path.join(path, RECORD_FILE)
    if os.path.isfile(record_file):
        with open(record_file, encoding="utf-8") as f:
            return json.load(f)
    run_dir = RunDirectory(path)
    resume = run_dir.interrupted()
    if resume:
        log(f"Resuming the interrupted run in {path}.")
    result = experiments.run(config, out=path, resume=resume,
                             verbose=verbose, callbacks=callbacks,
                             load_data=load, log=log)
    record = experiments.comparison_record(result)
    if validation:
        outputs = evaluation.collect(result.model, load(config).validation)
        record["validation_accuracy"] = [
            float(a) for a in outputs.accuracy()]
    os.makedirs(path, exist_ok=True)
    write_text(record_file, json.dumps(record))
    run_dir.finish()
    return record


def _check_damping(recipe, model_name):
    """Refuses at once an arm with a damping loss on a model without
    damping heads (the builder would refuse it after the data loaded)."""
    import inspect

    from keras_eexit import models
    from keras_eexit.experiments.config import DAMPING_LOSSES

    params = inspect.signature(models.MODELS[model_name]).parameters
    arms = [a.label for a in recipe.arms
            if a.regime_params.get("loss") in DAMPING_LOSSES]
    if arms and "damping" not in params:
        raise ValueError(
            f"Recipe {recipe.name!r}: arms {arms} train with a damping loss, "
            f"but zoo model {model_name!r} has no damping heads (its "
            "builder takes no `damping` argument); give the builder "
            "`damping=False` and build a `DampingHead` on every exit when "
            "it is True, or drop those arms.")


def _search(recipe, arm, settings, out, load, data_dir, callbacks,
            verbose, log):
    """The arm's per-phase learning rates, searched on validation data.

    Phases are searched in the order `arm.lr_search` lists them; a
    candidate is a whole run of the regime (first seed) with the rates
    chosen so far, and the regime's own rate for phases not yet searched.
    """
    grids = settings["lr_search"].get(arm.label, {})
    chosen, table = {}, []
    seed = settings["seeds"][0]
    for param, grid in grids.items():
        if len(grid) == 1:
            chosen[param] = grid[0]
            continue
        scores = {}
        for value in grid:
            config = recipe.config(arm, seed, settings,
                                   {**chosen, param: value}, data_dir)
            path = os.path.join(out, "search", arm.label,
                                f"{param}={value:g}")
            record = _run_one(config, path, load, callbacks, verbose, log,
                              validation=True)
            scores[value] = _score(record, param)
            table.append({"arm": arm.label, "param": param, "value": value,
                          "validation_score": scores[value]})
        chosen[param] = max(grid, key=lambda v: scores[v])
        log(f"{arm.label}: {param} = {chosen[param]:g} (validation "
            f"{scores[chosen[param]]:.4f}).")
    return chosen, table


def _check_same_settings(recipe, settings, out):
    """Refuses an `out` that holds runs of other settings: its finished
    runs would be read back as this recipe's (another seed list is fine:
    the seeds' runs have their own directories)."""
    path = os.path.join(out, "settings.json")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        previous = json.load(f)
    now = json.loads(json.dumps(settings))
    changed = sorted(k for k in set(previous) | set(now)
                     if k != "seeds" and previous.get(k) != now.get(k))
    if changed:
        raise ValueError(
            f"{out} holds runs of recipe {previous.get('recipe')!r} with "
            f"other settings ({', '.join(changed)} differ) than "
            f"{recipe.name!r} at scale {settings['scale']!r} now: choose "
            "another --out, or delete it to start over.")


def reproduce(recipe, data_dir=None, out=None, scale="full", seeds=None,
              verbose=2, callbacks=(), log=None, report=True):
    """Runs a recipe: its learning-rate search, every arm × seed, report.

    Args:
        recipe: a `Recipe` or a registered name.
        data_dir: the directory of the prepared data set (not needed with
            `scale="smoke"`).
        out: the output directory (default `runs/reproduce/NAME-SCALE`).
        scale: `"full"` (the paper's set-up) or `"smoke"`.
        seeds: run these seeds instead of the recipe's.
        verbose: 0 silent, 1 progress bars, 2 one line per epoch.
        callbacks: more Keras callbacks for every run.
        log: `f(text)` for messages (default: `print`).
        report: write the report (`report.md`, `results.csv`, ...).

    Returns:
        A dict: `settings` (the resolved set-up), `records` (one per arm ×
        seed), `learning_rates` (`{arm: {param: rate}}`), `search` (every
        candidate's validation score) and `files` (the report's paths).

    Raises:
        ValueError: for an unknown recipe or scale, a missing data set, a
            model this installation lacks, or an `out` holding runs of
            other settings, before anything is trained.

    Example:

    ```python
    from keras_eexit import recipes

    summary = recipes.reproduce("kubaty_resnet34_cifar100",
                                scale="smoke", out="runs/smoke")
    print(summary["files"]["report"])
    ```
    """
    from keras_eexit import models
    from keras_eexit.recipes import registry
    from keras_eexit.recipes.report import write_report

    if isinstance(recipe, str):
        recipe = registry.get(recipe)
    check_choice("scale", scale, SCALES)
    if log is None:
        log = (lambda t: print(t, flush=True)) if verbose else (
            lambda t: None)
    settings = recipe.settings(scale)
    if seeds is not None:
        settings["seeds"] = list(seeds)
    data_lib.check_data_dir(settings["dataset"], data_dir)
    if settings["model"] not in models.MODELS:
        raise ValueError(
            f"Recipe {recipe.name!r} needs the zoo model "
            f"{settings['model']!r}, which this installation lacks (known: "
            f"{sorted(models.MODELS)}); run --scale smoke, which uses "
            f"{recipe.smoke.model!r}.")
    _check_damping(recipe, settings["model"])
    out = out or os.path.join("runs", "reproduce", f"{recipe.name}-{scale}")
    _check_same_settings(recipe, settings, out)
    os.makedirs(out, exist_ok=True)
    write_text(os.path.join(out, "settings.json"),
               json.dumps(settings, indent=2))
    load = data_lib.loader(recipe, settings, data_dir)
    records, rates, search = [], {}, []
    for arm in recipe.arms:
        chosen, table = _search(recipe, arm, settings, out, load, data_dir,
                                callbacks, verbose, log)
        rates[arm.label], search = chosen, search + table
        for seed in settings["seeds"]:
            config = recipe.config(arm, seed, settings, chosen, data_dir)
            path = os.path.join(out, "runs", arm.label, f"seed_{seed}")
            log(f"[{recipe.name}] {arm.label}, seed {seed}.")
            records.append(_run_one(config, path, load, callbacks, verbose,
                                    log))
    write_text(os.path.join(out, SEARCH_FILE),
               json.dumps({"learning_rates": rates, "candidates": search},
                          indent=2))
    files = {}
    if report:
        files = write_report(recipe, settings, records, rates, search, out)
        log(f"Report: {files['report']}")
    return {"settings": settings, "records": records,
            "learning_rates": rates, "search": search, "files": files}
