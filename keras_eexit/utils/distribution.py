"""Distribution strategies and mixed-precision policies, by name.

The toolkit runs on TensorFlow's own `tf.distribute` strategies; this module
only builds them from the short names of the command line
(`keras-eexit train --strategy ... --precision ...`) with clear errors when
the environment does not fit (no `TF_CONFIG`, no TPU).

Example:

```python
from keras_eexit.utils.distribution import make_strategy
from keras_eexit.utils.distribution import precision_policy

strategy = make_strategy("mirrored")
with precision_policy("mixed_bfloat16"), strategy.scope():
    model = keras_eexit.models.get_model("small_cnn", ...)
    model.compile(optimizer="adam")
model.fit(dataset, callbacks=[keras_eexit.regimes.Joint()])
```
"""

import contextlib
import json
import os

from keras_eexit.utils.validation import check_choice

STRATEGIES = ("none", "mirrored", "multiworker", "tpu")
"""Names accepted by `make_strategy`."""

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
"""Names accepted by `precision_policy`."""


def make_strategy(name, tpu=None):
    """Builds a `tf.distribute.Strategy` from its short name.

    Create the strategy at the start of the program, before other
    TensorFlow work: `MultiWorkerMirroredStrategy` and `TPUStrategy` must
    be set up before any op runs.

    Args:
        name: one of `STRATEGIES`:
            `"none"`: TensorFlow's default strategy (one device).
            `"mirrored"`: `tf.distribute.MirroredStrategy` over every local
                GPU (or the CPU when there is none).
            `"multiworker"`: `tf.distribute.MultiWorkerMirroredStrategy`;
                the cluster is read from the `TF_CONFIG` environment
                variable (see `read_tf_config`).
            `"tpu"`: `tf.distribute.TPUStrategy` on the TPU found by
                `tf.distribute.cluster_resolver.TPUClusterResolver`.
        tpu: for `"tpu"`, the TPU name or `grpc://` address; `None` lets
            the resolver find a local TPU or read `TPU_NAME`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: for an unknown name, a missing or malformed
            `TF_CONFIG`, or when no TPU can be found.
    """
    import tensorflow as tf

    check_choice("strategy", name, STRATEGIES)
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        read_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(
            "No TPU found for --strategy tpu "
            f"({type(error).__name__}: {error}). Run on a TPU VM, or pass "
            "the TPU name or grpc:// address (--tpu / TPU_NAME)."
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def read_tf_config(environ=None):
    """Reads and checks the `TF_CONFIG` of a multi-worker job.

    `TF_CONFIG` is the JSON that tells each process the whole cluster and
    its own place in it, e.g. for the second of two workers:
    `{"cluster": {"worker": ["host1:12345", "host2:12345"]},
    "task": {"type": "worker", "index": 1}}`.

    Args:
        environ: the environment mapping (default `os.environ`).

    Returns:
        The parsed configuration (a dict).

    Raises:
        ValueError: when `TF_CONFIG` is missing, is not JSON, or does not
            name a task that is in its cluster.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    example = ('e.g. {"cluster": {"worker": ["host1:12345", '
               '"host2:12345"]}, "task": {"type": "worker", "index": 0}}')
    if not text:
        raise ValueError(
            "--strategy multiworker needs the TF_CONFIG environment "
            f"variable describing the cluster and this task, {example}."
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"TF_CONFIG is not valid JSON ({error}); expected {example}."
        ) from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError(
            "TF_CONFIG needs a `cluster` and a `task` object; expected "
            f"{example}. Received: TF_CONFIG={text}"
        )
    kind, index = task.get("type"), task.get("index")
    members = cluster.get(kind)
    if (not isinstance(members, list) or not members
            or not isinstance(index, int) or isinstance(index, bool)
            or not 0 <= index < len(members)):
        raise ValueError(
            "TF_CONFIG's `task` must name a member of its `cluster` (a type "
            "listed there and an index into that list); expected "
            f"{example}. Received: TF_CONFIG={text}"
        )
    return config


def is_chief(environ=None):
    """Whether this process writes the shared outputs of a multi-worker job.

    The chief is the `chief` task of `TF_CONFIG`, or worker 0 when the
    cluster has no chief. Without `TF_CONFIG` (one process) it is `True`.

    Args:
        environ: the environment mapping (default `os.environ`).

    Returns:
        A bool.

    Raises:
        ValueError: when `TF_CONFIG` is set but malformed.
    """
    environ = os.environ if environ is None else environ
    if not environ.get("TF_CONFIG"):
        return True
    config = read_tf_config(environ)
    kind, index = config["task"]["type"], config["task"]["index"]
    if "chief" in config["cluster"]:
        return kind == "chief"
    return kind == "worker" and index == 0


def task_dir(out, environ=None):
    """The output directory of this process in a multi-worker job.

    The chief writes to `out`; every other task to `out/<type>_<index>`
    (backups, scratch), so that tasks sharing a file system never write the
    same files.

    Args:
        out: the run's output directory.
        environ: the environment mapping (default `os.environ`).

    Returns:
        A path.
    """
    environ = os.environ if environ is None else environ
    if is_chief(environ):
        return out
    task = read_tf_config(environ)["task"]
    return os.path.join(out, f"{task['type']}_{task['index']}")


@contextlib.contextmanager
def precision_policy(name):
    """Sets Keras' global dtype policy for a block, then restores it.

    Build and compile the model inside the block: layers take the policy
    when they are created. `MultiExitModel` keeps exit logits and every
    loss term in float32 under the mixed policies, and applies loss scaling
    under `"mixed_float16"`.

    Args:
        name: one of `PRECISIONS`: `"float32"`, `"mixed_float16"` (GPUs) or
            `"mixed_bfloat16"` (TPUs, recent CPUs and GPUs).

    Yields:
        The policy name.

    Raises:
        ValueError: for an unknown name.
    """
    import keras

    check_choice("precision", name, PRECISIONS)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)
