"""``save_model`` / ``load_model`` / ``save_weights`` / ``load_weights`` by file extension.

* ``.keras``: zip archive (config + weights + optimizer state), the recommended format.
* ``.weights.h5``: Keras 3's weights layout (with the optimizer's variables if compiled);
  ``.weights.json``: the index of sharded ``.weights.h5`` files.
* ``.h5`` / ``.hdf5``: legacy Keras 2 layout (full model or weights).

Every write is atomic (:func:`lamina.saving.file_utils.atomic_path`).
"""

from __future__ import annotations

import os

from lamina.saving import h5_store, keras_file, legacy_h5, sharded_h5
from lamina.saving.file_utils import atomic_path


def _path(filepath) -> str:
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"`filepath` must be a path. Received: filepath={filepath!r}")
    return os.fspath(filepath)


def save_model(model, filepath, overwrite=True, zipped=None, include_optimizer=True,
               **kwargs) -> None:
    """Save a model to ``.keras`` (recommended) or legacy ``.h5``.

    Args:
        model: the model.
        filepath: destination; its extension selects the format.
        overwrite: replace an existing file (otherwise ``FileExistsError``).
        zipped: must be None or True (unzipped directories are not supported).
        include_optimizer: also save the optimizer and its state.

    Raises:
        ValueError: for another extension or unsupported options.
    """
    path = _path(filepath)
    unknown = set(kwargs) - {"save_format"}
    if unknown:
        raise ValueError(f"The following argument(s) are not supported: {sorted(unknown)}")
    if zipped is False:
        raise ValueError("Lamina saves `.keras` files zipped only. Received: zipped=False")
    if path.endswith(".keras"):
        keras_file.save_keras(model, path, overwrite, include_optimizer)
    elif path.endswith((".h5", ".hdf5")):
        legacy_h5.save_legacy_h5(model, path, overwrite, include_optimizer)
    else:
        raise ValueError(
            "Invalid filepath extension for saving. Please add either a `.keras` extension "
            "for the native Keras format (recommended) or a `.h5` extension. Use "
            f"`model.export(filepath)` if you want to export a SavedModel. Received: "
            f"filepath={path}")


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):  # noqa: A002
    """Load a model saved by Lamina or Keras (``.keras`` or legacy ``.h5``).

    Args:
        filepath: the file.
        custom_objects: ``{name: class_or_function}`` for custom objects in the file.
        compile: compile the model and restore the optimizer's state.
        safe_mode: refuse Lambda layers (code) in the file; keep True for files you did
            not write.

    Returns:
        The model.

    Raises:
        ValueError: for unknown extensions, corrupt files or refused content.
    """
    path = _path(filepath)
    if not os.path.exists(path):
        raise ValueError(f"File not found: filepath={path}. Please ensure the file is an "
                         "accessible `.keras` zip file.")
    if path.endswith(".keras"):
        return keras_file.load_keras(path, custom_objects, compile, safe_mode)
    if path.endswith((".h5", ".hdf5")):
        return legacy_h5.load_legacy_h5(path, custom_objects, compile, safe_mode)
    raise ValueError(
        f"File format not supported: filepath={path}. Lamina loads `.keras` and legacy "
        "`.h5` files.")


def save_weights(model, filepath, overwrite=True, max_shard_size=None, **kwargs) -> None:
    """Save the model's weights (and optimizer variables, if compiled) to ``.weights.h5``.

    Args:
        model: the built model.
        filepath: ``*.weights.h5``; with ``max_shard_size``, ``*.weights.json`` (the
            index), next to which ``<base>_00000.weights.h5``, ... are written.
        overwrite: replace existing files (otherwise ``FileExistsError``).
        max_shard_size: largest shard in GB (int or float); None writes one file.
        **kwargs: ``include_optimizer`` (default True).

    Raises:
        ValueError: if the name does not fit, or for a bad ``max_shard_size``.
    """
    import h5py
    path = _path(filepath)
    include_optimizer = kwargs.pop("include_optimizer", True)
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {sorted(kwargs)}")
    if max_shard_size is None and not path.endswith(".weights.h5"):
        raise ValueError("The filename must end in `.weights.h5`. Received: "
                         f"filepath={path}")
    if max_shard_size is not None:
        if not path.endswith(("weights.h5", "weights.json")):
            raise ValueError("The filename must end in `.weights.json` when `max_shard_size` "
                             f"is specified. Received: filepath={path}")
        sharded_h5.save_sharded(model, path, max_shard_size, overwrite, include_optimizer)
        return
    with atomic_path(path, overwrite) as tmp:
        with h5py.File(tmp, "w") as h5file:
            h5_store.save_state(model, h5file, include_optimizer=include_optimizer)


def load_weights(model, filepath, skip_mismatch=False, **kwargs) -> None:
    """Load weights from ``.weights.h5``, ``.keras`` or legacy ``.h5`` into a built model.

    Args:
        model: the model (built, with the same architecture).
        filepath: the file.
        skip_mismatch: skip layers whose weights do not match instead of raising.

    Raises:
        ValueError: for unknown extensions, mismatches, corrupt or hostile files.
    """
    path = _path(filepath)
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {sorted(kwargs)}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    if path.endswith(".keras"):
        keras_file.load_weights_from_keras(model, path, skip_mismatch)
    elif path.endswith(".weights.json"):
        sharded_h5.load_sharded(model, path, skip_mismatch)
    elif path.endswith(".weights.h5"):
        with h5_store.open_h5(path, repr(path)) as h5file:
            h5_store.load_state(model, h5file, skip_mismatch=skip_mismatch)
    elif path.endswith((".h5", ".hdf5")):
        legacy_h5.load_legacy_weights(model, path, skip_mismatch)
    else:
        raise ValueError(
            f"File format not supported: filepath={path}. Lamina loads weights from "
            "`.weights.h5`, `.weights.json` (sharded), `.keras` and legacy `.h5` files.")
