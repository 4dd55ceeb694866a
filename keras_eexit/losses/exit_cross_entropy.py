"""Weighted cross-entropy over the exits of a multi-exit model."""

import keras
from keras import ops

from keras_eexit.losses.exit_term import ExitTerm
from keras_eexit.losses.labels import label_format
from keras_eexit.losses.labels import label_shape
from keras_eexit.losses.labels import sparse_labels

CROSSENTROPY_NAMES = (
    "crossentropy",
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
)
"""Loss names meaning cross-entropy on logits (label format from the shape)."""

_ACCEPTED = (
    "None or a cross-entropy name "
    f"({', '.join(repr(n) for n in CROSSENTROPY_NAMES)}: cross-entropy on "
    "logits, integer or one-hot labels), a keras.losses.Loss instance, or a "
    "function (y_true, logits) -> one loss value per sample; every exit "
    "outputs logits and labels are integer classes or one-hot rows"
)


def per_sample_crossentropy(labels, logits):
    """Cross-entropy of logits against sparse or one-hot labels, per sample.

    Args:
        labels: integer classes of shape `(batch,)` or `(batch, 1)`, or
            one-hot (possibly soft) labels of shape `(batch, num_classes)`.
        logits: float tensor of shape `(batch, num_classes)`.

    Returns:
        A float32 tensor of shape `(batch,)`.

    Example:

    >>> per_sample_crossentropy([0, 1], [[2.0, 0.0], [0.0, 2.0]]).shape
    TensorShape([2])
    """
    logits = ops.cast(logits, "float32")
    num_classes = logits.shape[-1]
    if label_format(label_shape(labels), num_classes) == "dense":
        return keras.losses.categorical_crossentropy(
            ops.cast(labels, "float32"), logits, from_logits=True
        )
    return keras.losses.sparse_categorical_crossentropy(
        sparse_labels(labels, num_classes), logits, from_logits=True
    )


def resolve_loss(loss):
    """Turns a user's loss argument into a per-sample function on logits.

    Args:
        loss: `None` or a cross-entropy name (logits, label format chosen
            from the label shape), a `keras.losses.Loss` instance (its
            per-sample `call` is used), or a function `f(y_true, logits)`
            returning one value per sample.

    Returns:
        A function `(labels, logits) -> (batch,)` losses. For a user's loss
        it checks, when traced, that the result has one value per sample,
        and turns a failure (a shape error, say) into a `ValueError` that
        says what is accepted.

    Raises:
        ValueError: for other loss names (`"mse"`, ...: they do not take
            logits and integer labels) and other types.
    """
    if loss is None or (isinstance(loss, str) and loss in CROSSENTROPY_NAMES):
        return per_sample_crossentropy
    if isinstance(loss, str) or not callable(loss):
        raise ValueError(
            f"Invalid value received for argument `loss`. Expected "
            f"{_ACCEPTED}. Received: loss={loss!r}"
        )
    _check_takes_logits(loss)
    function = loss.call if isinstance(loss, keras.losses.Loss) else loss
    return _Checked(function, loss)


_PROBABILITY_LOSSES = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "categorical_focal_crossentropy",
    "binary_focal_crossentropy",
)
"""Keras' functional losses that read probabilities unless
`from_logits=True`."""


def _check_takes_logits(loss):
    """Refuses a Keras cross-entropy that reads probabilities.

    Every exit outputs logits: `SparseCategoricalCrossentropy()` (Keras'
    default `from_logits=False`) would take them for probabilities and
    train on a wrong loss without a word.
    """
    if isinstance(loss, keras.losses.Loss):
        from_logits = loss.get_config().get("from_logits")
        name = f"{type(loss).__name__}()"
        fix = f"`keras.losses.{type(loss).__name__}(from_logits=True)`"
    else:
        name = getattr(loss, "__name__", "")
        is_keras = getattr(loss, "__module__", "").startswith("keras")
        from_logits = False if is_keras and name in _PROBABILITY_LOSSES \
            else None
        fix = (f"`functools.partial(keras.losses.{name}, "
               "from_logits=True)`")
    if from_logits is False:
        raise ValueError(
            f"Invalid value received for argument `loss`: {name} reads "
            "probabilities (from_logits=False), but every exit outputs "
            f"logits, so it would train on a wrong loss. Pass {fix}, or "
            "loss=None (cross-entropy on logits, integer or one-hot labels)."
        )


