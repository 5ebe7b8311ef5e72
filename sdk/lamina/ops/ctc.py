"""Connectionist temporal classification: ``ctc_loss`` and ``ctc_decode`` (Keras's
``ops.nn``), on the conventions of Keras's JAX backend (its reference implementation).

The loss is the forward recursion in log space (Keras's formulation), composed from
differentiable ops over the time steps, so its gradient is the tape's. Decoding is greedy
or a prefix beam search (vectorised over beams and classes); it returns values without a
gradient.
"""

from __future__ import annotations

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

# Keras's (optax's) log-space stand-in for an impossible transition: a finite penalty,
# so a target that cannot fit in the output still gets a finite loss (about 1e5 per
# violation) and every gradient stays finite.
_LOG_EPSILON = -1e5


def _int_array(x, name):
    value = np.asarray(_data(x))
    if not np.issubdtype(value.dtype, np.integer):
        if not np.all(value == np.round(value)):
            raise ValueError(f"`{name}` must hold integers. Received: {name}={value!r}")
    return value.astype(np.int64)


def _logaddexp(a, b):
    # The shift is a constant: the result and its gradient are exact for any shift.
    m = constant(np.maximum(a.data, b.data))
    return add(m, log(add(exp(a - m), exp(b - m))))


def _add_to_labels(phi, added):
    """``phi`` with ``added`` log-added to every entry but the first."""
    head = getitem(phi, (slice(None), slice(0, 1)))
    return concatenate([head, _logaddexp(getitem(phi, (slice(None), slice(1, None))), added)],
                       axis=1)


