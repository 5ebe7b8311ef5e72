"""Lamina layers against outputs recorded from real Keras 3.15.1 with the same weights.

tests/fixtures/layers/make_layer_fixtures.py wrote, per case, the constructor arguments,
inputs, weights (names and shapes in Keras's order), the outputs of each call and the
final weights. Each case here rebuilds the layer in Lamina, checks that its weights have
Keras's names, shapes and order, loads Keras's values, replays the calls and compares at
1e-5 (outputs, then the weights after the calls, e.g. BatchNormalization's moving stats).
"""

import json
import os

import numpy as np
import pytest

from lamina import layers

HERE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "layers")
with open(os.path.join(HERE, "keras_layers.json")) as f:
    CASES = json.load(f)["cases"]
ARRAYS = np.load(os.path.join(HERE, "keras_layers.npz"))
_TWO_ARG = ("GroupQueryAttention", "MultiHeadAttention")


def _call(layer, case, inputs, call_kwargs):
    if case["class_name"] in _TWO_ARG:
        return layer(inputs[0], inputs[1], *inputs[2:], **call_kwargs)
    return layer(inputs if len(inputs) > 1 else inputs[0], **call_kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_keras(name):
    case = CASES[name]
    inputs = [ARRAYS[f"{name}/x{i}"] for i in range(case["n_inputs"])]
    kwargs = dict(case["kwargs"])
    if isinstance(kwargs.get("layer"), dict):  # wrappers: the wrapped layer's config
        kwargs["layer"] = layers.deserialize(kwargs["layer"])
    layer = getattr(layers, case["class_name"])(**kwargs)
    if case["class_name"] == "ReversibleEmbedding":  # only reverse calls are recorded
        layer.build()
    else:
        _call(layer, case, inputs, {})
    got = [[v.name, list(v.shape)] for v in layer.weights]
    assert got == case["weights"]
    layer.set_weights([ARRAYS[f"{name}/w{i}"] for i in range(len(case["weights"]))])
    for step, call_kwargs in enumerate(case["calls"]):
        result = _call(layer, case, inputs, call_kwargs)
        outputs = list(result) if isinstance(result, (list, tuple)) else [result]
        for i, out in enumerate(outputs):
            np.testing.assert_allclose(np.asarray(out), ARRAYS[f"{name}/y{step}_{i}"],
                                       rtol=1e-5, atol=1e-5, err_msg=f"call {step} out {i}")
    for i, w in enumerate(layer.get_weights()):
        np.testing.assert_allclose(w, ARRAYS[f"{name}/final{i}"], rtol=1e-5, atol=1e-5,
                                   err_msg=f"weight {i} after the calls")
