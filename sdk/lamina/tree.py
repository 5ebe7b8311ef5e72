"""Nested structures with ``keras.tree``'s names and rules: the one home of tree helpers.

A structure is a leaf or a list, tuple (named tuples included) or dict of structures.
Dicts are walked in sorted key order (as Keras does), and ``None`` is a leaf.

Example:
    >>> from lamina import tree
    >>> tree.flatten({"b": [1, 2], "a": 3})
    [3, 1, 2]
    >>> tree.pack_sequence_as({"b": [0, 0], "a": 0}, [3, 1, 2])
    {'b': [1, 2], 'a': 3}
"""

from __future__ import annotations

__all__ = ["MAP_TO_NONE", "assert_same_paths", "assert_same_structure", "flatten",
           "flatten_with_path", "is_nested", "lists_to_tuples", "map_shape_structure",
           "map_structure", "map_structure_up_to", "pack_sequence_as", "traverse"]


class _MapToNone:
    def __repr__(self) -> str:
        return "keras.tree.MAP_TO_NONE"


MAP_TO_NONE = _MapToNone()
"""Returned by a :func:`traverse` function to replace a subtree with ``None``."""


def is_nested(structure) -> bool:
    """Whether ``structure`` is a list, tuple or dict (not a leaf)."""
    return isinstance(structure, (list, tuple, dict))


def _children(structure) -> list:
    if isinstance(structure, dict):
        return [structure[k] for k in sorted(structure)]
    return list(structure)


def _keys(structure) -> list:
    return sorted(structure) if isinstance(structure, dict) else list(range(len(structure)))


def _rebuild(structure, children):
    """A structure of ``structure``'s type holding ``children`` (in flatten order)."""
    if isinstance(structure, dict):
        by_key = dict(zip(sorted(structure), children))
        return type(structure)((k, by_key[k]) for k in structure)
    if isinstance(structure, tuple) and hasattr(structure, "_fields"):
        return type(structure)(*children)
    return type(structure)(children)


def flatten(structure, is_leaf=None) -> list:
    """The leaves of ``structure`` in order.

    Args:
        structure: a nested structure.
        is_leaf: optional predicate marking further leaves (Lamina's extension).
    """
    if (is_leaf is not None and is_leaf(structure)) or not is_nested(structure):
        return [structure]
    return [leaf for child in _children(structure) for leaf in flatten(child, is_leaf)]


def flatten_with_path(structure) -> list:
    """``(path, leaf)`` pairs, each path a tuple of keys and indices."""
    if not is_nested(structure):
        return [((), structure)]
    return [((key,) + path, leaf)
            for key, child in zip(_keys(structure), _children(structure))
            for path, leaf in flatten_with_path(child)]


def _same(a, b) -> None:
    if is_nested(a) != is_nested(b):
        raise ValueError("The two structures don't have the same nested structure. "
                         f"Received: a={a!r}, b={b!r}")
    if not is_nested(a):
        return
    # Keras (optree) tells lists, tuples and dicts apart whatever ``check_types`` says.
    if any(isinstance(a, t) != isinstance(b, t) for t in (list, tuple, dict)):
        raise ValueError(f"The two structures don't have the same sequence type. "
                         f"Received: a={type(a).__name__}, b={type(b).__name__}")
    if _keys(a) != _keys(b):
        raise ValueError("The two structures don't have the same keys or length. "
                         f"Received: a={a!r}, b={b!r}")
    for x, y in zip(_children(a), _children(b)):
        _same(x, y)


def assert_same_structure(a, b, check_types=None) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` nest the same way.

    Args:
        a, b: nested structures.
        check_types: deprecated in Keras and ignored: container kinds (list, tuple,
            dict) must always match.
    """
    del check_types
    _same(a, b)


def assert_same_paths(a, b) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same leaf paths."""
    pa, pb = [p for p, _ in flatten_with_path(a)], [p for p, _ in flatten_with_path(b)]
    if set(pa) != set(pb):
        raise ValueError(f"`a` and `b` don't have the same paths. Received: a paths={pa}, "
                         f"b paths={pb}")


def map_structure(func, *structures, none_is_leaf=True, is_leaf=None):
    """``func`` applied to the leaves of ``structures`` (which must nest alike).

    Args:
        func: called with one leaf of each structure.
        *structures: one or more nested structures.
        none_is_leaf: Keras's argument; ``None`` is always a leaf here.
        is_leaf: optional predicate marking further leaves (Lamina's extension).
    """
    if not structures:
        raise ValueError("Must provide at least one structure. Received: structures=()")
    first = structures[0]
    if (is_leaf is not None and is_leaf(first)) or not is_nested(first):
        return func(*structures)
    for other in structures[1:]:
        _same(first, other)
    columns = zip(*(_children(s) for s in structures))
    return _rebuild(first, [map_structure(func, *col, is_leaf=is_leaf) for col in columns])


def map_structure_up_to(shallow_structure, func, *structures):
    """Like :func:`map_structure`, but only as deep as ``shallow_structure``."""
    if not is_nested(shallow_structure):
        return func(*structures)
    for s in structures:
        if not is_nested(s) or _keys(s) != _keys(shallow_structure):
            raise ValueError("The structures don't match `shallow_structure` down to its "
                             f"depth. Received: shallow_structure={shallow_structure!r}, "
                             f"structure={s!r}")
    columns = zip(*(_children(s) for s in structures))
    children = [map_structure_up_to(sub, func, *col)
                for sub, col in zip(_children(shallow_structure), columns)]
    return _rebuild(structures[0], children)


def pack_sequence_as(structure, flat_sequence):
    """``flat_sequence``'s items laid out in ``structure``'s nesting."""
    flat = list(flat_sequence)
    need = len(flatten(structure))
    if len(flat) != need:
        raise ValueError(f"The target structure has {need} leaves but `flat_sequence` has "
                         f"{len(flat)} items. Received: flat_sequence={flat!r}")
    it = iter(flat)

    def pack(s):
        if not is_nested(s):
            return next(it)
        return _rebuild(s, [pack(c) for c in _children(s)])

    return pack(structure)


def lists_to_tuples(structure):
    """The same structure with every list turned into a tuple."""
    if not is_nested(structure):
        return structure
    children = [lists_to_tuples(c) for c in _children(structure)]
    if isinstance(structure, list):
        return tuple(children)
    return _rebuild(structure, children)


def _is_shape(x) -> bool:
    return isinstance(x, (list, tuple)) and not hasattr(x, "_fields") \
        and all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in x)


def map_shape_structure(func, structure):
    """``func`` applied to each shape (a tuple/list of ints and ``None``) in ``structure``."""
    return map_structure(func, structure, is_leaf=_is_shape)


def traverse(func, structure, top_down=True):
    """Apply ``func`` to every node (containers included).

    Top-down, a non-``None`` result replaces the node and its subtree is not visited
    (``MAP_TO_NONE`` replaces it with ``None``); bottom-up, ``func`` sees each node with
    its children already traversed, and a ``None`` result keeps that node.
    """
    def resolve(value):
        return None if value is MAP_TO_NONE else value

    if top_down:
        out = func(structure)
        if out is not None:
            return resolve(out)
        if not is_nested(structure):
            return structure
        return _rebuild(structure, [traverse(func, c, True) for c in _children(structure)])
    node = structure
    if is_nested(structure):
        node = _rebuild(structure, [traverse(func, c, False) for c in _children(structure)])
    out = func(node)
    return node if out is None else resolve(out)
