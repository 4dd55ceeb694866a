"""`RaisePendingInterrupt`: a swallowed Ctrl-C stops the run anyway."""

import keras

from keras_eexit.utils import interrupts


class RaisePendingInterrupt(keras.callbacks.Callback):
    """Raises a recorded interrupt again at the next batch or epoch end.

    See `keras_eexit.utils.interrupts`: native code can swallow the
    `KeyboardInterrupt` a signal handler raises; the record survives.

    Example:

    >>> callback = RaisePendingInterrupt()   # in model.fit's callbacks
    """

    def _check(self, *args, **kwargs):
        interrupt = interrupts.pending()
        if interrupt is not None:
            raise interrupt

    on_train_batch_end = on_test_batch_end = on_epoch_end = _check
