"""``keras.optimizers.legacy``: Keras 3 keeps these names only to say they are gone.

Each class refuses construction with Keras's own message, so a Keras 2 script fails
at the line that needs changing, with the same advice Keras gives.
"""

from __future__ import annotations

_MESSAGE = (
    "`keras.optimizers.legacy` is not supported in Keras 3. Use the optimizers of "
    "`keras.optimizers` (for example `keras.optimizers.Adam`): they take the same "
    "arguments except `decay` (use a learning-rate schedule).")


class LegacyOptimizerWarning:
    """Refuses construction: Keras 2's legacy optimizers do not exist in Keras 3.

    Raises:
        ImportError: always, naming the replacement.
    """

    def __init__(self, *args, **kwargs):
        raise ImportError(_MESSAGE)


Adagrad = Adam = Ftrl = RMSprop = SGD = Optimizer = LegacyOptimizerWarning

__all__ = ["Adagrad", "Adam", "Ftrl", "Optimizer", "RMSprop", "SGD"]
