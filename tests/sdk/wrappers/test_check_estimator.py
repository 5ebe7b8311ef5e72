"""scikit-learn's own estimator checks on the three wrappers.

Every check runs and passes, except ``check_array_api_input``, which scikit-learn itself
skips unless ``SCIPY_ARRAY_API=1`` is set (Lamina computes with numpy only, so the
array-API inputs do not apply). ``random_state`` makes fits deterministic, so the checks
that compare two fits (``check_fit_idempotent``, ``check_supervised_y_2d``,
``check_*_data_not_an_array``) run instead of being skipped as in Keras.
"""

from __future__ import annotations

import warnings

import pytest
from sklearn.utils.estimator_checks import check_estimator

import lamina.wrappers

FIT = {"epochs": 20, "batch_size": 64, "verbose": 0}
SKIPPED = {"check_array_api_input"}


@pytest.mark.parametrize("kind", ["SKLearnClassifier", "SKLearnRegressor",
                                  "SKLearnTransformer"])
def test_check_estimator(kind, build_classifier, build_regressor):
    build = build_classifier if kind == "SKLearnClassifier" else build_regressor
    fit_kwargs = dict(FIT, epochs=5) if kind == "SKLearnTransformer" else FIT
    estimator = getattr(lamina.wrappers, kind)(build, random_state=0, fit_kwargs=fit_kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks provoke warnings on purpose
        results = check_estimator(estimator, on_fail=None, on_skip=None)
    failed = [(r["check_name"], repr(r["exception"])[:400]) for r in results
              if r["status"] == "failed"]
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert failed == []
    assert skipped == SKIPPED
    assert len(results) > 40
