"""`EWCPenalty`: the Elastic Weight Consolidation term of Zniber et al."""

from keras_eexit.losses.objective_term import ObjectiveTerm
from keras_eexit.utils.validation import check_number


class EWCPenalty(ObjectiveTerm):
    """Objective term `λ · Σ_k F_k (θ_k − θ*_k)²` (Zniber et al., eq. 2).

    `F` is the accumulated Fisher diagonal and `θ*` the anchors of a
    `FisherStore`: by default the regime's (`model.regime_state.
    fisher_store`, filled by the regime's Fisher passes), or the `store`
    given (e.g. `AccumulateFisher(...).store` in a loop of `fit` calls).

    Args:
        lam: λ >= 0.
        store: a `FisherStore`, or `None` for the regime's.

    Example:

    ```python
    Phase("stage_2", 5, train_segments=[1, 2], train_heads=[2],
          terms=(EWCPenalty(100.0),))
    ```
    """

    name = "ewc"

    def __init__(self, lam, store=None):
        self.lam = check_number("lam", lam, 0.0)
        self.store = store

    def _store(self, model):
        if self.store is not None:
            return self.store
        state = getattr(model, "regime_state", None)
        store = getattr(state, "fisher_store", None)
        if store is None:
            raise ValueError(
                "EWCPenalty reads a Fisher store, but none is attached: use "
                "it in a regime with Fisher passes (`Phase(fisher_exit=...)`,"
                " `SequentialRegime(regularizer='ewc')`) or pass `store=`.")
        return store

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(λ·R_EWC, {})`."""
        return self.lam * self._store(model).penalty(), {}
