"""Benchmark: batched early exit (compaction) vs the plain forward pass.

Trains `cifar_resnet(20)` briefly on scikit-learn's digits upsampled to
32x32x3 (the real image set available offline), picks per-exit thresholds
on the VALIDATION split for a mean cost of `--budget` of the base
network's FLOPs with two policies — first `best_accuracy_policy` (the
per-exit thresholds of highest validation accuracy within the budget, the
library's recommended policy), then MSDNet's budgeted-batch procedure
(`budgeted_batch_policy`, the paper's geometric exit schedule, kept for
comparison with the paper) — and then times one test batch of `--batch`
(256) rows, in one process, side by side (each repeat times every call in
turn, the best repeat of each is kept):

* the plain full forward pass: the base network (every segment and the
  final head, no internal classifier) in one `tf.function`;
* `predict_early_exit`'s compiled graph at the policy's thresholds;
* the same stages without compaction, for reference: stage k (segment
  and head) on the batch cut to as many rows as reach it, with no
  decision, gather or scatter (what compaction would cost if it were
  free). `early exit / stages alone` is then the cost of compaction
  itself, and `full / stages alone` the best speedup this CPU allows at
  these decisions: its time per FLOP is not the same in every stage
  (ResNet-20's first stage, 16 channels at 32x32, spends a larger share
  of the time than of the FLOPs in memory-bound element-wise work), so
  the FLOPs ratio can be out of reach even for a free compaction.

`msdnet_cifar` is not trained by default (`--msdnet-epochs`): on this
CPU its first training step spends about four minutes building the
training graph, and what is timed depends on the exits the samples take,
not on accuracy; its thresholds are calibrated on the validation split
all the same, so the exits follow the budget's geometric schedule.

It prints both times (wall clock, and the process's CPU time, which
other processes' load does not inflate) and reports every speedup against
two references, as a percentage of each: the FLOPs ratio (base FLOPs over
the mean FLOPs of the exits taken, internal heads evaluated on the way
included: the papers' ideal) and the measured best at the same decisions
(the full pass over the stages alone on the rows that reach them: what
this device allows, compaction free). Targets: at least 95% of the
measured best on CPU; the gap between the two references is the device's
(time per FLOP differs between stages), not the library's.

`--backend jax` runs the same comparison on Keras' JAX backend (set
before Keras is imported): the full pass and the stages alone are
`jax.jit` programs, and early exit is `predict_early_exit`'s JAX runner
(`keras_eexit/inference/compaction_host.py`: each stage compiled per bucket
size, decisions on the host between stages). The compilations happen in
the untimed warm-up call; training there needs `fit` on JAX.
`--backend torch` runs it on PyTorch: every pass eager under
`torch.no_grad()`, early exit the same runner on exactly the continuing
rows.

    python benchmarks/batched_early_exit.py              # a few minutes
    python benchmarks/batched_early_exit.py --models cifar_resnet
    python benchmarks/batched_early_exit.py --backend jax
    python benchmarks/batched_early_exit.py --backend torch
"""

import argparse
import functools
import os
import time

import backend_flag  # noqa: E402

BACKENDS = backend_flag.CHOICES + ("torch",)
backend_flag.select_from_argv(choices=BACKENDS)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eexit import chain  # noqa: E402
from keras_eexit.compat import flatten_layers  # noqa: E402
from keras_eexit.data import load_arrays  # noqa: E402
from keras_eexit.evaluation import collect  # noqa: E402
from keras_eexit.inference import best_accuracy_policy  # noqa: E402
from keras_eexit.inference import budgeted_batch_policy  # noqa: E402
from keras_eexit.inference import predict_early_exit  # noqa: E402
from keras_eexit.inference.predict import early_exit_function  # noqa: E402
from keras_eexit.inference.predict import host_early_exit  # noqa: E402
from keras_eexit.models import get_model  # noqa: E402
from keras_eexit.utils.compiled import compile_layers_call  # noqa: E402
from digits_as_cifar import to_cifar_shape  # noqa: E402

SETTINGS = {
    # builder arguments, epochs argument
    "cifar_resnet": ({"depth": 20}, "epochs"),
    "msdnet_cifar": ({}, "msdnet_epochs"),
}


