"""A recipe's report: our numbers next to the paper's, per seed and mean.

`write_report` writes, into the recipe's output directory:

* `report.md`: the set-up, every deviation from the paper, the
  learning-rate search, and one table per metric (per seed, mean ± std,
  the paper's number with its table and line, the difference, and a
  "differs from the paper" column); a smoke run says at the top and in
  every table that its numbers are not comparable;
* `results.csv`: the same rows;
* `comparison/`: `keras_eexit.evaluation.write_comparison_report` of the
  runs (Kubaty et al.'s averaged-curve budget table, the statistics —
  ANOVA / Tukey HSD or their fall-backs — and the trade-off plots).
"""

import csv
import io
import os
import re

import numpy as np

from keras_eexit.recipes.recipe import SMOKE_WARNING
from keras_eexit.utils.atomic import write_text

BUDGET_COLUMNS = ("25%", "50%", "75%", "100%", "max")


def _percent(value):
    return float("nan") if value is None else 100.0 * float(value)


def _our_values(record, evaluation):
    """`{column: accuracy in %}` of one run record (NaN: no sweep point
    within that budget)."""
    if evaluation == "budget":
        return {c: _percent(record["budget"][c])
                for c in BUDGET_COLUMNS if c in record["budget"]}
    accuracy = [100.0 * float(a) for a in record["exit_accuracy"]]
    values = {f"exit_{k + 1}": a for k, a in enumerate(accuracy)}
    values["avg"] = float(np.mean(accuracy))
    return values


