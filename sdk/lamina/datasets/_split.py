"""The fixed, stratified train/test split shared by the dataset loaders."""

from __future__ import annotations

import importlib

import numpy as np

_SEED = 1337


def require(package: str, dataset: str):
    """Import ``package`` or raise an ImportError that names it.

    Raises:
        ImportError: if ``package`` is not installed.
    """
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        top = package.split(".")[0]
        distribution = {"sklearn": "scikit-learn"}.get(top, top)
        raise ImportError(
            f"lamina.datasets.{dataset}.load_data() reads the data shipped with the "
            f"'{distribution}' package, which is not installed. Install it with: "
            f"pip install {distribution}") from exc


def train_test_split(x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2):
    """``(x_train, y_train), (x_test, y_test)``: every class split ``1 - f : f``.

    The split and the row order depend only on the data (a private generator with a
    fixed seed), never on the global random state.
    """
    rng = np.random.default_rng(_SEED)
    train, test = [], []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        cut = int(round(len(rows) * test_fraction))
        test.append(rows[:cut])
        train.append(rows[cut:])
    train = rng.permutation(np.concatenate(train))
    test = rng.permutation(np.concatenate(test))
    return (x[train], y[train]), (x[test], y[test])
