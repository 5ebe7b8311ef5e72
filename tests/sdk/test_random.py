"""``keras.random``: distribution moments, Keras's seeding rules and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import random
from lamina.backend import Tensor, gradients
from lamina.utils import set_random_seed

N = 200_000

MOMENTS = [  # (draw, expected mean, expected variance)
    (lambda s: random.normal((N,), mean=2.0, stddev=3.0, seed=s), 2.0, 9.0),
    (lambda s: random.uniform((N,), minval=-1.0, maxval=3.0, seed=s), 1.0, 16 / 12),
    # a standard normal truncated at +-2: variance 1 - 2*2*phi(2)/(Phi(2)-Phi(-2))
    (lambda s: random.truncated_normal((N,), seed=s), 0.0, 0.7737413),
    (lambda s: random.randint((N,), 0, 10, seed=s), 4.5, 99 / 12),
    (lambda s: random.gamma((N,), alpha=3.0, seed=s), 3.0, 3.0),
    (lambda s: random.beta((N,), alpha=2.0, beta=5.0, seed=s), 2 / 7, 10 / (49 * 8)),
    (lambda s: random.binomial((N,), counts=10, probabilities=0.3, seed=s), 3.0, 2.1),
]


@pytest.mark.parametrize("draw,mean,var", MOMENTS)
def test_moments(draw, mean, var):
    x = draw(0).numpy().astype(np.float64)
    assert abs(x.mean() - mean) < 5 * np.sqrt(var / N)
    assert abs(x.var() / var - 1) < 0.02


def test_truncated_normal_stays_within_two_stddevs():
    x = random.truncated_normal((N,), mean=1.0, stddev=0.5, seed=3).numpy()
    assert x.min() >= 0.0 and x.max() <= 2.0


def test_categorical_follows_the_softmax_of_the_logits():
    p = np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
    draws = random.categorical(np.log(p), 50_000, seed=1).numpy()
    assert draws.shape == (2, 50_000) and draws.dtype == np.int32
    for row in range(2):
        freq = np.bincount(draws[row], minlength=3) / 50_000
        np.testing.assert_allclose(freq, p[row], atol=0.01)


def test_an_int_seed_repeats_and_a_seed_generator_advances():
    a, b = random.uniform((5,), seed=11).numpy(), random.uniform((5,), seed=11).numpy()
    np.testing.assert_array_equal(a, b)
    gen = random.SeedGenerator(11)
    first, second = random.uniform((5,), seed=gen).numpy(), random.uniform((5,), seed=gen).numpy()
    assert not np.array_equal(first, second)
    gen = random.SeedGenerator(11)
    np.testing.assert_array_equal(random.uniform((5,), seed=gen).numpy(), first)


def test_unseeded_draws_repeat_under_set_random_seed():
    set_random_seed(5)
    a = random.normal((4,)).numpy()
    set_random_seed(5)
    np.testing.assert_array_equal(random.normal((4,)).numpy(), a)


def test_shuffle_permutes_along_the_axis():
    x = np.arange(12).reshape(4, 3)
    out = random.shuffle(x, axis=0, seed=2).numpy()
    assert sorted(map(tuple, out)) == sorted(map(tuple, x))
    np.testing.assert_array_equal(out, random.shuffle(x, axis=0, seed=2).numpy())


def test_dropout_scales_the_kept_units_and_passes_gradients():
    x = Tensor(np.ones((1000,), dtype=np.float32), requires_grad=True)
    y = random.dropout(x, 0.25, seed=4)
    kept = y.numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.05
    (g,) = gradients(y.sum(), [x])
    np.testing.assert_allclose(g, y.numpy(), rtol=1e-6)


@pytest.mark.parametrize("call,message", [
    (lambda: random.normal((2,), seed="x"), "seed='x'"),
    (lambda: random.normal((-1, 2)), "shape=(-1, 2)"),
    (lambda: random.uniform((2,), dtype="int32"), "dtype=int32"),
    (lambda: random.randint((2,), 0, 3, dtype="float32"), "dtype=float32"),
    (lambda: random.categorical(np.zeros(3), 2), "logits=(3,)"),
    (lambda: random.dropout(np.ones(3), 1.5), "rate=1.5"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
