"""Training cases that run the same way on TensorFlow, JAX and PyTorch.

The backend is fixed when Keras is first imported, so a cross-backend
test saves initial weights and batches from its (TensorFlow) process
(`prepare`), runs `python -m tests.backends.cross_backend_cases` once
with `KERAS_BACKEND=jax` (or `torch`) over every case (`run_cases`),
runs the same cases in its own process and compares the two sets of
results. Every case starts from the saved weights, so the two runs see
equal weights and equal data; each result is a flat `{name: array}`
saved as `.npz`. A directory holds one comparison: `run_on_both` notes
there which backend the other side ran, and `results` reads it, so the
checks of `test_cross_backend.py` and `test_cross_backend_regimes.py`
serve every backend (`test_cross_backend_torch.py`).

Cases:

* `one_step`: a zoo model's logits (inference mode), then one `fit`
  step (whole batch, plain SGD) under an objective: the step's logs
  (the compiled loss, per exit and per term) and how it moved every
  weight (trainable ones, and BatchNorm's moving statistics);
* `flops`: a zoo model's cumulative FLOPs per exit in both conventions,
  and which counter gave them (the TF graph's on TensorFlow, the
  analytic counter elsewhere);
* `fisher`: `empirical_fisher` of every exit, per sample and per batch;
* `sequential`: a `SequentialRegime` with EWC or LwF on digits: which
  segments and heads each epoch changed, the epoch logs, final weights;
* `method`: the methods with their own train step. L2W: the bi-level
  meta-gradient at the saved weights, then two epochs of `fit` under
  `Joint` (SGD with momentum, which the look-ahead replays); ZTW: a
  `Joint` epoch, then its ensemble phase. The logs, the model's weights
  (and L2W's network's) after.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np

from keras_eexit import losses
from keras_eexit.data.text_vocab import tokenize
from keras_eexit.models import get_model

CLASSES = 5
BATCH = 8
LEARNING_RATE = 0.1


def _text(backend):
    return ("text_transformer_exits", dict(
        num_classes=CLASSES, sequence_length=16, num_layers=3,
        hidden_dim=16, num_heads=2, intermediate_dim=32, dropout=0.0,
        backend=backend))


FAMILIES = {
    "small_cnn": ("small_cnn", dict(input_shape=(8, 8, 1), width=8)),
    "small_cnn_damping": ("small_cnn", dict(input_shape=(8, 8, 1), width=8,
                                            damping=True)),
    "cnn1d": ("cnn1d", dict(input_shape=(40, 1), width=8)),
    "cifar_resnet": ("cifar_resnet", dict(depth=20,
                                          input_shape=(16, 16, 3))),
    "cifar_resnet_damping": ("cifar_resnet", dict(
        depth=20, input_shape=(16, 16, 3), damping=True)),
    "msdnet_cifar": ("msdnet_cifar", dict(
        input_shape=(16, 16, 3), channels=4, growth_rate=2, head_filters=8,
        exits=3)),
    "ranet_cifar": ("ranet_cifar", dict(
        input_shape=(16, 16, 3), channels=4, growth_rate=4, head_filters=8,
        exits=3, base_blocks=1, block_step=1, step=1, step_mode="even")),
    "vit_exits": ("vit_exits", dict(
        image_size=16, patch_size=4, dim=16, depth=3, heads=2, mlp_dim=24,
        exits_after=(1, 2))),
    "text_builtin": _text("builtin"),
    "text_keras_hub": _text("keras_hub"),
    "msdnet_imagenet": ("msdnet_imagenet", dict(
        input_shape=(32, 32, 3), channels=4, growth_rate=2, head_filters=8,
        exits=2, base=1, step=1)),
    "vgg16_exits": ("vgg16_exits", dict(input_shape=(32, 32, 3))),
    "mobilenet_v2_exits": ("mobilenet_v2_exits", dict(
        input_shape=(32, 32, 3), alpha=0.35)),
    "resnet50_exits": ("resnet50_exits", dict(input_shape=(32, 32, 3))),
    "digits_cnn": ("small_cnn", dict(input_shape=(8, 8, 1), width=8,
                                     num_classes=10)),
}
"""Case name -> (zoo name, builder arguments): the smallest sizes the
builders allow (the families' own tests use the same)."""


OBJECTIVES = {
    "cross_entropy": lambda: losses.Objective.cross_entropy(),
    "damping": lambda: losses.Objective([losses.ExitDampingLoss(
        losses.DampingLoss(lam=0.075))]),
    "power_sqrt": lambda: losses.Objective([losses.ExitDampingLoss(
        losses.PowerSqrtDampingLoss(lam=0.075), alpha=0.8)]),
    "distillation": lambda: losses.Objective.with_terms(
        [losses.ExitDistillation(students=[1, 2], temperature=3.0,
                                 weight=0.5)]),
    "selective": lambda: losses.Objective([losses.SelectiveCrossEntropy(
        threshold=0.3, label_smoothing=0.1)]),
}
"""The regime objectives that need no regime state (EWC and LwF read a
Fisher store or reference exits: `sequential` runs them)."""


def build(family, seed=0):
    """A new zoo model of `family`, initialised from `seed` (`<family>_ztw`:
    the family's model made a ZTW network)."""
    if family.endswith("_ztw"):
        from keras_eexit.methods import ztw

        return ztw(build(family[:-len("_ztw")], seed))
    name, kwargs = FAMILIES[family]
    keras.utils.set_random_seed(seed)
    return get_model(name, **{"num_classes": CLASSES, **kwargs})


def batch(family, size=BATCH, seed=0):
    """A fixed batch `(x, y)` for `family`'s input (tokens for text, the
    sequential cases' digits for `"digits_cnn"`)."""
    if family == "digits_cnn":
        return sequential_data()
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, size=size)
    if family.startswith("text"):
        words = ["good", "bad", "film", "plot", "dull", "fine", "the"]
        texts = [" ".join(rng.choice(words, size=rng.integers(1, 6)))
                 for _ in range(size)]
        return np.asarray(tokenize(texts, 16)), y
    shape = tuple(build_shape(family))
    return rng.normal(size=(size,) + shape).astype("float32"), y


