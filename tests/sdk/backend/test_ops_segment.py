"""Segment reductions, scatters, ``rearrange`` and the special-function ops: values
against Keras 3.15.1 fixtures (tests/fixtures/ops/make_fixtures.py), numpy and scipy;
gradients against float64 central differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina import ops
from lamina.testing import check_gradients

FIX = np.load(Path(__file__).parents[2] / "fixtures/ops/ops_fixtures.npz", allow_pickle=False)
RNG = np.random.default_rng(13)
IDS = np.array([0, 2, 2, 0, 3, 3, 2])
FULL_IDS = np.array([0, 1, 1, 0, 2, 2, 1])  # no empty segment: no infinite outputs
IDX = np.array([[0, 1], [2, 3], [0, 1], [1, 0]])


def rn(*shape):
    return RNG.standard_normal(shape)


GRAD_CASES = [
    pytest.param(lambda d: ops.segment_sum(d, IDS, num_segments=5), [rn(7, 3)], id="segment_sum"),
    pytest.param(lambda d: ops.segment_max(d, FULL_IDS, num_segments=3), [rn(7, 3)],
                 id="segment_max"),
    pytest.param(lambda d: ops.segment_min(d, FULL_IDS), [rn(7)], id="segment_min"),
    pytest.param(lambda d: ops.segment_prod(d, IDS), [rn(7, 2)], id="segment_prod"),
    pytest.param(lambda v: ops.scatter(IDX, v, (3, 4)), [rn(4)], id="scatter"),
    pytest.param(lambda v: ops.scatter(IDX[:, :1], v, (3, 2)), [rn(4, 2)], id="scatter[rows]"),
    pytest.param(lambda x, u: ops.scatter_update(x, IDX, u), [rn(3, 4), rn(4)],
                 id="scatter_update"),
    pytest.param(lambda x, u: ops.scatter_update(x, IDX, u, reduction="add"),
                 [rn(3, 4), rn(4)], id="scatter_update[add]"),
    pytest.param(lambda x, u: ops.scatter_update(x, IDX, u, reduction="max"),
                 [rn(3, 4), rn(4) + 1], id="scatter_update[max]"),
    pytest.param(lambda x, u: ops.scatter_update(x, IDX, u, reduction="min"),
                 [rn(3, 4), rn(4) - 1], id="scatter_update[min]"),
    pytest.param(lambda x, u: ops.scatter_update(x, IDX, u, reduction="mul"),
                 [rn(3, 4), rn(4)], id="scatter_update[mul]"),
    pytest.param(lambda x, u: ops.slice_update(x, (1, 2), u), [rn(3, 5), rn(2, 2)],
                 id="slice_update"),
    pytest.param(lambda x: ops.rearrange(x, "b (h k) w -> (b w) h k", k=2), [rn(2, 4, 3)],
                 id="rearrange"),
    pytest.param(ops.erfc, [rn(6) * 2], id="erfc"),
    pytest.param(ops.erfinv, [np.tanh(rn(6))], id="erfinv"),
    pytest.param(ops.cdist, [rn(2, 3, 4), rn(2, 5, 4)], id="cdist"),
]


@pytest.mark.parametrize("fn,inputs", GRAD_CASES)
def test_gradient_matches_central_differences(fn, inputs):
    assert np.all(np.isfinite(fn(*[np.asarray(a) for a in inputs]).data))
    assert check_gradients(fn, inputs) <= 1e-6


def test_saturate_cast_gradient_is_zero_where_it_saturates():
    from lamina.backend import Variable, gradients

    x = Variable(np.array([1.0, 7e4, -7e4], "float32"))
    (g,) = gradients(ops.sum(ops.saturate_cast(x, "float16")), [x])
    np.testing.assert_array_equal(g, [1.0, 0.0, 0.0])


@pytest.mark.parametrize("name", ["sum", "max", "min", "prod"])
def test_segments_match_keras(name):
    got = getattr(ops, f"segment_{name}")(FIX["seg_data"], FIX["seg_ids"], num_segments=5)
    assert got.dtype == "float32"
    np.testing.assert_allclose(got.data, FIX[f"seg_{name}"], rtol=1e-6)
    # Without num_segments: the largest id plus one, as Keras's numpy backend.
    short = getattr(ops, f"segment_{name}")(FIX["seg_data"], FIX["seg_ids"])
    np.testing.assert_allclose(short.data, FIX[f"seg_{name}"][:4], rtol=1e-6)


def test_segments_drop_negative_ids():
    got = ops.segment_sum(np.array([1.0, 2.0, 4.0]), np.array([0, -1, 1]))
    np.testing.assert_array_equal(got.data, [1.0, 4.0])


def test_scatters_match_numpy():
    x = np.arange(12.0).reshape(3, 4).astype("float32")
    want = np.zeros((3, 4), "float32")
    np.add.at(want, tuple(IDX.T), [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(ops.scatter(IDX, np.array([1.0, 2.0, 3.0, 4.0], "float32"),
                                              (3, 4)).data, want)
    upd = np.array([10.0, 20.0, 30.0, 40.0], "float32")
    for reduction, at in [(None, None), ("add", np.add), ("max", np.maximum),
                          ("min", np.minimum), ("mul", np.multiply)]:
        want = x.copy()
        if at is None:
            want[tuple(IDX.T)] = upd  # numpy: the last duplicate wins
        else:
            at.at(want, tuple(IDX.T), upd)
        got = ops.scatter_update(x, IDX, upd, reduction=reduction)
        np.testing.assert_array_equal(got.data, want, err_msg=str(reduction))
    want = x.copy()
    want[1:3, 1:3] = -1
    np.testing.assert_array_equal(ops.slice_update(x, (1, 1), -np.ones((2, 2))).data, want)
    with pytest.raises(ValueError, match="Unsupported reduction: avg"):
        ops.scatter_update(x, IDX, upd, reduction="avg")


@pytest.mark.parametrize("key,pattern,lengths", [
    ("a", "b h w c -> b c h w", {}), ("b", "b h w c -> b (h w) c", {}),
    ("c", "b h w (c k) -> (b k) h w c", {"k": 2}), ("d", "b h w c -> (b h) (w c)", {}),
])
def test_rearrange_matches_keras(key, pattern, lengths):
    got = ops.rearrange(FIX["rearrange_x"], pattern, **lengths)
    np.testing.assert_array_equal(got.data, FIX[f"rearrange_{key}"])


def test_rearrange_errors():
    with pytest.raises(ValueError, match="same axes"):
        ops.rearrange(np.ones((2, 3)), "a b -> a c")
    with pytest.raises(ValueError, match="tensor.shape"):
        ops.rearrange(np.ones((2, 3)), "a b c -> a b c")


def test_special_functions_match_scipy():
    special = pytest.importorskip("scipy.special")
    x = np.linspace(-6, 12, 101)
    np.testing.assert_allclose(ops.erfc(x.astype("float32")).data,
                               special.erfc(x.astype("float32")), rtol=2e-6, atol=0)
    u = np.concatenate([np.linspace(-0.999999, 0.999999, 101), [-1.0, 1.0]])
    np.testing.assert_allclose(ops.erfinv(u).data, special.erfinv(u.astype("float32")),
                               rtol=2e-6)
    assert ops.erfinv(np.array([1.5])).data.item() != ops.erfinv(np.array([1.5])).data.item()
    np.testing.assert_allclose(ops.erfc(np.array([0, 1])).data, special.erfc([0, 1]),
                               rtol=1e-6)


def test_small_ops():
    import scipy.spatial.distance as dist

    a, b = rn(4, 3), rn(5, 3)
    np.testing.assert_allclose(ops.cdist(a, b).data, dist.cdist(a, b), rtol=1e-5)
    preds = np.array([[0.1, 0.9, 0.5], [0.3, 0.3, 0.2], [0.2, 0.1, 0.7]])
    got = ops.in_top_k(np.array([2, 1, 1]), preds, 1)
    assert got.dtype == "bool"
    np.testing.assert_array_equal(got.data, [False, True, False])
    np.testing.assert_array_equal(ops.in_top_k(np.array([2, 1, 1]), preds, 2).data,
                                  [True, True, False])
    tied = np.array([[0.5, 0.5, 0.1]])  # ties with the k-th value count as in the top k
    assert ops.in_top_k(np.array([1]), tied, 1).data.tolist() == [True]
    sat = ops.saturate_cast(np.array([-1.0, 256.0, 3.7, np.inf, 3e9], "float32"), "uint8")
    np.testing.assert_array_equal(sat.data, [0, 255, 3, 255, 255])
    sat = ops.saturate_cast(np.array([-3e9, 3e9, np.inf], "float32"), "int32")
    np.testing.assert_array_equal(sat.data, [-2147483648, 2147483647, 2147483647])
    z = ops.polar(np.array([2.0], "float32"), np.array([np.pi / 2], "float32"))
    assert z.dtype == "complex64"
    np.testing.assert_allclose(z.data, [2j], atol=1e-6)
    assert ops.nn.polar is ops.polar
    assert ops.dtype(np.ones(2, "int32")) == "int32" and ops.dtype(lamina.Input((2,))) == \
        "float32"
    assert ops.is_tensor(ops.ones(2)) and not ops.is_tensor(np.ones(2))


def test_ops_inside_functional_models():
    inputs = lamina.Input((7, 3))
    seg = ops.segment_max(ops.transpose(inputs, (1, 0, 2)), IDS, num_segments=4)
    model = lamina.Model(inputs, [seg, ops.rearrange(inputs, "b s c -> b c s"),
                                  ops.erfc(inputs)])
    x = rn(2, 7, 3).astype("float32")
    got = model.predict(x, verbose=0)
    want = ops.segment_max(np.transpose(x, (1, 0, 2)), IDS, num_segments=4).data
    np.testing.assert_allclose(got[0], want)
    np.testing.assert_allclose(got[1], np.transpose(x, (0, 2, 1)))
    np.testing.assert_allclose(got[2], ops.erfc(x).data)


def test_in_top_k_ranks_nan_last():
    preds = np.array([[np.nan, 0.2, 0.1], [0.3, np.nan, 0.5]])
    np.testing.assert_array_equal(ops.in_top_k(np.array([0, 2]), preds, 1).data, [False, True])
    np.testing.assert_array_equal(ops.in_top_k(np.array([1, 1]), preds, 1).data, [True, False])
