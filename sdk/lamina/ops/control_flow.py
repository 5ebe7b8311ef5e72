"""Control flow with Keras's names: ``cond``, ``switch``, loops, ``scan``, ``map``.

Lamina executes eagerly, so every construct runs its Python callables on Tensors: the
branch taken and each iteration executed record ordinary ops on the tape, and gradients
flow through exactly what ran (as they do through an unrolled loop in JAX or PyTorch).
Predicates and indices are read as Python values; they carry no gradient. On
``KerasTensor`` arguments each construct records one node of the functional graph that
replays it on data.
"""

from __future__ import annotations

import builtins

import numpy as np

from lamina import tree
from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.core import convert_to_tensor, zeros_like
from lamina.ops.manipulation import concatenate, flip, getitem, stack

__all__ = [
    "associative_scan", "cond", "fori_loop", "map", "scan", "switch", "vectorized_map",
    "while_loop",
]


def _tensor(x):
    # Python ints become int32, as Keras's convert_to_tensor makes them.
    if isinstance(x, int) and not isinstance(x, bool):
        return convert_to_tensor(x, "int32")
    return convert_to_tensor(x)


def _callable(name, f):
    if not callable(f):
        raise TypeError(f"`{name}` should be a callable. Received: {name}={f!r}")


def cond(pred, true_fn, false_fn):
    """``true_fn()`` if ``pred`` holds, else ``false_fn()``.

    Args:
        pred: a boolean scalar (Python bool or a Tensor of one element).
        true_fn: callable without arguments, run when ``pred`` is true.
        false_fn: callable without arguments, run otherwise.

    Returns:
        The output of the branch that ran (gradients flow through that branch).
    """
    _callable("true_fn", true_fn)
    _callable("false_fn", false_fn)
    return true_fn() if bool(np.asarray(_data(pred))) else false_fn()


def switch(index, branches, *operands):
    """``branches[index](*operands)``, with ``index`` clipped to the valid range.

    Args:
        index: an integer scalar; values below 0 pick the first branch and values past
            the end the last, as in Keras.
        branches: a sequence of callables taking ``*operands``.
        *operands: the arguments of the chosen branch.

    Returns:
        The chosen branch's output.
    """
    if not branches:
        raise ValueError(f"`branches` must not be empty. Received: branches={branches!r}")
    i = int(np.clip(np.asarray(_data(index)).astype(np.int64), 0, len(branches) - 1))
    return branches[i](*operands)


def while_loop(cond, body, loop_vars, maximum_iterations=None):  # noqa: A002 - Keras's name
    """Apply ``body`` to ``loop_vars`` while ``cond(*loop_vars)`` holds.

    Args:
        cond: callable taking the loop variables, returning a boolean scalar.
        body: callable taking the loop variables and returning their new values (same
            structure).
        loop_vars: a Tensor, or a tuple/list of (nested structures of) Tensors.
        maximum_iterations: optional bound on the number of iterations.

    Returns:
        The final loop variables, in the structure of ``loop_vars``.

    Note:
        On KerasTensors the output shapes are found by running the loop once on
        placeholder values (zeros, identity matrices); give ``maximum_iterations`` when
        ``cond`` might hold forever on those.
    """
    _callable("cond", cond)
    _callable("body", body)
    is_tuple = isinstance(loop_vars, (tuple, list))
    state = tuple(loop_vars) if is_tuple else (loop_vars,)
    state = tree.map_structure(_tensor, state)
    steps = 0
    while (maximum_iterations is None or steps < maximum_iterations) and bool(
            np.asarray(_data(cond(*state)))):
        state = body(*state)
        state = tuple(state) if isinstance(state, (tuple, list)) else (state,)
        steps += 1
    return state if is_tuple else state[0]