def build_shape(family):
    """The input shape (without batch) of `family`'s models."""
    _, kwargs = FAMILIES[family.removesuffix("_ztw")]
    if "image_size" in kwargs:
        return (kwargs["image_size"],) * 2 + (3,)
    return kwargs["input_shape"]


def prepare(directory, families):
    """Saves each family's initial weights and batch under `directory`."""
    directory = pathlib.Path(directory)
    for family in families:
        build(family).save_weights(directory / f"{family}.weights.h5")
        x, y = batch(family)
        np.savez(directory / f"{family}.npz", x=x, y=y)


def _load(directory, family):
    model = build(family, seed=1)  # other values, overwritten
    model.load_weights(pathlib.Path(directory) / f"{family}.weights.h5")
    data = np.load(pathlib.Path(directory) / f"{family}.npz")
    return model, data["x"], data["y"]


def _weights(model):
    return {f"weight_{i:04d}": np.asarray(w)
            for i, w in enumerate(model.get_weights())}


def one_step(directory, family, objective):
    """Logits, then one SGD step of `fit` under `objective`: its logs,
    each weight's change (`update_<i>`, in `model.weights` order) and
    which weights are moving statistics (`moving`)."""
    model, x, y = _load(directory, family)
    result = {f"logits_{name}": keras.ops.convert_to_numpy(value)
              for name, value in model(x, training=False).items()}
    before = model.get_weights()
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))
    model.set_objective(OBJECTIVES[objective]())
    history = model.fit(x, y, epochs=1, batch_size=len(x), shuffle=False,
                        verbose=0)
    result.update({f"log_{key}": np.asarray(values, "float64")
                   for key, values in history.history.items()})
    result.update({f"update_{i:04d}": after - start for i, (start, after)
                   in enumerate(zip(before, model.get_weights()))})
    result["moving"] = np.array(["moving_" in v.path for v in model.weights])
    return result


def flops(directory, family):
    """Cumulative FLOPs per exit in both conventions
    (`{"<convention>": array}`) and `tf_graph`, whether the TF-graph
    counter gave them."""
    from keras_eexit.models import costs

    model, _, _ = _load(directory, family)
    result = {convention: np.asarray(
        costs.compute_stage_costs(model, convention).cumulative_flops())
        for convention in ("keras_eexit", "fvcore")}
    result["tf_graph"] = np.asarray(costs.uses_tensorflow_graph())
    return result


def fisher(directory, family):
    """`empirical_fisher` of every exit on two batches, per sample and per
    batch (`{"<mode>_exit<k>_<i>": array}`, i-th protected variable)."""
    from keras_eexit.fisher import empirical_fisher

    model, x, y = _load(directory, family)
    half = len(x) // 2
    data = [(x[:half], y[:half]), (x[half:], y[half:])]
    result = {}
    for per_batch in (False, True):
        mode = "per_batch" if per_batch else "per_sample"
        for exit in range(1, model.num_exits + 1):
            values = empirical_fisher(model, data, exit=exit,
                                      per_batch=per_batch)
            for i, value in enumerate(values.values()):
                result[f"{mode}_exit{exit}_{i:03d}"] = value
    return result


SEQUENTIAL_SAMPLES = 128
SEQUENTIAL_BATCH = 64


def sequential_data():
    """The first training digits of the sequential cases."""
    from keras_eexit.data import load_arrays

    digits = load_arrays("digits", validation_split=0.25, seed=0)
    return (digits["x_train"][:SEQUENTIAL_SAMPLES],
            digits["y_train"][:SEQUENTIAL_SAMPLES])


