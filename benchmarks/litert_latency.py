"""Benchmark: on-device early exit in LiteRT really saves time.

Trains `cifar_resnet(depth=20)` (3 exits, after stages 1 and 2 and at the
end) briefly on scikit-learn's digits, upsampled to CIFAR's 32x32x3 (each
pixel repeated 4x4, the grey channel copied 3 times): the only real image
set available offline, at the input size the network was designed for.

It then exports two LiteRT models, both float32 and built-in ops only:

* the early-exit model (`export_litert(mode="early_exit")`), timed
  through its `one_row` signature (one sample: nested `If`s, no
  compaction, static shapes), which stops at the first exit whose top
  softmax probability exceeds the run-time threshold;
* the full-depth model: the last exit alone (`mode="per_exit"`, last
  file), i.e. the plain ResNet-20 without internal heads or control flow.

The operating threshold is the smallest of `linspace(0, 1, 101)` whose
early-exit accuracy on the validation split (computed from the Keras
probabilities) is within `--max-loss` (0.5 point) of the full model's.
Both models are then timed on the test split, one sample per call, with a
single interpreter thread; the script prints the measured speedup next to
the ideal one (the base network's FLOPs, `model.base_flops()`, divided by
the mean FLOPs of the exits the samples take, counting the internal heads
evaluated on the way) and the measured best at the same decisions: each
sample timed through the per-exit file of the exit it takes (its stages
and that exit's head, no control flow, the internal heads before it not
evaluated: a lower bound no runtime deciding per sample can beat), so the
share of it is what the early-exit file's control flow and heads cost.

Run:

    python benchmarks/litert_latency.py            # about 2 minutes on CPU
    python benchmarks/litert_latency.py --epochs 15 --repeats 5
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from keras_eexit.compat import flatten_layers  # noqa: E402
from keras_eexit.data import load_arrays  # noqa: E402
from keras_eexit.export import LiteRTRunner  # noqa: E402
from keras_eexit import criteria  # noqa: E402
from keras_eexit.export import export_litert  # noqa: E402
from keras_eexit.models import cifar_resnet  # noqa: E402
from digits_as_cifar import to_cifar_shape  # noqa: E402


def keras_probs(model, x, batch_size=256):
    """Array `(num_exits, N, C)` of every exit's softmax."""
    outs = [[] for _ in model.exit_names]
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size], training=False)
        for k, name in enumerate(model.exit_names):
            outs[k].append(keras.ops.convert_to_numpy(
                keras.ops.softmax(logits[name])))
    return np.stack([np.concatenate(o) for o in outs])


def operating_threshold(probs, labels, max_loss):
    """Smallest threshold within `max_loss` of the last exit's accuracy."""
    full = (probs[-1].argmax(-1) == labels).mean()
    for t in np.linspace(0.0, 1.0, 101):
        exits = criteria.first_exit(probs, "max_softmax", t)
        chosen = probs[exits, np.arange(len(labels))]
        if (chosen.argmax(-1) == labels).mean() >= full - max_loss:
            return float(t)
    return 1.0


