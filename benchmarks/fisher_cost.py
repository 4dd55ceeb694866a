"""Cost of EWC's exact empirical Fisher vs a training epoch and a naive loop.

On MNIST-1D (N samples), with `cnn1d` (default) or a dense multi-exit MLP
(`--model mlp`), prints the wall time of:

* one training epoch over the N samples (`model.fit`, after warm-up);
* `empirical_fisher` over the same N samples for the final exit (exact
  per-sample gradients, vectorised; after warm-up);
* a plain Python loop computing one gradient per sample (on a subset,
  scaled to N).

Targets: Fisher <= 3x a training epoch, and >= 10x faster than the loop.
TensorFlow's vectoriser (pfor) has no batched rule for the gradient of a
convolution's kernel (Conv2DBackpropFilter) and falls back to a loop over
samples for it; dense layers vectorise fully.

Usage:
    python benchmarks/fisher_cost.py [--samples 4000] [--batch-size 128]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_eexit  # noqa: E402
from keras_eexit.chain import run_to_exit  # noqa: E402
from keras_eexit.fisher import empirical_fisher  # noqa: E402
from keras_eexit.fisher import fisher_variables  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--loop-samples", type=int, default=200)
    parser.add_argument("--model", default="cnn1d", choices=("cnn1d", "mlp"))
    args = parser.parse_args()
    data = keras_eexit.data.load_arrays("mnist1d")
    x = data["x_train"][: args.samples]
    y = data["y_train"][: args.samples]
    keras.utils.set_random_seed(0)
    if args.model == "mlp":
        backbone = keras.Sequential(
            [keras.Input((40, 1)), keras.layers.Flatten()]
            + [keras.layers.Dense(256, activation="relu", name=f"dense_{i}")
               for i in range(4)])
        model = keras_eexit.MultiExitModel.from_backbone(
            backbone, ["dense_0", "dense_1", "dense_2"], num_classes=10)
    else:
        model = keras_eexit.models.get_model("cnn1d")
    model.compile(optimizer="adam")
    final = model.num_exits  # the exit number of the final exit
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size)

    model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
    epoch = time.perf_counter() - start

    empirical_fisher(model, ds.take(2), final)  # trace
    start = time.perf_counter()
    empirical_fisher(model, ds, final)
    fisher = time.perf_counter() - start

    variables = fisher_variables(model, final)

    @tf.function
    def one_gradient(xi, yi):
        with tf.GradientTape() as tape:
            log_p = tf.nn.log_softmax(run_to_exit(model, xi, final - 1,
                                                 False))
            value = log_p[0, yi]
        return [tf.square(g) for g in tape.gradient(value, variables)]

    one_gradient(x[:1], y[0])
    start = time.perf_counter()
    for i in range(args.loop_samples):
        one_gradient(x[i:i + 1], y[i])
    loop = (time.perf_counter() - start) * args.samples / args.loop_samples

    print(f"{args.model} on MNIST-1D, N={args.samples}, "
          f"batch {args.batch_size}")
    print(f"training epoch:            {epoch:7.2f} s")
    print(f"empirical Fisher (exact):  {fisher:7.2f} s "
          f"= {fisher / epoch:.1f}x an epoch (target <= 3x)")
    print(f"per-sample Python loop:    {loop:7.2f} s "
          f"= {loop / fisher:.1f}x the vectorised Fisher (target >= 10x)")


if __name__ == "__main__":
    main()
