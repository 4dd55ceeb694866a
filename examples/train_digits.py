"""Train a three-exit CNN on scikit-learn's digits with the joint regime.

Runs offline in under a minute on a laptop CPU:

    python examples/train_digits.py

It builds `small_cnn` from the zoo, trains every exit jointly with weights
that grow towards the final exit, and prints each exit's parameters, FLOPs
and test accuracy.
"""

import keras

import keras_eexit
from keras_eexit import evaluation

keras.utils.set_random_seed(0)

# The embedded data: 8x8 grey images of digits, split train/val/test.
splits = keras_eexit.data.load("digits", batch_size=64)

# A chain of three conv stages, each with a linear exit head.
model = keras_eexit.models.get_model(
    "small_cnn",
    input_shape=splits.info.input_shape,
    num_classes=splits.info.num_classes,
)
model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"])

# One label per sample; the regime applies it to every exit.
regime = keras_eexit.regimes.Joint(weights="to_final")
model.fit(splits.train, validation_data=splits.validation, epochs=30,
          callbacks=[regime], verbose=2)

# One pass over the test set gives every exit's accuracy.
outputs = evaluation.collect(model, splits.test)
print(evaluation.format_table(evaluation.exit_table(outputs)))
