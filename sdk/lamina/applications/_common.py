"""What every application builder shares: argument checks, the input, the top, the weights."""

from __future__ import annotations

import os

from lamina import layers
from lamina.applications import imagenet_utils
from lamina.backend import is_keras_tensor
from lamina.backend.config import image_data_format

ARGS_DOC = """
    Args:
        include_top: whether to include the classifier (global average pooling and a
            Dense layer) at the top.
        weights: None (random initialization), ``"imagenet"`` (Keras's published
            weights, downloaded once into ``~/.keras/models``) or a weights file path.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: optional ``(height, width, channels)``, at least the
            model's minimum size; with ``include_top`` and ImageNet weights it must be
            the default size (e.g. ``(224, 224, 3)``).
        pooling: ``None``, ``"avg"`` or ``"max"`` global pooling when ``include_top``
            is False.
        classes: number of classes for the classifier.
        classifier_activation: activation of the top layer (None gives logits).
        name: the model's name.

    Returns:
        A functional :class:`~lamina.Model`.

    Raises:
        ValueError: for invalid ``weights``, ``classes``, ``input_shape`` or a classifier
            activation other than softmax/None with pretrained weights.
"""


def check_weights_arg(weights, include_top, classes):
    """Keras's checks of ``weights`` and ``classes``.

    Raises:
        ValueError: unless ``weights`` is None, ``"imagenet"`` or an existing file, or
            when ImageNet weights with the classifier are asked for with other than
            1000 classes.
    """
    if not (weights in {"imagenet", None} or os.path.exists(weights)):
        raise ValueError("The `weights` argument should be either `None` (random "
                         "initialization), 'imagenet' (pre-training on ImageNet), or the "
                         f"path to the weights file to be loaded.  Received: weights={weights}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("If using `weights='imagenet'` with `include_top=True`, `classes` "
                         f"should be 1000.  Received classes={classes}")


def image_input(input_tensor, input_shape, default_size, min_size, include_top, weights,
                require_flatten=None):
    """The model's image input: a new ``Input`` or the given ``input_tensor``."""
    shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=default_size, min_size=min_size,
        data_format=image_data_format(),
        require_flatten=include_top if require_flatten is None else require_flatten,
        weights=weights)
    return make_input(input_tensor, shape)


def make_input(input_tensor, shape):
    """A new ``Input`` of ``shape``, or ``input_tensor`` when it is a Keras tensor."""
    if input_tensor is None:
        return layers.Input(shape=shape)
    if not is_keras_tensor(input_tensor):
        return layers.Input(tensor=input_tensor, shape=shape)
    return input_tensor


def source_inputs(tensor):
    """The ``Input`` tensors that ``tensor`` is computed from (``get_source_inputs``)."""
    found, seen, stack = [], set(), [tensor]
    while stack:
        t = stack.pop()
        node = getattr(t, "node", None)
        parents = node.input_tensors if node is not None else []
        if not parents:
            if id(t) not in seen:
                seen.add(id(t))
                found.append(t)
            continue
        stack.extend(reversed(parents))
    return found


def model_inputs(input_tensor, img_input):
    """The functional model's inputs: the sources of ``input_tensor`` when one was given."""
    if input_tensor is None:
        return img_input
    found = source_inputs(input_tensor)
    return found[0] if len(found) == 1 else found


def pooling_top(x, include_top, pooling, classes, classifier_activation, weights,
                avg_name=None, max_name=None, pool_before_top=True, dropout=None):
    """Global pooling and the ``predictions`` Dense, or the pooling for feature extraction."""
    if include_top:
        if pool_before_top:
            x = layers.GlobalAveragePooling2D(name=avg_name)(x)
        if dropout:
            x = layers.Dropout(dropout[0], name=dropout[1])(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name)(x)
    return x


def build_model(input_tensor, img_input, outputs, name):
    """The functional model from the image input (or ``input_tensor``'s sources)."""
    from lamina.models import Model

    return Model(model_inputs(input_tensor, img_input), outputs, name=name)


def load_weights(model, weights, file_name=None, origin=None, file_hash=None):
    """Load ``weights``: Keras's published file for ``"imagenet"`` (cached in
    ``~/.keras/models`` by :func:`lamina.utils.get_file`), or a local weights file."""
    if weights == "imagenet":
        if file_name is None:
            return model
        from lamina.utils import get_file

        load_weights_file(model, get_file(file_name, origin, cache_subdir="models",
                                          file_hash=file_hash))
    elif weights is not None:
        load_weights_file(model, weights)
    return model


def load_weights_file(model, path):
    """Load a weights file into an application model.

    Legacy ``.h5`` files (Keras's published weights) list layers in Keras's functional
    order, and are matched by that order (:func:`keras_layer_order`), as Keras loads
    them; other formats go through ``model.load_weights``.
    """
    path = os.fspath(path)
    if path.endswith((".h5", ".hdf5")) and not path.endswith(".weights.h5"):
        from lamina.saving import h5_store, legacy_h5

        with h5_store.open_h5(path, repr(path)) as h5file:
            group = h5_store.safe_group(h5file, "model_weights")
            legacy_h5.load_weights_from_group(group if group is not None else h5file,
                                              _LayerOrder(model))
    else:
        model.load_weights(path)


def keras_layer_order(model) -> list:
    """``model``'s layers in Keras's order (the functional model's own order)."""
    return model.layers


class _LayerOrder:
    """Stands for a model in the legacy loader, listing its layers in Keras's order."""

    def __init__(self, model):
        self.layers = keras_layer_order(model)
