"""The early-exit methods by name: `sdn`, `pbee`, `ztw`, `gpf`, `l2w`, `dfs`,
`dfs_reroute`."""

import dataclasses

from keras_eexit.methods.dfs import dfs
from keras_eexit.methods.dfs import dfs_reroute
from keras_eexit.methods.gpf import gpf
from keras_eexit.methods.gpf import gpf_regime
from keras_eexit.methods.l2w import l2w
from keras_eexit.methods.pbee import pbee
from keras_eexit.methods.pbee import pbee_regime
from keras_eexit.methods.sdn import sdn
from keras_eexit.methods.ztw import ztw
from keras_eexit.methods.ztw import ztw_regime
from keras_eexit.utils.validation import check_choice


@dataclasses.dataclass(frozen=True)
class Method:
    """An early-exit method: how it builds the network and trains it.

    Attributes:
        build: `build(model) -> model`: turns a built multi-exit model (zoo,
            `from_backbone`) into the method's network (same segments).
        regime: `regime(regime, epochs=None) -> regime`: how the method
            trains under any regime (`None`: the regime unchanged).
            `epochs` is the regime's length, for methods that add phases
            after a regime whose last phase has none of its own.
        criterion: the method's exit rule (a `keras_eexit.criteria` name).
    """

    build: object
    regime: object = None
    criterion: str = "max_softmax"

    def adapt(self, regime, epochs=None):
        """`regime` as this method trains it."""
        return regime if self.regime is None else self.regime(regime,
                                                              epochs=epochs)


METHODS = {
    "sdn": Method(sdn),
    "pbee": Method(pbee, lambda regime, epochs=None: pbee_regime(regime),
                   criterion="patience"),
    "ztw": Method(ztw, ztw_regime),
    "gpf": Method(gpf, lambda regime, epochs=None: gpf_regime(regime)),
    "l2w": Method(l2w),
    "dfs": Method(dfs),
    "dfs_reroute": Method(dfs_reroute),
}
"""Methods by name (`keras-eexit train --method NAME`)."""


def get_method(name):
    """The `Method` called `name` (a key of `METHODS`)."""
    return METHODS[check_choice("method", name, METHODS)]
