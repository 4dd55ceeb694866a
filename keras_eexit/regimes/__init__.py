"""Training regimes, run as callbacks inside one `model.fit`."""

from keras_eexit.regimes.joint import Joint
from keras_eexit.regimes.regime import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.weights import exit_weights

REGIMES = {"joint": Joint}


def get_regime(name, **kwargs):
    """Builds a regime by name.

    Args:
        name: a key of `REGIMES` (`"joint"`, ...).
        **kwargs: the regime's parameters.

    Returns:
        A new `Regime` instance.
    """
    from keras_eexit.utils.validation import check_choice

    return REGIMES[check_choice("regime", name, REGIMES)](**kwargs)
