"""Per-exit loss weight schemes used by joint training."""

import numpy as np

from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import invalid_value

SCHEMES = ("uniform", "linear", "to_final", "han")


def exit_weights(scheme, num_exits, scale=None):
    """Per-exit loss weights for joint training.

    Schemes (K exits, exit n = 1..K):

    - `"uniform"`: every weight 1.
    - `"linear"`: `W_n = c * n / sum_k k` ("Strategies at a glance",
      eq. 3 and Algorithm 1 line 11), growing with depth. `c` defaults to 1,
      the paper's default (Alg. 1 line 11), so the weights sum to 1; pass
      `scale` to choose another `c` (`scale=K` makes them average 1 like
      `"uniform"`).
    - `"to_final"`: linear from 0.3 at the first exit to 1.0 at the final one
      (the joint-training weights of "Strategies at a glance"'s set-up,
      sec. 5.4).
    - `"han"`: linear from 0.6 to 1.4 (mean 1), as in Han et al.'s dynamic
      early-exit training.
    - an explicit list/array of K non-negative numbers, not all zero.

    Args:
        scheme: a scheme name or an explicit list.
        num_exits: K, the number of exits.
        scale: `c` of the `"linear"` scheme.

    Returns:
        A float32 numpy array of shape `(num_exits,)`.

    Example:

    >>> [round(w, 4) for w in exit_weights("to_final", 3).tolist()]
    [0.3, 0.65, 1.0]
    """
    k = num_exits
    if isinstance(scheme, str):
        check_choice("weights", scheme, SCHEMES)
        if scheme == "uniform":
            w = np.ones(k)
        elif scheme == "linear":
            c = 1.0 if scale is None else scale
            w = c * np.arange(1, k + 1) / (k * (k + 1) / 2)
        elif scheme == "to_final":
            w = np.linspace(0.3, 1.0, k) if k > 1 else np.ones(1)
        else:
            w = np.linspace(0.6, 1.4, k) if k > 1 else np.ones(1)
        return w.astype("float32")
    try:
        w = np.asarray(scheme, dtype="float64").reshape(-1)
    except (TypeError, ValueError):
        raise invalid_value(
            "weights", f"a scheme name in {list(SCHEMES)} or {k} numbers",
            scheme,
        ) from None
    if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w < 0) or (
        not np.any(w > 0)
    ):
        raise invalid_value(
            "weights",
            f"a scheme name in {list(SCHEMES)} or {k} finite non-negative "
            "numbers (one per exit, not all zero)",
            scheme,
        )
    return w.astype("float32")
