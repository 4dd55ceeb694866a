"""`MethodRegime`: a regime as a method trains it (its phases rewritten)."""

from keras_eexit.regimes.regime import Regime


class MethodRegime(Regime):
    """Runs another regime's phases as an early-exit method needs them.

    Methods change how any regime trains without the regime knowing them:
    PABEE and GPF weight the exits' losses by depth, ZTW appends the phase
    that trains its ensembles. This wrapper takes the inner regime's
    phases (for the model's number of exits), passes them through the
    method's `rewrite(phases, num_exits)` and runs the result; the inner
    regime's model checks still apply.

    Args:
        regime: the regime to adapt (any `keras_eexit.regimes.Regime`).
        rewrite: a function `(list of Phase, num_exits) -> list of Phase`.
        method: the method's name, for messages.

    Example:

    ```python
    regime = MethodRegime(TwoStage(5, 5), lambda phases, n: phases, "sdn")
    ```
    """

    def __init__(self, regime, rewrite, method):
        if not isinstance(regime, Regime):
            from keras_eexit.utils.validation import invalid_value

            raise invalid_value("regime", "a keras_eexit.regimes.Regime",
                                regime)
        self.inner = regime
        self.method = method

        def phases(num_exits):
            return rewrite(regime.phases_for(num_exits), num_exits)

        super().__init__(phases, verbose=regime.verbose)

    def check_model(self, model):
        self.inner.check_model(model)
