"""``utils.Config``, ``utils.get_source_inputs`` and ``utils.Progbar``'s Keras arguments."""

from __future__ import annotations

import io

import pytest

import lamina
from lamina import layers, utils


def test_config_attributes_items_and_freeze():
    config = utils.Config(units=4, rate=0.5)
    config.depth = 3
    config["width"] = 8
    assert (config.units, config["depth"], config.width) == (4, 3, 8)
    assert list(config) == ["depth", "rate", "units", "width"] and len(config) == 4
    assert "rate" in config and config.get("missing", 7) == 7
    assert config.as_dict() == {"units": 4, "rate": 0.5, "depth": 3, "width": 8}
    assert config.to_json() == '{"units": 4, "rate": 0.5, "depth": 3, "width": 8}'
    with pytest.raises(AttributeError, match="Unknown attribute: 'unit'. Did you mean 'units'"):
        config.unit  # noqa: B018
    config.freeze()
    assert config.frozen
    for mutate in (lambda: setattr(config, "units", 1), lambda: config.update(a=1),
                   lambda: config.pop("units"), lambda: config.__setitem__("a", 1),
                   lambda: config.__delitem__("units")):
        with pytest.raises(ValueError, match="frozen"):
            mutate()
    config.unfreeze()
    del config["width"]
    assert config.pop("depth") == 3 and sorted(config.keys()) == ["rate", "units"]
    assert repr(config) == "<Config {'units': 4, 'rate': 0.5}>"


def test_get_source_inputs_walks_to_the_inputs():
    a, b = lamina.Input((3,)), lamina.Input((3,))
    c = layers.Add()([layers.Dense(3)(a), b])
    d = layers.Concatenate()([c, a])
    sources = utils.get_source_inputs(d)
    assert len(sources) == 2 and sources[0] is a and sources[1] is b
    assert utils.get_source_inputs(a)[0] is a
    assert utils.get_source_inputs(5) == 5


def test_progbar_averages_stateless_and_shows_stateful_as_is():
    stream = io.StringIO()
    bar = utils.Progbar(4, stateful_metrics=["acc"], interval=0, stream=stream, dynamic=False,
                        unit_name="sample")
    bar.update(1, [("loss", 1.0), ("acc", 0.1)])
    bar.update(3, [("loss", 3.0), ("acc", 0.3)])
    bar.update(4, [("loss", 0.5), ("acc", 0.9)], finalize=False)
    # loss: (1*1 + 3*2 + 0.5*1) / 4 steps; acc: the last value.
    assert bar._shown() == [("loss", pytest.approx(7.5 / 4)), ("acc", 0.9)]
    bar.update(4, [("loss", 0.25)])
    line = stream.getvalue().strip().splitlines()[-1]
    assert "loss: 0.2500" in line and "acc: 0.9000" in line and "/sample" in line


def test_progbar_stateless_metrics_and_argument_error():
    bar = utils.Progbar(2, stateless_metrics=["loss"], stream=io.StringIO())
    bar.update(1, [("loss", 2.0), ("lr", 0.1)])
    bar.update(2, [("loss", 4.0), ("lr", 0.2)], finalize=False)
    assert bar._shown() == [("loss", 3.0), ("lr", 0.2)]
    with pytest.raises(ValueError, match="Only one of `stateful_metrics`"):
        utils.Progbar(2, stateful_metrics=["a"], stateless_metrics=["b"])
    silent = io.StringIO()
    utils.Progbar(1, verbose=0, stream=silent).update(1, [("loss", 1.0)])
    assert silent.getvalue() == ""
    counted = utils.Progbar(None, stream=io.StringIO(), dynamic=True, interval=0)
    counted.add(3)
    counted.add(2)
    assert counted._seen == 5
