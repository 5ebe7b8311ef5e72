"""``timeseries_dataset_from_array``: sliding windows over an array as a Lamina dataset."""

from __future__ import annotations

import numpy as np

from lamina.utils.dataset_utils import BatchDataset


def _check(data, start_index, end_index, sampling_rate, sequence_stride, format):
    n = len(data)
    if start_index:
        if start_index < 0:
            raise ValueError(f"`start_index` must be 0 or greater. Received: "
                             f"start_index={start_index}")
        if start_index >= n:
            raise ValueError("`start_index` must be lower than the length of the data. "
                             f"Received: start_index={start_index}, for data of length {n}")
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError("`end_index` must be higher than `start_index`. Received: "
                             f"start_index={start_index}, and end_index={end_index} ")
        if end_index >= n:
            raise ValueError("`end_index` must be lower than the length of the data. "
                             f"Received: end_index={end_index}, for data of length {n}")
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: "
                             f"end_index={end_index}")
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        if value <= 0:
            raise ValueError(f"`{name}` must be higher than 0. Received: {name}={value}")
        if value >= n:
            raise ValueError(f"`{name}` must be lower than the length of the data. "
                             f"Received: {name}={value}, for data of length {n}")
    if format not in ("tf", "grain"):
        raise ValueError(f'`format` should be either "tf" or "grain". Received: format={format}')


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None, format="tf"):
    """Windows of ``sequence_length`` timesteps over ``data``
    (``keras.utils.timeseries_dataset_from_array``).

    Window ``i`` starts at ``start_index + p_i`` with ``p_i = i * sequence_stride`` and
    holds the rows ``p_i, p_i + sampling_rate, ...`` (``sequence_length`` of them) of
    ``data[start_index:end_index]``; its target is ``targets[start_index + p_i]``. With
    ``shuffle`` the start positions are shuffled by ``np.random.RandomState(seed)`` as
    Keras does, and each pass reshuffles the windows.

    Args:
        data: an array (or list) of timesteps, axis 0 is time.
        targets: the target of each timestep (aligned with ``data``), or None.
        sequence_length: timesteps per window.
        sequence_stride: the step between window starts.
        sampling_rate: the step between the timesteps of a window.
        batch_size: windows per batch; None gives single windows.
        shuffle: shuffle the windows.
        seed: the shuffling seed.
        start_index: the first timestep used (included).
        end_index: the last timestep used (excluded).
        format: ``"tf"`` or ``"grain"``, accepted for compatibility (a Lamina dataset
            either way).

    Returns:
        A :class:`~lamina.utils.dataset_utils.BatchDataset` of ``(windows, targets)``
        (or windows alone without ``targets``).

    Raises:
        ValueError: for indices, rates or strides out of range (naming the value).
    """
    _check(data, start_index, end_index, sampling_rate, sequence_stride, format)
    start_index = start_index or 0
    end_index = end_index if end_index is not None else len(data)
    num_seqs = end_index - start_index - (sequence_length - 1) * sampling_rate
    if targets is not None:
        num_seqs = min(num_seqs, len(targets))
    positions = np.arange(0, num_seqs, sequence_stride, dtype="int64")
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(positions)
    window = np.arange(0, sequence_length * sampling_rate, sampling_rate)
    data_slice = np.asarray(data[start_index:end_index])
    target_slice = None if targets is None else np.asarray(targets[start_index:end_index])

    def load(i):
        rows = data_slice[positions[i] + window]
        return rows if target_slice is None else (rows, target_slice[positions[i]])

    return BatchDataset(len(positions), load, batch_size, shuffle, seed)
