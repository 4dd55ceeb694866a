"""`ObjectiveTerm`: the base class of every term of a training objective."""


class ObjectiveTerm:
    """One term of a multi-exit model's training objective.

    An `Objective` sums its terms. A term is called as
    `term(model, x, y, y_pred, sample_weight)` with `y` and `y_pred` dicts
    keyed by exit name (`"exit_1"`, ...) and returns `(value, per_exit)`:
    a scalar, and a dict mapping exit names to that exit's part (for
    logging; may be empty).

    Terms that are a loss per sample and exit (cross-entropy, damping,
    distillation, LwF) derive from `ExitTerm`, which does the weighting
    and averaging; derive from this class directly only for terms that
    are not per exit (such as the EWC penalty on parameters).

    Class attributes:
        name: the term's name. A term that does not replace the
            cross-entropy is logged as `<name>_loss`; names in one
            objective must be distinct.
        replaces_cross_entropy: whether the term takes the place of the
            default per-exit cross-entropy (damping losses, the selective
            cross-entropy baselines). Its per-exit values are then logged
            as `exit_k_loss`. At most one term of an objective does.

    Example:

    ```python
    class L2OnLogits(ObjectiveTerm):
        name = "logit_l2"

        def __call__(self, model, x, y, y_pred, sample_weight=None):
            value = sum(ops.mean(ops.square(y_pred[n]))
                        for n in model.exit_names)
            return 1e-4 * value, {}
    ```
    """

    name = None
    replaces_cross_entropy = False

    def check_model(self, model):
        """Raises a clear `ValueError` if the term cannot train `model`.

        Called by regimes before training starts (and by `ExitTerm` at
        trace time); the default accepts every model.
        """

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(scalar, {exit name: value})`."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement __call__.")

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"
