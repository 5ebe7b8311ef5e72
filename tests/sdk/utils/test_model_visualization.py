"""``plot_model``/``model_to_dot``: Keras's graph (nodes, edges, labels) and a PNG file."""

from __future__ import annotations

import shutil
import sys

import pytest

import lamina
from lamina import layers, utils

pydot = pytest.importorskip("pydot", reason="pydot is a dev dependency (pyproject [dev])")


def _model():
    inner = lamina.Sequential([lamina.Input((4,)), layers.Dense(4, name="inner_dense")],
                              name="inner")
    a, b = lamina.Input((4,), name="a"), lamina.Input((4,), name="b")
    h = layers.Dense(4, activation="tanh", name="tanh_dense")(a)
    out = layers.Dense(1, name="head")(layers.Concatenate(name="cat")([h, inner(b)]))
    return lamina.Model([a, b], out, name="two_towers")


def _names(dot):
    nodes = dot.get_nodes() + [n for sub in dot.get_subgraphs() for n in sub.get_nodes()]
    # pydot lists the `node [shape=record]` defaults as a node named "node".
    return {n.get_name(): n.get("label") for n in nodes if n.get_name() != "node"}


def test_model_to_dot_nodes_edges_and_labels():
    model = _model()
    dot = utils.model_to_dot(model, show_shapes=True, show_dtype=True, show_trainable=True,
                             show_layer_activations=True, rankdir="LR", dpi=90)
    labels = _names(dot)
    assert len(labels) == 6  # a, b, tanh_dense, inner, cat, head
    ids = {layer.name: str(id(layer)) for layer in model.layers}
    edges = {(e.get_source(), e.get_destination()) for e in dot.get_edges()}
    assert edges == {(ids["a"], ids["tanh_dense"]), (ids["b"], ids["inner"]),
                     (ids["tanh_dense"], ids["cat"]), (ids["inner"], ids["cat"]),
                     (ids["cat"], ids["head"])}
    tanh = labels[ids["tanh_dense"]]
    assert "<b>tanh_dense</b> (Dense)" in tanh and "Activation: <b>tanh</b>" in tanh
    assert "Input shape: <b>(None, 4)</b>" in tanh and "Output dtype: <b>float32</b>" in tanh
    assert "<b>Trainable</b>" in tanh
    assert "Input shape: <b>[(None, 4), (None, 4)]</b>" in labels[ids["cat"]]
    assert "Input shape" not in labels[ids["a"]]  # InputLayer: output only
    assert dot.get("rankdir") == "LR" and dot.get("dpi") == 90


def test_expand_nested_draws_the_inner_layers():
    model = _model()
    dot = utils.model_to_dot(model, expand_nested=True, show_layer_names=False)
    [cluster] = dot.get_subgraphs()
    inner_dense = model.get_layer("inner").layers[-1]
    assert list(_names(cluster)) == [str(id(inner_dense))]
    edges = {(e.get_source(), e.get_destination()) for e in dot.get_edges()}
    assert (str(id(model.get_layer("b"))), str(id(inner_dense))) in edges
    assert (str(id(inner_dense)), str(id(model.get_layer("cat")))) in edges
    assert "<b>Dense</b>" in cluster.get_nodes()[0].get("label")


def test_sequential_chain_and_non_trainable():
    model = lamina.Sequential([lamina.Input((3,)), layers.Dense(2, name="d0"),
                               layers.Dense(1, name="d1")])
    model.layers[0].trainable = False
    dot = utils.model_to_dot(model, show_trainable=True)
    edges = [(e.get_source(), e.get_destination()) for e in dot.get_edges()]
    assert edges == [(str(id(model.layers[0])), str(id(model.layers[1])))]
    assert "Non-trainable" in _names(dot)[str(id(model.layers[0]))]


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz's `dot` is not installed (CI installs it with apt)")
def test_plot_model_writes_a_png(tmp_path):
    path = tmp_path / "model.png"
    utils.plot_model(_model(), to_file=path, show_shapes=True, expand_nested=True)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_errors(monkeypatch):
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        utils.model_to_dot(_model(), colour=True)
    with pytest.raises(ValueError, match="layer_range"):
        utils.model_to_dot(_model(), layer_range=["a", "b"])
    unbuilt = lamina.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="has not yet been built"):
        utils.plot_model(unbuilt)
    monkeypatch.setitem(sys.modules, "pydot", None)
    with pytest.raises(ImportError, match="pip install pydot.*graphviz"):
        utils.model_to_dot(_model())
    with pytest.raises(ImportError, match="pydot"):
        utils.plot_model(_model())


def test_missing_graphviz_is_named(monkeypatch):
    from lamina.utils import model_visualization

    monkeypatch.setattr(model_visualization, "check_graphviz", lambda: False)
    with pytest.raises(ImportError, match="install graphviz"):
        utils.plot_model(_model())
