"""EWC's Fisher information: one home for all of it.

* `empirical_fisher(model, data, exit)`: the diagonal empirical Fisher of
  an exit over Θ_1..Θ_ν (Zniber et al., eq. 3), from exact per-sample
  gradients (`per_sample`: one backward pass where the layers allow it).
* `FisherStore`: accumulated Fisher diagonal and anchors, as variables.
* `FisherPass`: the train step of a regime's Fisher phase
  (`Phase(fisher_exit=ν)`), filling a `FisherStore`.
* `EWCPenalty`: the objective term `λ Σ F (θ − θ*)²` (eq. 2).
* `AccumulateFisher`: the same for loops of `fit` calls (a callback).
"""

from keras_eexit.fisher.accumulate_fisher import AccumulateFisher
from keras_eexit.fisher.empirical_fisher import empirical_fisher
from keras_eexit.fisher.empirical_fisher import fisher_variables
from keras_eexit.fisher.empirical_fisher import squared_gradients
from keras_eexit.fisher.ewc_penalty import EWCPenalty
from keras_eexit.fisher.fisher_pass import FisherPass
from keras_eexit.fisher.fisher_store import FisherStore

__all__ = [
    "AccumulateFisher",
    "EWCPenalty",
    "FisherPass",
    "FisherStore",
    "empirical_fisher",
    "fisher_variables",
    "squared_gradients",
]
