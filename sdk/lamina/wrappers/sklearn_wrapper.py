"""scikit-learn estimators around Lamina models, with Keras 3's names and arguments.

``SKLearnClassifier``, ``SKLearnRegressor`` and ``SKLearnTransformer`` take the same
arguments as ``keras.wrappers``: ``model`` (a compiled ``Model``, cloned at every
``fit``, or a callable ``model(X=..., y=..., **model_kwargs)`` returning a compiled
model), ``warm_start``, ``model_kwargs`` and ``fit_kwargs``. They work in
``Pipeline``, ``GridSearchCV`` and ``cross_val_score``; ``sklearn.base.clone`` keeps
every argument (Keras's ``__sklearn_clone__`` drops ``fit_kwargs``; this one does not).

The mixins come before ``BaseEstimator`` in the bases, as scikit-learn >= 1.6 requires.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

try:
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # scikit-learn < 1.6
    _sk_validate_data = None


def _validate_data(estimator, *args, **kwargs):
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, *args, **kwargs)
    return estimator._validate_data(*args, **kwargs)


def _fresh(item):
    """A stateless copy of a compile argument (metric objects carry state)."""
    if isinstance(item, (list, tuple)):
        return type(item)(_fresh(i) for i in item)
    if isinstance(item, dict):
        return {k: _fresh(v) for k, v in item.items()}
    if hasattr(item, "get_config") and hasattr(type(item), "from_config"):
        return type(item).from_config(item.get_config())
    return item


def _clone_compiled(model):
    """A new model with ``model``'s architecture, fresh weights and the same compile."""
    from lamina.models import clone_model

    clone = clone_model(model)
    if model.compiled:
        config = dict(getattr(model, "_compile_config", None) or {})
        optimizer = model.optimizer
        config["optimizer"] = type(optimizer).from_config(optimizer.get_config())
        for key in ("loss", "metrics", "weighted_metrics"):
            config[key] = _fresh(config.get(key))
        clone.compile(**config)
    return clone


@contextlib.contextmanager
def _seeded(seed):
    """Run with the global generator replaced by one seeded with ``seed`` (then put back)."""
    if seed is None:
        yield
        return
    from lamina.backend import random as lamina_random

    # Swapping the generator object (not its state) leaves the caller's stream untouched.
    saved = lamina_random._RNG
    lamina_random._RNG = np.random.default_rng(seed)
    try:
        yield
    finally:
        lamina_random._RNG = saved


def _check_model(model):
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None \
            or getattr(model, "compiled_loss", None) is None:
        raise RuntimeError("Given model needs to be compiled, and have a loss and an optimizer.")


