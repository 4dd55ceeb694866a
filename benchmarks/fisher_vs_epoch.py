"""EWC's Fisher pass against one training epoch, on TensorFlow or JAX.

Zniber et al.'s sequential EWC measures the empirical Fisher of an exit
(eq. 3: exact per-sample squared gradients) after each stage. This times
`keras_eexit.fisher.empirical_fisher` over the training set (one pass, the
segments up to the exit) against one `fit` epoch of the same model on the
same data (Joint, all exits), fastest of `--repeats` each after a warm-up.
On TensorFlow the per-sample gradients come from one batched backward pass
per layer type (`fisher/per_sample.py`); on JAX from `jax.vmap` of the
gradient (`fisher/per_sample_jax.py`).

Usage:
    python benchmarks/fisher_vs_epoch.py [--backend jax] [--model cifar_resnet]
        [--depth 56] [--samples 2048] [--batch-size 128] [--exit 2]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import backend_flag  # noqa: E402

backend_flag.select_from_argv()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eexit import models  # noqa: E402
from keras_eexit import regimes  # noqa: E402
from keras_eexit.fisher import empirical_fisher  # noqa: E402

SHAPES = {"cifar_resnet": (32, 32, 3), "small_cnn": (8, 8, 1),
          "cnn1d": (40, 1)}


def fastest(function, repeats):
    """The fastest of `repeats` timed calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax"),
                        default=os.environ["KERAS_BACKEND"])
    parser.add_argument("--model", default="cifar_resnet",
                        choices=sorted(SHAPES))
    parser.add_argument("--depth", type=int, default=None)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--exit", type=int, default=1,
                        help="the exit NUMBER whose Fisher is measured")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    shape = SHAPES[args.model]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.samples,) + shape).astype("float32")
    y = rng.integers(0, 10, size=args.samples)
    extra = {} if args.depth is None else {"depth": args.depth}
    keras.utils.set_random_seed(0)
    model = models.get_model(args.model, input_shape=shape, num_classes=10,
                             **extra)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    batches = [(x[i:i + args.batch_size], y[i:i + args.batch_size])
               for i in range(0, args.samples, args.batch_size)]
    regime = regimes.Joint(verbose=False)

    epoch = fastest(lambda: model.fit(
        x, y, batch_size=args.batch_size, epochs=1, verbose=0,
        callbacks=[regime]), args.repeats)
    fisher = fastest(lambda: empirical_fisher(model, batches, exit=args.exit),
                     args.repeats)
    print(f"backend={keras.backend.backend()} model={args.model} "
          f"depth={args.depth or 'default'} samples={args.samples} "
          f"batch={args.batch_size} exit={args.exit}")
    print(f"epoch: {epoch:.3f} s ({args.samples / epoch:.0f} images/s)")
    print(f"fisher pass: {fisher:.3f} s ({args.samples / fisher:.0f} "
          "images/s)")
    print(f"ratio fisher/epoch = {fisher / epoch:.2f}")


if __name__ == "__main__":
    main()
