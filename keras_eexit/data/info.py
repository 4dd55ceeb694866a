"""Plain records describing a loaded data set and its three pipelines."""

import dataclasses
from typing import Any, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a loaded data set.

    Args:
        name: The name the data set was loaded under (e.g. `"digits"`).
        input_shape: Shape of one example, without the batch axis, e.g.
            `(8, 8, 1)` for digits or `(40, 1)` for MNIST-1D.
        num_classes: Number of classes; labels are integers in
            `[0, num_classes)`.
        num_train: Number of training examples (after the validation
            split was carved out).
        num_validation: Number of validation examples.
        num_test: Number of test examples.
        class_names: Human-readable class names, or `None` when the source
            does not provide them.
    """

    name: str
    input_shape: Tuple[int, ...]
    num_classes: int
    num_train: int
    num_validation: int
    num_test: int
    class_names: Optional[Tuple[str, ...]] = None


@dataclasses.dataclass(frozen=True)
class Splits:
    """The three input pipelines of a data set, plus its description.

    Every pipeline yields `(x, y)` batches. `validation` and `test` always
    carry sparse `int32` labels. `train` carries sparse `int32` labels too,
    unless a label-mixing augmentation (`"cutmix"`, `"mixup"`) was asked
    for: then its labels are one-hot `float32` vectors of length
    `info.num_classes` (soft labels, each row summing to 1) and
    `soft_labels` is `True`, so train with a categorical (not sparse)
    cross-entropy.

    On a Keras backend other than TensorFlow, the embedded sets' splits
    are `keras.utils.PyDataset`s of NumPy batches (`ArrayBatches`).

    Args:
        train: Shuffled, batched, optionally augmented, prefetched
            `tf.data.Dataset`.
        validation: Batched, cached, prefetched `tf.data.Dataset`.
        test: Batched, cached, prefetched `tf.data.Dataset`.
        info: A `DatasetInfo`.
        soft_labels: Whether `train` yields one-hot float labels.
    """

    train: Any
    validation: Any
    test: Any
    info: DatasetInfo
    soft_labels: bool = False