def _loss_name(loss):
    """A short, readable name of a user's loss (no object repr)."""
    if isinstance(loss, keras.losses.Loss):
        config = loss.get_config()
        function = getattr(loss, "fn", None)
        name = (function.__name__ if type(loss).__name__ ==
                "LossFunctionWrapper" and function is not None
                else type(loss).__name__)
        if "from_logits" in config:
            return f"{name}(from_logits={config['from_logits']})"
        return f"{name}()"
    function = getattr(loss, "func", loss)  # functools.partial
    return getattr(function, "__name__", type(loss).__name__)


def _label_form(labels, num_classes):
    """What labels of this shape are, in words."""
    shape = label_shape(labels)
    if len(shape) == 1 or (len(shape) == 2 and shape[-1] == 1):
        return f"integer class labels of shape {shape}"
    if len(shape) == 2 and shape[-1] == num_classes:
        return f"one-hot rows of shape {shape}"
    return f"labels of shape {shape}"


def _label_form_taken(loss_name, num_classes):
    """The label form a Keras cross-entropy takes, or `None`."""
    name = loss_name.split("(")[0].lower().replace("_", "")
    if name in ("sparsecategoricalcrossentropy",):
        return "integer class labels of shape (batch,)"
    if name in ("categoricalcrossentropy", "categoricalfocalcrossentropy"):
        return f"one-hot rows of shape (batch, {num_classes})"
    return None


class _Checked:
    """A user's per-sample loss, with a clear error when it does not fit."""

    def __init__(self, function, loss):
        self.function = function
        self.loss = loss

    def __call__(self, labels, logits):
        try:
            values = self.function(labels, logits)
        except Exception as error:  # a TF/Keras shape or type error
            raise self._failure(labels, logits, error) from error
        shape = label_shape(values)
        batch = label_shape(logits)[0]
        if len(shape) != 1 or (
            batch is not None and shape[0] not in (batch, None)
        ):
            raise ValueError(
                f"The loss {_loss_name(self.loss)} returned values of shape "
                f"{shape} for logits of shape {label_shape(logits)}: "
                f"expected one value per sample ({(batch,)}). Expected "
                f"{_ACCEPTED}."
            )
        return values

    def _failure(self, labels, logits, error):
        """The one-line error for a loss that failed on these labels:
        what it received, what it takes, how to fix it."""
        name = _loss_name(self.loss)
        num_classes = label_shape(logits)[-1]
        given = _label_form(labels, num_classes)
        taken = _label_form_taken(name, num_classes)
        if taken is not None:
            return ValueError(
                f"The loss {name} received {given}, but it takes {taken}. "
                "Pass labels of that form to every call (fit, "
                "validation_data, evaluate), or compile with loss=None "
                "(cross-entropy on logits), which reads integer classes "
                "and one-hot rows alike."
            )
        reason = str(error).strip().splitlines()
        return ValueError(
            f"The loss {name} failed on logits of shape "
            f"{label_shape(logits)} and {given}: {type(error).__name__}: "
            f"{reason[0] if reason else ''}. Expected {_ACCEPTED}."
        )


class ExitCrossEntropy(ExitTerm):
    """Objective term: `Σ_k w_k · mean_i loss(y_i, logits_ik)`.

    The default term of every objective: cross-entropy on each exit's
    logits (or the per-sample loss given to `compile`), weighted by
    `model.exit_weights`, a non-trainable variable that regimes assign
    (changing the weights does not retrace the train step). Its per-exit
    values are logged as `exit_k_loss`.

    Args:
        loss: see `resolve_loss`; defaults to cross-entropy on logits.

    Example:

    ```python
    term = ExitCrossEntropy()
    total, per_exit = term(model, x, labels_by_exit, logits_by_exit)
    ```
    """

    name = "crossentropy"
    replaces_cross_entropy = True

    def __init__(self, loss=None):
        super().__init__()
        self.loss = loss
        self._per_sample = resolve_loss(loss)

    def exit_loss(self, labels, logits):
        return self._per_sample(labels, logits)
