"""Model cost pre-check: counts from hyper-parameters, nothing allocated."""

from __future__ import annotations

import pytest

from lamina_service.config import Limits
from lamina_service.errors import InvalidInput, LimitExceeded
from lamina_service.validation import estimate_cost
from tests.service.conftest import seq_model

LIMITS = Limits(max_params=10**6, max_layers=10)


def test_dense_counts_are_exact_when_shapes_are_known():
    cost = estimate_cost(seq_model(units=4, input_dim=3), LIMITS)
    assert (cost.params, cost.layers, cost.bytes) == (3 * 4 + 4 + 4 + 1, 3, 84)


def test_conv_flatten_dense_shape_inference():
    layers = [
        {"class_name": "InputLayer", "config": {"name": "i", "batch_shape": [None, 28, 28, 1]}},
        {"class_name": "Conv2D", "config": {"name": "c", "filters": 8, "kernel_size": 3}},
        {"class_name": "Flatten", "config": {"name": "f"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 10}},
    ]
    cost = estimate_cost({"class_name": "Sequential", "config": {"layers": layers}}, LIMITS)
    assert cost.params == (9 * 8 + 8) + (26 * 26 * 8 * 10 + 10)


def test_functional_keras3_inbound_shapes():
    tensor = {"class_name": "__keras_tensor__",
              "config": {"shape": [None, 5], "keras_history": ["in", 0, 0]}}
    layers = [
        {"class_name": "InputLayer", "name": "in",
         "config": {"name": "in", "batch_shape": [None, 5]}, "inbound_nodes": []},
        {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2},
         "inbound_nodes": [{"args": [tensor], "kwargs": {}}]},
    ]
    cost = estimate_cost({"class_name": "Functional", "config": {"layers": layers}}, LIMITS)
    assert cost.params == 5 * 2 + 2


def test_limits_are_named():
    with pytest.raises(LimitExceeded, match="max_params is 1000000"):
        estimate_cost(seq_model(units=10**9), LIMITS)
    many = [{"class_name": "Dropout", "config": {"name": f"x{i}", "rate": 0.1}}
            for i in range(20)]
    with pytest.raises(LimitExceeded, match="max_layers is 10"):
        estimate_cost(seq_model(extra_layers=many), LIMITS)


def test_lambda_anywhere_is_refused():
    nested = seq_model(extra_layers=[{"class_name": "TimeDistributed", "config": {
        "name": "t", "layer": {"class_name": "Lambda", "config": {"function": "x"}}}}])
    with pytest.raises(InvalidInput, match="Lambda"):
        estimate_cost(nested, LIMITS)


def test_the_same_model_is_built_once(monkeypatch):
    from lamina_service import validation

    monkeypatch.setattr(validation, "COUNTS", validation._Counts(size=2))
    builds = []
    real = validation._build_and_count

    def counting(build, config):
        builds.append(config["config"]["name"])
        return real(build, config)

    monkeypatch.setattr(validation, "_build_and_count", counting)
    model = seq_model(units=5)
    first = validation.validate_model(model, LIMITS)
    reordered = dict(reversed(list(model.items())))
    assert validation.config_digest(reordered) == validation.config_digest(model)
    assert validation.validate_model(reordered, LIMITS, batch_size=64) == \
        first.__class__(first.params, first.bytes, first.layers, first.flops_per_step * 2, True)
    assert builds == ["seq"] and first.exact
    # the remembered counts are checked against the limits of each call
    with pytest.raises(LimitExceeded, match="max_params is 10"):
        validation.validate_model(model, Limits(max_params=10))
    assert builds == ["seq"]
    # bounded: two newer models push it out, and it is built again
    validation.validate_model(seq_model(units=6), LIMITS)
    validation.validate_model(seq_model(units=7), LIMITS)
    validation.validate_model(model, LIMITS)
    assert len(builds) == 4


def test_refused_models_are_not_remembered():
    from lamina_service import validation

    bad = seq_model(extra_layers=[{"class_name": "Lambda", "config": {"name": "l"}}])
    for _ in range(2):
        with pytest.raises(InvalidInput, match="Lambda"):
            validation.validate_model(bad, LIMITS)
