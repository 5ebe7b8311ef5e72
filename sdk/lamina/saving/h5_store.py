"""Keras 3's ``.weights.h5`` layout, written and read (also inside ``.keras`` archives).

Layout (``keras/src/saving/saving_lib.py``): every saveable object (layer, model,
optimizer) gets a group ``<path>/vars`` with attribute ``name`` and datasets ``"0"``,
``"1"``, ... for its own variables (trainable first, then non-trainable). Children are
addressed by attribute name: a model's ``layers`` first, then other attributes sorted;
members of a list are addressed by ``snake_case(class name)`` with ``_1``, ``_2``, ...
(not by layer name). An LSTM's weights are at ``layers/lstm/cell/vars/0..2``; the
optimizer at ``optimizer/vars/N`` in ``optimizer.variables`` order.

Reading is defensive: external and soft links, external or virtual datasets,
non-numeric dtypes and declared shapes over the size cap are refused before any data
is read, and each dataset's shape must equal its variable's.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from lamina.saving import limits, object_store
from lamina.utils.naming import to_snake_case

if TYPE_CHECKING:  # imported where used: h5py costs ~12 MB at `import lamina`
    import h5py

# Attributes of Lamina's base classes that hold no saveable children of their own.
_SKIP = frozenset({
    "_layers", "_stack", "_input_layer", "_inbound_nodes", "_own_variables", "_nodes",
    "_inputs_struct", "_outputs_struct", "inputs", "outputs", "compiled_loss",
    "compiled_metrics", "_loss_tracker", "_losses", "history", "_compile_config",
    "activity_regularizer",
})


def _is_saveable(obj) -> bool:
    from lamina.layers.layer import Layer
    from lamina.optimizers.base import Optimizer

    return isinstance(obj, (Layer, Optimizer))


def own_variables(obj) -> list:
    """The variables an object saves itself, in Keras's order."""
    from lamina.optimizers.base import Optimizer

    if isinstance(obj, Optimizer):
        return list(obj.variables)
    if callable(getattr(obj, "_saveable_variables", None)):  # LoRA layers save merged weights
        return obj._saveable_variables()
    own = list(getattr(obj, "_own_variables", []))
    return [v for v in own if v.trainable] + [v for v in own if not v.trainable]


def _children(obj):
    """(attribute name, child or container) in Keras's ``_walk_saveable`` order."""
    from lamina.models.functional import Functional
    from lamina.models.sequential import Sequential
    from lamina.optimizers.base import Optimizer

    if isinstance(obj, Optimizer):
        return
    if isinstance(obj, (Functional, Sequential)):
        yield "layers", list(obj.layers)
    for name in sorted(vars(obj)):
        if name in _SKIP or name.startswith("__"):
            continue
        value = vars(obj)[name]
        if _is_saveable(value):
            yield name, value
        elif isinstance(value, (list, tuple, dict)):
            items = list(value.values()) if isinstance(value, dict) else list(value)
            if any(_is_saveable(item) for item in items):
                yield name, items


def walk(model, include_optimizer: bool = True):
    """Yield ``(path, object)`` for every saveable, visiting each object once.

    Args:
        model: the root layer or model.
        include_optimizer: also visit ``model.optimizer``.

    Yields:
        ``(inner_path, obj)``; the root's path is ``""``.
    """
    visited = set()

    def visit(obj, path):
        if id(obj) in visited:
            return
        visited.add(id(obj))
        yield path, obj
        for name, child in _children(obj):
            if name == "optimizer" and not include_optimizer:
                continue
            child_path = f"{path}/{name}" if path else name
            if isinstance(child, list):
                used = {}
                for item in child:
                    if not _is_saveable(item):
                        continue
                    key = to_snake_case(type(item).__name__)
                    if key in used:
                        used[key] += 1
                        key = f"{key}_{used[key]}"
                    else:
                        used[key] = 0
                    yield from visit(item, f"{child_path}/{key}")
            else:
                yield from visit(child, child_path)

    yield from visit(model, "")


def save_state(model, h5file: h5py.File, include_optimizer: bool = True) -> None:
    """Write every saveable's variables into an open HDF5 file in Keras's layout."""
    for path, obj in walk(model, include_optimizer):
        group = h5file.require_group(f"{path}/vars" if path else "vars")
        group.attrs["name"] = str(getattr(obj, "name", ""))
        if object_store.has_own_store(obj):  # e.g. a lookup layer's vars/idf_weights
            obj.save_own_variables(group)
            continue
        for i, variable in enumerate(own_variables(obj)):
            group.create_dataset(str(i), data=np.asarray(variable.data))


# -- reading -------------------------------------------------------------------------------
def _link_check(parent, key: str) -> None:
    import h5py
    link = parent.get(key, getlink=True)
    if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
        raise ValueError(
            f"Refusing to follow an HDF5 {type(link).__name__} at '{parent.name}/{key}': "
            "weights files may only contain plain groups and datasets.")


