"""scikit-learn wrappers (``SKLearnClassifier``, ``SKLearnRegressor``, ``SKLearnTransformer``).

scikit-learn is optional: ``import lamina.wrappers`` works without it, and the classes
are loaded (importing scikit-learn) the first time one of them is accessed.
"""

from __future__ import annotations

__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer"]


def __getattr__(name):
    if name in __all__:
        try:
            from lamina.wrappers import sklearn_wrapper
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.split(".")[0] == "sklearn":
                raise ImportError(
                    f"lamina.wrappers.{name} requires scikit-learn. Install it with "
                    "`pip install scikit-learn`.") from exc
            raise
        return getattr(sklearn_wrapper, name)
    raise AttributeError(f"module 'lamina.wrappers' has no attribute '{name}'")


def __dir__():
    return sorted(list(globals()) + __all__)
