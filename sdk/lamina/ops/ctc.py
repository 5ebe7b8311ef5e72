"""Connectionist temporal classification: ``ctc_loss`` and ``ctc_decode`` (Keras's
``ops.nn``), on the conventions of Keras's JAX backend (its reference implementation).

The loss is the forward (alpha) recursion in log space, composed from differentiable
ops over the time steps, so its gradient is the tape's. Decoding is greedy or a prefix
beam search; it returns values without a gradient.
"""

from __future__ import annotations

import functools

import numpy as np

from lamina.backend.config import result_type
from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops.activations import log_softmax
from lamina.ops.core import cast, convert_to_tensor
from lamina.ops.indexing import take_along_axis
from lamina.ops.manipulation import concatenate, getitem, squeeze
from lamina.ops.math import add, exp, log, negative, where

__all__ = ["ctc_decode", "ctc_loss"]

# Log-probability standing for "impossible": finite, so that no gradient becomes NaN.
_NEG = -1e30


def _int_array(x, name):
    value = np.asarray(_data(x))
    if not np.issubdtype(value.dtype, np.integer):
        if not np.all(value == np.round(value)):
            raise ValueError(f"`{name}` must hold integers. Received: {name}={value!r}")
    return value.astype(np.int64)


def _logsumexp3(a, b, c):
    # The shift is a constant: the result and its gradient are exact for any shift.
    m = constant(np.maximum(np.maximum(a.data, b.data), c.data))
    return add(m, log(add(add(exp(a - m), exp(b - m)), exp(c - m))))


def ctc_loss(target, output, target_length, output_length, mask_index=0):
    """CTC loss of each sequence: ``-log p(target | output)``.

    Args:
        target: ``(batch_size, max_label_length)`` integer labels (padding past
            ``target_length`` is ignored).
        output: ``(batch_size, max_length, num_classes)`` logits (not normalised).
        target_length: ``(batch_size,)`` label lengths.
        output_length: ``(batch_size,)`` numbers of valid time steps.
        mask_index: the blank class.

    Returns:
        ``(batch_size,)`` losses, float32 (or the logits' wider float dtype). A target
        that no alignment within ``output_length`` can produce gets a loss of about
        ``1e30`` (Keras's JAX backend reports about ``1e5``).
    """
    labels = _int_array(target, "target")
    lengths = _int_array(target_length, "target_length")
    steps = _int_array(output_length, "output_length")
    output = convert_to_tensor(output)
    output = cast(output, result_type(output.dtype, "float32"))
    batch, max_steps, num_classes = output.data.shape
    if labels.ndim != 2 or labels.shape[0] != batch:
        raise ValueError("`target` must have shape (batch_size, max_label_length). "
                         f"Received: target.shape={labels.shape}, output.shape="
                         f"{output.data.shape}")
    dtype = output.data.dtype
    width = 2 * labels.shape[1] + 1
    # The extended label sequence: blank, l1, blank, l2, ..., blank.
    ext = np.full((batch, width), mask_index, dtype=np.int64)
    ext[:, 1::2] = np.clip(labels, 0, num_classes - 1)
    skip = np.zeros((batch, width), dtype=bool)
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    logp = log_softmax(output, axis=-1)
    emit = take_along_axis(logp, np.broadcast_to(ext[:, None, :], (batch, max_steps, width)),
                           axis=2)
    neg = np.asarray(_NEG, dtype)
    neg1, neg2 = constant(np.full((batch, 1), neg)), constant(np.full((batch, 2), neg))
    start = np.arange(width) < 2
    alpha = where(start, getitem(emit, (slice(None), 0)), neg)
    for t in range(1, max_steps):
        shift1 = concatenate([neg1, getitem(alpha, (slice(None), slice(0, -1)))], axis=1)
        shift2 = concatenate([neg2, getitem(alpha, (slice(None), slice(0, -2)))], axis=1)
        shift2 = where(skip, shift2, neg)
        new = add(_logsumexp3(alpha, shift1, shift2), getitem(emit, (slice(None), t)))
        alpha = where((t < steps)[:, None], new, alpha)
    last = take_along_axis(alpha, (2 * lengths)[:, None], axis=1)
    before = take_along_axis(alpha, np.maximum(2 * lengths - 1, 0)[:, None], axis=1)
    before = where((lengths > 0)[:, None], before, neg)
    m = constant(np.maximum(last.data, before.data))
    total = add(m, log(add(exp(last - m), exp(before - m))))
    return negative(squeeze(total, axis=1))


