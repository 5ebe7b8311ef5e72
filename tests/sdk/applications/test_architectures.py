"""Every application architecture against Keras 3.15.1 (fixture made by real Keras).

``tests/fixtures/applications/param_counts.json`` was written by
``make_param_counts.py`` with ``keras.applications.<Name>(weights=None, **kwargs)``;
each entry is rebuilt here with Lamina after ``clear_session`` and must give the same
parameter counts, output shape, and layer names, classes and weight shapes in the same
order (which is what maps Keras's weight files onto Lamina's models). The order is
Keras's functional order (by depth from the outputs), computed by
``applications._common.keras_layer_order``.
"""

import hashlib
import json
import pathlib

import pytest

import lamina
from lamina import applications
from lamina.applications._common import keras_layer_order

FIXTURE = pathlib.Path(__file__).parents[2] / "fixtures" / "applications" / "param_counts.json"
MODELS = json.loads(FIXTURE.read_text())["models"]
# Building these allocates (and randomly initialises) more than this many parameters.
FAST_LIMIT = 6_000_000


def layer_lines(model):
    lines = []
    for layer in keras_layer_order(model):
        shapes = ",".join("x".join(str(d) for d in w.shape) for w in layer.weights)
        lines.append(f"{layer.name} {type(layer).__name__} {shapes}".rstrip())
    return lines


def _params():
    out = []
    for key, entry in sorted(MODELS.items()):
        marks = [pytest.mark.slow] if entry["params"] > FAST_LIMIT else []
        out.append(pytest.param(key, marks=marks, id=key))
    return out


@pytest.mark.parametrize("key", _params())
def test_architecture_matches_keras(key):
    entry = MODELS[key]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in entry["kwargs"].items()}
    lamina.backend.clear_session()
    model = getattr(applications, entry["function"])(weights=None, **kwargs)
    assert model.name == entry["name"]
    assert model.count_params() == entry["params"]
    trainable = sum(int(w.data.size) for w in model.trainable_weights)
    assert (trainable, model.count_params() - trainable) == (entry["trainable"],
                                                             entry["non_trainable"])
    assert list(model.output_shape) == entry["output_shape"]
    lines = layer_lines(model)
    assert sorted(la.name for la in model.layers) == sorted(line.split()[0] for line in lines)
    if "layers" in entry:
        assert lines == entry["layers"]
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == entry["layers_sha256"]
