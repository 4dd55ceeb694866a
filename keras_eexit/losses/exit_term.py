"""`ExitTerm`: an objective term that is a loss per sample and per exit."""

from keras import ops

from keras_eexit.losses.objective_term import ObjectiveTerm
from keras_eexit.utils.validation import check_exit_numbers
from keras_eexit.utils.validation import check_number


class ExitTerm(ObjectiveTerm):
    """Base class of terms `Σ_k c_k · mean_i s_i · v_ik · ℓ_ik`.

    For each exit `k` the term covers, `ℓ_ik` is the per-sample loss a
    subclass defines (`exit_loss`, or `per_sample` for terms that look at
    several exits at once), `s_i` the sample weight given to `fit`, `v_ik`
    optional constant per-sample factors (`sample_factors`, e.g. the
    dynamic weights of damping training) and `c_k` the exit's coefficient:
    `model.exit_weights[k]` (the per-exit weights regimes assign, read
    without retracing) unless the term has a fixed `weight`. Means run
    over the whole batch (Keras' `"sum_over_batch_size"`).

    The per-exit values returned for logging are `mean_i s_i · ℓ_ik`,
    before `v` and `c`.

    A new per-exit loss is one small subclass:

    ```python
    class ExitHinge(ExitTerm):
        name = "hinge"

        def exit_loss(self, labels, logits):
            return keras.losses.categorical_hinge(
                ops.one_hot(labels, logits.shape[-1]), logits)
    ```

    Args:
        exits: exit NUMBERS (1..K) the term covers; `None`: every exit.
        weight: `None` to weight exit `k` by `model.exit_weights[k]`, or a
            number >= 0 used for every covered exit instead.
        name: overrides the class's `name`.
    """

    def __init__(self, exits=None, weight=None, name=None):
        self.exits = None if exits is None else check_exit_numbers(
            "exits", exits)
        self.weight = None if weight is None else check_number(
            "weight", weight, 0.0)
        if name is not None:
            self.name = name

    # ---------------------------------------------------------- to define
    def exit_loss(self, labels, logits):
        """Per-sample loss `(batch,)` of one exit (subclasses define it)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define exit_loss(labels, logits) "
            "or per_sample(model, x, y, y_pred, positions).")

    def per_sample(self, model, x, y, y_pred, positions):
        """Per-sample losses of the covered exits.

        Args:
            model: the `MultiExitModel`.
            x: the batch's inputs.
            y: labels by exit name.
            y_pred: logits by exit name.
            positions: 0-based positions of the covered exits.

        Returns:
            A list parallel to `positions` of `(batch,)` tensors. The
            default applies `exit_loss` to each exit.
        """
        names = model.exit_names
        return [self.exit_loss(y[names[k]], y_pred[names[k]])
                for k in positions]

    def sample_factors(self, model, y_pred, positions):
        """Constant per-sample factors `v_ik`, or `None` (all 1)."""
        return None

    # ------------------------------------------------------------ shared
    def exit_positions(self, model):
        """0-based positions of the exits this term covers in `model`."""
        if self.exits is None:
            return list(range(model.num_exits))
        too_deep = [e for e in self.exits if e > model.num_exits]
        if too_deep:
            raise ValueError(
                f"{type(self).__name__} names exit(s) {too_deep}, but the "
                f"model has {model.num_exits} exits (valid: "
                f"1..{model.num_exits})."
            )
        return [e - 1 for e in self.exits]

    def coefficient(self, model, position):
        """`c_k`: the fixed `weight`, else `model.exit_weights[position]`."""
        if self.weight is not None:
            return self.weight
        return ops.cast(model.exit_weights[position], "float32")

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(Σ_k c_k · mean_i s_i v_ik ℓ_ik, {exit: mean s_i ℓ_ik})`."""
        self.check_model(model)
        positions = self.exit_positions(model)
        values = self.per_sample(model, x, y, y_pred, positions)
        factors = self.sample_factors(model, y_pred, positions)
        names = model.exit_names
        total, per_exit = 0.0, {}
        for j, (k, value) in enumerate(zip(positions, values)):
            value = ops.cast(value, "float32")
            if sample_weight is not None:
                value = value * ops.reshape(
                    ops.cast(sample_weight, "float32"), ops.shape(value))
            per_exit[names[k]] = mean = ops.mean(value)
            if factors is not None:
                mean = ops.mean(value * factors[j])
            total = total + self.coefficient(model, k) * mean
        return total, per_exit
