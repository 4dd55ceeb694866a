"""Attach early exits to a `keras.applications` backbone.

    python examples/retrofit_backbone.py [--out DIR]

`MultiExitModel.from_backbone` cuts any functional Keras model after the
named layers and puts an exit head at each cut and at the output. The new
model reuses the backbone's layers, so pretrained weights (when you are
online: `weights="imagenet"`) carry over. Here MobileNetV2 is randomly
initialised and trained for a few steps on random data, only to show the
mechanics; swap in your data set. The model is saved to `--out`.
"""

import argparse
import os
import tempfile


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        "--out", default=os.path.join(tempfile.gettempdir(),
                                      "keras_eexit_retrofit"),
        help="directory for mobilenet_v2_exits.keras")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()  # --help ends here, before TensorFlow loads

    import keras
    import numpy as np

    import keras_eexit

    backbone = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    model = keras_eexit.MultiExitModel.from_backbone(
        backbone,
        taps=["block_3_expand_relu", "block_6_expand_relu",
              "block_13_expand_relu"],
        head="sdn_pool",  # Shallow-Deep Networks' mixed max/avg pooling head
        num_classes=10,
    )
    print("exits:", model.exit_names)
    print("cumulative FLOPs per exit:", model.flops_per_exit())
    print("cumulative params per exit:", model.params_per_exit())

    x = np.random.default_rng(0).random((256, 32, 32, 3)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, 256)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, epochs=args.epochs, batch_size=64, verbose=2,
              callbacks=[keras_eexit.regimes.Joint(weights="han")])
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "mobilenet_v2_exits.keras")
    model.save(path)
    print(f"Saved {path}; reload it with "
          "keras_eexit.models.load_model(path)")


if __name__ == "__main__":
    main()