def side_by_side(calls, repeats):
    """Best-of-`repeats` time of each call, the calls timed in turn.

    Returns:
        `{name: (wall seconds, process CPU seconds)}`.
    """
    for call in calls.values():
        call()
    wall = {name: float("inf") for name in calls}
    cpu = dict(wall)
    for _ in range(repeats):
        for name, call in calls.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
            wall[name] = min(wall[name], time.perf_counter() - start)
    return {name: (wall[name], cpu[name]) for name in calls}


def early_exit_call(model, policy):
    """`call(batch) -> exit indices`: the backend's compiled early exit,
    without `predict_early_exit`'s input checks."""
    t = policy.threshold_array()
    if keras.backend.backend() in ("jax", "torch"):
        runner = host_early_exit(model)
        return lambda batch: runner(batch, policy.criterion, t,
                                    policy.temperatures)["exit_index"]
    function = early_exit_function(model, policy.criterion)
    temps = keras.ops.convert_to_tensor(policy.temperature_array())
    t = keras.ops.convert_to_tensor(t)
    return lambda batch: keras.ops.convert_to_numpy(
        function(keras.ops.convert_to_tensor(batch), t, temps)["exit_index"])


def device_name():
    """The device Keras computes on (`"CPU"`, `"GPU"`, ...)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.devices()[0].platform.upper()
    if keras.backend.backend() == "torch":
        import torch

        return "GPU" if torch.cuda.is_available() else "CPU"
    import tensorflow as tf

    return tf.config.list_logical_devices()[-1].device_type


POLICIES = (
    ("best_accuracy", "best_accuracy_policy: per-exit thresholds of "
     "highest validation accuracy within the budget", best_accuracy_policy),
    ("budgeted_batch", "MSDNet's budgeted batch (the paper's procedure: "
     "geometric exit schedule)", budgeted_batch_policy),
)


def train(name, arrays, args):
    """The model `name`, trained for its `--epochs` (or untrained)."""
    builder, epochs = SETTINGS[name]
    epochs = getattr(args, epochs)
    keras.utils.set_random_seed(args.seed)
    model = get_model(name, num_classes=10, input_shape=(32, 32, 3),
                      **builder)
    for layer in flatten_layers(model):  # short runs: faster BN statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    if epochs:
        model.fit(arrays["x_train"], arrays["y_train"], epochs=epochs,
                  batch_size=64, verbose=0)
    return model, epochs, time.perf_counter() - start


def full_pass_call(model):
    """The base network (every segment, the final head) compiled."""
    def full_pass(inputs):
        state = inputs
        for segment in model.segments:
            state = segment(state, training=False)
        return keras.ops.softmax(model.heads[-1](chain.head_input(state),
                                                 training=False))

    return compile_layers_call(model, full_pass)


def stages_alone_call(model, reach):
    """Stage k on the batch cut to `reach[k]` rows: no decision, gather
    or scatter (the measured best at these decisions)."""
    def stages_pass(inputs):
        state, outputs = inputs, []
        for k, rows in enumerate(reach):
            if not rows:
                break
            state = keras.tree.map_structure(lambda s: s[:rows], state)
            state, logits = chain.run_stage(model, k, state, training=False)
            outputs.append(keras.ops.softmax(logits))
        return outputs

    return compile_layers_call(model, stages_pass)


def against_references(measured, ideal, best):
    """"1.43x: 85% of the FLOPs ratio 1.69x, 98% of the measured best
    1.46x"."""
    return (f"{measured:.2f}x: {measured / ideal:.0%} of the FLOPs ratio "
            f"{ideal:.2f}x, {measured / best:.0%} of the measured best "
            f"{best:.2f}x")


