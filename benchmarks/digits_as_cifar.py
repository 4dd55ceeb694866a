"""Scikit-learn's digits at CIFAR's shape, for the benchmark scripts.

The CIFAR networks of the zoo (`cifar_resnet`, `msdnet_cifar`) need
32x32x3 images; the digits are 8x8x1. Nearest-neighbour upsampling and
grey copied to RGB give them that shape offline:

    from digits_as_cifar import to_cifar_shape
"""

import numpy as np


def to_cifar_shape(x):
    """8x8x1 digits -> 32x32x3 float32 (each pixel a 4x4 block, grey to
    RGB).

    Args:
        x: an array `(N, 8, 8, 1)`.

    Returns:
        An array `(N, 32, 32, 3)`.
    """
    x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)
    return np.repeat(x, 3, axis=-1).astype("float32")
