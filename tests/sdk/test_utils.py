"""``lamina.utils``: pad_sequences and normalize with Keras's semantics, Progbar export."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import ops, utils
from lamina.backend import Tensor

SEQS = [[1, 2, 3], [4], [], [5, 6, 7, 8, 9]]


@pytest.mark.parametrize("kwargs,expected", [
    ({}, [[0, 0, 1, 2, 3], [0, 0, 0, 0, 4], [0, 0, 0, 0, 0], [5, 6, 7, 8, 9]]),
    ({"maxlen": 3}, [[1, 2, 3], [0, 0, 4], [0, 0, 0], [7, 8, 9]]),
    ({"maxlen": 3, "truncating": "post"}, [[1, 2, 3], [0, 0, 4], [0, 0, 0], [5, 6, 7]]),
    ({"maxlen": 4, "padding": "post", "value": -1},
     [[1, 2, 3, -1], [4, -1, -1, -1], [-1, -1, -1, -1], [6, 7, 8, 9]]),
    ({"maxlen": 0}, [[], [], [], []]),
], ids=["defaults", "maxlen", "truncating-post", "padding-post,value", "maxlen=0"])
def test_pad_sequences_matches_keras(kwargs, expected):
    out = utils.pad_sequences(SEQS, **kwargs)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.int32).reshape(4, -1))


def test_pad_sequences_items_dtype_and_empty_input():
    seqs = [np.ones((2, 3)), np.zeros((0, 3)), 2 * np.ones((1, 3))]
    out = utils.pad_sequences(seqs, dtype="float32", padding="post", value=0.5)
    assert out.shape == (3, 2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1], np.full((2, 3), 0.5))
    np.testing.assert_array_equal(out[2], [[2, 2, 2], [0.5, 0.5, 0.5]])
    assert utils.pad_sequences([]).shape == (0, 0)
    words = utils.pad_sequences([["a", "b"], ["c"]], dtype=object, value="<pad>")
    assert words.tolist() == [["a", "b"], ["<pad>", "c"]]


@pytest.mark.parametrize("kwargs,seqs,match", [
    ({"padding": "middle"}, SEQS, "Padding type"),
    ({"truncating": "middle"}, SEQS, "Truncating type"),
    ({}, [[1, 2], 3], "non-iterable"),
    ({}, [np.ones((2, 3)), np.ones((2, 4))], "different from expected shape"),
    ({"value": "x"}, SEQS, "dtype"),
    ({}, 5, "iterable"),
])
def test_pad_sequences_errors(kwargs, seqs, match):
    with pytest.raises(ValueError, match=match):
        utils.pad_sequences(seqs, **kwargs)


def test_normalize_numpy_and_tensor():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]])
    expected = [[0.6, 0.8], [0.0, 0.0], [2 ** -0.5, -(2 ** -0.5)]]
    np.testing.assert_allclose(utils.normalize(x), expected)
    np.testing.assert_allclose(utils.normalize(x, order=1),
                               x / np.maximum(np.abs(x).sum(-1, keepdims=True), 1))
    np.testing.assert_allclose(utils.normalize(x[:2].T, axis=0), np.array(expected[:2]).T)
    out = utils.normalize(Tensor(x.astype(np.float32)))
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)
    np.testing.assert_allclose(out.data, ops.normalize(x.astype(np.float32)).data)


def test_progbar_is_exported():
    from lamina.utils.progbar import Progbar

    assert utils.Progbar is Progbar
    assert {"Progbar", "normalize", "pad_sequences"} <= set(utils.__all__)
