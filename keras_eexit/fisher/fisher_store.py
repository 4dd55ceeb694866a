"""`FisherStore`: EWC's Fisher diagonal and anchors, kept as variables."""

import keras
from keras import ops

from keras_eexit.utils.variables import assign_copies

from keras_eexit import chain


class FisherStore(keras.layers.Layer):
    """Variables holding EWC's accumulated Fisher diagonal and its anchors.

    For each protected variable θ_k (by default every trainable parameter of
    the model's segments, `chain.shared_variables`): the accumulated
    Fisher `F_k = Σ_ν F_k^(ν)` (online EWC: the Fishers of the exits
    measured so far add up), the anchor `θ*_k`, and a running sum for the
    Fisher pass in progress. `penalty()` is `Σ_k F_k (θ_k − θ*_k)²`, the
    sum of Zniber et al.'s eq. 2.

    Because the values are variables of a layer, `model.save_weights` - and
    therefore `keras.callbacks.BackupAndRestore` - saves and restores them
    wherever the store is attached (the regime's state, or the model for
    `AccumulateFisher`). The protected variables themselves are referenced,
    not tracked: they are not weights of the store.

    Memory: three copies of the protected parameters.

    Args:
        model: the `MultiExitModel`.
        variables: the protected variables (default: all segments').
    """

    def __init__(self, model, variables=None, **kwargs):
        kwargs.setdefault("name", "fisher_store")
        super().__init__(trainable=False, **kwargs)
        protected = tuple(chain.shared_variables(model) if variables is None
                          else variables)
        object.__setattr__(self, "protected", protected)
        self.fisher = [self._zeros(v, f"fisher_{i}")
                       for i, v in enumerate(protected)]
        self.anchors = [self._zeros(v, f"anchor_{i}")
                        for i, v in enumerate(protected)]
        self.sums = [self._zeros(v, f"sum_{i}")
                     for i, v in enumerate(protected)]
        self.count = self.add_weight(shape=(), dtype="float32",
                                     initializer="zeros", trainable=False,
                                     name="count")
        self.built = True

    def _zeros(self, variable, name):
        return self.add_weight(shape=variable.shape, dtype="float32",
                               initializer="zeros", trainable=False,
                               name=name)

    @property
    def paths(self):
        """The protected variables' paths, in store order."""
        return [v.path for v in self.protected]

    def slots_of(self, variables):
        """Positions in the store of `variables` (which must be protected)."""
        where = {id(v): i for i, v in enumerate(self.protected)}
        return [where[id(v)] for v in variables if id(v) in where]

    def finish_pass(self):
        """Ends a Fisher pass: `F += sums / count`, sums and count reset.

        Raises:
            ValueError: if the pass saw no samples.
        """
        count = float(ops.convert_to_numpy(self.count))
        if count == 0:
            raise ValueError(
                "The Fisher pass saw no training samples: EWC cannot "
                "measure the Fisher information."
            )
        for f, total in zip(self.fisher, self.sums):
            f.assign_add(total / count)
            total.assign(ops.zeros(total.shape, total.dtype))
        self.count.assign(0.0)

    def add(self, fisher):
        """Adds a Fisher `{variable path: array}` (e.g. `empirical_fisher`)."""
        for path, f in zip(self.paths, self.fisher):
            if path in fisher:
                f.assign_add(ops.convert_to_tensor(fisher[path], "float32"))

    def anchor(self):
        """Sets every anchor `θ*` to the protected variables' values now."""
        assign_copies(self.anchors, self.protected)

    def penalty(self):
        """`Σ_k F_k (θ_k − θ*_k)²` over the protected variables."""
        total = 0.0
        for var, f, anchor in zip(self.protected, self.fisher, self.anchors):
            diff = ops.cast(var, "float32") - anchor
            total = total + ops.sum(f * diff * diff)
        return total
