"""Adaptive gradient damping: damping and power-sqrt losses, dynamic weights.

The method of "Diminishing Non-important Gradients for Training Dynamic
Early-Exiting Networks": every exit head gets one extra output unit, the
damping unit, that stands for no class (`keras_eexit.layers.DampingHead`);
the softmax `F` runs over all N + 1 logits. With `y` the true class and
`N+1` the damping unit (the last logit):

* damping loss of one classifier (eq. 2):
  `L = -log F[y] + λ · (-log F[N+1])`. Its gradient on the logits is
  `(1 + λ) F - e_y - λ e_{N+1}`: on the true class `(1 + λ) F[y] - 1`, on
  the damping unit `(1 + λ) F[N+1] - λ` (Propositions 1 and 2). The true
  class's gradient vanishes once `F[y] = 1 / (1 + λ)`, so samples a
  classifier already fits send smaller gradients into the shared backbone;
  the damping unit soaks up the rest of the mass.
* power-sqrt loss over K classifiers (eq. 4), per sample:
  `Σ_k -log F^k[y] + λ · sqrt(Σ_k D_k²)` with `D_k = -log F^k[N+1]`. The
  damping part's gradient on the true-class logit of classifier `k` is
  `λ · D_k / sqrt(Σ_j D_j²) · F^k[y]` (Appendix B.2): classifiers with a
  large `D_k` (which give the damping unit little mass, i.e. train well)
  receive the larger share.
* dynamic training (sec. 3.5): per sample and classifier a weight
  `w = 1 + w̃`, `w̃` the normalised `D_k` (see `dynamic_weights`), applied as
  a constant: `L = Σ_k mean_i w_ik L_ik`.

Losses are on logits; labels are integer classes in `[0, N)` (shape
`(batch,)` or `(batch, 1)`) or one-hot/soft labels over the N classes
(`(batch, N)`; the damping unit's target is 0).
"""

import numbers

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.utils.validation import invalid_value

_SQRT_EPSILON = 1e-12


# ---------------------------------------------------------------- checks
def check_lam(lam):
    """Returns `lam` as a float if it is a finite number >= 0, else raises."""
    if (
        isinstance(lam, bool)
        or not isinstance(lam, numbers.Real)
        or not 0.0 <= lam < float("inf")
    ):
        raise invalid_value("lam", "a finite number >= 0", lam)
    return float(lam)


def check_alpha(alpha, argument="alpha"):
    """Returns `alpha` as a float if it lies in (0, 1], else raises."""
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not 0.0 < alpha <= 1.0
    ):
        raise invalid_value(
            argument, "a float in (0, 1] (0.8 CIFAR, 0.3 ImageNet in the "
            "paper)", alpha)
    return float(alpha)


def check_damping_heads(model, what):
    """Raises unless every head of `model` has a damping unit.

    Args:
        model: a `MultiExitModel`.
        what: the loss that needs the damping unit, for the message.
    """
    from keras_eexit.chain import has_damping_unit

    missing = [name for name, head in zip(model.exit_names, model.heads)
               if not has_damping_unit(head)]
    if missing:
        raise ValueError(
            f"{what} needs a damping unit on every exit head (N + 1 logits, "
            f"the last standing for no class), but exits {missing} have "
            "plain heads. Build the model with `damping=True` (zoo builders, "
            "`get_head`, `MultiExitModel.from_backbone`) or wrap each head "
            "in `keras_eexit.layers.DampingHead`."
        )


def check_plain_heads(model, what):
    """Raises if a head of `model` has a damping unit.

    Args:
        model: a `MultiExitModel`.
        what: the loss that expects plain heads, for the message.
    """
    from keras_eexit.chain import has_damping_unit

    damped = [name for name, head in zip(model.exit_names, model.heads)
              if has_damping_unit(head)]
    if damped:
        raise ValueError(
            f"{what} expects plain heads (N logits), but exits {damped} "
            "have a damping unit (N + 1 logits): cross-entropy over N + 1 "
            "units is the damping loss with λ = 0, not the plain baseline. "
            "Use loss='damping' or loss='power_sqrt' (λ = 0 for a damping "
            "unit without damping), or build the model with damping=False."
        )


