"""Training cost of the L2W and DFS methods against plain joint training.

The same network (`cnn1d` on MNIST-1D by default) is trained three ways
with the same data, optimizer and `Joint` regime:

* plain: the zoo model as it is (SDN heads);
* dfs: `keras_eexit.methods.dfs(model)` (feature partitioning: the forward
  pass is the same, the backward pass sends fewer gradients);
* l2w: `keras_eexit.methods.L2W().attach(model)` (a bi-level step on each
  half of every batch: look-ahead, second-order meta-gradient, then the
  model step).

Each variant first runs one epoch that includes tracing (reported as
"first epoch"), then `--epochs` timed epochs; epochs of the variants are
interleaved (A B C A B C ...) so that machine noise hits all alike, and the
median epoch time is reported with its ratio to plain. Inference FLOPs of
each exit and the WPN's training FLOPs per sample are printed too (the
methods add no inference work).

Usage:
    python benchmarks/methods_training_cost.py [--model cnn1d]
        [--samples 4000] [--batch-size 64] [--epochs 3]
        [--backend {tensorflow,jax,torch}]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import backend_flag  # noqa: E402

BACKENDS = backend_flag.CHOICES + ("torch",)
backend_flag.select_from_argv(choices=BACKENDS)

import keras  # noqa: E402

from keras_eexit import methods  # noqa: E402
from keras_eexit import models  # noqa: E402
from keras_eexit import regimes  # noqa: E402
from keras_eexit.data import load_arrays  # noqa: E402

DATA = {"cnn1d": "mnist1d", "small_cnn": "digits"}


def build(name, variant, info, seed):
    keras.utils.set_random_seed(seed)
    model = models.get_model(name, input_shape=info.input_shape,
                             num_classes=info.num_classes)
    l2w = None
    if variant == "dfs":
        model = methods.dfs(model)
    elif variant == "l2w":
        l2w = methods.L2W()
        l2w.attach(model)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  metrics=["accuracy"])
    return model, l2w


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cnn1d", choices=sorted(DATA))
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--backend", choices=BACKENDS,
                        default=keras.backend.backend())
    args = parser.parse_args()

    data = load_arrays(DATA[args.model], **(
        {"num_samples": args.samples} if args.model == "cnn1d" else {}))
    info = data["info"]
    x, y = data["x_train"], data["y_train"]
    variants = ("plain", "dfs", "l2w")
    runs = {v: build(args.model, v, info, seed=0) for v in variants}

    def epoch(variant):
        model = runs[variant][0]
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=args.batch_size, verbose=0,
                  callbacks=[regimes.Joint(verbose=False)])
        return time.perf_counter() - start

    first = {v: epoch(v) for v in variants}
    times = {v: [] for v in variants}
    for _ in range(args.epochs):
        for v in variants:
            times[v].append(epoch(v))
    median = {v: statistics.median(t) for v, t in times.items()}

    print(f"{args.model} on {DATA[args.model]}: {len(x)} training samples, "
          f"batch {args.batch_size}, {args.epochs} timed epochs "
          f"(median), Joint regime, Adam 3e-3, Keras backend "
          f"{keras.backend.backend()}")
    print(f"{'variant':8} {'first epoch s':>14} {'epoch s':>9} "
          f"{'x plain':>8}  inference FLOPs per exit")
    for v in variants:
        model = runs[v][0]
        print(f"{v:8} {first[v]:14.2f} {median[v]:9.2f} "
              f"{median[v] / median['plain']:8.2f}  "
              f"{model.flops_per_exit()}")
    l2w = runs["l2w"][1]
    print(f"L2W weight prediction network: "
          f"{l2w.training_flops_per_sample()} FLOPs per training sample "
          "(training only).")


if __name__ == "__main__":
    main()
