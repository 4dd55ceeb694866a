"""Head phase of `TwoStage`: cached backbone features vs recomputing them.

`cifar_resnet(depth=20)` on 32x32x3 inputs. The same regime runs twice,
with `cache_features=False` and `True`; the per-epoch wall time of the head
phase is compared (the cached run's first two head epochs count samples and
fill the cache; its later epochs replay it).

Usage:
    python benchmarks/feature_cache.py [--samples 2048] [--heads-epochs 6]
        [--backend {tensorflow,jax,torch}]

Target: cached head epochs at least 3x faster than recomputing.
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
import numpy as np  # noqa: E402

from keras_eexit import models  # noqa: E402
from keras_eexit import regimes  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def run(cache, x, y, heads_epochs, batch_size):
    keras.utils.set_random_seed(0)
    model = models.get_model("cifar_resnet", depth=20, num_classes=10)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    regime = regimes.TwoStage(1, heads_epochs, cache_features=cache,
                              verbose=False)
    timer = EpochTimer()
    model.fit(x, y, epochs=regime.epochs_for(model), batch_size=batch_size,
              verbose=0, callbacks=[regime, timer])
    return timer.times[1:]  # head phase only


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--heads-epochs", type=int, default=6)
    parser.add_argument("--backend", choices=BACKENDS,
                        default=keras.backend.backend())
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.samples, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=args.samples)

    plain = run(False, x, y, args.heads_epochs, args.batch_size)
    cached = run(True, x, y, args.heads_epochs, args.batch_size)
    # Skip each run's first head epoch (tracing); the cached run's first
    # two head epochs are count and fill, the rest replay.
    recompute = statistics.median(plain[1:])
    replay = statistics.median(cached[2:])
    features = (32 * 32 * 16 + 16 * 16 * 32 + 8 * 8 * 64) * 4
    print(f"cifar_resnet(20), {args.samples} samples, batch "
          f"{args.batch_size}; cache ~{features * args.samples / 2**20:.0f} "
          f"MiB of features; Keras backend {keras.backend.backend()}")
    print(f"head epoch, recomputing the frozen backbone: {recompute:.3f} s")
    print(f"head epoch, replaying cached features:       {replay:.3f} s")
    print(f"(count epoch {cached[0]:.3f} s, fill epoch {cached[1]:.3f} s)")
    ratio = recompute / replay
    print(f"speedup = {ratio:.1f}x (target >= 3x): "
          f"{'PASS' if ratio >= 3 else 'FAIL'}")


if __name__ == "__main__":
    main()
