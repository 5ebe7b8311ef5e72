"""Counter-based noise: a sample's draw depends on (seed, epoch, its index, layer, call)
only, never on the rest of its batch; the statistics are right."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.distribute import keys

pytestmark = pytest.mark.usefixtures("kernels")  # numpy's path and the compiled kernels


def _mask(layer, x, epoch, rows):
    with keys.batch_keys(epoch, rows):
        return np.asarray(layer(x, training=True).data) != 0


def test_a_samples_mask_does_not_depend_on_its_batch():
    lamina.utils.set_random_seed(3)
    layer = layers.Dropout(0.5, name="drop")
    x = np.ones((8, 64), np.float32)
    whole = _mask(layer, x, 2, np.arange(10, 18))
    first = _mask(layer, x[:3], 2, np.arange(10, 13))
    rest = _mask(layer, x[3:], 2, np.arange(13, 18))
    np.testing.assert_array_equal(whole, np.concatenate([first, rest]))
    assert not np.array_equal(whole, _mask(layer, x, 3, np.arange(10, 18)))  # epoch
    assert not np.array_equal(whole[0], whole[1])  # sample
    other = layers.Dropout(0.5, name="drop_2")
    assert not np.array_equal(whole, _mask(other, x, 2, np.arange(10, 18)))  # layer
    lamina.utils.set_random_seed(4)
    reseeded = layers.Dropout(0.5, name="drop")
    assert not np.array_equal(whole, _mask(reseeded, x, 2, np.arange(10, 18)))  # seed


def test_the_same_model_built_twice_after_one_seed_draws_the_same_noise():
    masks = []
    for name in ("a", "b"):  # names differ, creation order does not
        lamina.utils.set_random_seed(9)
        layer = layers.Dropout(0.5, name=name)
        masks.append(_mask(layer, np.ones((4, 16), np.float32), 0, np.arange(4)))
    np.testing.assert_array_equal(*masks)


def test_second_call_in_one_batch_draws_fresh_noise():
    layer = layers.Dropout(0.5, seed=1)
    x = np.ones((4, 32), np.float32)
    with keys.batch_keys(0, np.arange(4)):
        a = np.asarray(layer(x, training=True).data)
        b = np.asarray(layer(x, training=True).data)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_keep_mask_rate_and_scale(rate):
    layer = layers.Dropout(rate, seed=0)
    x = np.ones((200, 500), np.float32)
    with keys.batch_keys(0, np.arange(200)):
        out = np.asarray(layer(x, training=True).data)
    kept = out != 0
    assert abs(kept.mean() - (1 - rate)) < 0.01
    np.testing.assert_allclose(out[kept], 1 / (1 - rate), rtol=1e-6)


def test_uniform_and_normal_statistics():
    assert keys.sample_keys(keys.stream_key(0, "n"), 1) is None  # no batch, no keys
    with keys.batch_keys(0, np.arange(1000)):
        sample = keys.sample_keys(keys.stream_key(0, "n"), 1000)
    u = keys.uniform(sample, (1000, 100))
    z = keys.normal(sample, (1000, 100))
    assert u.dtype == np.float32 and 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01


def test_noise_layers_use_keys_inside_fit_only():
    lamina.utils.set_random_seed(0)
    noise = layers.GaussianNoise(0.5, name="g")
    x = np.zeros((6, 10), np.float32)
    with keys.batch_keys(1, np.arange(6)):
        a = np.asarray(noise(x, training=True).data)
    with keys.batch_keys(1, np.arange(3, 6)):
        b = np.asarray(noise(x[:3], training=True).data)
    np.testing.assert_array_equal(a[3:], b)
    outside = np.asarray(noise(x, training=True).data)  # the layer's generator
    assert not np.array_equal(outside, a)


def _splitmix_final(z):
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 % 2**64
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB % 2**64
    return z ^ (z >> 31)


def _murmur_final(h):
    h = (h ^ (h >> 16)) * 0x85EBCA6B % 2**32
    h = (h ^ (h >> 13)) * 0xC2B2AE35 % 2**32
    return h ^ (h >> 16)


def test_hashes_match_a_plain_python_reference():
    # The documented construction, one Python int at a time: SplitMix64's finaliser for
    # the sample keys, MurmurHash3's 32-bit finaliser of (folded key xor Weyl counter).
    stream, epoch, rows = 2**64 - 12345, 7, [0, 3, 2**40 + 1]
    with keys.batch_keys(epoch, rows):
        keys.sample_keys(stream, 3)  # the second call of this stream in the batch
        got = keys.sample_keys(stream, 3)
    base = _splitmix_final(stream ^ (epoch + 1) * 0xD1B54A32D192ED03 % 2**64)
    base = _splitmix_final(base ^ 2 * 0x8CB92BA72F3D8DD7 % 2**64)
    want = [_splitmix_final((r * 0x9E3779B97F4A7C15 + base) % 2**64) for r in rows]
    assert got.tolist() == want
    bits = keys._bits32(got, (3, 2, 3))
    for i, key in enumerate(want):
        folded = ((key >> 32) ^ key) % 2**32
        row = [_murmur_final(folded ^ (j * 0x9E3779B9 % 2**32)) for j in range(1, 7)]
        assert bits[i].reshape(-1).tolist() == row
