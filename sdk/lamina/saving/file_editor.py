"""``KerasFileEditor``: inspect, compare and edit ``.keras`` / ``.weights.h5`` weights files.

Keras 3's class (``keras/src/saving/file_editor.py``) with the same methods and the
same ``weights_dict`` shape: nested dicts keyed by the file's path elements, where an
object's ``vars`` group is folded into its dict (``{"layers": {"dense": {"0": kernel,
"1": bias}}}``). Unlike Keras, an object that has both its own variables and children
(e.g. an LSTM with ``cell``) keeps both instead of being dropped when its own ``vars``
group is empty; and ``compare`` counts each match and mismatch once (Keras 3.15.1 adds
running totals of nested objects again, e.g. 22 matches for a two-Dense model with Adam
state, which has 14 weights).

Reading is as strict as loading: links, external or virtual datasets, non-numeric
dtypes and shapes over :mod:`lamina.saving.limits` are refused; nothing is unpickled.
Output is plain text (Keras uses ``rich``).
"""

from __future__ import annotations

import collections
import io
import json
import os

import numpy as np

from lamina.saving import h5_store, keras_file, limits, object_store
from lamina.saving.file_utils import atomic_path


def _extract(group, metadata: dict, inner_path: str = "", depth: int = 0):
    """The nested weights dict of an HDF5 group; attributes go to ``metadata``."""
    if depth > limits.MAX_CONFIG_DEPTH:
        raise ValueError(f"The weights file is nested deeper than {limits.MAX_CONFIG_DEPTH} "
                         f"levels at {inner_path!r}.")
    if group.attrs:
        metadata[inner_path] = {k: (v.decode() if isinstance(v, bytes) else v)
                                for k, v in group.attrs.items()}
    result = collections.OrderedDict()
    for key in group.keys():
        value = _entry(group, key, metadata, f"{inner_path}/{key}", depth)
        if value is not None:
            result[key] = value
    return result


def _entry(group, key, metadata, path, depth):
    """A dataset as an array; an object's group as a dict (its ``vars`` folded in)."""
    import h5py
    h5_store._link_check(group, key)
    value = group[key]
    if isinstance(value, h5py.Dataset):
        return h5_store.safe_read(group, key)
    if len(value) == 0:
        return None
    if "vars" not in value:
        return _extract(value, metadata, path, depth + 1)
    h5_store._link_check(value, "vars")
    own = _extract(value["vars"], metadata, path, depth + 1)
    for name in value.keys():  # children of an object that also has variables (LSTM cell)
        if name != "vars":
            child = _entry(value, name, metadata, f"{path}/{name}", depth + 1)
            if child is not None and not (isinstance(child, dict) and not child):
                own[name] = child
    return own or None


