"""What a run leaves behind: its metrics, its comparison record, its files."""

import json
import os
import shutil

from keras_eexit.evaluation.collect import exit_table
from keras_eexit.evaluation.reports.records import run_record
from keras_eexit.evaluation.tables import budget_table
from keras_eexit.experiments.run_dir import RunDirectory
from keras_eexit.utils.atomic import atomic_path
from keras_eexit.utils.atomic import write_text


def metrics(result):
    """The `metrics.json` content of a `keras-eexit train` run.

    Args:
        result: a `runner.Result`.

    Returns:
        A JSON-able dict: the configuration, the per-exit test table, the
        max-softmax budget table and the whole training history.
    """
    config = result.config
    return {
        "model": config.model_name,
        "dataset": config.dataset,
        "regime": config.regime,
        "regime_params": config.regime_params,
        "plan": result.plan,
        "head": config.head,
        "damping": config.damping,
        "epochs": result.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "schedule": config.schedule,
        "seed": config.seed,
        "strategy": config.strategy,
        "replicas": result.replicas,
        "precision": config.precision,
        "train_seconds": result.train_seconds,
        "exits": exit_table(result.outputs),
        # Keyed by the exit rule swept (the method's; max-softmax unless
        # the method has its own, as PBEE's patience).
        f"budget_{result.sweep.criterion}": budget_table(
            result.sweep, result.outputs),
        "history": result.history,
        "config": config.to_dict(),
    }


def comparison_record(result):
    """The run record (`evaluation.run_record`) of one regime × seed.

    Args:
        result: a `runner.Result`.

    Returns:
        The dict of `evaluation.run_record`, with the configuration it was
        made with (`config`), the epochs, the plan, the training time and
        the history.
    """
    config = result.config
    return run_record(
        result.outputs, result.sweep, regime=config.name, seed=config.seed,
        config=config.to_dict(), epochs=result.epochs, plan=result.plan,
        train_seconds=result.train_seconds, history=result.history,
        resources=result.resources)


def write_run(result, out):
    """Writes `model.keras` and `metrics.json` atomically into `out`.

    Only the chief of a multi-worker run writes; every process removes its
    `run.json` and `backup/` (other workers their whole task directory).

    Args:
        result: a `runner.Result` of a run with `out`.
        out: the run's output directory.

    Returns:
        `(model path, metrics path)`, or `None` for a non-chief process.
    """
    content = metrics(result)
    run_dir = result.run_dir or RunDirectory(out)
    if not result.chief:
        shutil.rmtree(run_dir.path, ignore_errors=True)
        return None
    os.makedirs(out, exist_ok=True)
    with atomic_path(run_dir.model_file) as tmp:
        result.model.save(tmp)
    write_text(run_dir.metrics_file, json.dumps(content, indent=2))
    run_dir.finish()
    return run_dir.model_file, run_dir.metrics_file
