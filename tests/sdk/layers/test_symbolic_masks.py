"""Symbolic masks: `_keras_mask` on KerasTensors and mask-consuming custom layers in a
functional graph, as in Keras."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import layers, ops


class _PassMask(layers.Layer):
    """Opts in to mask propagation."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return ops.relu(inputs)


class _NeedsMask(layers.Layer):
    """Fails without a mask; zeroes masked steps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        assert mask is not None
        return inputs * ops.expand_dims(ops.cast(mask, inputs.dtype), -1)


def test_embedding_and_masking_give_symbolic_masks():
    ids = lamina.Input((None,), dtype="int32")
    x = layers.Embedding(10, 4, mask_zero=True)(ids)
    assert x._keras_mask.shape == (None, None) and x._keras_mask.dtype == "bool"
    y = _PassMask()(x)
    assert y._keras_mask.shape == (None, None)
    feats = lamina.Input((7, 3))
    m = layers.Masking()(feats)
    assert m._keras_mask.shape == (None, 7)
    # A layer that does not support masking drops it, as in Keras.
    assert getattr(layers.Flatten()(feats), "_keras_mask", None) is None
    assert getattr(lamina.Input((3,)), "_keras_mask", None) is None


def test_mask_consuming_custom_layer_builds_and_runs():
    ids = lamina.Input((None,), dtype="int32")
    x = layers.Embedding(10, 2, mask_zero=True, embeddings_initializer="ones")(ids)
    out = _NeedsMask()(x)
    assert out.shape == (None, None, 2)
    model = lamina.Model(ids, out)
    values = np.asarray(model(np.array([[3, 0, 5]], "int32")))
    np.testing.assert_array_equal(values[0, :, 0], [1.0, 0.0, 1.0])


def test_lstm_after_masked_embedding_still_drops_mask():
    ids = lamina.Input((None,), dtype="int32")
    x = layers.Embedding(10, 2, mask_zero=True)(ids)
    seq = layers.LSTM(3, return_sequences=True)(x)
    assert seq._keras_mask.shape == (None, None)
    last = layers.LSTM(3)(x)
    assert getattr(last, "_keras_mask", None) is None


@pytest.mark.parametrize("mode", ["sequential", "functional"])
def test_masked_models_still_train(mode):
    if mode == "sequential":
        model = lamina.Sequential([lamina.Input((4,), dtype="int32"),
                                   layers.Embedding(6, 3, mask_zero=True),
                                   layers.LSTM(2), layers.Dense(1)])
    else:
        ids = lamina.Input((4,), dtype="int32")
        x = layers.Embedding(6, 3, mask_zero=True)(ids)
        model = lamina.Model(ids, layers.Dense(1)(layers.LSTM(2)(_PassMask()(x))))
    model.compile(optimizer="sgd", loss="mse")
    x = np.array([[1, 2, 0, 0], [3, 4, 5, 0]], "int32")
    history = model.fit(x, np.ones((2, 1), "float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
