"""Lamina's new losses against Keras 3.15.1 (tests/fixtures/metrics_losses) and float64
central differences."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lamina import losses
from lamina.testing import check_gradients

FIXTURES = Path(__file__).parents[2] / "fixtures" / "metrics_losses"
sys.path.insert(0, str(FIXTURES))
from make_fixtures import FUNCTION_OF, LOSS_CASES, function_kwargs  # noqa: E402

EXPECTED = json.loads((FIXTURES / "losses.json").read_text())
INPUTS = np.load(FIXTURES / "inputs.npz")


def _data(table):
    return INPUTS[f"{table}_t"], INPUTS[f"{table}_p"]


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_loss_matches_keras(case):
    cls, kwargs, table = LOSS_CASES[case]
    y_true, y_pred = _data(table)
    fn = getattr(losses, FUNCTION_OF[cls])
    values = fn(y_true, y_pred, **function_kwargs(kwargs)).numpy()
    np.testing.assert_allclose(values, EXPECTED[case]["values"], rtol=1e-6, atol=1e-6)
    loss = getattr(losses, cls)(**kwargs)
    weighted = loss(y_true[8:], y_pred[8:], sample_weight=INPUTS["weights"]).numpy()
    np.testing.assert_allclose(weighted, EXPECTED[case]["weighted"], rtol=1e-6, atol=1e-6)
    clone = losses.deserialize(losses.serialize(loss))
    assert clone.get_config() == loss.get_config()


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_loss_gradients(case):
    cls, kwargs, table = LOSS_CASES[case]
    y_true, y_pred = _data(table)
    fn = getattr(losses, FUNCTION_OF[cls])
    kw = function_kwargs(kwargs)
    check_gradients(lambda p: fn(y_true, p, **kw), [y_pred.astype(np.float64)], rtol=1e-5)


def test_gce_rejects_bad_q():
    with pytest.raises(ValueError, match="Received: q=1.5"):
        losses.CategoricalGeneralizedCrossEntropy(q=1.5)
