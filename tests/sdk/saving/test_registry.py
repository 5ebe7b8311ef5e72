"""Custom objects: register_serializable, custom_objects and CustomObjectScope."""

import numpy as np
import pytest

import lamina
from lamina.saving import CustomObjectScope, get_registered_name, register_serializable


@register_serializable(package="Tests")
class Scale(lamina.layers.Layer):
    """Multiplies by a trainable scalar."""

    def __init__(self, init=2.0, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.factor = self.add_weight(shape=(), initializer=lamina.initializers.Constant(
            self.init), name="factor")

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "init": self.init}


class Unregistered(Scale):
    """Same layer, not registered."""


def _model(layer):
    return lamina.Sequential([lamina.Input((3,)), layer, lamina.layers.Dense(2)])


def test_registered_layer_round_trips(tmp_path):
    model = _model(Scale(3.0))
    config = lamina.saving.serialize_keras_object(model)
    entry = config["config"]["layers"][1]
    assert entry["registered_name"] == "Tests>Scale" == get_registered_name(Scale)
    assert entry["module"] == __name__
    model.save(tmp_path / "m.keras")
    loaded = lamina.models.load_model(tmp_path / "m.keras")
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert isinstance(loaded.layers[0], Scale)


def test_unregistered_needs_custom_objects(tmp_path):
    model = _model(Unregistered())
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="'Unregistered'"):
        lamina.models.load_model(tmp_path / "m.keras")
    loaded = lamina.models.load_model(tmp_path / "m.keras",
                                      custom_objects={"Unregistered": Unregistered})
    assert isinstance(loaded.layers[0], Unregistered)
    with CustomObjectScope({"Unregistered": Unregistered}):
        assert isinstance(lamina.models.load_model(tmp_path / "m.keras").layers[0], Unregistered)


def test_register_rejects_bad_package():
    with pytest.raises(ValueError, match="package"):
        register_serializable(package="a>b")
