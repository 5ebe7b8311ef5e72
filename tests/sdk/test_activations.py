"""lamina.activations: forward against numpy formulas and Keras's values, gradients,
registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lamina import activations, ops
from lamina.backend import Tensor
from lamina.backend.primitives import erf_float64
from lamina.testing import check_gradients

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 5)) * 3
X[np.abs(X) < 0.05] = 0.3  # keep away from the kinks at 0
XH = X.copy()
XH[np.abs(np.abs(XH) - 3) < 0.05] = 2.5  # hard_sigmoid's kinks at +-3
XC = X.copy()
XC[np.abs(XC - 6) < 0.05] = 5.0
XT = X.copy()
XT[np.abs(np.abs(XT) - 1) < 0.05] = 0.5  # hard_tanh's kinks at +-1

erf = np.vectorize(math.erf)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softplus(x):
    return np.logaddexp(x, 0)


def elu(x, a=1.0):
    return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805

# inputs away from the kinks at +-0.5, +-1 and 0.1
XK = np.array([[-1.7, -0.8, -0.3, 0.2, 0.9, 1.6], [-1.3, -0.65, 0.35, 0.7, 1.2, 2.0]])
# sparsemax of [0.15, 0.9, 0.3, -0.5]: support {0.9, 0.3, 0.15}, tau = (1.35 - 1) / 3
SPARSEMAX_TAU = 0.35 / 3

CASES = [
    ("relu", activations.relu, lambda x: np.maximum(x, 0), X),
    ("relu[negative_slope]", lambda x: activations.relu(x, negative_slope=0.1),
     lambda x: np.where(x > 0, x, 0.1 * x), X),
    ("relu[max_value]", lambda x: activations.relu(x, max_value=2.0),
     lambda x: np.clip(x, 0, 2.0), X + 0.037),
    ("relu[max_value=6]", lambda x: activations.relu(x, max_value=6), lambda x: np.clip(x, 0, 6),
     XC * 2 + 0.011),
    ("relu[threshold]", lambda x: activations.relu(x, threshold=1.0),
     lambda x: np.where(x > 1.0, x, 0.0), X + 0.021),
    ("relu[all]", lambda x: activations.relu(x, negative_slope=0.3, max_value=2.5,
                                              threshold=0.5),
     lambda x: np.where(x > 0.5, np.minimum(x, 2.5), 0.0) - 0.3 * np.maximum(0.5 - x, 0),
     X + 0.013),
    ("leaky_relu", activations.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x), X),
    ("relu6", activations.relu6, lambda x: np.clip(x, 0, 6), XC * 2 + 0.011),
    ("sigmoid", activations.sigmoid, sigmoid, X),
    ("softmax", activations.softmax, softmax, X),
    ("softmax[axis=0]", lambda x: activations.softmax(x, axis=0), lambda x: softmax(x, 0), X),
    ("log_softmax", activations.log_softmax, lambda x: np.log(softmax(x)), X),
    ("tanh", activations.tanh, np.tanh, X),
    ("linear", activations.linear, lambda x: x, X),
    ("exponential", activations.exponential, np.exp, X),
    ("elu", activations.elu, elu, X),
    ("elu[alpha]", lambda x: activations.elu(x, alpha=0.7), lambda x: elu(x, 0.7), X),
    ("selu", activations.selu, lambda x: SELU_S * elu(x, SELU_A), X),
    ("celu", lambda x: activations.celu(x, alpha=2.0),
     lambda x: np.maximum(x, 0) + np.minimum(0, 2.0 * np.expm1(x / 2.0)), X),
    ("softplus", activations.softplus, softplus, X * 10),
    ("softsign", activations.softsign, lambda x: x / (1 + np.abs(x)), X),
    ("squareplus", activations.squareplus, lambda x: (x + np.sqrt(x * x + 4)) / 2, X),
    ("silu", activations.silu, lambda x: x * sigmoid(x), X),
    ("swish", activations.swish, lambda x: x * sigmoid(x), X),
    ("gelu", activations.gelu, lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))), X),
    ("gelu[approximate]", lambda x: activations.gelu(x, approximate=True),
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))), X),
    ("glu", activations.glu, lambda x: x[:, :2] * sigmoid(x[:, 2:]), X[:, :4]),
    ("hard_sigmoid", activations.hard_sigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1), XH),
    ("hard_silu", activations.hard_silu, lambda x: x * np.clip(x / 6 + 0.5, 0, 1), XH),
    ("hard_swish", activations.hard_swish, lambda x: x * np.clip(x / 6 + 0.5, 0, 1), XH),
    ("hard_tanh", activations.hard_tanh, lambda x: np.clip(x, -1, 1), XT),
    ("tanh_shrink", activations.tanh_shrink, lambda x: x - np.tanh(x), X),
    ("log_sigmoid", activations.log_sigmoid, lambda x: -softplus(-x), X),
    ("mish", activations.mish, lambda x: x * np.tanh(softplus(x)), X),
    ("hard_shrink", activations.hard_shrink, lambda x: np.where(np.abs(x) > 0.5, x, 0), XK),
    ("soft_shrink", activations.soft_shrink,
     lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0)), XK),
    ("sparse_plus", activations.sparse_plus,
     lambda x: np.where(x <= -1, 0, np.where(x >= 1, x, (x + 1) ** 2 / 4)), XK),
    ("sparse_sigmoid", activations.sparse_sigmoid, lambda x: np.clip((x + 1) / 2, 0, 1), XK),
    ("threshold", lambda x: activations.threshold(x, 0.1, -2.0),
     lambda x: np.where(x > 0.1, x, -2.0), XK),
    ("sparsemax", activations.sparsemax, lambda x: np.maximum(x - SPARSEMAX_TAU, 0),
     np.array([[0.15, 0.9, 0.3, -0.5], [0.3, -0.5, 0.15, 0.9]])),
]


@pytest.mark.parametrize("name,fn,ref,x", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_formula(name, fn, ref, x):
    out = fn(x.astype(np.float32))
    assert isinstance(out, Tensor) and out.dtype == "float32"
    np.testing.assert_allclose(out.data, ref(x.astype(np.float32).astype(np.float64)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,fn,ref,x", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_central_differences(name, fn, ref, x):
    assert check_gradients(fn, [x]) <= 1e-6


# Values printed in Keras's docstrings and by Keras 3 for these inputs.
KERAS_VALUES = [
    (activations.relu, {}, [-10, -5, 0.0, 5, 10], [0.0, 0.0, 0.0, 5.0, 10.0]),
    (activations.relu, {"negative_slope": 0.5}, [-10, -5, 0.0, 5, 10],
     [-5.0, -2.5, 0.0, 5.0, 10.0]),
    (activations.relu, {"max_value": 5.0}, [-10, -5, 0.0, 5, 10], [0.0, 0.0, 0.0, 5.0, 5.0]),
    (activations.relu, {"threshold": 5.0}, [-10, -5, 0.0, 5, 10], [0.0, 0.0, 0.0, 0.0, 10.0]),
    (activations.gelu, {}, [-1.0, 0.0, 1.0, 2.0], [-0.15865525, 0.0, 0.8413447, 1.9544997]),
    (activations.gelu, {"approximate": True}, [-1.0, 1.0], [-0.15880801, 0.841192]),
    (activations.selu, {}, [-1.0, 1.0], [-1.1113307, 1.050701]),
    (activations.hard_sigmoid, {}, [-3.5, -1.0, 0.0, 1.0, 3.5],
     [0.0, 0.33333334, 0.5, 0.6666667, 1.0]),
    (activations.softsign, {}, [-1.0, 3.0], [-0.5, 0.75]),
    (activations.mish, {}, [1.0], [0.86509836]),
    (activations.leaky_relu, {}, [-1.0, 2.0], [-0.2, 2.0]),
    (activations.elu, {}, [-1.0], [-0.63212055]),
]


@pytest.mark.parametrize("fn,kwargs,x,expected", KERAS_VALUES,
                         ids=[f"{c[0].__name__}{c[1] or ''}" for c in KERAS_VALUES])
def test_keras_reference_values(fn, kwargs, x, expected):
    np.testing.assert_allclose(fn(np.array(x, dtype=np.float32), **kwargs).data, expected,
                               rtol=1e-6, atol=1e-7)


def test_erf_is_accurate_to_double_precision():
    x = np.concatenate([np.linspace(-7, 7, 20001), np.logspace(-30, 1, 401),
                        -np.logspace(-30, 1, 401), [0.46875, -0.46875, 4.0, -4.0, 30.0]])
    expected = erf(x)
    err = np.abs(erf_float64(x) - expected) / np.maximum(np.abs(expected), 1e-300)
    assert err.max() < 1e-14


def test_erf_edge_values_are_finite_and_float32_stays_float32():
    x = np.array([np.inf, -np.inf, 1e300, -0.0, np.nan])
    np.testing.assert_array_equal(erf_float64(x)[:4], [1.0, -1.0, 1.0, 0.0])
    assert np.isnan(erf_float64(x)[4])
    assert ops.erf(np.array([0.5], dtype=np.float32)).dtype == "float32"


def test_softmax_and_sigmoid_remember_their_logits():
    x = Tensor(np.array([[1.0, 2.0]], dtype=np.float32))
    assert activations.softmax(x)._keras_logits is x
    assert activations.sigmoid(x)._keras_logits is x


@pytest.mark.parametrize("name", sorted(activations._ACTIVATIONS))
def test_get_and_serialize_round_trip(name):
    fn = activations.get(name)
    assert activations.serialize(fn) == name
    assert activations.deserialize(name) is fn


def test_get_resolves_none_aliases_callables_and_configs():
    assert activations.get(None) is activations.linear
    assert activations.get("swish") is activations.silu
    assert activations.get("hard_swish") is activations.hard_silu
    assert activations.serialize(activations.swish) == "silu"

    def custom(x):
        return x

    assert activations.get(custom) is custom
    assert activations.get({"class_name": "function", "config": "tanh"}) is activations.tanh
    assert activations.deserialize("custom", custom_objects={"custom": custom}) is custom
    assert activations.serialize(custom) == "custom"


def test_unknown_identifiers_are_refused_with_the_value():
    with pytest.raises(ValueError, match="'reluu'"):
        activations.get("reluu")
    with pytest.raises(ValueError, match="42"):
        activations.get(42)
    with pytest.raises(ValueError, match="even"):
        activations.glu(np.ones((2, 3)))
