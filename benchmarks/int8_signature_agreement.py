"""Measure: how often an int8 early-exit file's two signatures agree.

An int8 `early_exit.tflite` holds two signatures over the same weights:
`serving_default` (a batch, compaction between stages) and `one_row` (one
sample, nested `If`s). Each decides exactly as the exit rule on the
probabilities it computes, but the two requantise differently (the batch
path concatenates and scatters its outputs), so a sample whose 8-bit
confidence sits on the threshold may leave at different exits.

For each seed this trains `small_cnn` on digits (as
`tests/export/test_export_litert.py` does: 6 epochs, Adam 3e-3, batch 64),
exports it with int8 quantisation (calibrated on 200 training samples) and
runs every test sample through both signatures at several max-softmax
thresholds. It prints, per seed and threshold, the share of samples the two
send to the same exit, each signature's test accuracy, and the largest
probability difference where they agree.

Run:

    python benchmarks/int8_signature_agreement.py               # seeds 0 1 2
    python benchmarks/int8_signature_agreement.py --seeds 0 --epochs 6
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from keras_eexit.data import load_arrays  # noqa: E402
from keras_eexit.export import export_litert  # noqa: E402
from keras_eexit.models import small_cnn  # noqa: E402

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def both_signatures(path, x, threshold, num_exits):
    """Exit indices and probabilities of every sample, batch and one row."""
    interpreter = Interpreter(model_path=os.path.join(path,
                                                      "early_exit.tflite"))
    thresholds = np.full(num_exits, threshold, np.float32)
    batch = interpreter.get_signature_runner("serving_default")(
        input=x, thresholds=thresholds)
    one_row = interpreter.get_signature_runner("one_row")
    rows = [one_row(input=x[i:i + 1], thresholds=thresholds)
            for i in range(len(x))]
    return (batch["exit_index"], batch["probabilities"],
            np.concatenate([r["exit_index"] for r in rows]),
            np.concatenate([r["probabilities"] for r in rows]))


def measure(seed, epochs, arrays):
    keras.utils.set_random_seed(seed)
    model = small_cnn(num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(arrays["x_train"], arrays["y_train"], epochs=epochs,
              batch_size=64, verbose=0)
    with tempfile.TemporaryDirectory() as path:
        export_litert(model, path, mode="early_exit", quantization="int8",
                      representative_data=arrays["x_train"][:200])
        x, y = arrays["x_test"].astype("float32"), arrays["y_test"]
        for threshold in THRESHOLDS:
            index, probs, row_index, row_probs = both_signatures(
                path, x, threshold, model.num_exits)
            agree = index == row_index
            gap = np.abs(probs[agree] - row_probs[agree]).max()
            accuracy = [100 * (p.argmax(-1) == y).mean()
                        for p in (probs, row_probs)]
            print(f"seed {seed}  threshold {threshold:.2f}  agreement "
                  f"{100 * agree.mean():6.2f}% ({int((~agree).sum())} of "
                  f"{len(x)} differ)  accuracy batch {accuracy[0]:.2f}% "
                  f"one_row {accuracy[1]:.2f}%  max |p_batch - p_one_row| "
                  f"where they agree {gap:.4f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    arrays = load_arrays("digits")
    for seed in args.seeds:
        measure(seed, args.epochs, arrays)


if __name__ == "__main__":
    main()
