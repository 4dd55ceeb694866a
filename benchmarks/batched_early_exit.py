"""Benchmark: batched early exit (compaction) vs the plain forward pass.

Trains `cifar_resnet(20)` and `msdnet_cifar` briefly on scikit-learn's
digits upsampled to 32x32x3 (the real image set available offline), picks
per-exit thresholds on the VALIDATION split with the MSDNet budgeted-batch
procedure (`keras_eexit.inference.budgeted_batch_policy`, a budget of
`--budget` of the base network's FLOPs), and then times on the test split,
batch `--batch` (256), one process:

* the plain full forward pass: the base network (every segment and the
  final head, no internal classifier) in one `tf.function`;
* `predict_early_exit`'s compiled graph at the same decisions.

It prints both times, the measured speedup and the ideal one (base FLOPs
divided by the mean FLOPs of the exits taken) side by side. Target: at
least 90% of the ideal ratio.

    python benchmarks/batched_early_exit.py              # a few minutes
    python benchmarks/batched_early_exit.py --models cifar_resnet --epochs 3
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_eexit import chain  # noqa: E402
from keras_eexit.data import load_arrays  # noqa: E402
from keras_eexit.evaluation import collect  # noqa: E402
from keras_eexit.inference import budgeted_batch_policy  # noqa: E402
from keras_eexit.inference import predict_early_exit  # noqa: E402
from keras_eexit.inference.predict import early_exit_function  # noqa: E402
from keras_eexit.models import get_model  # noqa: E402

BUILDERS = {
    "cifar_resnet": {"depth": 20},
    "msdnet_cifar": {},
}


def to_cifar_shape(x):
    x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)
    return np.repeat(x, 3, axis=-1).astype("float32")


def best_time(call, repeats):
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def run(name, arrays, args):
    keras.utils.set_random_seed(args.seed)
    model = get_model(name, num_classes=10, input_shape=(32, 32, 3),
                      **BUILDERS[name])
    for layer in model._flatten_layers():  # short runs: faster BN stats
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(arrays["x_train"], arrays["y_train"], epochs=args.epochs,
              batch_size=64, verbose=0)
    validation = collect(model, (arrays["x_val"], arrays["y_val"]))
    test = collect(model, (arrays["x_test"], arrays["y_test"]))
    base = float(model.base_flops())
    policy = budgeted_batch_policy(validation, args.budget * base)
    x = arrays["x_test"]
    reps = int(np.ceil(args.batch / len(x)))
    batch = np.concatenate([x] * reps)[: args.batch]

    @tf.function(input_signature=[tf.TensorSpec((None, 32, 32, 3))])
    def full(inputs):
        state = inputs
        for segment in model.segments:
            state = segment(state, training=False)
        return tf.nn.softmax(model.heads[-1](chain.head_input(state),
                                             training=False))

    early = early_exit_function(model, policy.criterion)
    t = tf.constant(policy.threshold_array())
    temps = tf.constant(policy.temperature_array())
    xb = tf.constant(batch)
    t_full = best_time(lambda: full(xb).numpy(), args.repeats)
    t_early = best_time(lambda: early(xb, t, temps)["exit_index"].numpy(),
                        args.repeats)
    _, index, flops = predict_early_exit(model, batch, policy=policy,
                                         batch_size=args.batch)
    expected = policy.exit_indices(collect(
        model, (batch, np.zeros(len(batch), "int64"))).probs)
    ideal = base / flops.mean()
    measured = t_full / t_early
    result = policy.evaluate(test)
    print(f"{name}: {args.epochs} epochs; policy thresholds "
          f"{np.round(policy.thresholds, 4).tolist()} (validation, budget "
          f"{args.budget:.0%} of base FLOPs)")
    print(f"  test accuracy: early exit {result.accuracy[0]:.4f}, final exit"
          f" {test.accuracy()[-1]:.4f}; exits taken "
          f"{np.bincount(index, minlength=model.num_exits).tolist()}")
    print(f"  decisions equal to the sweep rule: {(index == expected).mean():.2%}")
    print(f"  batch {args.batch}: full forward {1e3 * t_full:8.2f} ms, "
          f"early exit {1e3 * t_early:8.2f} ms")
    print(f"  speedup measured {measured:.2f}x, ideal (FLOPs) {ideal:.2f}x: "
          f"{measured / ideal:.0%} of ideal (target >= 90%)")
    return {"model": name, "measured": measured, "ideal": ideal}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="cifar_resnet,msdnet_cifar")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--budget", type=float, default=0.6,
                        help="mean FLOPs target as a fraction of the base "
                        "network's")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    raw = load_arrays("digits", validation_split=0.25, seed=args.seed)
    arrays = {k: to_cifar_shape(v) if k.startswith("x_") else v
              for k, v in raw.items()}
    print(f"Device: {tf.config.list_logical_devices()[-1].device_type}")
    return [run(name, arrays, args) for name in args.models.split(",")]


if __name__ == "__main__":
    main()