def fori_loop(lower, upper, body_fun, init_val):
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``.

    Args:
        lower: first loop index (int).
        upper: loop end, exclusive (int).
        body_fun: callable ``(i, val) -> val``.
        init_val: the initial value (any structure of Tensors).

    Returns:
        The final value.
    """
    _callable("body_fun", body_fun)
    val = init_val
    for i in range(int(np.asarray(_data(lower))), int(np.asarray(_data(upper)))):
        val = body_fun(i, val)
    return val


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """Loop ``f`` over the leading axis of ``xs``, carrying a state (``jax.lax.scan``).

    Args:
        f: callable ``(carry, x) -> (carry, y)``; ``x`` is one slice of ``xs`` (``None``
            when ``xs`` is None).
        init: the initial carry (a Tensor or nested structure of Tensors).
        xs: Tensors (or a nested structure of them) to scan over their first axis.
        length: number of iterations when ``xs`` is None (else taken from ``xs``).
        reverse: scan from the end; the stacked ``y`` keeps the input order.
        unroll: accepted for Keras compatibility (a positive int or a bool); execution is
            eager either way.

    Returns:
        ``(carry, ys)``: the final carry and the ``y`` outputs stacked on a new first axis
        (zeros like the carry where ``f`` returns ``y=None``).
    """
    _callable("f", f)
    if not isinstance(unroll, bool) and (not isinstance(unroll, int) or unroll < 1):
        raise ValueError(
            f"`unroll` must be an positive integer or boolean. Received: unroll={unroll}")
    if xs is None and length is None:
        raise ValueError("Got no `xs` to scan over and `length` not provided.")
    xs_flat = [convert_to_tensor(x) for x in tree.flatten(xs)] if xs is not None else []
    n = int(length) if length is not None else shape(xs_flat[0])[0]
    carry = tree.map_structure(_tensor, init)
    ys = []
    order = range(n - 1, -1, -1) if reverse else range(n)
    for i in order:
        x = tree.pack_sequence_as(xs, [getitem(t, i) for t in xs_flat]) if xs_flat else None
        carry, y = f(carry, x)
        ys.append(y if y is not None else tree.map_structure(zeros_like, carry))
    if reverse:
        ys.reverse()
    if not ys:
        return carry, None
    stacked = tree.map_structure(lambda *items: stack(list(items)), *ys)
    return carry, stacked


def map(f, xs):  # noqa: A001 - Keras's name
    """``f`` applied to each slice of ``xs`` along its first axis, results stacked.

    Args:
        f: callable on one slice (a nested structure when ``xs`` is one).
        xs: a Tensor or nested structure of Tensors sharing their first size.

    Returns:
        The outputs of ``f`` stacked on a new first axis.
    """
    _callable("f", f)
    return scan(lambda _, x: ((), f(x)), (), xs)[1]


def vectorized_map(function, elements):
    """``function`` applied to each slice of ``elements`` along the first axis, stacked.

    Args:
        function: callable on one slice; a list/tuple ``elements`` passes a list with one
            slice of each of its Tensors.
        elements: a Tensor, or a list/tuple of Tensors sharing their first size.

    Returns:
        The stacked outputs (a structure of them when ``function`` returns one).
    """
    _callable("function", function)
    if isinstance(elements, (list, tuple)):
        n = shape(elements[0])[0]
        outs = [function([getitem(e, i) for e in elements]) for i in range(n)]
    else:
        outs = [function(getitem(elements, i)) for i in range(shape(elements)[0])]
    return tree.map_structure(lambda *items: stack(list(items)), *outs)


def associative_scan(f, elems, reverse=False, axis=0):
    """Inclusive prefix combination of ``elems`` along ``axis`` with the associative ``f``.

    ``out[0] = elems[0]`` and ``out[i] = f(out[i-1], elems[i])`` (slices keep ``axis``
    with size 1, so ``f`` sees arrays of ``elems``'s rank); for an associative ``f`` this
    equals the parallel scan of ``jax.lax.associative_scan``.

    Args:
        f: associative callable combining two structures like ``elems``.
        elems: a Tensor or nested structure of Tensors with the same size along ``axis``.
        reverse: scan from the end instead.
        axis: the axis to scan along.

    Returns:
        The scanned values, in ``elems``'s structure.
    """
    _callable("f", f)
    flat = [convert_to_tensor(e) for e in tree.flatten(elems)]
    n = shape(flat[0])[axis]
    if any(shape(e)[axis] != n for e in flat[1:]):
        raise ValueError("Array inputs to associative_scan must have the same first "
                         f"dimension. (saw: {[shape(e) for e in flat]})")
    if reverse:
        flat = [flip(e, axis) for e in flat]

    def piece(e, i):
        index = [builtins.slice(None)] * len(shape(e))
        index[axis] = builtins.slice(i, i + 1)
        return getitem(e, tuple(index))

    acc = [piece(e, 0) for e in flat]
    outs = [acc]
    for i in range(1, n):
        combined = f(tree.pack_sequence_as(elems, acc),
                     tree.pack_sequence_as(elems, [piece(e, i) for e in flat]))
        acc = [convert_to_tensor(c) for c in tree.flatten(combined)]
        outs.append(acc)
    result = [concatenate([o[k] for o in outs], axis=axis) for k in range(len(flat))]
    if reverse:
        result = [flip(r, axis) for r in result]
    return tree.pack_sequence_as(elems, result)


export(globals(), __all__)
