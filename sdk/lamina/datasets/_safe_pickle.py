"""Reading the pickles inside Keras's dataset files without running their code.

``imdb.npz`` and ``reuters.npz`` hold object arrays (a pickle per ``.npy`` member) and
the CIFAR batches are Python pickles of a dict. :class:`RestrictedUnpickler` builds
only what those files need, dicts, lists, tuples, str/bytes, numbers and numpy
arrays; any other global a pickle names (``os.system``, ``builtins.eval``, ...) raises
``pickle.UnpicklingError`` before anything is called. Nothing is imported by name: each
allowed global maps to an object that is already loaded.
"""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np

_RECONSTRUCT = np.ndarray((0,)).__reduce__()[0]  # numpy's ``multiarray._reconstruct``
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy's array-building globals.

    Args:
        file: a binary file object holding the pickle.
        **kwargs: passed to ``pickle.Unpickler`` (``encoding="bytes"`` for Python 2
            pickles such as CIFAR's).
    """

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"Refusing to deserialize `{module}.{name}` while loading a Keras dataset: "
                "only dicts, lists, strings, numbers and numpy arrays are read. The file "
                "may be corrupted or malicious.") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"Refusing a persistent id in a dataset file. "
                                     f"Received: pid={pid!r}")


def load_pickle(file, encoding="ASCII"):
    """Unpickle ``file`` (a binary file object) with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(file, encoding=encoding).load()


def _load_npy(buffer: io.BytesIO) -> np.ndarray:
    try:
        return np.lib.format.read_array(buffer, allow_pickle=False)
    except ValueError:
        # An object array: its payload is a pickle after the .npy header.
        buffer.seek(0)
        version = np.lib.format.read_magic(buffer)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(buffer)
        elif version[0] in (2, 3):
            np.lib.format.read_array_header_2_0(buffer)
        else:
            raise ValueError(f"Unsupported .npy version. Received: version={version}") \
                from None
        return load_pickle(buffer, encoding="latin1")


def load_npz(path) -> dict:
    """The arrays of the ``.npz`` file at ``path`` by name; object arrays are read with
    :class:`RestrictedUnpickler` (``np.load(allow_pickle=True)`` would run any code)."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as raw:
                    arrays[member[:-4]] = _load_npy(io.BytesIO(raw.read()))
    return arrays
