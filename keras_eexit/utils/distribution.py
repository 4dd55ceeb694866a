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
        return _multi_worker_strategy()
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


# ---------------------------------------------------------------- workers
CONNECTED_FD_ENV = "KERAS_EEXIT_CONNECTED_FD"
"""Set by `supervise` for its child: the pipe to report the connection on."""

DEFAULT_CONNECT_TIMEOUT = 300.0
"""Seconds a multi-worker task waits for the rest of its cluster."""

GRACE_SECONDS = 10.0
"""How long a supervised run may take to stop after a signal."""

SUPERVISOR_PID_ENV = "KERAS_EEXIT_SUPERVISOR_PID"
"""The supervising process's pid, given to its training child."""

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def is_supervised(environ=None):
    """Whether this process is the training child of `supervise`."""
    environ = os.environ if environ is None else environ
    return bool(environ.get(CONNECTED_FD_ENV))


def bind_to_supervisor(environ=None):
    """Makes this supervised child die with its supervisor.

    A supervisor killed with SIGKILL cannot end its child, and a child
    blocked connecting to its cluster hears no signal handled in Python:
    it would outlive its parent. On Linux the kernel sends the child
    SIGKILL when the supervisor dies (`prctl(PR_SET_PDEATHSIG)`); if the
    supervisor is already gone, the child exits at once. Elsewhere this
    does nothing (the supervisor still ends its child on every exit it
    sees).

    Args:
        environ: the environment holding `SUPERVISOR_PID_ENV` (default:
            this process's).

    Returns:
        Whether the child is now bound to the supervisor's life.
    """
    import signal
    import sys

    environ = os.environ if environ is None else environ
    parent = environ.get(SUPERVISOR_PID_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return False
    if os.getppid() != int(parent):  # the supervisor died before this
        os._exit(128 + signal.SIGKILL)
    return True


def describe_cluster(environ=None):
    """`(this task, [its peers])` as `"type:index (address)"` strings."""
    config = read_tf_config(environ)
    me = (config["task"]["type"], config["task"]["index"])
    names = []
    for kind, members in config["cluster"].items():
        for index, address in enumerate(members):
            names.append(((kind, index), f"{kind} {index} ({address})"))
    mine = next(text for key, text in names if key == me)
    return mine, [text for key, text in names if key != me]


def _report_connected():
    """Tells the supervising process that the cluster is connected."""
    fd = os.environ.pop(CONNECTED_FD_ENV, None)
    if not fd:
        return
    try:
        os.write(int(fd), b"connected\n")
        os.close(int(fd))
    except (OSError, ValueError):
        pass


def _multi_worker_strategy():
    """`MultiWorkerMirroredStrategy`, keeping Python's signal handlers.

    Creating the strategy installs TensorFlow's own SIGTERM handler (its
    preemption notifier), which swallows the signal: the handlers in
    place before are put back, so SIGTERM still stops the run.
    """
    import signal
    import threading

    import tensorflow as tf

    main = threading.current_thread() is threading.main_thread()
    saved = {}
    if main:
        saved = {s: signal.getsignal(s) for s in (signal.SIGTERM,
                                                  signal.SIGINT)}
        # Connecting blocks in native code, where a Python handler never
        # runs: until the cluster answers, SIGTERM ends the process the
        # kernel's way.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    for number, handler in saved.items():
        if handler is not None:
            signal.signal(number, handler)
    _report_connected()
    return strategy


def supervise(command, timeout=DEFAULT_CONNECT_TIMEOUT, environ=None,
              log=None):
    """Runs a multi-worker command in a child process and watches it.

    While TensorFlow connects a multi-worker task to its cluster it blocks
    in native code, holding the interpreter: a peer that never comes makes
    it wait forever, deaf to SIGTERM and Ctrl-C. The supervising process
    stays responsive: it ends the child, with one clear message, when the
    cluster is not connected within `timeout` seconds or when it receives
    SIGTERM or SIGINT; after the connection it forwards those signals and
    returns the child's exit code.

    Args:
        command: the child's argument list (e.g. `[sys.executable, "-m",
            "keras_eexit", "train", ...]`).
        timeout: seconds to wait for the connection.
        environ: the child's environment (default: this one).
        log: `f(text)` for messages (default: print to stderr).

    Returns:
        The exit code: the child's, 1 after a connection timeout, 128 +
        the signal number after a signal.
    """
    import select
    import signal
    import subprocess
    import sys
    import time

    if log is None:
        def log(text):
            print(text, file=sys.stderr, flush=True)

    from keras_eexit.utils.native_logs import child_environ

    environ = child_environ(os.environ if environ is None else environ)
    me, peers = describe_cluster(environ)
    read_end, write_end = os.pipe()
    environ[CONNECTED_FD_ENV] = str(write_end)
    environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    received = []

    def on_signal(number, frame):
        received.append(number)

    previous = {s: signal.signal(s, on_signal)
                for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        child = subprocess.Popen(command, env=environ, pass_fds=(write_end,))
    except BaseException:
        os.close(read_end)
        for number, handler in previous.items():
            signal.signal(number, handler)
        raise
    finally:
        os.close(write_end)

    def stop(number, grace=True):
        """Ends the child: the signal, then SIGKILL after a grace period.

        While connecting, the child is stuck in native code and cannot act
        on a signal: it is killed at once.
        """
        name = signal.Signals(number).name
        if child.poll() is None and not grace:
            child.kill()
            child.wait()
        elif child.poll() is None:
            child.send_signal(number)
            try:
                child.wait(GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return name

    try:
        log(f"keras-eexit: {me} is waiting for the cluster "
            f"({', '.join(peers)}) for at most {timeout:g} s "
            "(--connect-timeout).")
        deadline = time.monotonic() + timeout
        connected = False
        with os.fdopen(read_end, "rb") as pipe:
            while not connected:
                if received:
                    name = stop(received[0], grace=False)
                    log(f"keras-eexit: {name} received while waiting for "
                        "the cluster: stopped.")
                    return 128 + received[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    child.kill()
                    child.wait()
                    log(f"keras-eexit: error: the cluster of TF_CONFIG was "
                        f"not connected within {timeout:g} s: {me} could "
                        f"not reach all of {', '.join(peers)}. Start every "
                        "task with the same TF_CONFIG (each with its own "
                        "`task`), check the addresses and firewalls, or "
                        "raise --connect-timeout.")
                    return 1
                ready, _, _ = select.select([pipe], [], [], min(left, 0.2))
                if ready:
                    if not pipe.readline():  # closed: the child ended
                        return child.wait()
                    connected = True
        while True:
            if received:
                number = received.pop(0)
                stop(number)
                return child.returncode if child.returncode not in (
                    None, -number) else 128 + number
            try:
                return child.wait(0.2)
            except subprocess.TimeoutExpired:
                continue
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if child.poll() is None:
            child.kill()
            child.wait()
