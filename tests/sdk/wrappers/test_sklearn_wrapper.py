"""SKLearnClassifier/Regressor/Transformer in Pipeline, GridSearchCV, cross_val_score, clone."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_digits, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lamina
import lamina.wrappers
from lamina.backend import random as lamina_random
from lamina.wrappers import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer

FAST = {"epochs": 15, "batch_size": 32, "verbose": 0}


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X).astype("float32"), y


def test_import_lamina_does_not_import_sklearn():
    code = ("import sys, lamina, lamina.wrappers; "
            "assert not any(m.split('.')[0] == 'sklearn' for m in sys.modules), 'sklearn'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_classifier_string_labels_and_proba(iris, build_classifier):
    X, y = iris
    names = np.array(["virginica", "setosa", "versicolor"])[y]
    clf = SKLearnClassifier(build_classifier, fit_kwargs=FAST, random_state=0).fit(X, names)
    np.testing.assert_array_equal(clf.classes_, ["setosa", "versicolor", "virginica"])
    assert clf.n_features_in_ == 4
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    pred = clf.predict(X)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, names) > 0.85
    assert clf.model_.layers[-1].units == 3  # targets were one-hot encoded
    assert len(clf.history_.history["loss"]) == 15 and clf.epoch_ == 15
    np.testing.assert_array_equal(clf.decision_function(X).argmax(axis=1),
                                  proba.argmax(axis=1))


def test_binary_decision_function_is_1d(iris, build_classifier):
    X, y = iris
    labels = np.where(y == 0, "a", "b")
    clf = SKLearnClassifier(build_classifier, fit_kwargs=FAST, random_state=0).fit(X, labels)
    scores = clf.decision_function(X)
    assert scores.shape == (150,)
    np.testing.assert_array_equal(np.where(scores > 0, "b", "a"), clf.predict(X))
    assert clf.score(X, labels) > 0.95


def test_pipeline_and_cross_val_score(build_classifier):
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    pipe = make_pipeline(StandardScaler(),
                         SKLearnClassifier(build_classifier, model_kwargs={"hidden": 32},
                                           fit_kwargs=FAST))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > 0.8


def test_grid_search_over_model_and_fit_kwargs(iris, build_classifier):
    X, y = iris
    search = GridSearchCV(
        SKLearnClassifier(build_classifier, fit_kwargs=FAST, random_state=0),
        {"model_kwargs": [{"hidden": 2, "learning_rate": 0.001}, {"hidden": 16}],
         "fit_kwargs": [FAST, dict(FAST, epochs=2)]}, cv=3)
    search.fit(X, y)
    assert search.best_params_ == {"model_kwargs": {"hidden": 16}, "fit_kwargs": FAST}
    assert search.best_estimator_.model_.layers[0].units == 16
    assert search.score(X, y) > 0.85


def test_clone_keeps_every_argument(build_classifier):
    callbacks = [lamina.callbacks.EarlyStopping(monitor="loss")]
    est = SKLearnClassifier(build_classifier, warm_start=True, model_kwargs={"hidden": 4},
                            fit_kwargs={"epochs": 3, "callbacks": callbacks}, random_state=7)
    copy = clone(est)
    assert copy is not est
    assert copy.get_params() == est.get_params()
    assert copy.get_params()["fit_kwargs"]["callbacks"] is callbacks
    copy.set_params(model_kwargs={"hidden": 8})
    assert est.model_kwargs == {"hidden": 4}
    assert set(est.get_params()) == {"model", "warm_start", "model_kwargs", "fit_kwargs",
                                     "random_state"}


def test_model_instance_is_cloned_with_its_compile(iris, build_classifier):
    X, y = iris
    template = build_classifier(X, np.eye(3)[y])
    before = template.get_weights()
    clf = SKLearnClassifier(template, fit_kwargs=FAST, random_state=0).fit(X, y)
    assert clf.model_ is not template
    for w, b in zip(template.get_weights(), before):  # the template is never trained
        np.testing.assert_array_equal(w, b)
    assert clf.model_.optimizer is not template.optimizer
    assert type(clf.model_.optimizer) is type(template.optimizer)
    assert clf.score(X, y) > 0.85


def test_warm_start_continues_training(iris, build_classifier):
    X, y = iris
    clf = SKLearnClassifier(build_classifier, warm_start=True, fit_kwargs={"epochs": 2,
                                                                          "verbose": 0})
    clf.fit(X, y)
    first = clf.model_
    iterations = int(first.optimizer.iterations.numpy())
    clf.fit(X, y)
    assert clf.model_ is first
    assert int(first.optimizer.iterations.numpy()) == 2 * iterations
    cold = SKLearnClassifier(build_classifier, fit_kwargs={"epochs": 2, "verbose": 0})
    cold.fit(X, y)
    model = cold.model_
    cold.fit(X, y)
    assert cold.model_ is not model


def test_fit_kwargs_overridden_by_fit_arguments_and_not_mutated(iris, build_classifier):
    X, y = iris
    fit_kwargs = {"epochs": 4, "verbose": 0}
    clf = SKLearnClassifier(build_classifier, fit_kwargs=fit_kwargs)
    clf.fit(X, y, epochs=2, batch_size=50)
    assert clf.history_.epoch == [0, 1]
    assert fit_kwargs == {"epochs": 4, "verbose": 0}


def test_random_state_is_deterministic_and_leaves_global_stream(iris, build_classifier):
    X, y = iris
    lamina.utils.set_random_seed(1)
    expected_next = np.random.default_rng(1).random()
    a = SKLearnClassifier(build_classifier, fit_kwargs=FAST, random_state=3).fit(X, y)
    b = SKLearnClassifier(build_classifier, fit_kwargs=FAST, random_state=3).fit(X, y)
    for wa, wb in zip(a.model_.get_weights(), b.model_.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert lamina_random.get_rng().random() == expected_next


def test_regressor_1d_and_2d_targets(build_regressor):
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    reg = SKLearnRegressor(build_regressor, fit_kwargs=dict(FAST, epochs=30), random_state=0)
    pred = reg.fit(X, y).predict(X)
    assert pred.shape == (442,) and pred.dtype == np.float64
    assert reg.score(X, y) > 0.4
    Y = np.stack([y, -y], axis=1)
    pred2 = reg.fit(X, Y).predict(X)
    assert pred2.shape == (442, 2)
    assert cross_val_score(reg, X, y, cv=3).shape == (3,)


def test_transformer_in_pipeline(iris, build_regressor):
    X, y = iris
    # The transformer learns one feature (a regression on the label) for the next step.
    pipe = make_pipeline(SKLearnTransformer(build_regressor, fit_kwargs=FAST, random_state=0),
                         LogisticRegression())
    pipe.fit(X, y)
    features = pipe[0].transform(X)
    assert features.shape == (150, 1)
    assert pipe.score(X, y) > 0.8


def test_uncompiled_model_raises(iris):
    X, y = iris

    def build(X, y):
        return lamina.Sequential([lamina.Input((4,)), lamina.layers.Dense(3)])

    with pytest.raises(RuntimeError, match="Given model needs to be compiled, and have a loss "
                                           "and an optimizer."):
        SKLearnClassifier(build).fit(X, y)


def test_bad_targets(iris, build_classifier):
    X, y = iris
    with pytest.raises(ValueError, match="Only binary and multiclass target types are "
                                         "supported. Target type: continuous"):
        SKLearnClassifier(build_classifier).fit(X, y + 0.5)
    with pytest.raises(ValueError, match="Classifier can't train when only one class is "
                                         "present."):
        SKLearnClassifier(build_classifier).fit(X, np.zeros(150))


def test_not_a_model(iris):
    X, y = iris
    with pytest.raises(TypeError, match="`model` must be a compiled lamina Model or a callable"):
        SKLearnClassifier(model=3).fit(X, y)


def test_predict_before_fit_raises(iris, build_classifier):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SKLearnClassifier(build_classifier).predict(iris[0])
