"""``keras.ops.numpy`` lists Keras's numpy-namespace names, each the very ``ops`` function,
with Keras's parameter names."""

from __future__ import annotations

import inspect
import json
import pathlib

from lamina import ops

FIXTURE = pathlib.Path(__file__).parents[2] / "fixtures" / "keras_surface" / "keras-3.15.1.json"
KERAS_NUMPY = json.loads(FIXTURE.read_text())["modules"]["ops.numpy"]


def test_ops_numpy_is_keras_namespace_of_the_same_functions():
    assert set(ops.numpy.__all__) == set(KERAS_NUMPY)
    for name in ops.numpy.__all__:
        assert getattr(ops.numpy, name) is getattr(ops, name), name


def test_parameters_are_keras_names():
    for name, spec in KERAS_NUMPY.items():
        params = list(inspect.signature(getattr(ops.numpy, name)).parameters)
        assert set(spec["params"]) <= set(params), (name, spec["params"], params)
