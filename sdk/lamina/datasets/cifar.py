"""Reading CIFAR's python batches (pickled dicts) without running pickle code."""

from __future__ import annotations

import numpy as np

from lamina.datasets._safe_pickle import load_pickle


def load_batch(fpath, label_key="labels"):
    """Read one CIFAR batch file (Keras's ``cifar.load_batch``).

    The file is a Python 2 pickle of a dict; it is read with the restricted unpickler,
    which builds only dicts, lists, bytes, numbers and numpy arrays.

    Args:
        fpath: path of the batch file.
        label_key: the dict key of the labels (``"labels"``; ``"fine_labels"`` or
            ``"coarse_labels"`` for CIFAR-100).

    Returns:
        ``(data, labels)``: uint8 data ``(n, 3, 32, 32)`` and the labels list.

    Raises:
        pickle.UnpicklingError: if the file names anything but numpy's array globals.
        ValueError: if the file does not hold a dict with ``data`` and ``label_key``.
    """
    with open(fpath, "rb") as f:
        d = load_pickle(f, encoding="bytes")
    if not isinstance(d, dict):
        raise ValueError(f"A CIFAR batch must hold a dict. Received: {type(d).__name__} "
                         f"in fpath={fpath!r}")
    d = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or label_key not in d:
        raise ValueError(f"A CIFAR batch needs the keys 'data' and {label_key!r}. "
                         f"Received: keys={sorted(d)} in fpath={fpath!r}")
    data = np.asarray(d["data"])
    return data.reshape(data.shape[0], 3, 32, 32), d[label_key]


def to_data_format(x):
    """CIFAR's channels-first arrays in Lamina's ``image_data_format``."""
    from lamina.backend.config import image_data_format

    return x.transpose(0, 2, 3, 1) if image_data_format() == "channels_last" else x
