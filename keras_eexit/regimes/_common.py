"""Small helpers shared by the named regimes."""

from keras_eexit.utils.validation import check_positive_int


def one_hot(k, num_exits):
    """Weights selecting exit `k` (1-based) only."""
    return [1.0 if i == k else 0.0 for i in range(1, num_exits + 1)]


def ones(exits, num_exits):
    """Weights 1 on the given 1-based exits, 0 elsewhere."""
    return [1.0 if i in exits else 0.0 for i in range(1, num_exits + 1)]


def epochs_arg(argument, value):
    """Checks a positive epoch count."""
    return check_positive_int(argument, value)
