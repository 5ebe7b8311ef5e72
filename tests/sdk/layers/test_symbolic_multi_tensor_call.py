"""A layer called on several symbolic tensors (`layer(targets, logits)`) in a functional
model, as Keras allows: shapes are inferred from all of them and the graph replays."""

from __future__ import annotations

import numpy as np

import lamina
from lamina import layers, ops


class _Endpoint(layers.Layer):
    """Adds a loss from two tensors and returns the second one's softmax."""

    def call(self, targets, logits, sample_weights=None):
        self.add_loss(ops.mean(ops.square(targets - logits)))
        return ops.softmax(logits)


class _Pair(layers.Layer):
    """Concatenates two sequences along time: the output length depends on both."""

    def call(self, a, b):
        return ops.concatenate([a, b], axis=1)


def test_output_shape_uses_every_symbolic_argument():
    a, b = lamina.Input((None, 3)), lamina.Input((4, 3))
    assert _Pair()(a, b).shape == (None, None, 3)
    c, d = lamina.Input((2, 3)), lamina.Input((4, 3))
    out = _Pair()(c, d)
    assert out.shape == (None, 6, 3)
    model = lamina.Model([c, d], out)
    values = model([np.ones((1, 2, 3), "float32"), np.zeros((1, 4, 3), "float32")])
    np.testing.assert_array_equal(np.asarray(values)[0, :, 0], [1, 1, 0, 0, 0, 0])


def test_endpoint_layer_trains_without_a_compiled_loss():
    lamina.utils.set_random_seed(0)
    inputs = lamina.Input((3,), name="inputs")
    targets = lamina.Input((10,), name="targets")
    logits = layers.Dense(10)(inputs)
    predictions = _Endpoint(name="predictions")(targets, logits)
    model = lamina.Model([inputs, targets], predictions)
    assert predictions.shape == (None, 10)
    model.compile(optimizer="sgd")
    x = np.linspace(0, 1, 9, dtype="float32").reshape(3, 3)
    t = np.full((3, 10), 0.5, "float32")
    dense = next(la for la in model.layers if isinstance(la, layers.Dense))
    expected = np.mean((t - (x @ dense.kernel.numpy() + dense.bias.numpy())) ** 2)
    history = model.fit({"inputs": x, "targets": t}, epochs=1, batch_size=3, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-5)
    assert model.predict({"inputs": x, "targets": t}, verbose=0).shape == (3, 10)
