"""Analysis during training: gradient dominance, numerical rank, resources."""

import resource
import time

import keras
import numpy as np
import tensorflow as tf


def exit_gradient_cosines(model, x, y):
    """Cosine between each exit's backbone gradient and the total gradient.

    Kubaty et al. (sec. 3.3): with `g_k = ∂(w_k·CE_k)/∂θ_backbone` and
    `g = Σ_k g_k`, exit k dominates training when `cos(g_k, g)` is near 1.
    The backbone is every segment's trainable variables; the losses use the
    model's current `exit_weights` and the model runs in inference mode.

    Args:
        model: a `MultiExitModel`.
        x: a batch of inputs.
        y: its integer (or one-hot) labels.

    Returns:
        A NumPy array `(num_exits,)` of cosines (NaN for an exit whose
        gradient is zero).
    """
    from keras_eexit.losses.exit_cross_entropy import per_sample_crossentropy

    variables = [v.value for s in model.segments
                 for v in s.trainable_weights]
    with tf.GradientTape(persistent=True) as tape:
        out = model(x, training=False)
        losses = [
            tf.cast(model.exit_weights[k], tf.float32) * tf.reduce_mean(
                per_sample_crossentropy(y, out[name]))
            for k, name in enumerate(model.exit_names)
        ]
    flat = []
    for loss in losses:
        grads = tape.gradient(
            loss, variables,
            unconnected_gradients=tf.UnconnectedGradients.ZERO)
        flat.append(tf.concat([tf.reshape(g, (-1,)) for g in grads], 0))
    del tape
    per_exit = tf.stack(flat).numpy().astype(np.float64)
    total = per_exit.sum(0)
    norms = np.linalg.norm(per_exit, axis=1) * np.linalg.norm(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, per_exit @ total / norms, np.nan)


class GradientDominance(keras.callbacks.Callback):
    """Logs `exit_gradient_cosines` on a fixed batch every `every` steps.

    Args:
        x: a fixed batch of inputs.
        y: its labels.
        every: steps between measurements.

    Attributes:
        history: list of `(global step, cosines array)`.

    Example:

    ```python
    dominance = GradientDominance(x[:64], y[:64], every=50)
    model.fit(x, y, callbacks=[dominance])
    ```
    """

    def __init__(self, x, y, every=100):
        super().__init__()
        self.x, self.y, self.every = x, y, every
        self.history = []
        self._step = 0

    def on_train_batch_end(self, batch, logs=None):
        if self._step % self.every == 0:
            self.history.append(
                (self._step, exit_gradient_cosines(self.model, self.x,
                                                   self.y)))
        self._step += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.history and logs is not None:
            for k, value in enumerate(self.history[-1][1]):
                logs[f"grad_cos_exit_{k + 1}"] = float(value)


def numerical_rank(activations, max_features=1024, tol=None, seed=0):
    """Numerical rank of a samples × features activation matrix.

    Kubaty et al.'s appendix D.5: flatten each sample's activations, keep a
    fixed random subset of at most `max_features` features (seeded), and
    count singular values above `tol` (default: NumPy's
    `S.max() · max(M, N) · eps`).

    Args:
        activations: array `(samples, ...)`.
        max_features: features kept.
        tol: singular-value tolerance.
        seed: seed of the feature subset.

    Returns:
        An int.
    """
    matrix = np.asarray(activations, dtype=np.float64).reshape(
        len(activations), -1)
    if matrix.shape[1] > max_features:
        keep = np.random.default_rng(seed).choice(matrix.shape[1],
                                                  max_features,
                                                  replace=False)
        matrix = matrix[:, np.sort(keep)]
    return int(np.linalg.matrix_rank(matrix, tol=tol))


class NumericalRank(keras.callbacks.Callback):
    """Numerical rank of backbone activations on a fixed batch, per epoch.

    By default every segment's output is measured; `layers` names layers
    inside the (functional) segments instead, as Kubaty et al. do per layer.

    Args:
        x: a fixed batch of inputs (more samples than kept features gives
            the most informative ranks).
        layers: optional layer names inside the segments.
        max_features: see `numerical_rank`.

    Attributes:
        history: list of per-epoch `{name: rank}` dicts.
    """

    def __init__(self, x, layers=None, max_features=1024):
        super().__init__()
        self.x = x
        self.layers = list(layers) if layers else None
        self.max_features = max_features
        self.history = []

    def _activations(self):
        model, state = self.model, self.x
        wanted = set(self.layers or [])
        found = {}
        for k, segment in enumerate(model.segments):
            inside = [n for n in wanted
                      if any(layer.name == n for layer in
                             getattr(segment, "layers", []))]
            if inside:
                probe = keras.Model(
                    segment.inputs, [_output_in(segment, n) for n in inside])
                outputs = probe(state, training=False)
                outputs = outputs if isinstance(outputs, list) else [outputs]
                found.update(zip(inside, outputs))
            state = segment(state, training=False)
            if self.layers is None:
                first = state[0] if isinstance(state, (list, tuple)) else (
                    state)
                found[f"segment_{k + 1}"] = first
        missing = wanted - set(found)
        if missing:
            raise ValueError(
                f"NumericalRank: layers {sorted(missing)} are not inside "
                "the model's segments."
            )
        return found

    def on_epoch_end(self, epoch, logs=None):
        ranks = {name: numerical_rank(np.asarray(value), self.max_features)
                 for name, value in self._activations().items()}
        self.history.append(ranks)
        if logs is not None:
            for name, rank in ranks.items():
                logs[f"rank_{name}"] = rank


def _output_in(segment, name):
    """The output of layer `name` in `segment`'s own graph.

    A layer shared with the backbone a segment was cut from has several
    call nodes; `layer.output` would be the backbone's.
    """
    for nodes in segment._nodes_by_depth.values():
        for node in nodes:
            if getattr(node.operation, "name", None) == name:
                return node.outputs[0]
    raise ValueError(f"Layer {name!r} is not in segment {segment.name!r}.")


class ResourceMonitor(keras.callbacks.Callback):
    """Wall time per epoch and per phase, peak host memory, GPU use.

    Peak host memory is the process's maximum resident set size
    (`resource.getrusage`). GPU memory and power come from `pynvml` when it
    is installed and a GPU is present; otherwise they are recorded as
    unavailable (the toolkit does not depend on `pynvml`).

    Attributes:
        epoch_seconds: wall time of each epoch.
        phase_seconds: `{phase index: seconds}` (phase 0 without a regime).
        peak_host_mb: peak resident memory in MiB.
        gpu: `{"available": bool, ...}` with memory (MiB) and power (W).
    """

    def __init__(self):
        super().__init__()
        self.epoch_seconds = []
        self.phase_seconds = {}
        self.peak_host_mb = 0.0
        self.gpu = {"available": False}

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self.epoch_seconds.append(seconds)
        phase = int((logs or {}).get("phase", 0))
        self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + (
            seconds)
        self.peak_host_mb = resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024.0
        self.gpu = _gpu_state()


def _gpu_state():
    try:
        import pynvml
    except ImportError:
        return {"available": False, "reason": "pynvml is not installed"}
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        power = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        return {"available": True, "memory_mb": memory.used / 2**20,
                "power_w": power}
    except Exception as error:  # no GPU or no driver
        return {"available": False, "reason": str(error)}
