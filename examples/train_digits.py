"""Train a three-exit CNN on scikit-learn's digits with the joint regime.

Runs offline in under a minute on a laptop CPU:

    python examples/train_digits.py [--epochs 12] [--seed 0]

It builds `small_cnn` from the zoo, trains every exit jointly with weights
that grow towards the final exit, and prints each exit's parameters, FLOPs
and test accuracy.
"""

import argparse


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()  # --help ends here, before TensorFlow loads

    import keras

    import keras_eexit
    from keras_eexit import evaluation

    keras.utils.set_random_seed(args.seed)

    # The embedded data: 8x8 grey images of digits, split train/val/test.
    splits = keras_eexit.data.load("digits", batch_size=args.batch_size,
                                   seed=args.seed)

    # A chain of three conv stages, each with a linear exit head.
    model = keras_eexit.models.get_model(
        "small_cnn",
        input_shape=splits.info.input_shape,
        num_classes=splits.info.num_classes,
    )
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                  metrics=["accuracy"])

    # One label per sample; the regime applies it to every exit.
    regime = keras_eexit.regimes.Joint(weights="to_final")
    model.fit(splits.train, validation_data=splits.validation,
              epochs=args.epochs, callbacks=[regime], verbose=2)

    # One pass over the test set gives every exit's accuracy.
    outputs = evaluation.collect(model, splits.test)
    print(evaluation.format_table(evaluation.exit_table(outputs)))


if __name__ == "__main__":
    main()
