"""``plot_model`` and ``model_to_dot``: a model's layer graph drawn with pydot and
Graphviz, with Keras's node tables (name, class, shapes, dtype, activation, trainable).

pydot is imported when needed; Graphviz's ``dot`` program renders the picture. Either
missing raises ``ImportError`` naming it and how to install it.
"""

from __future__ import annotations

import os

from lamina.tree import map_structure

_PYDOT_MISSING = ("You must install pydot (`pip install pydot`) for {} to work; it also "
                  "needs Graphviz's `dot` program (e.g. `apt-get install graphviz`).")
_GRAPHVIZ_MISSING = ("You must install graphviz (the `dot` program, e.g. `apt-get install "
                     "graphviz`, see https://graphviz.gitlab.io/download/) for `plot_model` "
                     "to work.")


def _pydot(what):
    try:
        import pydot
    except ImportError as exc:
        raise ImportError(_PYDOT_MISSING.format(what)) from exc
    return pydot


def check_graphviz() -> bool:
    """Whether pydot is installed and can run Graphviz's ``dot``."""
    try:
        pydot = _pydot("plot_model")
    except ImportError:
        return False
    try:
        pydot.Dot.create(pydot.Dot())
        return True
    except (OSError, getattr(pydot, "PydotException", OSError)):
        return False


def _add_edge(pydot, dot, src, dst):
    src_id, dst_id = str(id(src)), str(id(dst))
    if not dot.get_edge(src_id, dst_id):
        edge = pydot.Edge(src_id, dst_id)
        edge.set("penwidth", "2")
        dot.add_edge(edge)


def _activation_name(layer):
    activation = layer.activation
    return getattr(activation, "name", None) or getattr(activation, "__name__", None) or \
        str(activation)


def _format_shape(shape):
    if shape is None:
        return "?"
    if isinstance(shape, dict):
        return ", ".join(f"{k}: {v}" for k, v in shape.items())
    return str(shape).replace("{", "").replace("}", "")


def _cell(text, bgcolor="white", color=None):
    font = f' color="{color}"' if color else ""
    return f'<td bgcolor="{bgcolor}"><font point-size="14"{font}>{text}</font></td>'


def make_layer_label(layer, show_layer_names, show_layer_activations, show_dtype,
                     show_shapes, show_trainable):
    """The HTML-like Graphviz label Keras draws for ``layer``."""
    class_name = type(layer).__name__
    colspan = max(1, int(show_dtype) + int(show_trainable) + (2 if show_shapes else 0))
    title = (f"<b>{layer.name}</b> ({class_name})" if show_layer_names
             else f"<b>{class_name}</b>")
    table = ('<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">'
             f'<tr><td colspan="{colspan}" bgcolor="black"><font point-size="16" '
             f'color="white">{title}</font></td></tr>')
    if show_layer_activations and getattr(layer, "activation", None) is not None:
        table += (f'<tr><td bgcolor="white" colspan="{colspan}"><font point-size="14">'
                  f"Activation: <b>{_activation_name(layer)}</b></font></td></tr>")
    cols = []
    if show_shapes:
        input_shape = output_shape = None
        try:
            input_shape = map_structure(lambda x: tuple(x.shape), layer.input)
            output_shape = map_structure(lambda x: tuple(x.shape), layer.output)
        except (ValueError, AttributeError, IndexError):
            pass
        if class_name != "InputLayer":
            cols.append(_cell(f"Input shape: <b>{_format_shape(input_shape)}</b>"))
        cols.append(_cell(f"Output shape: <b>{_format_shape(output_shape)}</b>"))
    if show_dtype:
        dtype = None
        try:
            dtype = map_structure(lambda x: x.dtype, layer.output)
        except (ValueError, AttributeError, IndexError):
            pass
        cols.append(_cell(f"Output dtype: <b>{dtype or '?'}</b>"))
    if show_trainable and getattr(layer, "weights", None):
        cols.append(_cell("<b>Trainable</b>", "forestgreen", "white") if layer.trainable
                    else _cell("<b>Non-trainable</b>", "firebrick", "white"))
    if cols:
        table += f"<tr>{''.join(cols)}</tr>"
    return table + "</table>>"


def _operations(model):
    """The layers (and op layers) of a functional model, inputs first, in graph order."""
    ops = []
    for t in model.inputs:
        if all(t.node.operation is not o for o in ops):
            ops.append(t.node.operation)
    for node in model._nodes:
        if all(node.operation is not o for o in ops):
            ops.append(node.operation)
    return ops


def _last(model, index=0):
    from lamina.models.sequential import Sequential

    while True:
        if isinstance(model, Sequential):
            model, index = model.layers[-1], 0
        elif hasattr(model, "_nodes") and hasattr(model, "outputs"):
            tensor = model.outputs[index]
            model, index = tensor.node.operation, tensor.index
        else:
            return model


