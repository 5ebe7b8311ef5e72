"""The ``.keras`` archive: a zip of ``metadata.json``, ``config.json``, ``model.weights.h5``.

Members are written in Keras's order and stored uncompressed, as Keras 3 writes them.
Reading checks member sizes before decompressing (zip bombs) and turns a truncated or
corrupt archive into a ``ValueError`` that says so.
"""

from __future__ import annotations

import datetime
import io
import json
import zipfile

from lamina.saving import h5_store, limits, object_store
from lamina.saving.file_utils import atomic_path

CONFIG_FILENAME = "config.json"
METADATA_FILENAME = "metadata.json"
WEIGHTS_FILENAME = "model.weights.h5"
_MAX_EXPANSION = 100
_BOMB_FLOOR = 4 * 2**30


def weights_bytes(model, include_optimizer: bool = True) -> bytes:
    """The ``model.weights.h5`` member as bytes."""
    import h5py
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5file:
        h5_store.save_state(model, h5file, include_optimizer=include_optimizer)
    return buffer.getvalue()


def save_keras(model, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
    """Write ``model`` to a ``.keras`` archive atomically.

    Args:
        model: the model to save.
        filepath: destination ending in ``.keras``.
        overwrite: replace an existing file.
        include_optimizer: save the optimizer's variables too.
    """
    from lamina import __version__
    from lamina.saving.serialization import KERAS_VERSION, serialize_keras_object

    config = serialize_keras_object(model)
    if not include_optimizer:
        config.pop("compile_config", None)
    metadata = {"keras_version": KERAS_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "lamina_version": __version__}
    weights = weights_bytes(model, include_optimizer)
    with atomic_path(filepath, overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(METADATA_FILENAME, json.dumps(metadata))
            archive.writestr(CONFIG_FILENAME, json.dumps(config))
            archive.writestr(WEIGHTS_FILENAME, weights)
            object_store.write_assets(model, archive)


def _read_member(archive: zipfile.ZipFile, name: str, cap: int, filepath) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ValueError(f"{filepath!r} is not a valid .keras file: the member {name!r} is "
                         f"missing (members: {archive.namelist()[:10]}).") from None
    if info.file_size > cap or (info.file_size > _BOMB_FLOOR
                                and info.file_size > _MAX_EXPANSION * max(info.compress_size, 1)):
        raise ValueError(f"Refusing {name!r} in {filepath!r}: it expands to {info.file_size} "
                         f"bytes (cap {cap}).")
    with archive.open(info) as member:
        data = member.read(cap + 1)
    if len(data) > cap:
        raise ValueError(f"Refusing {name!r} in {filepath!r}: larger than {cap} bytes.")
    return data


def open_keras(filepath):
    """Read a ``.keras`` archive into ``(config, weights_bytes)``.

    Raises:
        ValueError: for a truncated/corrupt zip, missing members, invalid JSON, or
            members over the size caps.
    """
    try:
        with zipfile.ZipFile(filepath, "r") as archive:
            raw = _read_member(archive, CONFIG_FILENAME, limits.MAX_CONFIG_BYTES, filepath)
            cap = 4 * limits.max_weight_elements() * 64
            weights = _read_member(archive, WEIGHTS_FILENAME, cap, filepath)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ValueError(f"{filepath!r} is not a valid .keras file: the zip archive is "
                         f"truncated or corrupt ({exc}).") from exc
    try:
        config = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{filepath!r}: config.json is not valid JSON ({exc}).") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{filepath!r}: config.json must hold an object.")
    return config, weights


def load_keras(filepath, custom_objects=None, compile=True, safe_mode=True):  # noqa: A002
    """Load a model from a ``.keras`` archive (config first, then weights and optimizer)."""
    from lamina.saving.serialization import deserialize_keras_object

    config, weights = open_keras(filepath)
    model = deserialize_keras_object(config, custom_objects=custom_objects,
                                     safe_mode=safe_mode, compile=compile)
    with h5_store.open_h5(io.BytesIO(weights), f"{WEIGHTS_FILENAME} in {filepath!r}") as h5:
        h5_store.load_state(model, h5, include_optimizer=compile)
    object_store.read_assets(model, filepath)
    return model


def load_weights_from_keras(model, filepath, skip_mismatch: bool = False) -> None:
    """Load only the weights (and optimizer state, if compiled) of a ``.keras`` archive."""
    _, weights = open_keras(filepath)
    with h5_store.open_h5(io.BytesIO(weights), f"{WEIGHTS_FILENAME} in {filepath!r}") as h5:
        h5_store.load_state(model, h5, skip_mismatch=skip_mismatch)