class SKLBase(BaseEstimator):
    """Shared base of the wrappers: builds the model, fits it, predicts.

    Args:
        model: a compiled ``lamina.Model`` (cloned with fresh weights and the same
            compile arguments at each ``fit``, unless ``warm_start``), or a callable
            ``model(X=X, y=y, **model_kwargs)`` returning a compiled model; ``y`` is the
            encoded target (one-hot for the classifier, 2-D for the others).
        warm_start: when True and already fitted, ``fit`` continues training
            ``model_`` instead of starting from a new model.
        model_kwargs: extra keyword arguments of the ``model`` callable.
        fit_kwargs: keyword arguments of ``Model.fit`` (``epochs``, ``batch_size``,
            ``verbose``, ``callbacks``...); those given to ``fit`` take priority.
        random_state: Lamina extension (not in Keras). An int makes ``fit``
            deterministic: the model is built and trained with a generator seeded with
            it, so two fits on the same data give the same model bit for bit (the global
            random stream is left untouched). None (default) draws from the global
            generator, as Keras does.

    Attributes:
        model_: the fitted ``lamina.Model``.
        history_: the ``History`` returned by ``Model.fit``.
        n_features_in_: the number of features seen in ``fit``.
    """

    def __init__(self, model, warm_start=False, model_kwargs=None, fit_kwargs=None,
                 random_state=None):
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs
        self.random_state = random_state

    def __sklearn_clone__(self):
        # The template model is never trained (fit clones it), so clones may share it
        # instead of deep-copying a whole model; the dicts are copied so that
        # set_params on one clone does not reach the others.
        return type(self)(
            model=self.model, warm_start=self.warm_start,
            model_kwargs=copy.copy(self.model_kwargs), fit_kwargs=copy.copy(self.fit_kwargs),
            random_state=self.random_state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"non_deterministic": self.random_state is None, "poor_score": True}

    @property
    def epoch_(self) -> int:
        """The number of epochs run by the last ``fit``."""
        check_is_fitted(self)
        return len(self.history_.epoch)

    def _get_model(self, X, y):
        if self.warm_start and hasattr(self, "model_"):
            return self.model_
        from lamina.models import Model

        if isinstance(self.model, Model):
            return _clone_compiled(self.model)
        if not callable(self.model):
            raise TypeError("`model` must be a compiled lamina Model or a callable returning "
                            f"one. Received: model={self.model!r}")
        return self.model(X=X, y=y, **(self.model_kwargs or {}))

    def _validate_fit_data(self, X, y):
        return _validate_data(self, X, y)

    def fit(self, X, y, **kwargs):
        """Build (or clone) the model and train it on ``X``, ``y``.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.
            y: array-like of shape ``(n_samples,)`` (or ``(n_samples, n_outputs)`` for
                the regressor and transformer).
            **kwargs: keyword arguments of ``Model.fit``, overriding ``fit_kwargs``.

        Returns:
            self.

        Raises:
            RuntimeError: if the model is not compiled with a loss and an optimizer.
            ValueError: for invalid data or an unsupported target type.
        """
        X, y = self._validate_fit_data(X, y)
        y = self._process_target(y, reset=True)
        fit_kwargs = dict(self.fit_kwargs or {})
        fit_kwargs.update(kwargs)
        with _seeded(self.random_state):
            model = self._get_model(X, y)
            _check_model(model)
            self.history_ = model.fit(X, y, **fit_kwargs)
        self.model_ = model
        return self

    def _raw_predict(self, X):
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False)
        return np.asarray(self.model_.predict(X, verbose=0))

    def predict(self, X):
        """Model predictions for ``X``, decoded to the target's form.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            ndarray of predictions.
        """
        return self._reverse_process_target(self._raw_predict(X))

    def _process_target(self, y, reset=False):
        y = np.asarray(y)
        if reset:
            self._y_ndim = y.ndim
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _reverse_process_target(self, y):
        if self._y_ndim == 1 and y.ndim == 2 and y.shape[1] == 1:
            return y[:, 0]
        return y