def safe_group(root, path: str):
    """The group at ``path``, or None if absent; refuses links on the way."""
    import h5py
    node = root
    for part in [p for p in path.split("/") if p]:
        if part not in node:
            _link_check(node, part)  # a dangling soft/external link is absent yet hostile
            return None
        _link_check(node, part)
        node = node[part]
        if not isinstance(node, h5py.Group):
            raise ValueError(f"Expected an HDF5 group at '{node.name}', found a dataset.")
    return node


def safe_read(group, key: str, expected_shape=None) -> np.ndarray:
    """Read one dataset after checking links, storage, dtype and declared shape.

    Raises:
        ValueError: for links, external/virtual storage, non-numeric dtypes, a shape over
            the size cap or different from ``expected_shape``, or unreadable data.
    """
    import h5py
    _link_check(group, key)
    dataset = group[key]
    where = f"{group.name}/{key}"
    if not isinstance(dataset, h5py.Dataset):
        raise ValueError(f"Expected an HDF5 dataset at '{where}', found a group.")
    if dataset.external or dataset.is_virtual:
        raise ValueError(f"Refusing dataset '{where}': external or virtual storage "
                         "(it would read other files).")
    if dataset.dtype.kind not in "biuf":
        raise ValueError(f"Refusing dataset '{where}' of dtype {dataset.dtype}: only numeric "
                         "weights are read.")
    size = math.prod(dataset.shape or ())
    if size > limits.max_weight_elements():
        raise ValueError(f"Refusing dataset '{where}' with declared shape {dataset.shape} "
                         f"({size} elements): over the cap of {limits.max_weight_elements()}.")
    if expected_shape is not None and tuple(dataset.shape) != tuple(expected_shape):
        raise ValueError(f"Shape mismatch at '{where}': the file has {dataset.shape}, the "
                         f"model's variable has {tuple(expected_shape)}.")
    try:
        return dataset[()]
    except (OSError, RuntimeError) as exc:
        raise ValueError(f"Cannot read dataset '{where}': the file is corrupt ({exc}).") from exc


def _vars_group(h5file, path: str):
    group = safe_group(h5file, f"{path}/vars" if path else "vars")
    if group is None and path.startswith("layers"):  # files written by Keras 2.13
        group = safe_group(h5file, "_layer_checkpoint_dependencies" + path[6:] + "/vars")
    return group


def load_state(model, h5file, skip_mismatch: bool = False, include_optimizer: bool = True):
    """Assign every saveable's variables from an open HDF5 file in Keras's layout.

    Args:
        model: the built model (or layer) to fill.
        h5file: an open ``h5py.File``.
        skip_mismatch: skip layers whose variable count or shapes differ instead of raising.
        include_optimizer: also restore ``model.optimizer`` (built first if needed).

    Raises:
        ValueError: for missing groups, count or shape mismatches, or hostile content.
    """
    from lamina.optimizers.base import Optimizer

    optimizer = getattr(model, "optimizer", None)
    if include_optimizer and optimizer is not None and not optimizer.built:
        stored = _vars_group(h5file, "optimizer")
        if stored is not None and len(stored) > len(optimizer.variables):
            optimizer.build(model.trainable_weights)
    for path, obj in walk(model, include_optimizer):
        variables = own_variables(obj)
        group = _vars_group(h5file, path)
        if object_store.has_own_store(obj):
            obj.load_own_variables(object_store.ReadOnlyStore(group))
            continue
        count = 0 if group is None else len(group)
        if count != len(variables):
            message = (f"{'Optimizer' if isinstance(obj, Optimizer) else 'Layer'} "
                       f"'{obj.name}' expected {len(variables)} variables, but received "
                       f"{count} variables during loading (group '{path or '/'}/vars'). "
                       f"Expected: {[v.name for v in variables]}")
            if isinstance(obj, Optimizer):
                warnings.warn("Skipping variable loading: " + message, stacklevel=2)
                continue
            if skip_mismatch:
                continue
            raise ValueError(message)
        values = []
        for i, variable in enumerate(variables):
            try:
                values.append(safe_read(group, str(i), variable.shape))
            except ValueError:
                if skip_mismatch and not isinstance(obj, Optimizer):
                    values = None
                    break
                raise
        for variable, value in zip(variables, values or []):
            variable.assign(np.asarray(value).astype(variable.data.dtype, copy=False))


def open_h5(source, what: str):
    """Open an HDF5 file (path or file object) read-only, with a clear error if corrupt."""
    import h5py
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot open {what} as HDF5: the file is truncated, corrupt or not "
                         f"HDF5 ({exc}).") from exc
