"""Lamina's metrics against Keras 3.15.1's values (tests/fixtures/metrics_losses)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lamina import metrics

FIXTURES = Path(__file__).parents[2] / "fixtures" / "metrics_losses"
sys.path.insert(0, str(FIXTURES))
from make_fixtures import METRIC_CASES  # noqa: E402

EXPECTED = json.loads((FIXTURES / "metrics.json").read_text())
INPUTS = np.load(FIXTURES / "inputs.npz")


@pytest.mark.parametrize("case", sorted(METRIC_CASES))
def test_metric_matches_keras(case):
    cls, kwargs, table = METRIC_CASES[case]
    y_true, y_pred, w = INPUTS[f"{table}_t"], INPUTS[f"{table}_p"], INPUTS["weights"]
    metric = getattr(metrics, cls)(**kwargs)
    metric.update_state(y_true[:8], y_pred[:8])
    np.testing.assert_allclose(metric.result(), EXPECTED[case]["after_one"], rtol=1e-6,
                               atol=1e-6)
    weight = None if table.endswith("noweight") else w
    metric.update_state(y_true[8:], y_pred[8:], sample_weight=weight)
    np.testing.assert_allclose(metric.result(), EXPECTED[case]["after_two"], rtol=1e-6,
                               atol=1e-6)
    clone = metrics.deserialize(metrics.serialize(metric))
    assert clone.get_config() == metric.get_config()


@pytest.mark.parametrize("name", ["hinge", "squared_hinge", "categorical_hinge",
                                  "kl_divergence", "poisson", "logcosh", "cosine_similarity",
                                  "mape", "msle"])
def test_function_names_resolve(name):
    assert metrics.get(name).name == name
