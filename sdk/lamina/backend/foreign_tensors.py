"""Values from other frameworks that Lamina cannot compute with.

Lamina computes eagerly with NumPy. An eager ``tf.Tensor`` (or torch tensor) converts
through ``__array__``/``.numpy()``, but a *symbolic* ``tf.Tensor`` -- what a function
sees while ``tf.data.Dataset.map`` or ``tf.function`` traces it into a TensorFlow
graph -- holds no values, and running a Lamina layer on it would need Lamina to emit
TensorFlow graph operations (Keras does this by importing TensorFlow; Lamina never
imports it). These are recognised by duck typing, without importing TensorFlow, so the
error says what happened and what to do instead of NumPy's conversion failure.
"""

from __future__ import annotations


def is_graph_tensor(value) -> bool:
    """True for a TensorFlow graph (symbolic) tensor: a ``tensorflow`` type with a
    ``graph`` and no ``numpy()`` (eager tensors have ``numpy()``, no graph)."""
    kind = type(value)
    return (kind.__module__.startswith("tensorflow") and not hasattr(value, "numpy")
            and hasattr(kind, "graph"))


def reject_graph_tensor(value, argument: str) -> None:
    """Raise ``TypeError`` when ``value`` is a TensorFlow graph tensor.

    Args:
        value: the value received.
        argument: how to name it in the message (e.g. ``"inputs of layer 'dense'"``).

    Raises:
        TypeError: naming ``argument``, echoing the tensor and giving the alternatives.
    """
    if is_graph_tensor(value):
        raise TypeError(
            f"Lamina computes eagerly with NumPy and cannot run inside a TensorFlow graph "
            f"(a function given to `tf.data.Dataset.map`, or a `tf.function`): the "
            f"{argument} received a symbolic tf.Tensor with no values. Received: "
            f"{value!r}. Call it outside the graph instead: iterate the dataset and call "
            "it on each batch, make it part of the model (after a `keras.Input`), or use a "
            "Lamina dataset (`keras.utils.*_dataset_from_directory`), whose `map` runs "
            "eagerly.")