class SKLearnClassifier(ClassifierMixin, SKLBase):
    """scikit-learn classifier around a Lamina model (``keras.wrappers.SKLearnClassifier``).

    Labels of any type are encoded one-hot (sorted as ``classes_``) before they reach
    the model, for binary and multiclass targets alike, so the model should end in a
    softmax with one unit per class and use ``categorical_crossentropy``.

    Args:
        model: see ``SKLBase``.
        warm_start: see ``SKLBase``.
        model_kwargs: see ``SKLBase``.
        fit_kwargs: see ``SKLBase``.

    Attributes:
        classes_: the sorted class labels.
        model_: the fitted model.
        history_: the ``History`` of the last ``fit``.

    Example:

    >>> import lamina
    >>> import lamina.wrappers
    >>> def build(X, y, hidden=8):
    ...     model = lamina.Sequential([lamina.Input((X.shape[1],)),
    ...                                lamina.layers.Dense(hidden, activation="relu"),
    ...                                lamina.layers.Dense(y.shape[1], activation="softmax")])
    ...     model.compile(optimizer="adam", loss="categorical_crossentropy")
    ...     return model
    >>> clf = lamina.wrappers.SKLearnClassifier(build, fit_kwargs={"verbose": 0})
    >>> clf.get_params()["model_kwargs"] is None
    True
    """

    def _process_target(self, y, reset=False):
        target_type = type_of_target(y, input_name="y", raise_unknown=True)
        if target_type not in ("binary", "multiclass"):
            raise ValueError("Only binary and multiclass target types are supported. "
                             f"Target type: {target_type}")
        if reset:
            self.classes_ = np.unique(y)
            if len(self.classes_) == 1:
                raise ValueError("Classifier can't train when only one class is present.")
        index = np.searchsorted(self.classes_, y)
        return np.eye(len(self.classes_), dtype="float32")[index]

    def _reverse_process_target(self, y):
        if y.ndim == 2 and y.shape[1] == 1:
            return self.classes_[(y[:, 0] > 0.5).astype(int)]
        return self.classes_[np.argmax(y, axis=-1)]

    def decision_function(self, X):
        """Confidence scores for ``X``.

        Multiclass: the model's raw outputs (probabilities or logits, as the model gives
        them), one column per class, as Keras. Binary: scikit-learn's 1-D convention, a
        score whose sign gives the class (positive means ``classes_[1]``), here
        ``P(classes_[1]) - P(classes_[0])`` from ``predict_proba``.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            ndarray of shape ``(n_samples, n_classes)``, or ``(n_samples,)`` when binary.
        """
        check_is_fitted(self)
        if len(self.classes_) == 2:
            proba = self.predict_proba(X)
            return proba[:, 1] - proba[:, 0]
        return self._raw_predict(X)

    def predict_proba(self, X):
        """Class probabilities for ``X``, columns in the order of ``classes_``.

        Outputs that are already probabilities (every value in ``[0, 1]``) are
        renormalised to sum to 1; otherwise they are taken as logits and go through a
        softmax. A single output column is taken as ``P(classes_[1])``.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            ndarray of shape ``(n_samples, n_classes)``.
        """
        return self._proba(self._raw_predict(X))

    @staticmethod
    def _proba(raw):
        raw = raw.astype(np.float64)
        if raw.ndim == 2 and raw.shape[1] == 1:
            p = raw[:, 0]
            if p.min(initial=0.0) < 0.0 or p.max(initial=1.0) > 1.0:
                p = 1.0 / (1.0 + np.exp(-p))
            return np.stack([1.0 - p, p], axis=1)
        if raw.min(initial=0.0) < 0.0 or raw.max(initial=1.0) > 1.0:
            raw = np.exp(raw - raw.max(axis=1, keepdims=True))
        total = raw.sum(axis=1, keepdims=True)
        return np.divide(raw, total, out=np.full_like(raw, 1.0 / raw.shape[1]),
                         where=total > 0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        return tags


class SKLearnRegressor(RegressorMixin, SKLBase):
    """scikit-learn regressor around a Lamina model (``keras.wrappers.SKLearnRegressor``).

    A 1-D target reaches the model as a column ``(n_samples, 1)`` and predictions come
    back 1-D; 2-D (multi-output) targets pass through.

    Args:
        model: see ``SKLBase``.
        warm_start: see ``SKLBase``.
        model_kwargs: see ``SKLBase``.
        fit_kwargs: see ``SKLBase``.
    """

    def _validate_fit_data(self, X, y):
        return _validate_data(self, X, y, y_numeric=True, multi_output=True)

    def predict(self, X):
        """Predictions for ``X`` as float64 (1-D for a 1-D training target).

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            ndarray of shape ``(n_samples,)`` or ``(n_samples, n_outputs)``.
        """
        return super().predict(X).astype(np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        tags.target_tags.multi_output = True
        return tags


class SKLearnTransformer(TransformerMixin, SKLBase):
    """scikit-learn transformer whose ``transform`` returns the fitted model's outputs.

    Useful for a model trained to produce features (an encoder) inside a ``Pipeline``.

    Args:
        model: see ``SKLBase``.
        warm_start: see ``SKLBase``.
        model_kwargs: see ``SKLBase``.
        fit_kwargs: see ``SKLBase``.
    """

    def _validate_fit_data(self, X, y):
        return _validate_data(self, X, y, y_numeric=True, multi_output=True)

    def transform(self, X):
        """The model's outputs for ``X``.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            ndarray of shape ``(n_samples, n_outputs)``.
        """
        return self._raw_predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # Lamina computes in float32
        return tags


__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer"]