def run(name, arrays, args):
    model, epochs, trained = train(name, arrays, args)
    samples = len(arrays["y_train"])
    validation = collect(model, (arrays["x_val"], arrays["y_val"]))
    test = collect(model, (arrays["x_test"], arrays["y_test"]))
    base = float(model.base_flops())
    x = arrays["x_test"]
    batch = np.concatenate([x] * int(np.ceil(args.batch / len(x))))
    batch = batch[: args.batch]
    xb = keras.ops.convert_to_tensor(batch)
    to_numpy = keras.ops.convert_to_numpy
    full = full_pass_call(model)
    calls = {"full": lambda: to_numpy(full(xb))}
    chosen = {}
    for key, label, choose in POLICIES:
        policy = choose(validation, args.budget * base)
        _, index, flops = predict_early_exit(model, batch, policy=policy,
                                             batch_size=args.batch)
        reach = [int((index >= k).sum()) for k in range(model.num_exits)]
        alone = stages_alone_call(model, reach)
        calls[f"early {key}"] = functools.partial(
            early_exit_call(model, policy), batch)
        calls[f"alone {key}"] = functools.partial(
            lambda call: [to_numpy(p) for p in call(xb)], alone)
        chosen[key] = (label, policy, index, flops)
    times = side_by_side(calls, args.repeats)
    t_full, c_full = times["full"]
    print(f"{name}: {epochs} epoch(s) on {samples} samples "
          f"({trained:.0f} s{'' if epochs else ', untrained'}); test "
          f"accuracy at the final exit {test.accuracy()[-1]:.4f}; budget "
          f"{args.budget:.0%} of base FLOPs (thresholds from the validation "
          f"split); batch {args.batch}, best of {args.repeats}: full "
          f"forward {1e3 * t_full:.1f} ms (CPU {1e3 * c_full:.1f} ms)")
    in_batch = test.probs[:, np.arange(args.batch) % len(x)]
    figures = {"model": name}
    for key, (label, policy, index, flops) in chosen.items():
        t_early, c_early = times[f"early {key}"]
        t_alone, c_alone = times[f"alone {key}"]
        ideal = base / flops.mean()
        best, best_cpu = t_full / t_alone, c_full / c_alone
        measured, measured_cpu = t_full / t_early, c_full / c_early
        result = policy.evaluate(test)
        expected = policy.exit_indices(in_batch)
        print(f"  policy {key} ({label}): thresholds "
              f"{np.round(policy.thresholds, 4).tolist()}")
        print(f"    test accuracy: early exit {result.accuracy[0]:.4f}; "
              "exits taken in the batch "
              f"{np.bincount(index, minlength=model.num_exits).tolist()}; "
              f"decisions equal to the sweep rule: "
              f"{(index == expected).mean():.2%}")
        print(f"    early exit {1e3 * t_early:.1f} ms (CPU "
              f"{1e3 * c_early:.1f} ms); stages alone at the rows that "
              f"reach them {1e3 * t_alone:.1f} ms (CPU {1e3 * c_alone:.1f} "
              f"ms): compaction costs {t_early / t_alone - 1:+.0%}")
        print(f"    speedup measured "
              f"{against_references(measured, ideal, best)} (CPU time "
              f"{against_references(measured_cpu, ideal, best_cpu)}; "
              "target >= 95% of the measured best)")
        figures[key] = {"measured": measured, "measured_cpu": measured_cpu,
                        "ideal": ideal, "alone": best,
                        "alone_cpu": best_cpu,
                        "accuracy": float(result.accuracy[0])}
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="cifar_resnet,msdnet_cifar")
    parser.add_argument("--epochs", type=int, default=6,
                        help="training epochs of cifar_resnet")
    parser.add_argument("--msdnet-epochs", type=int, default=0,
                        help="training epochs of msdnet_cifar (0: thresholds "
                        "calibrated on the untrained network)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--budget", type=float, default=0.6,
                        help="mean FLOPs target as a fraction of the base "
                        "network's")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=BACKENDS,
                        default="tensorflow",
                        help="Keras backend (set before Keras is imported)")
    args = parser.parse_args(argv)
    raw = load_arrays("digits", validation_split=0.25, seed=args.seed)
    arrays = {k: to_cifar_shape(v) if k.startswith("x_") else v
              for k, v in raw.items()}
    print(f"Backend: {keras.backend.backend()}, device: {device_name()}")
    return [run(name, arrays, args) for name in args.models.split(",")]


if __name__ == "__main__":
    main()