def _first(model, index=0):
    from lamina.models.sequential import Sequential

    while True:
        if isinstance(model, Sequential):
            model, index = model.layers[0], 0
        elif hasattr(model, "_nodes") and hasattr(model, "inputs"):
            model = model.inputs[index].node.operation
        else:
            return model


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True,
                 rankdir="TB", expand_nested=False, dpi=200, subgraph=False,
                 show_layer_activations=False, show_trainable=False, splines="ortho",
                 **kwargs):
    """The ``pydot.Dot`` graph of ``model`` (``keras.utils.model_to_dot``).

    Args:
        model: a built Lamina model (Sequential, functional or subclassed).
        show_shapes: show each layer's input and output shapes.
        show_dtype: show each layer's output dtype.
        show_layer_names: show the layer names (else only class names).
        rankdir: Graphviz direction: ``"TB"`` (vertical) or ``"LR"`` (horizontal).
        expand_nested: draw nested models as clusters of their layers.
        dpi: the image resolution.
        subgraph: return a ``pydot.Cluster`` (used for nested models).
        show_layer_activations: show the activation of layers that have one.
        show_trainable: mark layers with weights as trainable or not.
        splines: Graphviz's edge style.
        **kwargs: none accepted (``layer_range`` is refused as in Keras 3).

    Returns:
        A ``pydot.Dot`` (or ``pydot.Cluster`` with ``subgraph=True``).

    Raises:
        ValueError: for an unbuilt model or unknown keyword arguments.
        ImportError: without pydot.
    """
    from lamina.models.functional import Functional
    from lamina.models.sequential import Sequential

    if not model.built:
        raise ValueError("This model has not yet been built. Build the model first by calling "
                         "`build()` or by calling the model on a batch of data.")
    pydot = _pydot("model_to_dot")
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
    if subgraph:
        dot = pydot.Cluster(style="dashed", graph_name=model.name)
        dot.set("label", model.name)
        dot.set("labeljust", "l")
    else:
        dot = pydot.Dot()
        dot.set("rankdir", rankdir)
        dot.set("concentrate", True)
        dot.set("dpi", dpi)
        dot.set("splines", splines)
        dot.set_node_defaults(shape="record")
    options = {"show_layer_names": show_layer_names, "show_dtype": show_dtype,
               "show_layer_activations": show_layer_activations, "show_shapes": show_shapes,
               "show_trainable": show_trainable}

    def node_for(layer):
        node = pydot.Node(str(id(layer)), label=make_layer_label(layer, **options))
        node.set("fontname", "Helvetica")
        node.set("border", "0")
        node.set("margin", "0")
        return node

    if isinstance(model, Sequential):
        layers = model.layers
    elif isinstance(model, Functional):
        layers = _operations(model)
    else:
        dot.add_node(node_for(model))
        return dot
    for layer in layers:
        if expand_nested and isinstance(layer, (Functional, Sequential)):
            dot.add_subgraph(model_to_dot(
                layer, show_shapes, show_dtype, show_layer_names, rankdir, expand_nested,
                subgraph=True, show_layer_activations=show_layer_activations,
                show_trainable=show_trainable))
        else:
            dot.add_node(node_for(layer))
    if isinstance(model, Sequential):
        for src, dst in zip(layers, layers[1:]):
            if expand_nested:
                src, dst = _last(src), _first(dst)
            _add_edge(pydot, dot, src, dst)
        return dot
    own = {id(n) for n in model._nodes}
    for layer in layers:
        for node in layer._inbound_nodes:
            if id(node) not in own:
                continue
            for input_index, tensor in enumerate(node.input_tensors):
                if tensor.node is None:
                    continue
                source, destination = tensor.node.operation, layer
                if expand_nested:
                    source = _last(source, tensor.index)
                    destination = _first(destination, input_index)
                _add_edge(pydot, dot, source, destination)
    return dot


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=False, rankdir="TB", expand_nested=False, dpi=200,
               show_layer_activations=False, show_trainable=False, splines="ortho",
               **kwargs):
    """Draw ``model`` into an image file (``keras.utils.plot_model``).

    Args:
        model: a built Lamina model.
        to_file: the output file; its extension (png, svg, pdf, ...) is the format.
        show_shapes: show input and output shapes.
        show_dtype: show output dtypes.
        show_layer_names: show layer names.
        rankdir: ``"TB"`` or ``"LR"``.
        expand_nested: draw nested models' layers.
        dpi: the image resolution.
        show_layer_activations: show activations.
        show_trainable: show whether layers are trainable.
        splines: Graphviz's edge style.
        **kwargs: none accepted.

    Returns:
        An ``IPython.display.Image`` when IPython is installed and the file is not a PDF,
        else None.

    Raises:
        ImportError: without pydot, or without Graphviz's ``dot`` program.
        ValueError: for an unbuilt model or unknown keyword arguments.
    """
    if not model.built:
        raise ValueError("This model has not yet been built. Build the model first by calling "
                         "`build()` or by calling the model on a batch of data.")
    _pydot("`plot_model`")
    if not check_graphviz():
        raise ImportError(_GRAPHVIZ_MISSING)
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                       show_layer_names=show_layer_names, rankdir=rankdir,
                       expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations,
                       show_trainable=show_trainable, splines=splines)
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:] or "png"
    dot.write(to_file, format=extension)
    if extension != "pdf":
        try:
            from IPython import display
        except ImportError:
            return None
        return display.Image(filename=to_file)
    return None