class WeightSpec:
    """The shape of a model's weight (what ``compare`` checks), without its values."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def __repr__(self) -> str:
        return f"WeightSpec(shape={self.shape})"


def weight_spec(model) -> dict:
    """Nested ``{path element: {weight name: WeightSpec}}`` of a model, as its file holds."""
    spec: dict = {}
    for path, obj in h5_store.walk(model, include_optimizer=True):
        if object_store.has_own_store(obj):
            store: dict = {}
            obj.save_own_variables(store)
            own = {k: WeightSpec(np.shape(store[k])) for k in sorted(store)}
        else:
            own = {str(i): WeightSpec(v.shape)
                   for i, v in enumerate(h5_store.own_variables(obj))}
        if not own:
            continue
        node = spec
        for part in [p for p in path.split("/") if p]:
            node = node.setdefault(part, {})
        node.update(own)
    return spec


class KerasFileEditor:
    """Inspect, compare and edit the weights of a ``.keras`` or ``.weights.h5`` file.

    Args:
        filepath: the file to open.

    Attributes:
        weights_dict: the nested weights (``{"layers": {"dense": {"0": array}}}``).
        object_metadata: ``{"/layers/dense": {"name": "dense"}}`` from group attributes.
        config: the model config of a ``.keras`` file (None for ``.weights.h5``).
        metadata: ``metadata.json`` of a ``.keras`` file (None for ``.weights.h5``).

    Raises:
        ValueError: for another extension or a corrupt or hostile file.

    Example:

    >>> import os, tempfile, lamina
    >>> model = lamina.Sequential([lamina.Input((2,)), lamina.layers.Dense(3)])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.weights.h5")
    >>> model.save_weights(path)
    >>> editor = KerasFileEditor(path)  # doctest: +ELLIPSIS
    Keras model file '...m.weights.h5'
    >>> editor.rename_object("dense", "dense_renamed")
    >>> sorted(editor.weights_dict["layers"])
    ['dense_renamed']
    """

    def __init__(self, filepath):
        self.filepath = os.fspath(filepath)
        self.metadata = None
        self.config = None
        self.model = None
        if self.filepath.endswith(".keras"):
            self.config, weights = keras_file.open_keras(self.filepath)
            self.metadata = _read_metadata(self.filepath)
            source, what = io.BytesIO(weights), f"model.weights.h5 in {self.filepath!r}"
        elif self.filepath.endswith(".weights.h5"):
            source, what = self.filepath, repr(self.filepath)
        else:
            raise ValueError("Invalid filename: expected a `.keras` `.weights.h5` extension. "
                             f"Received: filepath={self.filepath}")
        self.object_metadata: dict = {}
        with h5_store.open_h5(source, what) as h5file:
            self.weights_dict = _extract(h5file, self.object_metadata)
        print(f"Keras model file '{self.filepath}'")
        if self.metadata is not None:
            print(f"Saved with Keras {self.metadata.get('keras_version')} - date: "
                  f"{self.metadata.get('date_saved')}")

    # -- inspecting ------------------------------------------------------------------------
    def summary(self):
        """Print the weight structure of the opened file."""
        print("Weights structure")
        self._print_tree(self.weights_dict, prefix="  ", inner_path="")

    def _print_tree(self, tree, prefix, inner_path, is_first=True):
        items = list(tree.items())
        for index, (key, value) in enumerate(items):
            path = f"{inner_path}/{key}"
            is_last = index == len(items) - 1
            connector = "> " if is_first else ("└─ " if is_last else "├─ ")
            is_first = False
            if isinstance(value, dict):
                name = self.object_metadata.get(path, {}).get("name")
                print(f"{prefix}{connector}{key}" + (f" ('{name}')" if name else ""))
                self._print_tree(value, prefix + ("    " if is_last else "│   "), path,
                                 is_first=False)
            else:
                print(f"{prefix}{connector}{key}: shape={value.shape}, dtype={value.dtype}")

    def compare(self, reference_model):
        """List the mismatches between the file and a model.

        Args:
            reference_model: the model to compare with.

        Returns:
            ``{"status": "success" | "error", "error_count": int, "match_count": int}``.
        """
        print("Running comparison")
        spec = weight_spec(reference_model)
        checked: set = set()
        errors, matches = _compare(self.weights_dict, spec, "", "saved file",
                                   "reference model", checked)
        reverse_errors, _ = _compare(spec, self.weights_dict, "", "reference model",
                                     "saved file", checked)
        errors += reverse_errors
        print("─────────────────────")
        if errors == 0:
            print("Comparison successful: saved file is compatible with the reference model")
            print(f"    Found {matches} matching weight{'' if matches == 1 else 's'}")
        else:
            print(f"Found {errors} error{'' if errors == 1 else 's'}: saved file is not "
                  "compatible with the reference model")
        return {"status": "error" if errors else "success", "error_count": errors,
                "match_count": matches}

    # -- editing ---------------------------------------------------------------------------
    def _edit_object(self, edit_fn, source_name, target_name=None):
        if target_name is not None and "/" in target_name:
            raise ValueError("Argument `target_name` should be a leaf name, not a full path "
                             f"name. Received: target_name='{target_name}'")
        if "/" in source_name:
            elements = source_name.split("/")
            node = self.weights_dict
            for element in elements[:-1]:
                if not isinstance(node, dict) or element not in node:
                    raise ValueError(f"Path '{source_name}' not found in model.")
                node = node[element]
            if not isinstance(node, dict) or elements[-1] not in node:
                raise ValueError(f"Path '{source_name}' not found in model.")
            edit_fn(node, elements[-1], target_name)
            return
        holders = []
        _find(self.weights_dict, source_name, holders)
        if len(holders) > 1:
            raise ValueError(f"Name '{source_name}' occurs more than once in the model; try "
                             "passing a complete path")
        if not holders:
            raise ValueError(f"Source name '{source_name}' does not appear in the model. Use "
                             "`editor.summary()` to list all objects.")
        edit_fn(holders[0], source_name, target_name)

    def rename_object(self, object_name, new_name):
        """Rename an object (e.g. ``"dense_2"`` or ``"layers/dense_2"``) to ``new_name``."""
        def rename(node, source, target):
            node[target] = node.pop(source)

        self._edit_object(rename, object_name, new_name)

    def delete_object(self, object_name):
        """Remove an object (e.g. ``"dense_2"`` or ``"layers/dense_2"``) and its weights."""
        self._edit_object(lambda node, source, target: node.pop(source), object_name)

    def add_object(self, object_path, weights):
        """Add an object at ``object_path`` (e.g. ``"layers/dense_2"``).

        Args:
            object_path: full path of the new object.
            weights: ``{"0": kernel, "1": bias, ...}``.

        Raises:
            ValueError: if ``weights`` is not a dict or the parent path does not exist.
        """
        weights = _check_weights(weights)
        elements = object_path.split("/")
        node = self.weights_dict
        for element in elements[:-1]:
            if not isinstance(node, dict) or element not in node:
                raise ValueError(f"Path '{'/'.join(elements[:-1])}' not found in model.")
            node = node[element]
        node[elements[-1]] = weights

    def delete_weight(self, object_name, weight_name):
        """Remove the weight ``weight_name`` (e.g. ``"0"``) from an object."""
        def delete(node, source, target):
            if not isinstance(node[source], dict) or weight_name not in node[source]:
                found = list(node[source]) if isinstance(node[source], dict) else []
                raise ValueError(f"Weight {weight_name} not found in object {object_name}. "
                                 f"Weights found: {found}")
            node[source].pop(weight_name)

        self._edit_object(delete, object_name)

    def add_weights(self, object_name, weights):
        """Add weights (``{"2": array, ...}``) to an existing object."""
        weights = _check_weights(weights)
        self._edit_object(lambda node, source, target: node[source].update(weights),
                          object_name)

    # -- saving ----------------------------------------------------------------------------
    def save(self, filepath):
        """Write the edited weights to a ``.weights.h5`` file (atomically).

        Raises:
            ValueError: for another extension or a non-numeric weight.
        """
        import h5py
        filepath = os.fspath(filepath)
        if not filepath.endswith(".weights.h5"):
            raise ValueError("Invalid `filepath` argument: expected a `.weights.h5` extension. "
                             f"Received: filepath={filepath}")
        with atomic_path(filepath) as tmp:
            with h5py.File(tmp, "w") as h5file:
                _write(self.weights_dict, h5file, "")

    def resave_weights(self, filepath):
        """Same as :meth:`save`."""
        self.save(filepath)


def _read_metadata(filepath) -> dict:
    import zipfile

    with zipfile.ZipFile(filepath, "r") as archive:
        raw = keras_file._read_member(archive, keras_file.METADATA_FILENAME,
                                      limits.MAX_CONFIG_BYTES, filepath)
    try:
        metadata = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{filepath!r}: metadata.json is not valid JSON ({exc}).") from exc
    if not isinstance(metadata, dict):
        raise ValueError(f"{filepath!r}: metadata.json must hold an object.")
    return metadata


def _find(tree, name, holders) -> None:
    for value in tree.values():
        if isinstance(value, dict):
            _find(value, name, holders)
    if name in tree:
        holders.append(tree)


def _check_weights(weights) -> dict:
    if not isinstance(weights, dict):
        raise ValueError("Argument `weights` should be a dict where keys are weight names "
                         "(usually '0', '1', etc.) and values are NumPy arrays. Received: "
                         f"type(weights)={type(weights)}")
    return {str(name): np.asarray(value) for name, value in weights.items()}


def _compare(target, spec, inner_path, target_name, ref_name, checked):
    errors = matches = 0
    for key, ref in spec.items():
        path = f"{inner_path}/{key}"
        if path in checked:
            continue
        if key not in target:
            errors += 1
            checked.add(path)
            kind = "Object" if isinstance(ref, dict) else "Weight"
            print(f"...{kind} {path} present in {ref_name}, missing from {target_name}")
            if isinstance(ref, dict):
                print(f"    In {ref_name}, {path} contains the following keys: {list(ref)}")
        elif isinstance(ref, dict) or isinstance(target[key], dict):
            if not (isinstance(ref, dict) and isinstance(target[key], dict)):
                errors += 1
                checked.add(path)
                print(f"...{path} is an object in one and a weight in the other")
                continue
            sub_errors, sub_matches = _compare(target[key], ref, path, target_name, ref_name,
                                               checked)
            errors, matches = errors + sub_errors, matches + sub_matches
        elif tuple(target[key].shape) != tuple(ref.shape):
            errors += 1
            checked.add(path)
            print(f"...Weight shape mismatch for {path}\n    In {ref_name}: "
                  f"shape={tuple(ref.shape)}\n    In {target_name}: "
                  f"shape={tuple(target[key].shape)}")
        else:
            matches += 1
    return errors, matches


def _write(tree, h5file, inner_path) -> None:
    own = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            if value:
                _write(value, h5file, f"{inner_path}/{name}" if inner_path else name)
        else:
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                raise ValueError(f"Weight '{inner_path}/{name}' must be a numeric array. "
                                 f"Received: dtype={array.dtype}")
            own[name] = array
    if own:
        group = h5file.require_group(f"{inner_path}/vars" if inner_path else "vars")
        for name, array in own.items():
            group.create_dataset(name, data=array)