def time_per_sample(calls, x, repeats, warmup=20):
    """Best-of-`repeats` mean latency (seconds) of each call per sample.

    The calls are timed in turn within every repeat (side by side, so a
    change of load on the machine hits them alike). Two clocks: wall time
    and the CPU time of this thread (the interpreters run one thread, in
    the caller's: other processes' load does not count). A first pass
    over `x` (or its first `warmup` samples) warms every call up.

    Returns:
        `{name: (wall, cpu)}`.
    """
    for call in calls.values():
        for sample in x[:warmup or len(x)]:
            call(sample[None])
    wall = {name: float("inf") for name in calls}
    cpu = dict(wall)
    for _ in range(repeats):
        for name, call in calls.items():
            start, start_cpu = time.perf_counter(), time.thread_time()
            for sample in x:
                call(sample[None])
            cpu[name] = min(cpu[name],
                            (time.thread_time() - start_cpu) / len(x))
            wall[name] = min(wall[name],
                             (time.perf_counter() - start) / len(x))
    return {name: (wall[name], cpu[name]) for name in calls}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-loss", type=float, default=0.005,
                        help="accuracy loss allowed at the operating "
                        "threshold (fraction, default 0.005 = 0.5 point)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="export directory (default: a temporary one)")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    arrays = load_arrays("digits", validation_split=0.25, seed=args.seed)
    x_train, y_train = to_cifar_shape(arrays["x_train"]), arrays["y_train"]
    x_val, y_val = to_cifar_shape(arrays["x_val"]), arrays["y_val"]
    x_test, y_test = to_cifar_shape(arrays["x_test"]), arrays["y_test"]

    model = cifar_resnet(depth=20, num_classes=10, input_shape=(32, 32, 3))
    # A few hundred steps are too few for Keras' default BatchNorm momentum
    # (0.99): the moving statistics lag the weights and inference accuracy
    # collapses. 0.9, as the zoo's small models use, converges in time.
    for layer in flatten_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64,
              verbose=0)
    print(f"Trained cifar_resnet20 on digits 32x32x3 for {args.epochs} "
          f"epochs ({time.perf_counter() - start:.0f} s); "
          f"{len(x_train)} train, {len(x_val)} validation, {len(x_test)} "
          "test samples.")

    val_probs = keras_probs(model, x_val)
    test_probs = keras_probs(model, x_test)
    threshold = operating_threshold(val_probs, y_val, args.max_loss)
    flops = np.asarray(model.flops_per_exit(), dtype="float64")
    print("Keras test accuracy per exit: " + ", ".join(
        f"{n} {a:.4f}" for n, a in zip(
            model.exit_names,
            (test_probs.argmax(-1) == y_test[None]).mean(axis=1))))
    print("FLOPs per exit (cumulative): " + ", ".join(
        f"{int(f):,}" for f in flops))

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        early_dir = os.path.join(out, "early_exit")
        full_dir = os.path.join(out, "per_exit")
        export_litert(model, early_dir, mode="early_exit")
        export_litert(model, full_dir, mode="per_exit")
        early = LiteRTRunner(early_dir, num_threads=1)
        full = LiteRTRunner(full_dir, num_threads=1)

        probs, exits = early.predict(x_test, threshold)
        expected = criteria.first_exit(test_probs, "max_softmax", threshold)
        full_probs = full.predict_all(x_test)[-1]
        early_acc = (probs.argmax(-1) == y_test).mean()
        full_acc = (full_probs.argmax(-1) == y_test).mean()

        # The interpreters as a device app would call them: one sample
        # through the early-exit file's `one_row` signature, the full
        # model's only signature.
        early_runner = Interpreter(
            model_path=os.path.join(early_dir, "early_exit.tflite"),
            num_threads=1).get_signature_runner("one_row")
        full_runner = Interpreter(
            model_path=os.path.join(full_dir, f"exit_{model.num_exits}"
                                    ".tflite"),
            num_threads=1).get_signature_runner()
        value = np.full(model.num_exits, threshold, np.float32)
        never = np.ones(model.num_exits, np.float32)
        # The measured best: the exit each sample takes, alone.
        alone = [Interpreter(
            model_path=os.path.join(full_dir, f"exit_{k}.tflite"),
            num_threads=1).get_signature_runner()
            for k in range(1, model.num_exits + 1)]
        taken = iter(np.tile(exits, args.repeats + 1))
        times = time_per_sample({
            "full": lambda s: full_runner(input=s),
            "early": lambda s: early_runner(input=s, thresholds=value),
            "always_full": lambda s: early_runner(input=s,
                                                  thresholds=never),
            "best": lambda s: alone[next(taken)](input=s),
        }, x_test, args.repeats, warmup=0)

    # The full-depth model timed is the base network (backbone and final
    # head, no internal classifiers): its FLOPs are `base_flops()`.
    full_flops = float(model.base_flops())
    ideal = full_flops / flops[exits].mean()
    (t_full, c_full), (t_early, c_early), (t_always, c_always) = (
        times["full"], times["early"], times["always_full"])
    t_best, c_best = times["best"]
    measured, measured_cpu = t_full / t_early, c_full / c_early
    counts = np.bincount(exits, minlength=len(flops))
    print(f"\nOperating threshold (max_softmax, validation): {threshold:.2f}")
    print("Exits taken on the test set: " + ", ".join(
        f"{n} {c}" for n, c in zip(model.exit_names, counts)))
    print(f"LiteRT exit choice = numpy rule on Keras probabilities: "
          f"{(exits == expected).mean():.2%}")
    print(f"Test accuracy, LiteRT: early exit {early_acc:.4f}, full depth "
          f"{full_acc:.4f} (loss {100 * (full_acc - early_acc):.2f} points)")
    print("\nSingle-thread latency per sample (LiteRT, best of "
          f"{args.repeats}; wall clock, CPU time of the thread):")
    print(f"  full-depth model            {1e3 * t_full:8.3f} ms "
          f"{1e3 * c_full:8.3f} ms")
    print(f"  early-exit model, t={threshold:.2f}    {1e3 * t_early:8.3f} ms "
          f"{1e3 * c_early:8.3f} ms")
    print(f"  early-exit model, t=1.00    {1e3 * t_always:8.3f} ms "
          f"{1e3 * c_always:8.3f} ms (every sample goes to the end: "
          "overhead of heads and If)")
    print(f"  each sample's exit alone    {1e3 * t_best:8.3f} ms "
          f"{1e3 * c_best:8.3f} ms (per-exit files: the measured best at "
          "these decisions)")
    best, best_cpu = t_full / t_best, c_full / c_best
    print(f"\nIdeal speedup (FLOPs ratio): {ideal:.2f}x; measured best at "
          f"the same decisions: {best:.2f}x wall, {best_cpu:.2f}x CPU")
    print(f"Measured speedup, wall clock: {measured:.2f}x "
          f"({measured / ideal:.0%} of ideal; {measured / best:.0%} of the "
          "measured best, target >= 95%)")
    print(f"Measured speedup, CPU time:   {measured_cpu:.2f}x "
          f"({measured_cpu / ideal:.0%} of ideal; "
          f"{measured_cpu / best_cpu:.0%} of the measured best)")
    return {"threshold": threshold, "ideal": ideal, "measured": measured,
            "measured_cpu": measured_cpu, "t_full": t_full,
            "t_early": t_early, "best": best,
            "early_acc": early_acc, "full_acc": full_acc}


if __name__ == "__main__":
    main()
