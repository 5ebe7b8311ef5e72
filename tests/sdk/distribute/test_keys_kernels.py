"""The compiled keyed draws (lamina.distribute.keys_kernels) give the numpy path's bits:
masks, uniforms, normals, and the Dropout primitive's outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.backend import compiled
from lamina.backend.autodiff import gradients
from lamina.backend.tensor import Variable
from lamina.distribute import keys
from lamina.testing import check_gradients

pytest.importorskip("numba")

SHAPES = [(1,), (7,), (0,), (0, 5), (5, 0), (1, 1), (3, 17), (128, 512), (2, 3, 5),
          (4, 1, 9), (2, 3, 4, 5), (3, 1, 1, 6)]
RATES = [0.0, 1e-9, 2 ** -25, 2 ** -24, 0.2, 0.5, 0.999, 1 - 2 ** -24]


def _keys(rows, seed):
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 2 ** 64, size=rows, dtype=np.uint64)
    if rows >= 2:
        out[:2] = [0, 2 ** 64 - 1]  # the extremes of the fold and of the Weyl sums
    return out


def _both(fn):
    with compiled.use_kernels("numpy"):
        reference = fn()
    with compiled.use_kernels("numba"):
        compiled_ = fn()
    return reference, compiled_


def _same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_uniform_normal_and_keep_mask_match_numpy_bitwise(shape, seed):
    k = _keys(shape[0], seed)
    for draw in (keys.uniform, keys.normal):
        _same_bits(*_both(lambda draw=draw: draw(k, shape)))
    for rate in RATES:
        _same_bits(*_both(lambda rate=rate: keys.keep_mask(k, shape, rate)))
    from lamina.distribute import keys_kernels

    _same_bits(keys._bits32(k, shape), keys_kernels.bits32(k, shape))


@pytest.mark.parametrize("draw", [
    keys.uniform, keys.normal, lambda k, shape: keys.keep_mask(k, shape, 0.5),
    lambda k, shape: keys.dropout_mask(k, shape, 0.5, np.float32)])
def test_a_shape_without_a_key_per_row_is_refused_on_both_paths(draw, kernels):
    with pytest.raises(ValueError, match="shape"):
        draw(_keys(3, 0), (4, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [1e-9, 0.2, 0.5, 0.999])
@pytest.mark.parametrize("shape", [(6, 1), (4, 33), (3, 2, 5), (0, 4)])
def test_dropout_mask_multiplies_as_the_built_mask(dtype, rate, shape):
    """The kernel's ``v * mask`` is the numpy ``v * mask``, -0 and nan included."""
    k = _keys(shape[0], 3)
    v = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    specials = np.array([np.nan, np.inf, -np.inf, -1.0, -0.0], dtype)
    flat = v.reshape(-1)  # a view: ``v`` gets the values whose products with 0 differ
    flat[:len(specials)] = specials[:flat.size]
    with compiled.use_kernels("numpy"):
        built = keys.dropout_mask(k, shape, rate, dtype)
    with compiled.use_kernels("numba"):
        keyed = keys.dropout_mask(k, shape, rate, dtype)
    assert isinstance(built, np.ndarray) and not isinstance(keyed, np.ndarray)
    _same_bits(built, keyed.array())
    with np.errstate(invalid="ignore"):  # inf * 0 (the kernel does not warn)
        _same_bits(v * built, keyed.multiply(v))
        # A gradient of another dtype, or an input broadcasting against the mask.
        _same_bits(v.astype(np.float16) * built, keyed.multiply(v.astype(np.float16)))
        if shape[0]:
            _same_bits(v[:1] * built, keyed.multiply(v[:1]))


def _dropout_run(layer_factory, x, epoch=1):
    """Output and input gradient of a layer called inside ``fit``'s keys."""
    layer = layer_factory()
    variable = Variable(x, dtype=x.dtype)
    with keys.batch_keys(epoch, np.arange(10, 10 + x.shape[0])):
        out = layer(variable, training=True)
    weights = np.random.default_rng(5).standard_normal(out.shape).astype(x.dtype)
    (grad,) = gradients(out, [variable], output_gradient=weights)
    return np.asarray(out.data), np.asarray(grad)


@pytest.mark.parametrize("make, shape", [
    (lambda dtype: layers.Dropout(0.3, seed=2, dtype=dtype), (16, 40)),
    (lambda dtype: layers.Dropout(0.5, seed=2, dtype=dtype), (3, 4, 5, 2)),
    (lambda dtype: layers.Dropout(0.4, noise_shape=(None, 1, 5), seed=2, dtype=dtype),
     (6, 3, 5)),
    (lambda dtype: layers.SpatialDropout2D(0.5, seed=2, dtype=dtype), (4, 3, 3, 6)),
    (lambda dtype: layers.AlphaDropout(0.3, seed=2, dtype=dtype), (8, 9)),
    (lambda dtype: layers.GaussianNoise(0.5, seed=2, dtype=dtype), (8, 9)),
    (lambda dtype: layers.GaussianDropout(0.3, seed=2, dtype=dtype), (8, 9)),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_noise_layers_outputs_and_gradients_are_identical_on_both_paths(make, shape, dtype):
    x = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    (out_np, grad_np), (out_nb, grad_nb) = _both(lambda: _dropout_run(lambda: make(dtype), x))
    _same_bits(out_np, out_nb)
    _same_bits(grad_np, grad_nb)
    assert np.any(out_np != x)  # the noise was drawn


def test_keyed_dropout_gradient_matches_central_differences(kernels):
    layer = layers.Dropout(0.4, seed=8, dtype="float64")

    def fn(x):
        with keys.batch_keys(2, np.arange(5)):  # the same keys (and mask) every call
            return layer(x, training=True)

    x = np.random.default_rng(9).standard_normal((5, 7))
    check_gradients(fn, [x], rtol=1e-6)


def test_a_seeded_fit_with_dropout_gives_the_same_weights_on_both_paths():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 12)).astype(np.float32)
    y = rng.integers(0, 3, 96)

    def fit():
        lamina.utils.set_random_seed(4)
        model = lamina.Sequential([
            layers.Input((12,)), layers.Dense(32, activation="relu"), layers.Dropout(0.2),
            layers.Dense(32, activation="relu"), layers.Dropout(0.2),
            layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        return [np.asarray(w) for w in model.get_weights()]

    reference, compiled_ = _both(fit)
    for a, b in zip(reference, compiled_):
        _same_bits(a, b)


def test_a_replica_takes_the_path_its_global_batch_takes():
    """Under ``auto``, a replica's part of a global batch decides ``compiled.pays`` on
    the global batch's elements (the path local ``fit`` takes), with the same bits."""
    inner = 512
    part = compiled.MIN_ELEMENTS // inner // 2  # half of a batch that just pays
    rows = np.arange(part, 2 * part)
    x = np.ones((part, inner), np.float32)
    with compiled.use_kernels("auto"):
        with keys.batch_keys(3, rows):
            alone = keys.dropout_mask(keys.sample_keys(11, part), x.shape, 0.2, np.float32)
        with keys.batch_keys(3, rows, batch=2 * part):
            shared = keys.dropout_mask(keys.sample_keys(11, part), x.shape, 0.2, np.float32)
    assert isinstance(alone, np.ndarray)  # numpy's path: the part alone does not pay
    assert not isinstance(shared, np.ndarray)  # the kernel's KeyedMask
    _same_bits(alone * x, shared.multiply(x))


def test_batch_keys_refuses_a_global_batch_smaller_than_its_rows():
    with pytest.raises(ValueError, match="batch=3"):
        with keys.batch_keys(0, np.arange(4), batch=3):
            pass