# ------------------------------------------------------------ components
def _one_hot_or_index(labels, num_logits):
    """`("index", (batch,) int32)` or `("dense", (batch, N + 1) float32)`."""
    shape = tuple(getattr(labels, "shape", ops.shape(labels)))
    classes = num_logits - 1
    if len(shape) == 2 and shape[-1] not in (1, None):
        if shape[-1] != classes:
            raise ValueError(
                f"One-hot labels have {shape[-1]} columns but the damping "
                f"head has {classes} classes (+ the damping unit). Pass "
                f"integer labels of shape (batch,) or one-hot labels of "
                f"shape (batch, {classes})."
            )
        dense = ops.cast(labels, "float32")
        return "dense", ops.pad(dense, [[0, 0], [0, 1]])
    if len(shape) > 2:
        raise ValueError(
            f"Labels have shape {shape}: expected integer classes of shape "
            "(batch,) or one-hot labels of shape (batch, num_classes)."
        )
    return "index", ops.reshape(ops.cast(labels, "int32"), (-1,))


def damping_components(y_true, logits):
    """The two parts of the damping loss of one classifier, per sample.

    Args:
        y_true: integer classes `(batch,)`/`(batch, 1)` in `[0, N)`, or
            one-hot labels `(batch, N)`.
        logits: float tensor `(batch, N + 1)`, the damping unit last.

    Returns:
        `(ce, d)`, float32 tensors of shape `(batch,)`: `ce = -log F[y]` and
        `d = -log F[N+1]`, with `F` the softmax over all N + 1 logits.

    Example:

    >>> ce, d = damping_components([0], [[0.0, 0.0, 0.0]])
    >>> float(ce[0]), float(d[0])  # both log(3)
    (1.0986..., 1.0986...)
    """
    logits = ops.cast(logits, "float32")
    num_logits = logits.shape[-1]
    if num_logits is None or num_logits < 3:
        raise ValueError(
            "A damping loss needs logits of shape (batch, N + 1) with N >= 2 "
            f"classes and the damping unit last. Received logits of shape "
            f"{tuple(logits.shape)}."
        )
    log_probs = ops.log_softmax(logits, axis=-1)
    kind, labels = _one_hot_or_index(y_true, num_logits)
    if kind == "dense":
        ce = -ops.sum(labels * log_probs, axis=-1)
    else:
        ce = -ops.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
    return ce, -log_probs[:, -1]


def _as_list(values):
    if isinstance(values, (list, tuple)):
        return list(values)
    return [values]


def _labels_per_classifier(y_true, count):
    if isinstance(y_true, (list, tuple)):
        if len(y_true) != count:
            raise ValueError(
                f"Received {len(y_true)} label tensors for {count} "
                "classifiers: pass one label tensor (shared) or one per "
                "classifier."
            )
        return list(y_true)
    return [y_true] * count


def dynamic_weights(logits_list, alpha, stop_gradient=True):
    """Sample-wise dynamic weights of adaptive damping training (sec. 3.5).

    For sample `i` and classifier `k` the raw score is
    `r_ik = -log F^k_i[N+1]`: large when classifier `k` gives the damping
    unit little mass, i.e. still needs to learn from the sample. The scores
    are normalised to `[-α, α]` following Han et al. (2022, L2W-DEN), whose
    weights are `1 + ε · (t - mean t)` with the mean over the whole
    batch-by-exit matrix (their `constraint_dimension="mat"`, ε = 0.8 on
    CIFAR and 0.3 on ImageNet, the α of the damping paper):

        w̃ = α · (r - mean(r)) / max|r - mean(r)|,    w = 1 + w̃,

    mean and max over all samples and classifiers of the batch. So `w̃` lies
    in `[-α, α]`, reaches `±α` at the extreme, and the weights average to 1
    (the loss scale is unchanged). When every score is equal, all weights
    are 1. L2W-DEN bounds its raw scores with `tanh`; `-log F[N+1]` is
    unbounded, hence the division by the largest deviation (our choice: the
    damping paper's exact normalisation could not be checked offline).
    Under a distribution strategy the statistics are per replica batch.

    Args:
        logits_list: the K classifiers' logits, each `(batch, N + 1)` with
            the damping unit last (a single tensor counts as K = 1).
        alpha: float in (0, 1], the half-width of the weight range.
        stop_gradient: `True` (the method): the weights are constants.
            `False`: the "dynamic training with gradient" ablation, where
            gradients also flow through the weights.

    Returns:
        A list of K float32 tensors of shape `(batch,)`, parallel to
        `logits_list`.

    Example:

    ```python
    weights = dynamic_weights([logits_1, logits_2], alpha=0.8)
    loss = sum(ops.mean(w * l) for w, l in zip(weights, per_sample_losses))
    ```
    """
    alpha = check_alpha(alpha)
    logits_list = _as_list(logits_list)
    scores = []
    for logits in logits_list:
        logits = ops.cast(logits, "float32")
        scores.append(-ops.log_softmax(logits, axis=-1)[:, -1])
    scores = ops.stack(scores, axis=1)
    centred = scores - ops.mean(scores)
    spread = ops.max(ops.abs(centred))
    positive = spread > 0.0
    safe = ops.where(positive, spread, ops.ones_like(spread))
    tilde = ops.where(positive, alpha * centred / safe,
                      ops.zeros_like(centred))
    weights = 1.0 + tilde
    if stop_gradient:
        weights = ops.stop_gradient(weights)
    return [weights[:, k] for k in range(len(logits_list))]


