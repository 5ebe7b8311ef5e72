"""Initializers: shapes, statistics, determinism, fans, orthogonality, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lamina import initializers
from lamina.backend import random as lamina_random

SHAPE = (400, 300)
FAN_IN, FAN_OUT = 400, 300
TRUNC = 0.87962566103423978

STATS = [  # name, expected mean, expected std
    ("zeros", 0.0, 0.0),
    ("ones", 1.0, 0.0),
    ("random_normal", 0.0, 0.05),
    ("random_uniform", 0.0, 0.1 / math.sqrt(12)),
    ("truncated_normal", 0.0, 0.05 * TRUNC),
    ("glorot_uniform", 0.0, math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("glorot_normal", 0.0, math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("he_uniform", 0.0, math.sqrt(2 / FAN_IN)),
    ("he_normal", 0.0, math.sqrt(2 / FAN_IN)),
    ("lecun_uniform", 0.0, math.sqrt(1 / FAN_IN)),
    ("lecun_normal", 0.0, math.sqrt(1 / FAN_IN)),
]


@pytest.mark.parametrize(("name", "mean", "std"), STATS)
def test_statistics(name, mean, std):
    values = initializers.get(name)(SHAPE)
    assert values.shape == SHAPE and values.dtype == np.float32
    assert values.mean() == pytest.approx(mean, abs=0.01 * max(std, 1e-3) * 10)
    assert values.std() == pytest.approx(std, rel=0.03, abs=1e-7)


@pytest.mark.parametrize("name", ["glorot_uniform", "he_uniform", "lecun_uniform"])
def test_uniform_limits(name):
    scale = {"glorot_uniform": 2 / (FAN_IN + FAN_OUT), "he_uniform": 2 / FAN_IN,
             "lecun_uniform": 1 / FAN_IN}[name]
    values = initializers.get(name)(SHAPE)
    assert np.abs(values).max() <= math.sqrt(3 * scale)


def test_truncated_normal_within_two_stddev():
    values = initializers.TruncatedNormal(stddev=1.0)(SHAPE)
    assert np.abs(values).max() <= 2.0


@pytest.mark.parametrize(("shape", "fans"), [
    ((), (1, 1)), ((7,), (7, 7)), ((3, 5), (3, 5)), ((3, 3, 4, 8), (36, 72)),
    ((5, 2, 6), (10, 30)),
])
def test_compute_fans(shape, fans):
    assert initializers.compute_fans(shape) == fans


def test_conv_kernel_uses_receptive_field():
    values = initializers.HeNormal(seed=0)((3, 3, 64, 64))
    assert values.std() == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.05)


def test_global_seed_is_deterministic():
    lamina_random.set_seed(123)
    a = initializers.GlorotUniform()((5, 4))
    lamina_random.set_seed(123)
    b = initializers.GlorotUniform()((5, 4))
    c = initializers.GlorotUniform()((5, 4))
    assert np.array_equal(a, b) and not np.array_equal(b, c)


def test_explicit_seed_repeats_values():
    init = initializers.RandomNormal(seed=7)
    assert np.array_equal(init((3, 3)), init((3, 3)))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 2, 5)])
def test_orthogonal(shape):
    q = initializers.Orthogonal(gain=2.0, seed=1)(shape).reshape(-1, shape[-1])
    small = q.T @ q if q.shape[0] >= q.shape[1] else q @ q.T
    np.testing.assert_allclose(small, 4.0 * np.eye(small.shape[0]), atol=1e-5)


def test_identity_and_constant():
    np.testing.assert_array_equal(initializers.Identity(gain=3.0)((2, 3)), 3 * np.eye(2, 3))
    np.testing.assert_array_equal(initializers.Constant(0.5)((2,)), [0.5, 0.5])
    with pytest.raises(ValueError, match="2D"):
        initializers.Identity()((2, 2, 2))


@pytest.mark.parametrize("init", [
    initializers.Zeros(), initializers.Constant(2.0), initializers.RandomNormal(0.1, 0.2, 3),
    initializers.RandomUniform(-1.0, 1.0), initializers.TruncatedNormal(seed=4),
    initializers.VarianceScaling(2.0, "fan_out", "uniform"), initializers.GlorotUniform(seed=1),
    initializers.HeNormal(), initializers.Orthogonal(gain=0.5), initializers.Identity(),
])
def test_config_round_trip(init):
    again = initializers.deserialize(initializers.serialize(init))
    assert type(again) is type(init) and again.get_config() == init.get_config()


def test_keras_config_keys():
    # Keras 3.15.1's presets carry the fan axes (None unless EinsumDense sets them).
    assert initializers.GlorotUniform().get_config() == {
        "seed": None, "input_axes": None, "output_axes": None}
    assert initializers.serialize(initializers.get("glorot_uniform"))["class_name"] == (
        "GlorotUniform")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"scale": -1.0}, "scale=-1.0"), ({"mode": "fan"}, "mode=fan"),
    ({"distribution": "cauchy"}, "distribution=cauchy"),
])
def test_variance_scaling_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        initializers.VarianceScaling(**kwargs)


def test_unknown_name():
    with pytest.raises(ValueError, match="'glorot'"):
        initializers.get("glorot")


def test_keras_long_names_are_the_same_classes():
    from lamina import initializers

    assert initializers.OrthogonalInitializer is initializers.Orthogonal
    assert initializers.IdentityInitializer is initializers.Identity
    assert initializers.get("IdentityInitializer").__class__ is initializers.Identity
