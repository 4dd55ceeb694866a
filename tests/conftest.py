"""Shared test fixtures: quiet TensorFlow and a tiny multi-exit model."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_eexit import MultiExitModel  # noqa: E402


def make_tiny_model(num_exits=3, num_classes=4, input_shape=(8, 8, 1),
                    seed=0):
    """A small chain of conv segments with dense heads (no zoo needed)."""
    keras.utils.set_random_seed(seed)
    segments, heads = [], []
    channels = input_shape[-1]
    for k in range(num_exits):
        shape = input_shape[:-1] + (channels,)
        segments.append(keras.Sequential(
            [keras.Input(shape),
             keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
             keras.layers.BatchNormalization()],
            name=f"seg_{k + 1}",
        ))
        channels = 4
        heads.append(keras.Sequential(
            [keras.layers.GlobalAveragePooling2D(),
             keras.layers.Dense(num_classes)],
            name=f"exit_{k + 1}",
        ))
    return MultiExitModel(segments, heads, name="tiny")


@pytest.fixture
def tiny_model():
    return make_tiny_model()


@pytest.fixture
def tiny_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, size=32)
    return x, y


@pytest.fixture
def model_factory():
    return make_tiny_model


class WeightRecorder(keras.callbacks.Callback):
    """Records, per epoch, which segments/heads changed and the phase.

    Place it after the regime in the callback list: it snapshots at epoch
    begin, after the regime has applied the epoch's phase.
    """

    def __init__(self):
        super().__init__()
        self.changed = []  # per epoch: (set of changed segs, set of heads)
        self.exit_weights = []
        self.snapshots = []

    @staticmethod
    def _values(layer):
        return [np.array(w) for w in layer.weights]

    def _snapshot(self):
        m = self.model
        return ([self._values(s) for s in m.segments],
                [self._values(h) for h in m.heads])

    def on_epoch_begin(self, epoch, logs=None):
        self._before = self._snapshot()
        self.exit_weights.append(np.array(self.model.exit_weights))

    def on_epoch_end(self, epoch, logs=None):
        after = self._snapshot()
        self.snapshots.append(after)

        def diff(before, now):
            return {k + 1 for k, (b, a) in enumerate(zip(before, now))
                    if any(not np.array_equal(x, y) for x, y in zip(b, a))}

        self.changed.append((diff(self._before[0], after[0]),
                             diff(self._before[1], after[1])))


@pytest.fixture
def recorder():
    return WeightRecorder()


def shared_directory(tmp_path_factory, name, compute):
    """A directory `compute(directory)` fills once per test session.

    pytest-xdist's workers each set up a module-scoped fixture for the
    tests they run, and `--dist worksteal` may split a module between
    them: an expensive fixture (a JAX or PyTorch subprocess) would then
    run twice. Its results go to a directory every worker of the session
    sees instead: the first worker to need it computes it under a file
    lock, the others wait for it and read it. A failed `compute` leaves
    no result, so the next worker tries again (and fails the same way).

    Args:
        tmp_path_factory: pytest's fixture.
        name: the directory's name, unique in the session.
        compute: `compute(directory)`, writing its results there.

    Returns:
        The `pathlib.Path` of the filled directory.
    """
    import fcntl
    import shutil

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's, shared by its workers
    directory, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            compute(directory)
            done.touch()
    return directory
