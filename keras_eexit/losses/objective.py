"""Objectives: the training loss of a multi-exit model as a sum of terms."""

import keras
from keras import ops

from keras_eexit.losses.exit_cross_entropy import ExitCrossEntropy
from keras_eexit.losses.objective_term import ObjectiveTerm


def _replica_fraction():
    """1 / number of replicas under a `tf.distribute` strategy, else 1
    (always 1 on another backend: JAX's data parallelism averages)."""
    if keras.backend.backend() != "tensorflow":
        return 1.0
    import tensorflow as tf

    return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync


class Objective:
    """A sum of loss terms over the exit outputs.

    Each term is an `ObjectiveTerm` (most are `ExitTerm`s). The term that
    replaces the cross-entropy (`term.replaces_cross_entropy`, the default
    `ExitCrossEntropy` or, e.g., a damping loss) has its per-exit values
    logged as `exit_k_loss` (unweighted); every other term is logged as
    `<name>_loss` (its weighted total). The total is divided by the number
    of replicas under a distribution strategy, so that gradients summed
    across replicas are those of the global batch.

    Args:
        terms: a list of terms with distinct names, at most one of which
            replaces the cross-entropy.

    Example:

    ```python
    model.set_objective(Objective([ExitCrossEntropy(),
                                   ExitDistillation(students=[1, 2])]))
    ```
    """

    def __init__(self, terms):
        self.terms = list(terms)
        for term in self.terms:
            if not isinstance(term, ObjectiveTerm):
                raise ValueError(
                    "Objective terms must be keras_eexit.losses."
                    f"ObjectiveTerm instances; received {term!r}.")
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names) or None in names:
            raise ValueError(
                f"Objective terms need distinct names: {names}.")
        replacing = [t.name for t in self.terms if t.replaces_cross_entropy]
        if len(replacing) > 1:
            raise ValueError(
                f"Terms {replacing} each replace the cross-entropy: an "
                "objective takes at most one of them.")

    @classmethod
    def cross_entropy(cls, loss=None):
        """The joint objective: weighted cross-entropy over all exits."""
        return cls([ExitCrossEntropy(loss)])

    @classmethod
    def with_terms(cls, terms, loss=None):
        """`terms`, preceded by `ExitCrossEntropy(loss)` unless one of them
        replaces the cross-entropy (what a regime phase trains on)."""
        terms = list(terms)
        if not any(t.replaces_cross_entropy for t in terms):
            terms = [ExitCrossEntropy(loss)] + terms
        return cls(terms)

    @property
    def extra_names(self):
        """Names of the terms other than the one replacing cross-entropy."""
        return [t.name for t in self.terms if not t.replaces_cross_entropy]

    def check_model(self, model):
        """Runs every term's `check_model` (clear errors before tracing)."""
        for term in self.terms:
            term.check_model(model)

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(total, per-exit cross-entropies, {term name: value})`.

        The total is scaled for distribution; the logged values are the
        unscaled batch means, per-exit ones in exit order (zero when no
        term replaces the cross-entropy).
        """
        total = 0.0
        per_exit = [0.0] * model.num_exits
        extras = {}
        for term in self.terms:
            value, exits = term(model, x, y, y_pred, sample_weight)
            total = total + value
            if term.replaces_cross_entropy:
                per_exit = [exits.get(n, 0.0) for n in model.exit_names]
            else:
                extras[term.name] = value
        total = ops.convert_to_tensor(total) * _replica_fraction()
        return total, per_exit, extras
