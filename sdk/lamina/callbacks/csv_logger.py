"""``CSVLogger``: stream each epoch's logs to a CSV file."""

from __future__ import annotations

import collections.abc
import os

import numpy as np

from lamina.callbacks.callback import Callback


def _handle_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (
            isinstance(value, np.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value


class CSVLogger(Callback):
    """Write ``epoch`` (0-based) and the sorted log keys of every epoch to a CSV file.

    The columns are fixed at the first epoch. When that epoch has no ``val_`` keys a
    ``val_<key>`` column is still added for every key and filled with ``NA`` (as Keras
    does, so that ``validation_freq > 1`` keeps one header). The file is flushed every
    epoch and closed at train end; rows end with ``\\r\\n`` (the ``csv`` excel dialect).

    Args:
        filename: path of the CSV file.
        separator: the field delimiter.
        append: append to an existing file (the header is written only if it is empty).

    Example:

    >>> import lamina
    >>> lamina.callbacks.CSVLogger("training.log").sep
    ','
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            self.append_header = True
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="")  # noqa: SIM115
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend(["val_" + k for k in self.keys])
        if self.writer is None:
            import csv

            class CustomDialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=CustomDialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
