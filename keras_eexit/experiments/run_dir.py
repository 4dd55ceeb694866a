"""A training run's directory: resumable while it runs, two files when done.

While a run trains, its directory holds `run.json` (the configuration, so
`--resume` can continue it), `backup/` (Keras' `BackupAndRestore`
checkpoint) and `backup/history.json` (every finished epoch's logs, so a
resumed run reports its whole history). When the run ends they are
removed and `model.keras` and `metrics.json` remain.
"""

import contextlib
import json
import os
import shutil

import keras

from keras_eexit.utils.atomic import write_text

RUN_FILE = "run.json"
BACKUP_DIR = "backup"
HISTORY_FILE = "history.json"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"


class RunDirectory:
    """The files of one run in `path`.

    Args:
        path: the run's output directory.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._created = []

    @property
    def run_file(self):
        return os.path.join(self.path, RUN_FILE)

    @property
    def backup(self):
        return os.path.join(self.path, BACKUP_DIR)

    @property
    def history_file(self):
        return os.path.join(self.backup, HISTORY_FILE)

    @property
    def model_file(self):
        return os.path.join(self.path, MODEL_FILE)

    @property
    def metrics_file(self):
        return os.path.join(self.path, METRICS_FILE)

    def interrupted(self):
        """Whether an unfinished run is recorded here."""
        return os.path.isfile(self.run_file) and os.path.isdir(self.backup)

    def has_checkpoint(self):
        """Whether `BackupAndRestore` saved an epoch to resume from."""
        return os.path.isdir(self.backup) and any(
            name != HISTORY_FILE for name in os.listdir(self.backup))

    def recorded_config(self):
        """The configuration dict of the interrupted run.

        Raises:
            ValueError: when nothing can be resumed here.
        """
        if not self.interrupted():
            raise ValueError(
                f"Nothing to resume in {self.path}: it has no interrupted "
                f"run ({RUN_FILE} and {BACKUP_DIR}/ are written when a run "
                "starts and removed when it finishes)."
            )
        try:
            with open(self.run_file, encoding="utf-8") as f:
                recorded = json.load(f)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"Cannot read {self.run_file} ({error}); delete "
                f"{self.path} to start again."
            ) from None
        if not isinstance(recorded, dict) or "config" not in recorded:
            raise ValueError(
                f"{self.run_file} was written by another version of "
                f"keras-eexit; delete {self.path} to start again."
            )
        return recorded["config"]

    def create(self):
        """Makes the directory, remembering what did not exist before."""
        missing = []
        path = os.path.abspath(self.path)
        while not os.path.exists(path):
            missing.append(path)
            path = os.path.dirname(path)
        os.makedirs(self.path, exist_ok=True)
        self._created = missing

    def start(self, config):
        """Records the configuration (`run.json`) of a starting run."""
        write_text(self.run_file, json.dumps({"config": config.to_dict()},
                                             indent=2))

    def history(self):
        """The logs of the epochs finished before a resume, by epoch."""
        try:
            with open(self.history_file, encoding="utf-8") as f:
                return {int(k): v for k, v in json.load(f).items()}
        except (OSError, ValueError):
            return {}

    def finish(self):
        """Removes what only an unfinished run needs."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.run_file)
        shutil.rmtree(self.backup, ignore_errors=True)

    def discard(self):
        """Removes everything this run wrote (a run that failed early)."""
        self.finish()
        for path in self._created:  # deepest first
            with contextlib.suppress(OSError):
                os.rmdir(path)
        self._created = []


class HistoryFile(keras.callbacks.Callback):
    """Keeps every finished epoch's logs in `backup/history.json`.

    A run resumed by `BackupAndRestore` restarts at the first epoch it had
    not saved; the logs of the epochs before it are read back, so the
    whole history survives any number of resumes.

    Args:
        run_dir: the `RunDirectory`.
    """

    def __init__(self, run_dir):
        super().__init__()
        self.run_dir = run_dir
        self.logs = {}
        self._first = True

    def on_train_begin(self, logs=None):
        self.logs = self.run_dir.history()
        self._first = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first:  # an epoch re-run after a resume replaces its logs
            self.logs = {k: v for k, v in self.logs.items() if k < epoch}
            self._first = False

    def on_epoch_end(self, epoch, logs=None):
        self.logs[epoch] = {k: float(v) for k, v in (logs or {}).items()}
        os.makedirs(self.run_dir.backup, exist_ok=True)
        write_text(self.run_dir.history_file, json.dumps(self.logs))

    def history(self):
        """`{metric: [value per epoch]}` over the whole run."""
        merged = {}
        for epoch in sorted(self.logs):
            for key, value in self.logs[epoch].items():
                merged.setdefault(key, []).append(value)
        return merged

    def epochs(self):
        """How many epochs the whole run has trained."""
        return max(self.logs) + 1 if self.logs else 0


class StartRun(keras.callbacks.Callback):
    """Writes `run.json` when training really starts.

    The regime has checked its phases against the model by then
    (`prepare_fit`), so a run refused for a bad setting leaves nothing.

    Args:
        run_dir: the `RunDirectory`.
        config: the run's `ExperimentConfig`.
        resume: whether `run.json` exists already.
    """

    def __init__(self, run_dir, config, resume=False):
        super().__init__()
        self.run_dir, self.config, self.resume = run_dir, config, resume

    def on_train_begin(self, logs=None):
        if not self.resume:
            self.run_dir.start(self.config)
