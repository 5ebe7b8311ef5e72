"""Metrics against scikit-learn and hand-computed values; weights, reset, registry."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from lamina import metrics

RNG = np.random.default_rng(0)
Y_BIN = RNG.integers(0, 2, 500)
P_BIN = np.clip(Y_BIN * 0.3 + RNG.random(500) * 0.7, 0, 1).astype(np.float32)
Y_INT = RNG.integers(0, 4, 300)
LOGITS = RNG.normal(size=(300, 4)).astype(np.float32) + np.eye(4)[Y_INT]
Y_ONEHOT = np.eye(4, dtype=np.float32)[Y_INT]
Y_REG = RNG.normal(size=(200, 3)).astype(np.float32)
P_REG = (Y_REG + RNG.normal(size=(200, 3)) * 0.5).astype(np.float32)
W = RNG.random(500)


def _topk(k):
    order = np.argsort(-LOGITS, axis=1)[:, :k]
    return float(np.mean([y in row for y, row in zip(Y_INT, order)]))


CASES = [  # metric, y_true, y_pred, expected
    (metrics.BinaryAccuracy(), Y_BIN, P_BIN, skm.accuracy_score(Y_BIN, P_BIN > 0.5)),
    (metrics.BinaryAccuracy(threshold=0.7), Y_BIN[:, None], P_BIN[:, None],
     skm.accuracy_score(Y_BIN, P_BIN > 0.7)),
    (metrics.Accuracy(), Y_INT, np.argmax(LOGITS, 1), skm.accuracy_score(Y_INT, LOGITS.argmax(1))),
    (metrics.CategoricalAccuracy(), Y_ONEHOT, LOGITS, skm.accuracy_score(Y_INT, LOGITS.argmax(1))),
    (metrics.SparseCategoricalAccuracy(), Y_INT, LOGITS,
     skm.accuracy_score(Y_INT, LOGITS.argmax(1))),
    (metrics.SparseCategoricalAccuracy(), Y_INT[:, None], LOGITS,
     skm.accuracy_score(Y_INT, LOGITS.argmax(1))),
    (metrics.TopKCategoricalAccuracy(k=2), Y_ONEHOT, LOGITS, _topk(2)),
    (metrics.SparseTopKCategoricalAccuracy(k=3), Y_INT, LOGITS, _topk(3)),
    (metrics.MeanSquaredError(), Y_REG, P_REG, skm.mean_squared_error(Y_REG, P_REG)),
    (metrics.MeanAbsoluteError(), Y_REG, P_REG, skm.mean_absolute_error(Y_REG, P_REG)),
    (metrics.RootMeanSquaredError(), Y_REG, P_REG,
     np.sqrt(skm.mean_squared_error(Y_REG, P_REG))),
    (metrics.Precision(), Y_BIN, P_BIN, skm.precision_score(Y_BIN, P_BIN > 0.5)),
    (metrics.Recall(), Y_BIN, P_BIN, skm.recall_score(Y_BIN, P_BIN > 0.5)),
    (metrics.Recall(thresholds=0.3), Y_BIN, P_BIN, skm.recall_score(Y_BIN, P_BIN > 0.3)),
    (metrics.BinaryCrossentropy(), Y_BIN, P_BIN, skm.log_loss(Y_BIN, P_BIN)),
    (metrics.SparseCategoricalCrossentropy(from_logits=True), Y_INT, LOGITS,
     skm.log_loss(Y_INT, np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True))),
    (metrics.CategoricalCrossentropy(from_logits=True), Y_ONEHOT, LOGITS,
     skm.log_loss(Y_INT, np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True))),
]


@pytest.mark.parametrize(("metric", "y_true", "y_pred", "expected"), CASES,
                         ids=[c[0].name for c in CASES])
def test_against_reference_in_batches(metric, y_true, y_pred, expected):
    metric.reset_state()
    half = len(y_true) // 2
    metric.update_state(y_true[:half], y_pred[:half])
    metric.update_state(y_true[half:], y_pred[half:])
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


@pytest.mark.parametrize(("curve", "reference"), [
    ("ROC", skm.roc_auc_score), ("PR", skm.average_precision_score)])
def test_auc_close_to_sklearn(curve, reference):
    auc = metrics.AUC(curve=curve)
    auc.update_state(Y_BIN[:250], P_BIN[:250])
    auc.update_state(Y_BIN[250:], P_BIN[250:])
    assert float(auc.result()) == pytest.approx(reference(Y_BIN, P_BIN), abs=1e-2)


def test_auc_with_sample_weight_and_logits():
    auc = metrics.AUC(from_logits=True)
    logits = np.log(P_BIN + 1e-6) - np.log1p(-P_BIN + 1e-6)
    auc.update_state(Y_BIN, logits, sample_weight=W)
    expected = skm.roc_auc_score(Y_BIN, P_BIN, sample_weight=W)
    assert float(auc.result()) == pytest.approx(expected, abs=1e-2)


@pytest.mark.parametrize(("metric", "y_true", "y_pred", "expected"), [
    (metrics.BinaryAccuracy(), Y_BIN, P_BIN,
     skm.accuracy_score(Y_BIN, P_BIN > 0.5, sample_weight=W)),
    (metrics.Precision(), Y_BIN, P_BIN,
     skm.precision_score(Y_BIN, P_BIN > 0.5, sample_weight=W)),
    (metrics.Recall(), Y_BIN, P_BIN, skm.recall_score(Y_BIN, P_BIN > 0.5, sample_weight=W)),
    (metrics.MeanSquaredError(), Y_REG, P_REG,
     skm.mean_squared_error(Y_REG, P_REG, sample_weight=W[:200])),
])
def test_sample_weight(metric, y_true, y_pred, expected):
    metric.update_state(y_true, y_pred, sample_weight=W[: len(y_true)])
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)


def test_mean_and_sum():
    mean, total = metrics.Mean(), metrics.Sum()
    for m in (mean, total):
        m.update_state([1.0, 2.0, 3.0])
        m.update_state([4.0], sample_weight=[2.0])
    assert float(mean.result()) == pytest.approx((1 + 2 + 3 + 8) / 5)
    assert float(total.result()) == pytest.approx(14.0)


def test_precision_with_list_of_thresholds_and_class_id():
    p = metrics.Precision(thresholds=[0.3, 0.7])
    p.update_state(Y_BIN, P_BIN)
    expected = [skm.precision_score(Y_BIN, P_BIN > t) for t in (0.3, 0.7)]
    np.testing.assert_allclose(p.result(), expected, rtol=1e-5)
    r = metrics.Recall(class_id=2)
    r.update_state(Y_ONEHOT, np.eye(4)[LOGITS.argmax(1)])
    assert float(r.result()) == pytest.approx(skm.recall_score(Y_INT == 2, LOGITS.argmax(1) == 2))


@pytest.mark.parametrize(("name", "cls", "metric_name"), [
    ("mse", metrics.MeanSquaredError, "mse"), ("mae", metrics.MeanAbsoluteError, "mae"),
    ("acc", metrics.Accuracy, "acc"), ("AUC", metrics.AUC, "auc"),
    ("binary_accuracy", metrics.BinaryAccuracy, "binary_accuracy"),
    ("Precision", metrics.Precision, "precision"), ("recall", metrics.Recall, "recall"),
])
def test_get_names(name, cls, metric_name):
    metric = metrics.get(name)
    assert type(metric) is cls and metric.name == metric_name


@pytest.mark.parametrize(("y_true", "y_pred", "cls"), [
    ((32, 1), (32, 1), metrics.BinaryAccuracy), ((32,), (32, 1), metrics.BinaryAccuracy),
    ((32,), (32, 10), metrics.SparseCategoricalAccuracy),
    ((32, 1), (32, 10), metrics.SparseCategoricalAccuracy),
    ((32, 10), (32, 10), metrics.CategoricalAccuracy),
])
def test_resolve_accuracy(y_true, y_pred, cls):
    metric = metrics.resolve_accuracy(y_true, y_pred, name="acc")
    assert type(metric) is cls and metric.name == "acc"


@pytest.mark.parametrize(("metric", "direction"), [
    (metrics.AUC(), "up"), (metrics.BinaryAccuracy(), "up"),
    (metrics.MeanSquaredError(), "down"), (metrics.RootMeanSquaredError(), "down"),
])
def test_direction(metric, direction):
    assert metric._direction == direction


@pytest.mark.parametrize("metric", [
    metrics.BinaryAccuracy(threshold=0.3), metrics.TopKCategoricalAccuracy(k=3),
    metrics.AUC(num_thresholds=50, curve="PR"), metrics.Precision(thresholds=[0.2, 0.4]),
    metrics.MeanSquaredError(name="mse"),
])
def test_config_round_trip(metric):
    again = metrics.deserialize(metrics.serialize(metric))
    assert type(again) is type(metric) and again.get_config() == metric.get_config()


def test_unknown_metric():
    with pytest.raises(ValueError, match="'f2'"):
        metrics.get("f2")


class _Count(metrics.Metric):
    def __init__(self, name="count", **kwargs):
        super().__init__(name=name, **kwargs)
        self.seen = self.add_variable(shape=(), initializer="zeros", name="seen")
        self.per_class = self.add_weight(shape=(2,), name="per_class")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.seen.assign_add(len(y_true))
        self.per_class.assign_add(np.bincount(np.asarray(y_true).ravel(), minlength=2))

    def result(self):
        return self.seen


def test_add_variable_state_and_default_reset():
    metric = _Count()
    metric.update_state(np.array([0, 1, 1]), None)
    assert float(metric.result()) == 3.0
    assert [v.path for v in metric.variables] == ["count/seen", "count/per_class"]
    assert not any(v.trainable for v in metric.variables)
    np.testing.assert_array_equal(metric.per_class.numpy(), [1, 2])
    metric.reset_state()
    assert float(metric.result()) == 0.0 and metric.per_class.numpy().sum() == 0


def test_reset_state_without_variables_says_what_to_do():
    class Stateless(metrics.Metric):
        def update_state(self, *args):
            pass

    with pytest.raises(NotImplementedError, match="override `reset_state"):
        Stateless().reset_state()