# ----------------------------------------------------------------- losses
@register
class DampingLoss(keras.losses.Loss):
    """Damping loss (eq. 2), summed over classifiers, averaged over a batch.

    For each classifier: `-log F[y] + λ · (-log F[N+1])`, `F` the softmax
    over the N class logits and the damping unit (last). Its gradient on
    the logits is `(1 + λ) F[y] - 1` on the true class and
    `(1 + λ) F[N+1] - λ` on the damping unit.

    Call it as `loss(y_true, logits_list)` with the K exits' logits (a
    single logits tensor is K = 1, so `model.compile(loss=DampingLoss(λ))`
    applies eq. 2 to every exit); it returns the per-sample sum over
    classifiers, reduced over the batch (mean by default). For multi-exit
    training prefer `keras_eexit.regimes.Joint(loss="damping", lam=λ)`,
    which also applies exit weights and dynamic weights.

    Args:
        lam: λ >= 0, the weight of the damping term. λ = 0 is plain
            cross-entropy with the softmax over N + 1 units.
        num_classes: optional N; when given, logits must have N + 1
            columns (a clear error for heads without the damping unit).
        reduction: Keras loss reduction; defaults to the batch mean.
        name: name of the loss.
        dtype: dtype of the loss computations.

    Example:

    ```python
    loss = DampingLoss(lam=0.5)
    value = loss(labels, [logits_exit_1, logits_exit_2])  # scalar
    ```

    References:
        - Diminishing Non-important Gradients for Training Dynamic
            Early-Exiting Networks (ICLR 2026 submission,
            https://openreview.net/forum?id=0L54sroHRw)
    """

    def __init__(self, lam=1.0, num_classes=None,
                 reduction="sum_over_batch_size", name="damping_loss",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.lam = check_lam(lam)
        if num_classes is not None:
            from keras_eexit.utils.validation import check_num_classes

            num_classes = check_num_classes(num_classes)
        self.num_classes = num_classes

    def _check_logits(self, logits_list):
        if self.num_classes is None:
            return
        for logits in logits_list:
            width = logits.shape[-1]
            if width is not None and width != self.num_classes + 1:
                raise ValueError(
                    f"{type(self).__name__} expects logits with num_classes "
                    f"+ 1 = {self.num_classes + 1} columns ({self.num_classes}"
                    f" classes and the damping unit); received {width}. "
                    "Heads without the damping unit cannot use a damping "
                    "loss: build them with damping=True."
                )

    def per_classifier(self, y_true, logits_list):
        """Per-sample loss of each classifier.

        Args:
            y_true: one label tensor (shared by the classifiers) or a list
                with one per classifier.
            logits_list: the K classifiers' logits (or one tensor).

        Returns:
            A list of K float32 tensors `(batch,)` whose sum over the list
            is the per-sample loss.
        """
        logits_list = _as_list(logits_list)
        self._check_logits(logits_list)
        labels = _labels_per_classifier(y_true, len(logits_list))
        values = []
        for label, logits in zip(labels, logits_list):
            ce, d = damping_components(label, logits)
            values.append(ce + self.lam * d)
        return values

    def call(self, y_true, y_pred):
        return sum(self.per_classifier(y_true, y_pred))

    def get_config(self):
        config = super().get_config()
        config.update({"lam": self.lam, "num_classes": self.num_classes})
        return config


@register
class PowerSqrtDampingLoss(DampingLoss):
    """Power-sqrt damping loss (eq. 4) over the K classifiers.

    Per sample: `Σ_k -log F^k[y] + λ · sqrt(Σ_k D_k²)` with
    `D_k = -log F^k[N+1]`; averaged over the batch. The square root couples
    the classifiers: the damping gradient on the true-class logit of
    classifier `k` is `λ · D_k / sqrt(Σ_j D_j²) · F^k[y]`, so classifiers
    that train better (small damping mass, large `D_k`) get the larger
    share. With one classifier it reduces to `DampingLoss`.

    `per_classifier` splits the damping part by shares
    `λ · D_k² / sqrt(Σ_j D_j²)` (they sum to the whole), which is how
    exit weights and dynamic weights apply per classifier and how the
    per-exit loss is logged. A `1e-12` under the square root keeps the
    gradient finite when every `D_k` is 0.

    Args:
        lam: λ >= 0, the weight of the damping term.
        num_classes: optional N (logits must then have N + 1 columns).
        reduction: Keras loss reduction; defaults to the batch mean.
        name: name of the loss.
        dtype: dtype of the loss computations.

    Example:

    ```python
    loss = PowerSqrtDampingLoss(lam=0.5)
    value = loss(labels, [logits_exit_1, logits_exit_2, logits_exit_3])
    ```
    """

    def __init__(self, lam=1.0, num_classes=None,
                 reduction="sum_over_batch_size",
                 name="power_sqrt_damping_loss", dtype=None):
        super().__init__(lam=lam, num_classes=num_classes,
                         reduction=reduction, name=name, dtype=dtype)

    def per_classifier(self, y_true, logits_list):
        logits_list = _as_list(logits_list)
        self._check_logits(logits_list)
        labels = _labels_per_classifier(y_true, len(logits_list))
        parts = [damping_components(label, logits)
                 for label, logits in zip(labels, logits_list)]
        norm = ops.sqrt(sum(ops.square(d) for _, d in parts) + _SQRT_EPSILON)
        return [ce + self.lam * ops.square(d) / norm for ce, d in parts]


LOSSES = {"damping": DampingLoss, "power_sqrt": PowerSqrtDampingLoss}
"""Damping losses by the name `Joint(loss=...)` takes."""


# ------------------------------------------------------- objective terms
class ExitDampingLoss:
    """Objective term: a damping loss over all exits, replacing cross-entropy.

    `Σ_k w_k · mean_i v_ik · L_ik`, with `L_ik` the classifier's part of the
    damping or power-sqrt loss (`loss.per_classifier`), `w_k` the exit
    weights (`model.exit_weights`) and `v_ik` the dynamic weights when
    `alpha` is set (else 1). Named `"crossentropy"`, it takes the place of
    the default cross-entropy term in a phase, and its per-exit values
    (the mean `L_ik` of each exit, before exit and dynamic weights) are
    logged as `exit_k_loss`. Every head must have a damping unit.

    Args:
        loss: a `DampingLoss` or `PowerSqrtDampingLoss`.
        alpha: `None` (no dynamic weighting) or the α of `dynamic_weights`.
        dynamic_gradient: let gradients flow through the dynamic weights
            (the paper's "with gradient" ablation).

    Example:

    ```python
    Phase("joint", terms=[ExitDampingLoss(PowerSqrtDampingLoss(0.5),
                                          alpha=0.8)])
    ```
    """

    name = "crossentropy"

    def __init__(self, loss, alpha=None, dynamic_gradient=False):
        if not isinstance(loss, DampingLoss):
            raise invalid_value(
                "loss", "a DampingLoss or PowerSqrtDampingLoss", loss)
        self.loss = loss
        self.alpha = None if alpha is None else check_alpha(alpha)
        if not isinstance(dynamic_gradient, bool):
            raise invalid_value("dynamic_gradient", "a boolean",
                                dynamic_gradient)
        self.dynamic_gradient = dynamic_gradient

    def check_model(self, model):
        """Raises a clear error unless every head has a damping unit."""
        check_damping_heads(model, f"{type(self.loss).__name__}")

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(weighted total, {exit_name: mean loss})`."""
        self.check_model(model)
        names = model.exit_names
        logits = [y_pred[n] for n in names]
        values = self.loss.per_classifier([y[n] for n in names], logits)
        dynamic = None
        if self.alpha is not None:
            dynamic = dynamic_weights(
                logits, self.alpha, stop_gradient=not self.dynamic_gradient)
        total = 0.0
        per_exit = {}
        for k, (name, value) in enumerate(zip(names, values)):
            if sample_weight is not None:
                value = value * ops.reshape(
                    ops.cast(sample_weight, "float32"), ops.shape(value))
            per_exit[name] = ops.mean(value)
            if dynamic is not None:
                value = value * dynamic[k]
            total = total + ops.cast(model.exit_weights[k], "float32") * (
                ops.mean(value))
        return total, per_exit


class SelectiveCrossEntropy:
    """Objective term: the paper's plain-head baselines, as cross-entropy.

    `Σ_k w_k · mean_i m_ik · CE(ỹ_i, logits_ik)` where

    * threshold gradient selection: `m_ik = 0` when the softmax of the true
      class exceeds `threshold` (the sample's loss is dropped, so it sends
      no gradient), else 1; the mask is a constant and the mean still runs
      over the whole batch;
    * label smoothing: `ỹ = (1 - ε) · one_hot(y) + ε / N`.

    Named `"crossentropy"`, it replaces the default cross-entropy term of a
    phase; per-exit values (the masked means, before exit weights) are
    logged as `exit_k_loss`. Heads must be plain (N logits). With soft
    labels the "true-class softmax" is `exp(Σ_c y_c log F[c])`.

    Args:
        threshold: `None` or τ in (0, 1].
        label_smoothing: ε in [0, 1).

    Example:

    ```python
    Phase("joint", terms=[SelectiveCrossEntropy(threshold=0.9)])
    ```
    """

    name = "crossentropy"

    def __init__(self, threshold=None, label_smoothing=0.0):
        if threshold is not None and (
            isinstance(threshold, bool)
            or not isinstance(threshold, numbers.Real)
            or not 0.0 < threshold <= 1.0
        ):
            raise invalid_value("threshold", "None or a float in (0, 1]",
                                threshold)
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, numbers.Real)
            or not 0.0 <= label_smoothing < 1.0
        ):
            raise invalid_value("label_smoothing", "a float in [0, 1)",
                                label_smoothing)
        self.threshold = None if threshold is None else float(threshold)
        self.label_smoothing = float(label_smoothing)

    def check_model(self, model):
        """Raises a clear error if a head has a damping unit."""
        check_plain_heads(model, "Cross-entropy (threshold / label "
                                 "smoothing baselines)")

    def per_sample(self, labels, logits):
        """Masked, smoothed cross-entropy per sample, shape `(batch,)`."""
        logits = ops.cast(logits, "float32")
        num_classes = logits.shape[-1]
        shape = tuple(getattr(labels, "shape", ops.shape(labels)))
        if len(shape) == 2 and shape[-1] not in (1, None):
            if shape[-1] != num_classes:
                raise ValueError(
                    f"One-hot labels have {shape[-1]} columns but the exit "
                    f"has {num_classes} classes.")
            target = ops.cast(labels, "float32")
        else:
            target = ops.one_hot(ops.reshape(ops.cast(labels, "int32"),
                                             (-1,)), num_classes)
        log_probs = ops.log_softmax(logits, axis=-1)
        smoothed = target
        if self.label_smoothing:
            smoothed = (target * (1.0 - self.label_smoothing)
                        + self.label_smoothing / num_classes)
        values = -ops.sum(smoothed * log_probs, axis=-1)
        if self.threshold is not None:
            true_prob = ops.exp(ops.sum(target * log_probs, axis=-1))
            keep = ops.cast(true_prob <= self.threshold, "float32")
            values = values * ops.stop_gradient(keep)
        return values

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(weighted total, {exit_name: mean loss})`."""
        self.check_model(model)
        total = 0.0
        per_exit = {}
        for k, name in enumerate(model.exit_names):
            value = self.per_sample(y[name], y_pred[name])
            if sample_weight is not None:
                value = value * ops.reshape(
                    ops.cast(sample_weight, "float32"), ops.shape(value))
            per_exit[name] = ops.mean(value)
            total = total + ops.cast(model.exit_weights[k], "float32") * (
                per_exit[name])
        return total, per_exit
