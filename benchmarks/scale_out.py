"""Scale-out throughput: images/s of Joint vs plain Keras vs the backbone.

Three ways of training the same network on the same data, each with mixed
precision off and on, under the `tf.distribute` strategy of your choice:

* joint: `MultiExitModel.fit` with the `Joint` regime (one label per
  sample, every exit trained);
* plain: a functional `keras.Model` with one output per exit, the same
  layers, one `SparseCategoricalCrossentropy` per output (what a user would
  write without this toolkit);
* backbone: the segments and the final head only (no early exits): the
  cost floor of the network itself.

Every model is built and compiled in the strategy's scope under the dtype
policy of its row. images/s is the number of training images over the
fastest epoch of one `fit` call, whose first epoch (tracing, warm-up) is
not counted.

Mixed precision is `mixed_float16` when a GPU is visible and
`mixed_bfloat16` otherwise (`--mixed` to choose). On a CPU-only machine the
default run is small (512 CIFAR-sized images, 5 timed epochs) and takes
under two minutes; on a GPU, size it up, e.g.

    python benchmarks/scale_out.py --model cifar_resnet --samples 20000 \\
        --batch-size 256 --strategy mirrored

Usage:
    python benchmarks/scale_out.py [--strategy none|mirrored|multiworker|tpu]
        [--cpu-devices 2] [--model cifar_resnet] [--mixed auto] ...
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHAPES = {"cifar_resnet": (32, 32, 3), "small_cnn": (8, 8, 1),
          "cnn1d": (40, 1)}
VARIANTS = ("joint", "plain", "backbone")


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cifar_resnet",
                        choices=sorted(SHAPES))
    parser.add_argument("--samples", type=int, default=None,
                        help="training images (default 20000 on GPU, 512 "
                        "on CPU)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="global batch, split over replicas")
    parser.add_argument("--epochs", type=int, default=5,
                        help="timed epochs per row (after one warm-up)")
    parser.add_argument("--strategy", default="none",
                        choices=("none", "mirrored", "multiworker", "tpu"))
    parser.add_argument("--cpu-devices", type=int, default=1,
                        help="split the CPU into this many logical devices "
                        "(to try --strategy mirrored without GPUs)")
    parser.add_argument("--mixed", default="auto",
                        choices=("auto", "mixed_float16", "mixed_bfloat16"),
                        help="the mixed policy of the 'on' rows; auto: "
                        "mixed_float16 on GPU, mixed_bfloat16 on CPU")
    parser.add_argument("--jit-compile", default="auto",
                        choices=("auto", "true", "false"),
                        help="XLA for every model (auto: Keras decides)")
    return parser


def plain_twin(model, backbone_only=False):
    """A functional model reusing `model`'s layers (the same weights).

    Args:
        model: a `MultiExitModel`.
        backbone_only: keep only the final head (no early exits).
    """
    import keras

    inputs = keras.Input(model.segments[0].inputs[0].shape[1:])
    state, outputs = inputs, {}
    last = model.num_exits - 1
    for k, (name, segment, head) in enumerate(
            zip(model.exit_names, model.segments, model.heads)):
        state = segment(state)
        if k == last or not backbone_only:
            outputs[name] = head(state[0] if isinstance(state, list)
                                 else state)
    return keras.Model(inputs, outputs)


def build(variant, model_name, shape, jit):
    """One compiled model of `variant`, built in the current scope."""
    import keras

    from keras_eexit import models

    keras.utils.set_random_seed(0)
    net = models.get_model(model_name, input_shape=shape, num_classes=10)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    if variant == "joint":
        net.compile(optimizer=optimizer, metrics=["accuracy"],
                    jit_compile=jit)
        return net, net.exit_names
    twin = plain_twin(net, backbone_only=variant == "backbone")
    names = list(twin.output.keys())
    twin.compile(
        optimizer=optimizer,
        loss={n: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
              for n in names},
        metrics={n: ["accuracy"] for n in names},
        jit_compile=jit,
    )
    return twin, names


def _epoch_timer_class():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Wall-clock seconds of every epoch."""

        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer


def run(args):
    """Returns `{(variant, precision): images_per_second}` and the setup."""
    import tensorflow as tf

    if args.cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices)

    from keras_eexit import regimes
    from keras_eexit.utils.distribution import make_strategy

    EpochTimer = _epoch_timer_class()
    from keras_eexit.utils.distribution import precision_policy

    gpu = bool(tf.config.list_physical_devices("GPU"))
    if args.strategy == "mirrored" and args.cpu_devices > 1 and not gpu:
        # MirroredStrategy() alone would take one CPU device only.
        strategy = tf.distribute.MirroredStrategy(
            [f"/cpu:{i}" for i in range(args.cpu_devices)])
    else:
        strategy = make_strategy(args.strategy)
    mixed = args.mixed
    if mixed == "auto":
        mixed = "mixed_float16" if gpu else "mixed_bfloat16"
    samples = args.samples or (20000 if gpu else 512)
    shape = SHAPES[args.model]
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples,) + shape).astype("float32")
    y = rng.integers(0, 10, size=samples)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)

    def dataset(names):
        labels = y if names is None else {n: y for n in names}
        return (tf.data.Dataset.from_tensor_slices((x, labels))
                .batch(args.batch_size).cache()
                .prefetch(tf.data.AUTOTUNE).with_options(options))

    results = {}
    for precision in ("float32", mixed):
        with precision_policy(precision):
            for variant in VARIANTS:
                with strategy.scope():
                    model, names = build(variant, args.model, shape, jit)
                timer = EpochTimer()
                callbacks = [timer]
                if variant == "joint":
                    data = dataset(None)
                    callbacks.append(regimes.Joint(verbose=False))
                else:
                    data = dataset(names)
                # One fit: the first epoch traces, the others are timed.
                model.fit(data, epochs=1 + args.epochs, verbose=0,
                          shuffle=False, callbacks=callbacks)
                # The fastest epoch: other load on the machine only ever
                # slows an epoch down (as `timeit` takes the minimum).
                results[variant, precision] = samples / min(timer.seconds[1:])
    setup = {"model": args.model, "samples": samples,
             "batch": args.batch_size, "strategy": args.strategy,
             "replicas": strategy.num_replicas_in_sync,
             "device": "GPU" if gpu else "CPU", "mixed": mixed,
             "jit_compile": args.jit_compile, "epochs timed": args.epochs}
    return results, setup


def format_table(results, mixed):
    """The images/s table: a row per variant, a column per precision."""
    lines = [f"{'variant':<10}{'float32 img/s':>15}{mixed + ' img/s':>22}"
             f"{'mixed/f32':>11}{'vs plain f32':>14}{'vs plain mixed':>16}"]
    for variant in VARIANTS:
        off, on = results[variant, "float32"], results[variant, mixed]
        lines.append(f"{variant:<10}{off:>15,.0f}{on:>22,.0f}"
                     f"{on / off:>11.2f}"
                     f"{off / results['plain', 'float32']:>14.2f}"
                     f"{on / results['plain', mixed]:>16.2f}")
    return "\n".join(lines)


def main(argv=None):
    args = _parser().parse_args(argv)
    results, setup = run(args)
    print(" ".join(f"{k}={v}" for k, v in setup.items()))
    print(format_table(results, setup["mixed"]))


if __name__ == "__main__":
    main()
