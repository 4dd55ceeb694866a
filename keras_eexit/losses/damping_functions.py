"""Adaptive gradient damping: the per-sample maths and the head checks.

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
  `Σ_k -log F^k[y] + λ · sqrt(Σ_k D_k²)` with `D_k = -log F^k[N+1]`.
* dynamic training (sec. 3.5): per sample and classifier a weight
  `w = 1 + w̃`, `w̃` the normalised `D_k` (see `dynamic_weights`), applied as
  a constant: `L = Σ_k mean_i w_ik L_ik`.

The losses are `DampingLoss` and `PowerSqrtDampingLoss` (Keras losses) and
the objective term `ExitDampingLoss`. Labels are integer classes in
`[0, N)` (shape `(batch,)` or `(batch, 1)`) or one-hot/soft rows over the
N classes (`(batch, N)`; the damping unit's target is 0).

References:
    - Diminishing Non-important Gradients for Training Dynamic
        Early-Exiting Networks (ICLR 2026 submission,
        https://openreview.net/forum?id=0L54sroHRw)
"""

from keras import ops

from keras_eexit.losses.labels import dense_labels
from keras_eexit.losses.labels import label_format
from keras_eexit.losses.labels import label_shape
from keras_eexit.losses.labels import sparse_labels
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import invalid_value


DAMPING_LAMBDAS = {"cifar100": 0.005, "cifar10": 0.075, "imagenet": 0.01}
"""λ of the damping paper's experiments by data set (sec. 5: 0.005 on
CIFAR-100 — also its ablations, appendix C.2 —, 0.075 on CIFAR-10, 0.01 on
ImageNet)."""

DEFAULT_DAMPING_LAMBDA = DAMPING_LAMBDAS["cifar100"]
"""The default λ: the paper's CIFAR-100 value (its main table and every
ablation use it)."""


def check_lam(lam):
    """λ as a float: a finite number >= 0 or a name in `DAMPING_LAMBDAS`.

    Example:

    >>> check_lam("cifar10")
    0.075
    """
    if isinstance(lam, str):
        if lam not in DAMPING_LAMBDAS:
            raise invalid_value(
                "lam", "a finite number >= 0 or a preset name in "
                f"{sorted(DAMPING_LAMBDAS)}", lam)
        return DAMPING_LAMBDAS[lam]
    return check_number("lam", lam, 0.0)


def check_alpha(alpha, argument="alpha"):
    """Returns α as a float if it lies in (0, 1], else raises.

    The paper uses 0.8 on CIFAR and 0.3 on ImageNet (sec. 3.5).
    """
    return check_number(argument, alpha, 0.0, 1.0, low_open=True)


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
    classes = num_logits - 1
    what = "the damping head (besides its damping unit)"
    log_probs = ops.log_softmax(logits, axis=-1)
    if label_format(label_shape(y_true), classes, what) == "dense":
        target = ops.pad(dense_labels(y_true, classes, what), [[0, 0], [0, 1]])
        ce = -ops.sum(target * log_probs, axis=-1)
    else:
        labels = sparse_labels(y_true, classes, what)
        ce = -ops.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
    return ce, -log_probs[:, -1]


def as_list(values):
    """A list of tensors from one tensor or a list/tuple of them."""
    if isinstance(values, (list, tuple)):
        return list(values)
    return [values]


def labels_per_classifier(y_true, count):
    """One label tensor per classifier (a shared tensor is repeated)."""
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
    damping paper's sec. 3.5 names the range, not the normalisation).
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
    logits_list = as_list(logits_list)
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