def ctc_loss(target, output, target_length, output_length, mask_index=0):
    """CTC loss of each sequence: ``-log p(target | output)``.

    The recursion is Keras's JAX one (after optax): per label position, a state that
    last emitted the blank (``phi``, one more than labels) and one that last emitted the
    label (``emit``), in log space, with impossible transitions penalised by ``-1e5``
    rather than forbidden. Possible targets get the exact CTC loss; a target that cannot
    fit in ``output_length`` steps gets about ``1e5`` per violation, as in Keras.

    Args:
        target: ``(batch_size, max_label_length)`` integer labels (padding past
            ``target_length`` is ignored).
        output: ``(batch_size, max_length, num_classes)`` logits (not normalised).
        target_length: ``(batch_size,)`` label lengths.
        output_length: ``(batch_size,)`` numbers of valid time steps.
        mask_index: the blank class.

    Returns:
        ``(batch_size,)`` losses, float32 (or the logits' wider float dtype).
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
    width = labels.shape[1]
    repeat = np.zeros((batch, width), dtype)
    repeat[:, :-1] = labels[:, :-1] == labels[:, 1:]
    no_repeat = (1.0 - repeat).astype(dtype)
    repeat_penalty = (_LOG_EPSILON * repeat).astype(dtype)
    blank_penalty = (_LOG_EPSILON * no_repeat).astype(dtype)
    logp = log_softmax(output, axis=-1)
    emit_lp = take_along_axis(
        logp, np.broadcast_to(np.clip(labels, 0, num_classes - 1)[:, None, :],
                              (batch, max_steps, width)), axis=2)
    blank_lp = getitem(logp, (slice(None), slice(None), slice(mask_index, mask_index + 1)))
    phi = np.full((batch, width + 1), _LOG_EPSILON, dtype)
    phi[:, 0] = 0.0
    phi, emit = constant(phi), constant(np.full((batch, width), _LOG_EPSILON, dtype))
    for t in range(max_steps):
        lp_emit = getitem(emit_lp, (slice(None), t))
        lp_blank = getitem(blank_lp, (slice(None), t))
        # Label -> blank of the next position (penalised where the next label repeats).
        moved = _add_to_labels(phi, emit + repeat_penalty)
        new_emit = _logaddexp(getitem(moved, (slice(None), slice(0, -1))) + lp_emit,
                              emit + lp_emit)
        # Blank self-loop, and label -> blank where the next label repeats.
        new_phi = _add_to_labels(moved + lp_blank, emit + lp_blank + blank_penalty)
        live = (t < steps)[:, None]
        emit, phi = where(live, new_emit, emit), where(live, new_phi, phi)
    final = _add_to_labels(phi, emit)
    last = take_along_axis(final, np.clip(lengths, 0, width)[:, None], axis=1)
    return negative(squeeze(last, axis=1))


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


def _beam_step(prefixes, emit, mask, x, beam_width, blank):
    """One step of the prefix beam search, vectorised over beams and classes.

    Staying (a blank, or repeating the last label from the emit state) keeps a prefix;
    appending class ``c`` extends it, from the mask state only when ``c`` repeats its last
    label. An appended prefix that is already a beam merges into that beam.
    """
    count = len(prefixes)
    total = np.logaddexp(emit, mask)
    tails = np.array([p[-1] if p else -1 for p in prefixes])
    stay_mask = total + x[blank]
    stay_emit = np.where(tails >= 0, emit + x[np.maximum(tails, 0)], -np.inf)
    classes = np.arange(x.shape[0])
    grow = np.where(classes[None, :] == tails[:, None], mask[:, None], total[:, None]) + x
    grow[:, blank] = -np.inf
    index = {p: i for i, p in enumerate(prefixes)}
    for i, p in enumerate(prefixes):
        parent = index.get(p[:-1]) if p else None
        if parent is not None:
            stay_emit[i] = np.logaddexp(stay_emit[i], grow[parent, p[-1]])
            grow[parent, p[-1]] = -np.inf
    scores = np.concatenate([np.logaddexp(stay_emit, stay_mask), grow.ravel()])
    keep = np.argsort(-scores, kind="stable")[:beam_width]
    keep = keep[np.isfinite(scores[keep])]
    new_prefixes, new_emit, new_mask = [], [], []
    for k in keep:
        if k < count:
            new_prefixes.append(prefixes[k])
            new_emit.append(stay_emit[k])
            new_mask.append(stay_mask[k])
        else:
            parent, c = divmod(int(k) - count, x.shape[0])
            new_prefixes.append(prefixes[parent] + (c,))
            new_emit.append(grow[parent, c])
            new_mask.append(-np.inf)
    return new_prefixes, np.array(new_emit), np.array(new_mask)


def _beam_one(logp, length, beam_width, top_paths, blank):
    """Prefix beam search of one sequence; ``logp`` is ``(steps, classes)``.

    Each prefix keeps two scores: ending in a label (emit) and ending in a blank (mask),
    as in Keras's JAX backend, which starts from the ``beam_width`` best first classes.
    """
    num_classes = logp.shape[1]
    first = np.argsort(logp[0], kind="stable")[-min(num_classes, beam_width):][::-1]
    prefixes = [() if c == blank else (int(c),) for c in first]
    emit = np.array([-np.inf if c == blank else logp[0, c] for c in first])
    mask = np.array([logp[0, c] if c == blank else -np.inf for c in first])
    for t in range(1, max(int(length), 1)):
        prefixes, emit, mask = _beam_step(prefixes, emit, mask, logp[t], beam_width, blank)
    scores = np.logaddexp(emit, mask)
    order = np.argsort(-scores, kind="stable")[:top_paths]
    return [(prefixes[i], scores[i]) for i in order]


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
        mask_index: the blank class (``None``: the last class, as Keras).

    Returns:
        ``(decoded, scores)``: ``decoded`` is ``(top_paths, batch_size, max_length)``
        int32 labels padded with -1; ``scores`` is ``(batch_size, top_paths)``: for
        greedy the negated sum of the chosen per-step values, for beam search each
        path's log-probability (after a log-softmax of ``inputs``).
    """
    x = np.asarray(_data(inputs))
    x = x.astype(result_type(x.dtype.name, "float32"), copy=False)
    lengths = _int_array(sequence_lengths, "sequence_lengths")
    if mask_index is None:
        mask_index = x.shape[-1] - 1
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
