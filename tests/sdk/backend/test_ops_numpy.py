"""``keras.ops.numpy`` lists Keras's numpy-namespace names, each the very ``ops`` function."""

from __future__ import annotations

import json
import pathlib

from lamina import ops

FIXTURE = pathlib.Path(__file__).parents[2] / "fixtures" / "keras_surface" / "keras-3.15.1.json"


def test_ops_numpy_is_keras_namespace_of_the_same_functions():
    keras_numpy = set(json.loads(FIXTURE.read_text())["modules"]["ops.numpy"])
    assert ops.numpy.__all__ and set(ops.numpy.__all__) <= keras_numpy
    for name in ops.numpy.__all__:
        assert getattr(ops.numpy, name) is getattr(ops, name), name
    # every Keras numpy name that lamina.ops has is offered under ops.numpy too
    assert {n for n in keras_numpy if hasattr(ops, n)} <= set(ops.numpy.__all__) | {
        n for n in keras_numpy if n in ops.nn.__all__ or n in ops.image.__all__}
