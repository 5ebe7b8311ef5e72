"""Size caps applied to untrusted configs and files before anything is allocated.

A config that asks for ``Dense(10**9)`` or a weights file that declares a dataset of
``10**12`` elements is refused with a ``ValueError`` naming the size, instead of
exhausting memory (Keras CVE-2026-0897). The caps are checked:

* on every integer hyper-parameter and shape in a config before a layer is created,
* in :meth:`lamina.layers.Layer.add_weight` while a config is being deserialised
  (:func:`check_weight_shape`), before the initializer allocates,
* on every HDF5 dataset's declared shape before it is read.
"""

from __future__ import annotations

import contextlib
import math
import threading

#: Largest number of elements of one weight built from a config or read from a file
#: (2**28 float32 values = 1 GiB). Raise it with :func:`size_limit` for big trusted models.
MAX_WEIGHT_ELEMENTS = 2**28
#: Largest JSON config (bytes) read from a file.
MAX_CONFIG_BYTES = 64 * 2**20
#: Deepest nesting of a config.
MAX_CONFIG_DEPTH = 64

_state = threading.local()

# Config keys whose integer values size a weight or a tensor.
SIZE_KEYS = frozenset({
    "units", "filters", "input_dim", "output_dim", "num_heads", "key_dim", "value_dim",
    "num_tokens", "max_tokens", "depth", "n", "num_classes", "kernel_size", "pool_size",
    "size", "num_bins", "intermediate_dim", "hidden_dim", "embedding_dim", "vocabulary_size",
})
# Config keys whose values are shapes (lists of ints / None).
SHAPE_KEYS = frozenset({
    "batch_shape", "batch_input_shape", "input_shape", "build_input_shape", "shape",
    "target_shape", "dims", "output_shape",
})


def max_weight_elements() -> int:
    """The active cap on elements per weight."""
    return getattr(_state, "limit", None) or MAX_WEIGHT_ELEMENTS


@contextlib.contextmanager
def size_limit(max_elements: int):
    """Use another cap on elements per weight inside a ``with`` block.

    Args:
        max_elements: positive int.
    """
    if not isinstance(max_elements, int) or max_elements <= 0:
        raise ValueError(f"`max_elements` must be a positive int. Received: {max_elements!r}")
    previous = getattr(_state, "limit", None)
    _state.limit = max_elements
    try:
        yield
    finally:
        _state.limit = previous


@contextlib.contextmanager
def deserializing():
    """Mark the current thread as building objects from an untrusted config."""
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth = depth


def check_weight_shape(layer_name, weight_name, shape) -> None:
    """Refuse a weight over the cap while deserialising (called by ``add_weight``).

    Raises:
        ValueError: naming the layer, the weight, its shape and the cap.
    """
    if not getattr(_state, "depth", 0):
        return
    size = math.prod(int(d) for d in shape)
    if size > max_weight_elements():
        raise ValueError(
            f"Refusing to create weight '{weight_name}' of layer '{layer_name}' with shape "
            f"{tuple(shape)} ({size} elements): the size cap for models built from a config "
            f"is {max_weight_elements()} elements per weight "
            "(lamina.saving.limits.size_limit raises it).")


def check_config_sizes(value, where: str = "config", depth: int = 0) -> None:
    """Walk a config and refuse sizes and shapes over the cap, and excessive nesting.

    Args:
        value: a config (dicts, lists, scalars).
        where: path used in error messages.

    Raises:
        ValueError: naming the key, the value and the cap.
    """
    if depth > MAX_CONFIG_DEPTH:
        raise ValueError(f"The config is nested deeper than {MAX_CONFIG_DEPTH} levels at {where}.")
    cap = max_weight_elements()
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}"
            if key in SIZE_KEYS:
                for d in item if isinstance(item, (list, tuple)) else [item]:
                    if isinstance(d, int) and not isinstance(d, bool) and abs(d) > cap:
                        raise ValueError(
                            f"Refusing {here}={item!r}: the size {d} exceeds the cap of "
                            f"{cap} elements per weight for models built from a config.")
            if key in SHAPE_KEYS and isinstance(item, (list, tuple)):
                dims = [d for d in item if isinstance(d, int) and not isinstance(d, bool)]
                if len(dims) == len([d for d in item if d is not None]) and dims:
                    size = math.prod(abs(d) for d in dims)
                    if size > cap:
                        raise ValueError(
                            f"Refusing {here}={item!r}: the shape has {size} elements, over "
                            f"the cap of {cap} elements for models built from a config.")
            check_config_sizes(item, here, depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_config_sizes(item, f"{where}[{index}]", depth + 1)
