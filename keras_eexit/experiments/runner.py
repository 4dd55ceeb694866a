"""`run`: an `ExperimentConfig` → a trained, evaluated model.

The one training path of the command line: `keras-eexit train` runs one
config into a run directory, `keras-eexit compare` runs one config per
regime × seed and keeps their records, and analyses can run their own
configs with extra callbacks.
"""

import dataclasses
import os
import time

from keras_eexit.experiments import build
from keras_eexit.experiments.interrupt_check import RaisePendingInterrupt
from keras_eexit.experiments.progress import EpochLine
from keras_eexit.experiments.run_dir import HistoryFile
from keras_eexit.experiments.run_dir import RunDirectory
from keras_eexit.experiments.run_dir import StartRun
from keras_eexit.utils.batches import count_batches


@dataclasses.dataclass
class Result:
    """What a run produced.

    Args:
        config: the `ExperimentConfig` it ran.
        model: the trained `MultiExitModel`.
        regime: the `Regime` it trained under.
        plan: one line naming its phases and epochs.
        history: `{metric: [value per epoch]}` of the whole run (resumed
            runs included).
        epochs: the epochs trained.
        train_seconds: wall time of `fit` in this process.
        outputs: `evaluation.collect` of the test split (`ExitOutputs`).
        sweep: the `Sweep` of the method's exit rule (max-softmax over 100
            thresholds; PBEE: patience 0..K-1).
        resources: `ResourceMonitor.summary()` of the run (time per epoch
            and phase, host memory, GPU power/energy or CPU package energy
            where the machine exposes them).
        replicas: replicas in sync under the strategy.
        run_dir: the `RunDirectory` written (`None` without `out`).
        chief: whether this process writes the run's outputs.
    """

    config: object
    model: object
    regime: object
    plan: str
    history: dict
    epochs: int
    train_seconds: float
    outputs: object
    sweep: object
    resources: dict = None
    replicas: int = 1
    run_dir: object = None
    chief: bool = True


def run(config, out=None, resume=False, verbose=2, callbacks=(),
        strategy=None, log=None, load_data=None):
    """Trains and evaluates one configuration.

    Order: seed, then fresh data pipelines, the model (in the strategy's
    scope, under the precision policy), the regime fitted into the epoch
    budget, `fit`, one pass over the test split. With `out`, the run is
    resumable: `run.json` and `BackupAndRestore`'s `backup/` are written
    once training starts (after every check), and `write_run` replaces
    them by `model.keras` and `metrics.json`.

    Args:
        config: an `ExperimentConfig`.
        out: the run directory, or `None` (nothing written).
        resume: continue the interrupted run in `out`.
        verbose: 0 silent, 1 Keras' progress bar, 2 one line per epoch.
        callbacks: more Keras callbacks (analyses), after the regime.
        strategy: a `tf.distribute.Strategy` (default: from
            `config.strategy`; create it before any TensorFlow work).
        log: `f(text)` for the run's messages (default: `print`; `None`
            output with `verbose=0`).
        load_data: `f(config)` returning the run's `data.Splits` (default:
            `keras_eexit.data.load` of `config.dataset`); the recipes read
            data sets that `data.load` does not name (CIFAR archives,
            synthetic smoke images) through it.

    Returns:
        A `Result`.
    """
    import keras
    import tensorflow as tf

    from keras_eexit import evaluation
    from keras_eexit import regimes
    from keras_eexit.callbacks import ResourceMonitor
    from keras_eexit.callbacks import StopOnNonFinite
    from keras_eexit.utils import distribution

    if log is None:
        log = (lambda text: print(text, flush=True)) if verbose else (
            lambda text: None)
    if strategy is None:
        strategy = distribution.make_strategy(config.strategy,
                                              tpu=config.tpu)
    task_out = None
    if out is not None:
        task_out = (distribution.task_dir(out)
                    if config.strategy == "multiworker" else out)
    run_dir = RunDirectory(task_out) if task_out is not None else None
    if run_dir is not None and not resume and (
            run_dir.interrupted() or os.path.isdir(run_dir.backup)):
        raise ValueError(
            f"{out} holds an interrupted run: pass --resume to continue "
            "it, or choose another --out."
        )
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    with distribution.precision_policy(config.precision):
        splits = (load_data or build.load_data)(config)
        with strategy.scope():
            model = build.build_model(config, splits.info)
            regime = build.build_regime(config, model.num_exits,
                                        verbose=verbose > 0)
            epochs = build.fit_epochs(config, regime, model.num_exits)
            steps = count_batches(splits.train)
            build.compile_model(model, config, regime, steps, epochs)
        plan = regimes.plan_text(regime, model.num_exits, epochs,
                                 budget=config.budget)
        log(f"Configuration: {config.describe()}.")
        log(f"Plan ({model.num_exits} exits): {plan}.")
        monitor = ResourceMonitor()
        fit_callbacks = [regime, *build.schedule_callbacks(
            config, regime, model.num_exits, steps, epochs), monitor]
        history_file = None
        if run_dir is not None:
            if not resume:
                run_dir.create()
            history_file = HistoryFile(run_dir)
            fit_callbacks += [
                StartRun(run_dir, config, resume=resume),
                StopOnNonFinite(run_dir.backup),
                keras.callbacks.BackupAndRestore(run_dir.backup),
                history_file]
        else:
            fit_callbacks.append(StopOnNonFinite())
        if verbose == 2:
            fit_callbacks.append(EpochLine(regime))
        fit_callbacks += [*callbacks, RaisePendingInterrupt()]
        start = time.perf_counter()
        try:
            history = model.fit(
                splits.train,
                validation_data=(splits.validation if config.validation
                                 or config.convergence else None),
                epochs=epochs, callbacks=fit_callbacks,
                verbose=1 if verbose == 1 else 0)
        except BaseException:
            if run_dir is not None and not resume and \
                    not run_dir.has_checkpoint():
                run_dir.discard()  # nothing to resume: leave nothing
            raise
        seconds = time.perf_counter() - start
        outputs = evaluation.collect(model, splits.test)
        from keras_eexit import methods

        sweep = evaluation.threshold_sweep(
            outputs, criterion=methods.get_method(config.method).criterion,
            thresholds=100)
    if history_file is not None:
        logs, trained = history_file.history(), history_file.epochs()
    else:
        logs = {k: [float(v) for v in values]
                for k, values in history.history.items()}
        trained = len(history.epoch)
    return Result(config=config, model=model, regime=regime, plan=plan,
                  history=logs, epochs=trained,
                  train_seconds=round(seconds, 3), outputs=outputs,
                  sweep=sweep, resources=monitor.summary(),
                  replicas=strategy.num_replicas_in_sync,
                  run_dir=run_dir,
                  chief=out is None or task_out == out)