def sequential(directory, regularizer):
    """`SequentialRegime(1, warmup_epochs=1, regularizer=...)` on digits:
    `changed` (epochs x (segments + heads), which moved), the epoch logs
    and the final weights."""
    from keras_eexit.regimes import SequentialRegime
    from tests.conftest import WeightRecorder

    model, x, y = _load(directory, "digits_cnn")
    regime = SequentialRegime(1, warmup_epochs=1, regularizer=regularizer,
                              fisher_samples=SEQUENTIAL_BATCH, verbose=False)
    recorder = WeightRecorder()
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    history = model.fit(x, y, batch_size=SEQUENTIAL_BATCH, shuffle=False,
                        epochs=regime.epochs_for(model),
                        callbacks=[regime, recorder], verbose=0)
    moved = [[k in segments for k in range(1, model.num_exits + 1)]
             + [k in heads for k in range(1, model.num_exits + 1)]
             for segments, heads in recorder.changed]
    result = {"changed": np.asarray(moved)}
    result.update({f"log_{key}": np.asarray(values, "float64")
                   for key, values in history.history.items()})
    result.update(_weights(model))
    return result


METHOD_FAMILIES = {"l2w": "small_cnn", "ztw": "small_cnn_ztw"}
"""The model each `method` case trains."""


def method(directory, name):
    """The `method` case of `name` (`"l2w"` or `"ztw"`): see the module
    docstring."""
    from keras_eexit import regimes
    from keras_eexit.methods import L2W
    from keras_eexit.methods import ztw_regime

    model, x, y = _load(directory, METHOD_FAMILIES[name])
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE,
                                                 momentum=0.9))
    half = len(x) // 2
    result = {}
    if name == "l2w":
        l2w = L2W(hidden_units=8, meta_learning_rate=1e-2).attach(model)
        rng = np.random.default_rng(0)
        for variable in l2w.network.weights:  # the same start everywhere
            variable.assign(rng.uniform(-0.3, 0.3, variable.shape)
                            .astype("float32"))
        model.optimizer.build(model.trainable_variables)

        def by_exit(labels):
            return {n: labels for n in model.exit_names}

        grads, loss = l2w.meta_gradients(
            model, (x[:half], by_exit(y[:half]), None),
            (x[half:], by_exit(y[half:])))
        result["meta_loss"] = keras.ops.convert_to_numpy(loss)
        result.update({f"meta_gradient_{i:03d}":
                       keras.ops.convert_to_numpy(g)
                       for i, g in enumerate(grads)})
        regime, epochs = regimes.Joint(verbose=False), 2
    else:
        regime = ztw_regime(regimes.Joint(verbose=False), epochs=1,
                            ensemble_epochs=1, learning_rate=0.05)
        epochs = None
    history = model.fit(x, y, batch_size=half, epochs=epochs, shuffle=False,
                        verbose=0, callbacks=[regime])
    result.update({f"log_{key}": np.asarray(values, "float64")
                   for key, values in history.history.items()})
    result.update(_weights(model))
    if name == "l2w":
        result.update({f"network_{i:03d}": keras.ops.convert_to_numpy(v)
                       for i, v in enumerate(l2w.network.weights)})
    return result


def run_on_both(directory, cases, timeout=900, backend="jax"):
    """Runs `cases` in one subprocess on `backend` (`"jax"` or
    `"torch"`, on CPU) and in this (TensorFlow) process at the same time;
    their results go to `directory`, which notes `backend`."""
    root = pathlib.Path(__file__).resolve().parents[2]
    path = [str(root)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu",
           "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(path)}
    (pathlib.Path(directory) / OTHER_BACKEND).write_text(backend)
    log = pathlib.Path(directory) / f"{backend}.log"
    with open(log, "w") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.backends.cross_backend_cases",
             str(directory), json.dumps(cases)],
            stdout=stream, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            run_cases(directory, cases)
            process.wait(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, log.read_text()[-4000:]


OTHER_BACKEND = "other_backend.txt"
"""The file of a results directory naming the backend compared with
TensorFlow there."""


def results(directory, kind, *args):
    """`(tensorflow, other)` results of a case, as `{name: array}`: the
    other backend is the one `run_on_both` ran in `directory`."""
    directory = pathlib.Path(directory)
    other = (directory / OTHER_BACKEND).read_text()
    name = f"{case_name(kind, *args)}.npz"
    return tuple(dict(np.load(directory / backend / name))
                 for backend in ("tensorflow", other))


def run_cases(directory, cases):
    """Runs `cases` (`[kind, *args]` lists), saving each result as
    `<directory>/<backend>/<kind>-<args>.npz`."""
    from tests.backends.cross_backend_analyses import analyses

    out = pathlib.Path(directory) / keras.backend.backend()
    out.mkdir(exist_ok=True)
    functions = {"one_step": one_step, "flops": flops, "fisher": fisher,
                 "sequential": sequential, "analyses": analyses,
                 "method": method}
    for kind, *args in cases:
        result = functions[kind](directory, *args)
        np.savez(out / f"{case_name(kind, *args)}.npz", **result)


def case_name(kind, *args):
    """The file name (without `.npz`) of a case's result."""
    return "-".join([kind, *args])


if __name__ == "__main__":
    run_cases(sys.argv[1], json.loads(sys.argv[2]))
