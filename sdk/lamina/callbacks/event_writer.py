"""A minimal TensorFlow event-file writer (TFRecord framing, hand-encoded protobufs).

Record framing: ``uint64 length``, ``uint32 masked_crc32c(length)``, ``data``,
``uint32 masked_crc32c(data)``, all little-endian. ``data`` is an ``Event`` proto:
``wall_time`` (1, double), ``step`` (2, int64), ``file_version`` (3, string) or
``summary`` (5): ``Summary.value`` (1) with ``tag`` (1), ``simple_value`` (2, float) or
``histo`` (5, ``HistogramProto``: min 1, max 2, num 3, sum 4, sum_squares 5,
bucket_limit 6 and bucket 7 as packed doubles).
"""

from __future__ import annotations

import os
import struct
import time

import numpy as np

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 bits and add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _double_field(field: int, value: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", float(value))


def _histogram(values: np.ndarray, buckets: int = 30) -> bytes:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if lo == hi:
        edges = np.array([lo - 0.5, hi + 0.5])
    else:
        edges = np.linspace(lo, hi, buckets + 1)
    counts, edges = np.histogram(values, bins=edges)
    limits = edges[1:].astype(np.float64)
    return (_double_field(1, lo) + _double_field(2, hi) + _double_field(3, values.size)
            + _double_field(4, values.sum()) + _double_field(5, np.square(values).sum())
            + _bytes_field(6, limits.astype("<f8").tobytes())
            + _bytes_field(7, counts.astype("<f8").tobytes()))


class EventFileWriter:
    """Append ``Event`` records to ``<logdir>/events.out.tfevents.<time>.<host>``.

    Args:
        logdir: the directory (created if missing).
    """

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        import socket

        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}"
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across records
        self._write_event(_bytes_field(3, b"brain.Event:2"), step=0)

    def _write_event(self, body: bytes, step: int) -> None:
        event = _double_field(1, time.time()) + _key(2, 0) + _varint(int(step)) + body
        header = struct.pack("<Q", len(event))
        self._file.write(header + struct.pack("<I", masked_crc32c(header)) + event
                         + struct.pack("<I", masked_crc32c(event)))

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Write one scalar summary."""
        item = _bytes_field(1, tag.encode()) + _key(2, 5) + struct.pack("<f", float(value))
        self._write_event(_bytes_field(5, _bytes_field(1, item)), step)

    def histogram(self, tag: str, values, step: int) -> None:
        """Write one histogram summary of ``values``."""
        item = _bytes_field(1, tag.encode()) + _bytes_field(5, _histogram(values))
        self._write_event(_bytes_field(5, _bytes_field(1, item)), step)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
