"""Batch augmentations for the training pipeline, built from `keras.layers`.

Names accepted by `load(..., augment=...)`:

* `"flip"`: random horizontal flip of each image (`keras.layers.RandomFlip`).
* `"crop"`: the classic "pad by p pixels, then randomly crop back" of
  CIFAR training, done per image as a random translation by up to
  p = max(1, round(side / 8)) pixels (4 for 32x32, 1 for 8x8) with
  nearest-neighbour sampling and zero fill
  (`keras.layers.RandomTranslation`). `keras.layers.RandomCrop` is not used
  because it crops every image of a batch at the same place.
* `"flip_crop"`: `"flip"` then `"crop"`.
* `"cutmix"`: `keras.layers.CutMix` (Yun et al., 2019).
* `"mixup"`: `keras.layers.MixUp` (Zhang et al., 2018), `alpha=0.2`.

A list applies its entries in order. CutMix and MixUp mix labels too: when
either is present, training labels are turned into one-hot `float32`
vectors first and come out as soft labels (each row sums to 1).
Augmentations only apply to images (examples of rank 3, height x width x
channels).
"""

import keras

from keras_eexit.utils.validation import check_choice

#: Valid augmentation names.
AUGMENTATIONS = ("flip", "crop", "flip_crop", "cutmix", "mixup")
#: Augmentations that mix labels (and so need one-hot labels).
LABEL_MIXING = ("cutmix", "mixup")


def parse_augment(augment):
    """Normalises `augment` to a tuple of elementary names.

    Args:
        augment: `None`, one name of `AUGMENTATIONS`, or a list of them.

    Returns:
        A tuple of names among `"flip"`, `"crop"`, `"cutmix"`, `"mixup"`
        (empty for `None`), with `"flip_crop"` expanded.

    Raises:
        ValueError: for an unknown name or a value of the wrong type.
    """
    if augment is None:
        return ()
    names = [augment] if isinstance(augment, str) else augment
    if not isinstance(names, (list, tuple)):
        raise ValueError(
            "Invalid value received for argument `augment`. Expected None, "
            f"one of {list(AUGMENTATIONS)} or a list of them. "
            f"Received: augment={augment!r}"
        )
    parsed = []
    for name in names:
        if not isinstance(name, str):
            raise ValueError(
                "Invalid value received for argument `augment`. Expected "
                f"None, one of {list(AUGMENTATIONS)} or a list of them. "
                f"Received: augment={augment!r}"
            )
        check_choice("augment", name, AUGMENTATIONS)
        parsed.extend(("flip", "crop") if name == "flip_crop" else (name,))
    return tuple(parsed)


def uses_soft_labels(names):
    """Whether the parsed augmentation `names` turn labels into soft labels."""
    return any(name in LABEL_MIXING for name in names)


def build_augmenter(names, input_shape, num_classes, seed):
    """Builds a function `(images, labels) -> (images, labels)` on batches.

    Args:
        names: Parsed names from `parse_augment` (non-empty).
        input_shape: Shape of one image, `(height, width, channels)`.
        num_classes: Number of classes, for the one-hot labels of
            CutMix/MixUp.
        seed: Integer; the layers are seeded with `seed`, `seed + 1`, ...

    Returns:
        The batch function, meant for `tf.data.Dataset.map` after `batch`.
        It returns sparse labels unchanged when no label-mixing layer is
        used, and one-hot `float32` soft labels otherwise.
    """
    height, width = int(input_shape[0]), int(input_shape[1])
    layers = []
    for offset, name in enumerate(names):
        layer_seed = None if seed is None else int(seed) + offset
        if name == "flip":
            layer = keras.layers.RandomFlip("horizontal", seed=layer_seed)
        elif name == "crop":
            pad_h = max(1, round(height / 8))
            pad_w = max(1, round(width / 8))
            layer = keras.layers.RandomTranslation(
                height_factor=pad_h / height,
                width_factor=pad_w / width,
                fill_mode="constant",
                interpolation="nearest",
                fill_value=0.0,
                seed=layer_seed,
            )
        elif name == "cutmix":
            layer = keras.layers.CutMix(seed=layer_seed)
        else:
            layer = keras.layers.MixUp(alpha=0.2, seed=layer_seed)
        layers.append((name, layer))
    soft = uses_soft_labels(names)

    def augment_batch(images, labels):
        images = keras.ops.cast(images, "float32")
        if soft:
            labels = keras.ops.one_hot(keras.ops.cast(labels, "int32"),
                                       num_classes)
        for name, layer in layers:
            if name in LABEL_MIXING:
                out = layer({"images": images, "labels": labels}, training=True)
                images, labels = out["images"], out["labels"]
            else:
                images = layer(images, training=True)
        return images, labels

    return augment_batch
