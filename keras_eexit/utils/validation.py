"""Argument validation with error messages in one recognisable form."""

import difflib
import math
import numbers


def invalid_value(argument, expected, received):
    """Builds a `ValueError` in the Keras form.

    Args:
        argument: Name of the offending argument.
        expected: What a valid value looks like (a phrase).
        received: The value that was passed.

    Returns:
        A `ValueError` to raise, reading
        "Invalid value received for argument `rate`. Expected a float between
        0 and 1. Received: rate=1.5".
    """
    return ValueError(
        f"Invalid value received for argument `{argument}`. Expected "
        f"{expected}. Received: {argument}={received!r}"
    )


def check_choice(argument, value, choices):
    """Checks that `value` is one of `choices`.

    Args:
        argument: Name of the argument, used in the message.
        value: The value to check.
        choices: The valid values (an iterable of strings).

    Returns:
        `value`, unchanged, when it is valid.

    Raises:
        ValueError: naming the argument, the valid choices and, when one
            is close, the likely intended choice.

    Example:

    >>> check_choice("head", "linear", ["linear", "mlp"])
    'linear'
    """
    choices = sorted(choices)
    if value in choices:
        return value
    near = difflib.get_close_matches(str(value), choices, n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise ValueError(
        f"Unknown {argument} {value!r}. Valid choices: {choices}.{hint}"
    )


def _check_int(argument, value, minimum):
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < minimum):
        raise invalid_value(argument, f"an integer >= {minimum}", value)
    return int(value)


def check_positive_int(argument, value):
    """Checks that `value` is an integer >= 1 and returns it.

    Args:
        argument: Name of the argument, used in the message.
        value: The value to check.

    Returns:
        `value` as an `int`.
    """
    return _check_int(argument, value, 1)


def check_num_classes(num_classes):
    """Returns `num_classes` as an `int` if it is an integer >= 2, else raises.

    Args:
        num_classes: the value to check.

    Returns:
        `int(num_classes)`.
    """
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 2
    ):
        raise invalid_value("num_classes", "an integer >= 2", num_classes)
    return int(num_classes)


def check_int_list(argument, value, length=None):
    """Checks a non-empty list of integers >= 1 (of `length` if given).

    Args:
        argument: Name of the argument, used in the message.
        value: The value to check.
        length: Required length (one entry per scale), or `None`.

    Returns:
        The values as a list of Python `int`s.
    """
    expected = "a non-empty list of integers >= 1" + (
        "" if length is None else f" of length {length} (one per scale)"
    )
    if isinstance(value, (str, bytes)):
        raise invalid_value(argument, expected, value)
    try:
        values = list(value)
    except TypeError:
        raise invalid_value(argument, expected, value) from None
    if (
        not values
        or (length is not None and len(values) != length)
        or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral)
            or v < 1
            for v in values
        )
    ):
        raise invalid_value(argument, expected, value)
    return [int(v) for v in values]


def check_fraction(argument, value):
    """Checks a number in (0, 1] and returns it as a float.

    Args:
        argument: Name of the argument, used in the message.
        value: The value to check.

    Returns:
        `value` as a `float`.
    """
    return check_number(argument, value, 0.0, 1.0, low_open=True)


def check_number(argument, value, low=None, high=None, low_open=False,
                 high_open=False):
    """Checks a finite real number in an interval and returns it as a float.

    The one validator of real-valued parameters (strengths, temperatures,
    fractions, thresholds): booleans, non-numbers, NaN and infinities are
    refused.

    Args:
        argument: Name of the argument, used in the message.
        value: The value to check.
        low: lower bound, or `None` for none.
        high: upper bound, or `None` for none.
        low_open: whether `low` itself is excluded.
        high_open: whether `high` itself is excluded.

    Returns:
        `value` as a `float`.

    Example:

    >>> check_number("alpha", 0.1, 0.0, 1.0)
    0.1
    """
    if low is not None and high is not None:
        expected = (f"a number in {'(' if low_open else '['}{low:g}, "
                    f"{high:g}{')' if high_open else ']'}")
    elif low is not None:
        expected = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        expected = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        expected = "a finite number"
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or (low is not None and (value <= low if low_open else value < low))
        or (high is not None and (
            value >= high if high_open else value > high))
    ):
        raise invalid_value(argument, expected, value)
    return float(value)


def check_non_negative_int(argument, value):
    """Checks that `value` is an integer >= 0 and returns it as an `int`.

    Args:
        argument: Name of the argument, used in the message.
        value: The value to check.

    Returns:
        `value` as an `int`.
    """
    return _check_int(argument, value, 0)


def check_bool(argument, value):
    """Checks that `value` is a boolean and returns it.

    Args:
        argument: Name of the argument, used in the message.
        value: The value to check.

    Returns:
        `value`.
    """
    if not isinstance(value, bool):
        raise invalid_value(argument, "a boolean", value)
    return value


def check_exit_numbers(argument, value, num_exits=None):
    """Checks exit NUMBERS (1..K, as in `exit_1`..`exit_K`) and returns them.

    Public arguments that name exits (distillation students, LwF exits,
    the Fisher's exit) take exit numbers; positions in Python lists are
    0-based. One number or a non-empty sequence of distinct numbers is
    accepted.

    Args:
        argument: Name of the argument, used in the message.
        value: An exit number or a sequence of them.
        num_exits: K, when known (numbers must then be at most K).

    Returns:
        A list of Python `int`s, in the order given.

    Example:

    >>> check_exit_numbers("students", [1, 2], num_exits=3)
    [1, 2]
    """
    valid = "1..K" if num_exits is None else f"1..{num_exits}"
    expected = (f"exit numbers in {valid} (exit_1 is 1): one number or a "
                "non-empty list of distinct numbers")
    values = [value] if isinstance(value, numbers.Integral) else value
    if isinstance(values, (str, bytes)):
        raise invalid_value(argument, expected, value)
    try:
        values = list(values)
    except TypeError:
        raise invalid_value(argument, expected, value) from None
    if (
        not values
        or len(set(values)) != len(values)
        or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral)
            or v < 1 or (num_exits is not None and v > num_exits)
            for v in values
        )
    ):
        raise invalid_value(argument, expected, value)
    return [int(v) for v in values]


def check_exit_number(argument, value, num_exits=None):
    """Checks one exit NUMBER (1..K) and returns it as an `int`.

    Args:
        argument: Name of the argument, used in the message.
        value: The value to check.
        num_exits: K, when known.

    Returns:
        `value` as an `int`.
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        valid = "1..K" if num_exits is None else f"1..{num_exits}"
        raise invalid_value(argument, f"an exit number in {valid} (exit_1 "
                            "is 1)", value)
    return check_exit_numbers(argument, value, num_exits)[0]
