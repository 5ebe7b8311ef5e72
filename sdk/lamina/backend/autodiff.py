"""Reverse-mode autodiff on numpy.

A :class:`Function` subclass is one primitive: ``forward`` on ndarrays and
``backward`` (its vector-Jacobian product) side by side. Calling
``Fn.apply(*inputs)`` runs the forward and, when recording and any input needs a
gradient, links the output to its inputs. :func:`gradients` walks that graph in
reverse topological order. Broadcasting is undone in exactly one place
(:func:`unbroadcast`, called by the walk), and the walk asserts that every
gradient has the shape of its tensor.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from lamina.backend.blas_threads import tick as _blas_tick
from lamina.backend.tensor import Tensor

_state = threading.local()


def is_recording() -> bool:
    """True when operations record the graph needed for gradients."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Context in which operations do not record gradients (inference)."""
    previous = is_recording()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Context in which operations record gradients again."""
    previous = is_recording()
    _state.enabled = True
    try:
        yield
    finally:
        _state.enabled = previous


class Function:
    """Base of every differentiable primitive.

    Subclasses implement ``forward(self, *arrays, **kwargs) -> ndarray`` and
    ``backward(self, grad) -> tuple`` with one entry per input (``None`` where no
    gradient flows). ``self.needs[i]`` tells whether input ``i`` wants a gradient,
    so a backward can skip work. State needed by ``backward`` is stored on ``self``.
    """

    __slots__ = ("needs", "parents")

    def forward(self, *arrays, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **kwargs) -> Tensor:
        _blas_tick()
        ctx = cls()
        # Lists, not generators: this runs for every primitive of every step.
        if is_recording():
            needs = tuple([isinstance(t, Tensor) and t.requires_grad for t in inputs])
        else:
            needs = (False,) * len(inputs)
        ctx.needs = needs
        out = ctx.forward(*[t.data if isinstance(t, Tensor) else t for t in inputs], **kwargs)
        result = Tensor(out)
        if any(needs):
            result.requires_grad = True
            result._ctx = ctx
            ctx.parents = inputs
        return result


def is_requested(tensor) -> bool:
    """True when the running :func:`gradients` walk reports ``tensor``'s own gradient.

    A backward may hand its parent a gradient that already includes part of the
    parent's own vector-Jacobian product (a max-pool applying the ReLU mask of the
    convolution before it) only when nobody asked for the gradient at that parent.
    """
    return id(tensor) in getattr(_state, "requested", ())


@contextlib.contextmanager
def gradient_ready_hook(hook):
    """Report each source's gradient as soon as it is final, during the backward walk.

    While active (in this thread), every :func:`gradients` call first calls
    ``hook(sources)``; when that returns a callable ``ready``, the walk calls
    ``ready(index, grad)`` once per source that gets a gradient, as soon as the last
    node using ``sources[index]`` has run backward (its gradient gets no further
    contributions; ``grad`` must be read, not kept or modified; a source reached by
    no gradient is not reported: its zeros are in the result), and finally
    ``ready(None, failed)`` when the walk ends (``failed``: it raised). Lets a
    data-parallel strategy start reducing gradients while backward goes on.

    Args:
        hook: ``hook(sources) -> ready or None`` (None: not for this call).
    """
    previous = getattr(_state, "ready_hook", None)
    _state.ready_hook = hook
    try:
        yield
    finally:
        _state.ready_hook = previous


@contextlib.contextmanager
def gradient_destinations(pairs):
    """Offer preallocated arrays for sources' gradients, during the backward walk.

    While active (in this thread), a :func:`gradients` call offers ``array`` as the
    destination of ``source``'s gradient when ``source`` is one of its sources, has
    exactly one recorded use on the tape, is not the target, and ``array`` has the
    source's shape and dtype. The one backward using it may then write the gradient
    into it (``out=``) and return that very array (:func:`gradient_destination` tells
    a backward what is offered); the walk takes it as the source's final gradient, never
    adds into it and returns it uncopied. A backward that ignores the offer returns its
    own array as usual, so results never depend on which ops honour it; callers test
    ``result is array``. After a failed walk an offered array may hold partial values.
    Lets a data-parallel strategy have backward write gradients straight into its
    exchange buffer.

    Args:
        pairs: ``(source, array)`` pairs; arrays must not overlap each other. They
            are offered to one walk only: the first that has any of these sources
            (a second ``gradients`` call in the same step must not overwrite the
            first one's results).
    """
    previous = getattr(_state, "destinations", None)
    _state.destinations = list(pairs)
    try:
        yield
    finally:
        _state.destinations = previous


def gradient_destination(tensor):
    """The array the running walk offers for ``tensor``'s gradient, or None.

    A backward that gets an array must either write the gradient of ``tensor`` into all
    of it and return it as that input's gradient, or not touch it.
    """
    offered = getattr(_state, "offered", None)
    return None if not offered else offered.get(id(tensor))


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched to ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _topological_order(root: Tensor) -> list:
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        ctx = node._ctx
        if ctx is not None:
            for parent, need in zip(ctx.parents, ctx.needs):
                if need and id(parent) not in seen:
                    stack.append((parent, False))
    return order


def gradients(target: Tensor, sources, output_gradient=None) -> list:
    """Return d(target)/d(source) for each source, as ndarrays.

    Args:
        target: the tensor to differentiate (usually a scalar loss).
        sources: tensors (usually variables) to differentiate with respect to.
        output_gradient: the upstream gradient; ones by default.

    Returns:
        A list with one ndarray per source; zeros where the target does not
        depend on the source.
    """
    if not isinstance(target, Tensor):
        raise TypeError(f"gradients() needs a Tensor target. Received: target={target!r}")
    _blas_tick()
    offered = None
    wanted = {id(s) for s in sources}
    found = {}
    claimed = set()
    if target.requires_grad:
        seed = output_gradient
        if seed is None:
            seed = np.ones_like(target.data)
        seed = np.asarray(seed, dtype=target.data.dtype)
        if output_gradient is not None:
            claimed.add(id(_memory_owner(seed)))
        grads = {id(target): seed}
        # Sums the walk allocated itself; only these may be added to in place, since a
        # backward may hand the same array to several parents.
        owned = set()
        outer, _state.requested = getattr(_state, "requested", frozenset()), wanted
        hook = getattr(_state, "ready_hook", None)
        ready = hook(sources) if hook is not None else None
        pairs = getattr(_state, "destinations", None)
        outer_offered, _state.offered = getattr(_state, "offered", None), None
        failed = True
        try:
            _walk(target, grads, wanted, found, owned, sources, ready, pairs)
            failed = False
        finally:
            _state.requested = outer
            offered, _state.offered = _state.offered, outer_offered
            if ready is not None:
                ready(None, failed)
    # Callers (optimizers, clipping) may update gradients in place, so each result must
    # be a writable array of its own: not a read-only broadcast view, not the caller's
    # seed, not memory shared with another result (a backward may hand one array to
    # several parents). Copies are only made in those cases.
    results = []
    for s in sources:
        grad = found.get(id(s))
        if grad is None:
            results.append(np.zeros_like(s.data))
            continue
        if offered and offered.pop(id(s), None) is grad:  # written into its destination
            claimed.add(id(_memory_owner(grad)))  # a source listed twice: a copy next
            results.append(grad)
            continue
        if not grad.flags.writeable or id(_memory_owner(grad)) in claimed:
            grad = grad.copy()
        claimed.add(id(_memory_owner(grad)))
        results.append(grad)
    return results


def _walk(target, grads, wanted, found, owned, sources=(), ready=None, pairs=None):
    """Reverse-topological accumulation of ``grads`` from ``target`` down.

    With ``ready``, calls ``ready(index, grad)`` once a source's gradient is final: once
    every recorded use of it has run backward, so each source counts its remaining uses
    (a source used by nodes that get no gradient is reported by nobody here; the caller
    takes it from the result). With ``pairs`` (:func:`gradient_destinations`), offers
    each source used exactly once its array.
    """
    order = _topological_order(target)
    uses, index = {}, {}
    if ready is not None or pairs:
        index = {id(s): i for i, s in enumerate(sources)}
        uses = dict.fromkeys(index, 0)
        for node in order:
            if node._ctx is not None:
                for parent, need in zip(node._ctx.parents, node._ctx.needs):
                    if need and id(parent) in uses:
                        uses[id(parent)] += 1
        if pairs:
            _state.offered = {
                id(s): array for s, array in pairs
                if uses.get(id(s)) == 1 and s is not target
                and isinstance(array, np.ndarray) and array.shape == np.shape(s.data)
                and array.dtype == s.data.dtype and array.flags.writeable}
            if any(id(s) in index for s, _ in pairs):
                _state.destinations = None  # used up (restored when the context ends)
        uses = uses if ready is not None else {}
        if ready is not None and id(target) in index:
            ready(index[id(target)], grads[id(target)])
    for node in reversed(order):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        if id(node) in wanted:
            found[id(node)] = grad
        ctx = node._ctx
        if ctx is None:
            continue
        parent_grads = ctx.backward(grad)
        for parent, need, pgrad in zip(ctx.parents, ctx.needs, parent_grads):
            if not need:
                continue
            key = id(parent)
            if pgrad is not None:
                _accumulate(grads, owned, ctx, parent, pgrad)
            if key in uses:
                uses[key] -= 1
                if uses[key] == 0 and key in grads:
                    ready(index[key], grads[key])


def _accumulate(grads, owned, ctx, parent, pgrad) -> None:
    """Add ``pgrad`` (un-broadcast to ``parent``'s shape) into ``grads[id(parent)]``,
    in place once the sum is an array of our own (``owned``)."""
    pgrad = unbroadcast(pgrad, parent.data.shape)
    assert pgrad.shape == parent.data.shape, (type(ctx).__name__, pgrad.shape)
    key = id(parent)
    previous = grads.get(key)
    if previous is None:
        grads[key] = pgrad
    elif key in owned:
        previous += pgrad
    else:
        grads[key] = previous + pgrad
        owned.add(key)


def _memory_owner(array: np.ndarray) -> np.ndarray:
    return array if array.base is None else array.base


def backward(target: Tensor, output_gradient=None) -> None:
    """Accumulate d(target)/d(leaf) into ``leaf.grad`` for every leaf that needs it."""
    leaves = [n for n in _topological_order(target) if n._ctx is None and n.requires_grad]
    for leaf, grad in zip(leaves, gradients(target, leaves, output_gradient)):
        leaf.grad = grad if leaf.grad is None else leaf.grad + grad