def _greedy(x, lengths, merge_repeated, mask_index):
    batch, steps, _ = x.shape
    indices = np.argmax(x, axis=-1)
    scores = np.max(x, axis=-1)
    beyond = np.arange(steps)[None, :] >= lengths[:, None]
    indices = np.where(beyond, mask_index, indices)
    scores = np.where(beyond, 0.0, scores)
    if merge_repeated:
        repeat = np.pad(indices[:, 1:] == indices[:, :-1], ((0, 0), (1, 0)))
        indices = np.where(repeat, mask_index, indices)
    invalid = indices == mask_index
    indices = np.where(invalid, -1, indices)
    order = np.argsort(np.where(invalid, steps, np.arange(steps)[None, :]), axis=-1,
                       kind="stable")
    decoded = np.take_along_axis(indices, order, axis=-1)
    return decoded[None].astype(np.int32), (-np.sum(scores, axis=1))[:, None].astype(x.dtype)


def _accumulate(beams, key, emit=-np.inf, mask=-np.inf):
    e, m = beams.get(key, (-np.inf, -np.inf))
    beams[key] = (np.logaddexp(e, emit), np.logaddexp(m, mask))


def _beam_one(logp, length, beam_width, top_paths, blank):
    """Prefix beam search of one sequence; ``logp`` is ``(steps, classes)``.

    Each prefix keeps two scores: ending in a label (emit) and ending in a blank (mask).
    Extending by its last label merges into the same prefix from the emit state and
    appends from the mask state, as in Keras's JAX backend.
    """
    num_classes = logp.shape[1]
    first = np.argsort(logp[0], kind="stable")[-min(num_classes, beam_width):]
    beams = {}
    for c in first:
        key = () if c == blank else (int(c),)
        emit, mask = beams.get(key, (-np.inf, -np.inf))
        beams[key] = (emit, np.logaddexp(mask, logp[0, c])) if c == blank else (
            np.logaddexp(emit, logp[0, c]), mask)
    for t in range(1, max(int(length), 1)):
        x = logp[t]
        nxt = {}
        add_to = functools.partial(_accumulate, nxt)
        for prefix, (emit, mask) in beams.items():
            total = np.logaddexp(emit, mask)
            add_to(prefix, mask=total + x[blank])
            tail = prefix[-1] if prefix else None
            for c in range(num_classes):
                if c == blank:
                    continue
                if c == tail:
                    add_to(prefix, emit=emit + x[c])
                    add_to(prefix + (c,), emit=mask + x[c])
                else:
                    add_to(prefix + (c,), emit=total + x[c])
        ranked = sorted(nxt.items(), key=lambda kv: -np.logaddexp(*kv[1]))
        beams = dict(ranked[:beam_width])
    ranked = sorted(((k, np.logaddexp(*v)) for k, v in beams.items()), key=lambda kv: -kv[1])
    return ranked[:top_paths]


def ctc_decode(inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1,
               merge_repeated=True, mask_index=0):
    """Decode CTC outputs, greedily or by beam search.

    Args:
        inputs: ``(batch_size, max_length, num_classes)`` logits or log-probabilities.
        sequence_lengths: ``(batch_size,)`` numbers of valid time steps.
        strategy: ``"greedy"`` or ``"beam_search"``.
        beam_width: prefixes kept per step (beam search).
        top_paths: how many decodings to return (beam search; greedy returns one).
        merge_repeated: greedy only: merge repeated labels not separated by a blank.
        mask_index: the blank class.

    Returns:
        ``(decoded, scores)``: ``decoded`` is ``(top_paths, batch_size, max_length)``
        int32 labels padded with -1; ``scores`` is ``(batch_size, top_paths)``: for
        greedy the negated sum of the chosen per-step values, for beam search each
        path's log-probability (after a log-softmax of ``inputs``).
    """
    x = np.asarray(_data(inputs))
    x = x.astype(result_type(x.dtype.name, "float32"), copy=False)
    lengths = _int_array(sequence_lengths, "sequence_lengths")
    if strategy == "greedy":
        decoded, scores = _greedy(x, lengths, merge_repeated, mask_index)
        return constant(decoded), constant(scores)
    if strategy != "beam_search":
        raise ValueError(f"Invalid strategy {strategy}. Supported values are 'greedy' and "
                         "'beam_search'.")
    batch, steps, _ = x.shape
    shifted = x - np.max(x, axis=-1, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    decoded = np.full((top_paths, batch, steps), -1, dtype=np.int32)
    scores = np.full((batch, top_paths), -np.inf, dtype=x.dtype)
    for b in range(batch):
        for k, (prefix, score) in enumerate(_beam_one(logp[b], lengths[b], beam_width,
                                                      top_paths, mask_index)):
            decoded[k, b, :len(prefix)] = prefix
            scores[b, k] = score
    return constant(decoded), constant(scores)


export(globals(), __all__)
