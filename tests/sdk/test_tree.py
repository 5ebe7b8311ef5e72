"""``keras.tree``: each function against the results Keras 3.15.1 gives (optree rules)."""

from __future__ import annotations

import collections

import pytest

from lamina import tree

Point = collections.namedtuple("Point", "x y")
NEST = {"b": [1, (2, 3)], "a": Point(4, None), "c": {"z": 5, "y": 6}}


def test_flatten_sorts_dict_keys_and_keeps_none():
    assert tree.flatten(NEST) == [4, None, 1, 2, 3, 6, 5]
    assert tree.flatten(7) == [7]
    assert tree.is_nested([]) and not tree.is_nested("ab") and not tree.is_nested(None)


def test_flatten_with_path():
    assert tree.flatten_with_path({"b": [1, 2], "a": 3}) == [
        (("a",), 3), (("b", 0), 1), (("b", 1), 2)]


def test_pack_sequence_as_inverts_flatten_and_keeps_types_and_key_order():
    packed = tree.pack_sequence_as(NEST, tree.flatten(NEST))
    assert packed == NEST and list(packed) == ["b", "a", "c"]
    assert isinstance(packed["a"], Point) and isinstance(packed["b"][1], tuple)
    with pytest.raises(ValueError, match="has 7 leaves but `flat_sequence` has 2"):
        tree.pack_sequence_as(NEST, [1, 2])


def test_map_structure_over_several_structures():
    out = tree.map_structure(lambda a, b: a + b, [1, {"k": 2}], [10, {"k": 20}])
    assert out == [11, {"k": 22}]
    assert tree.map_structure(lambda v: v, NEST) == NEST
    with pytest.raises(ValueError, match="same keys or length"):
        tree.map_structure(lambda a, b: a, [1, 2], [1])


def test_map_structure_up_to():
    out = tree.map_structure_up_to([0, 0], len, [[1, 2], [3]])
    assert out == [2, 1]


def test_assert_same_structure_and_paths():
    tree.assert_same_structure([1, (2, 3)], [4, (5, 6)])
    for check_types in (None, False, True):
        with pytest.raises(ValueError, match="sequence type"):
            tree.assert_same_structure([1, 2], (3, 4), check_types=check_types)
    with pytest.raises(ValueError, match="nested structure"):
        tree.assert_same_structure([1, 2], [1, [2]])
    tree.assert_same_paths({"a": 1, "b": 2}, {"b": 0, "a": 0})
    with pytest.raises(ValueError, match="same paths"):
        tree.assert_same_paths({"a": 1}, {"b": 1})


def test_lists_to_tuples_and_map_shape_structure():
    assert tree.lists_to_tuples([1, [2, {"a": [3]}]]) == (1, (2, {"a": (3,)}))
    shapes = {"x": (None, 3), "y": [(2, 2), (4,)]}
    assert tree.map_shape_structure(lambda s: tuple(s)[-1], shapes) == {"x": 3, "y": [2, 4]}


def test_traverse_top_down_and_bottom_up():
    # top-down: a replacement stops descent; MAP_TO_NONE replaces with None
    out = tree.traverse(lambda x: tree.MAP_TO_NONE if x == (2, 3) else None, [1, (2, 3)])
    assert out == [1, None]
    seen = []
    tree.traverse(lambda x: seen.append(x), [1, [2]], top_down=False)
    assert seen == [1, 2, [2], [1, [2]]]
    doubled = tree.traverse(lambda x: x * 2 if isinstance(x, int) else None, [1, [2]],
                            top_down=False)
    assert doubled == [2, [4]]