def paper_mean(value):
    """The mean of a transcribed cell (`"61.826 ± 0.675"`, `59.03`)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = re.match(r"\s*(-?[0-9.]+)", str(value))
    return float(match.group(1)) if match else None


def _paper_cell(recipe, row, column):
    for table in recipe.paper_tables:
        if row in table.rows and column in table.columns:
            value = table.rows[row][table.columns.index(column)]
            if value is not None:
                return value, f"{table.table} ({table.where})"
    return None, ""


def _differs(settings, recipe, n_seeds):
    notes = []
    if settings["scale"] == "smoke":
        notes.append("SMOKE: synthetic data, tiny model, few epochs")
    if n_seeds < len(recipe.seeds):
        notes.append(f"{n_seeds} seed(s), paper {len(recipe.seeds)}")
    if recipe.deviations:
        notes.append(f"deviations D1-D{len(recipe.deviations)}")
    return "; ".join(notes) or "none"


def result_rows(recipe, settings, records):
    """One row per arm × column: per-seed values, mean, std, paper.

    Args:
        recipe: the `Recipe`.
        settings: `recipe.settings(scale)` of the run.
        records: the run records (`regime` is the arm's label).

    Returns:
        A list of dicts with `arm`, `column`, `seeds` (`{seed: value}`),
        `mean`, `std`, `paper`, `paper_source`, `difference`, `differs`.
    """
    rows = []
    for arm in recipe.arms:
        mine = [r for r in records if r["regime"] == arm.label]
        if not mine:
            continue
        per_seed = {r["seed"]: _our_values(r, recipe.evaluation)
                    for r in mine}
        columns = list(next(iter(per_seed.values())))
        for column in columns:
            seeds = {s: v[column] for s, v in sorted(per_seed.items())}
            values = np.array(list(seeds.values()), dtype=float)
            paper, where = _paper_cell(recipe, arm.row, column)
            finite = values[np.isfinite(values)]
            mean = float(finite.mean()) if len(finite) else float("nan")
            std = float(finite.std(ddof=1)) if len(finite) > 1 \
                else float("nan")
            p = paper_mean(paper)
            rows.append({
                "arm": arm.label, "column": column, "seeds": seeds,
                "mean": mean, "std": std,
                "paper": "" if paper is None else str(paper),
                "paper_source": where,
                "difference": None if p is None else mean - p,
                "differs": _differs(settings, recipe, len(seeds)),
            })
    return rows


def _fmt(value, digits=2, missing="—"):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return missing
    return f"{value:.{digits}f}"


def _markdown(recipe, settings, rows, rates, search):
    smoke = settings["scale"] == "smoke"
    lines = [f"# {recipe.title}", ""]
    if smoke:
        lines += [f"> **{SMOKE_WARNING}**", ""]
    lines += [
        f"Recipe `{recipe.name}` reproduces {recipe.experiment} of "
        f"`{recipe.paper}` (scale: {settings['scale']}).", "",
        "## Set-up", "",
        f"- data set: {settings['dataset']} "
        f"{tuple(settings['input_shape'])}, "
        f"{settings['num_classes']} classes",
        f"- model: {settings['model']} {settings['model_params']}",
        f"- optimizer: {settings['optimizer']}",
        f"- schedule: {settings['schedule']}",
        f"- batch size {settings['batch_size']}, at most "
        f"{settings['epochs']} epochs"
        f"{' per phase' if settings.get('epochs_per_phase') else ''}, "
        "early stopping "
        f"{settings['early_stopping']}",
        f"- augmentation: {settings['augmentation']}",
        f"- seeds: {settings['seeds']}",
        f"- evaluation: {settings['evaluation']}", "",
        "Where each value comes from:", ""]
    lines += [f"- `{k}`: {v}" for k, v in settings["sources"].items()]
    lines += ["", "## Differences from the paper", ""]
    lines += [f"- D{i + 1}. {d}" for i, d in
              enumerate(recipe.deviations)] or ["- none"]
    if smoke:
        lines += [f"- {d}" for d in settings["deviations"]
                  if d.startswith("smoke")]
    if rates:
        lines += ["", "## Learning rates chosen on the validation split",
                  ""]
        lines += [f"- {arm}: {chosen}" for arm, chosen in rates.items()]
        for c in search:
            lines.append(f"  - {c['arm']} {c['param']}={c['value']:g}: "
                         f"validation {c['validation_score']:.4f}")
    seeds = sorted({s for r in rows for s in r["seeds"]})
    lines += ["", "## Results (accuracy, %)", ""]
    if smoke:
        lines += [f"**{SMOKE_WARNING}**", ""]
    head = (["arm", "column"] + [f"seed {s}" for s in seeds]
            + ["mean ± std", "paper", "ours − paper", "paper source",
               "differs from the paper"])
    lines += ["| " + " | ".join(head) + " |",
              "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["arm"], r["column"]]
        cells += [_fmt(r["seeds"].get(s)) for s in seeds]
        cells += [f"{_fmt(r['mean'])} ± {_fmt(r['std'])}",
                  r["paper"] or "—", _fmt(r["difference"]),
                  r["paper_source"] or "—", r["differs"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## The paper's tables (transcribed)", ""]
    for table in recipe.paper_tables:
        lines += [f"{table.table}, {table.metric} ({table.where})"
                  + (f": {table.note}" if table.note else ""), "",
                  "| row | " + " | ".join(table.columns) + " |",
                  "|" + "---|" * (len(table.columns) + 1)]
        for name, values in table.rows.items():
            lines.append(f"| {name} | " + " | ".join(
                "—" if v is None else str(v) for v in values) + " |")
        lines.append("")
    lines += ["Statistics across seeds and Kubaty et al.'s averaged-curve "
              "budget table: `comparison/report.md`.", ""]
    return "\n".join(lines)


def _csv(recipe, settings, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    seeds = sorted({s for r in rows for s in r["seeds"]})
    writer.writerow(["recipe", "scale", "arm", "column"]
                    + [f"seed_{s}" for s in seeds]
                    + ["mean", "std", "paper", "difference", "paper_source",
                       "differs"])
    for r in rows:
        writer.writerow(
            [recipe.name, settings["scale"], r["arm"], r["column"]]
            + [_fmt(r["seeds"].get(s), 4, "") for s in seeds]
            + [_fmt(r["mean"], 4, ""), _fmt(r["std"], 4, ""), r["paper"],
               _fmt(r["difference"], 4, ""), r["paper_source"],
               r["differs"]])
    return buffer.getvalue()


def write_report(recipe, settings, records, rates, search, out):
    """Writes `report.md`, `results.csv` and `comparison/` into `out`.

    Args:
        recipe: the `Recipe`.
        settings: `recipe.settings(scale)` of the run.
        records: the run records, one per arm × seed.
        rates: `{arm: {param: chosen learning rate}}`.
        search: the candidates' validation scores.
        out: the output directory.

    Returns:
        `{"report": path, "csv": path, "comparison": path}`.
    """
    from keras_eexit import evaluation

    rows = result_rows(recipe, settings, records)
    report = os.path.join(out, "report.md")
    table = os.path.join(out, "results.csv")
    write_text(report, _markdown(recipe, settings, rows, rates, search))
    write_text(table, _csv(recipe, settings, rows))
    title = recipe.title + (" — SMOKE, not comparable"
                            if settings["scale"] == "smoke" else "")
    comparison = os.path.join(out, "comparison")
    evaluation.write_comparison_report(records, comparison, title=title)
    return {"report": report, "csv": table, "comparison": comparison}
