"""``keras.ops.numpy``'s functions that only that namespace has (``ops.numpy.NUMPY_ONLY``).

Two tables, as ``test_ops.py``'s: differentiable ops checked against float64 numpy and
their gradients against float64 central differences (``lamina.testing.check_gradients``);
ops without a gradient checked against numpy and shown not to join the graph. The
coverage test asks for a row for every name.
"""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras
from lamina import ops
from lamina.backend import Tensor, Variable, gradients
from lamina.testing import check_gradients

RNG = np.random.default_rng(2026)


def rn(*shape):
    return RNG.standard_normal(shape)


def pos(*shape):
    return RNG.uniform(0.5, 2.0, shape)


def inside(*shape):
    """Values in (-0.9, 0.9), inside the domain of arcsin, arccos and arctanh."""
    return RNG.uniform(-0.9, 0.9, shape)


def distinct(*shape):
    """Values whose sorted gaps are at least 0.05: quantiles have no ties to tip over."""
    n = int(np.prod(shape))
    return RNG.permutation(np.arange(n) * 0.1 + RNG.uniform(0, 0.05, n)).reshape(shape)


def with_nan(x, frac=0.3):
    x = np.array(x, dtype=np.float64)
    x[RNG.random(x.shape) < frac] = np.nan
    return x


def np_sinc(x):
    return np.sinc(x)


def case(name, fn, ref, *inputs, wrt=None, note=""):
    label = f"{name}[{note}]" if note else name
    return pytest.param(name, fn, ref, inputs, wrt, id=label)


D34 = distinct(3, 4)
NAN34 = with_nan(distinct(3, 4))
NAN34[1, :] = np.nan  # a row with nothing but NaN
NAN34[0, 1] = 0.55
NANS = D34.copy()  # NaN in every row and column, never a whole one
NANS[[0, 1, 2, 2], [1, 3, 0, 2]] = np.nan
M33 = rn(3, 3) + 3 * np.eye(3)
KINK = rn(3, 4)
KINK[np.abs(KINK) < 0.05] = 0.3
CASES = [
    # -- elementwise ------------------------------------------------------------------
    case("tan", ops.tan, np.tan, inside(2, 3)),
    case("sinh", ops.sinh, np.sinh, rn(2, 3) * 2),
    case("cosh", ops.cosh, np.cosh, rn(2, 3) * 2),
    case("arcsin", ops.arcsin, np.arcsin, inside(2, 3)),
    case("arccos", ops.arccos, np.arccos, inside(2, 3)),
    case("arctan", ops.arctan, np.arctan, rn(2, 3) * 3),
    case("arcsinh", ops.arcsinh, np.arcsinh, rn(2, 3) * 3),
    case("arccosh", ops.arccosh, np.arccosh, pos(2, 3) + 1.0),
    case("arctanh", ops.arctanh, np.arctanh, inside(2, 3)),
    case("arctan2", ops.arctan2, np.arctan2, rn(3, 1), rn(1, 4), note="bcast"),
    case("cbrt", ops.cbrt, np.cbrt, KINK * 3),
    case("i0", ops.i0, np.i0, rn(2, 3) * 4),
    case("logaddexp", ops.logaddexp, np.logaddexp, rn(3, 4) * 3, rn(3, 4) * 3),
    case("logaddexp", ops.logaddexp, np.logaddexp, rn(3) + 80, rn(3) - 80, note="far-apart"),
    case("logaddexp2", ops.logaddexp2, np.logaddexp2, rn(3, 4) * 3, rn(4) * 3),
    case("absolute", ops.absolute, np.absolute, KINK),
    case("fabs", ops.fabs, np.fabs, KINK),
    case("deg2rad", ops.deg2rad, np.deg2rad, rn(2, 3) * 90),
    case("rad2deg", ops.rad2deg, np.rad2deg, rn(2, 3)),
    case("exp2", ops.exp2, np.exp2, rn(2, 3) * 3),
    case("hypot", ops.hypot, np.hypot, rn(3, 4), rn(3, 4)),
    case("hypot", lambda x: ops.hypot(x * 1e30, x * 1e30) * 1e-30,
         lambda x: np.hypot(x * 1e30, x * 1e30) * 1e-30, pos(3), note="no-overflow"),
    case("fmax", ops.fmax, np.fmax, D34, D34.T.reshape(3, 4) + 0.013),
    case("fmax", ops.fmax, np.fmax, NANS, with_nan(D34.T.reshape(3, 4) + 0.013),
         note="nan"),
    case("fmin", ops.fmin, np.fmin, NANS, with_nan(D34[::-1] + 0.017), note="nan"),
    case("fmod", ops.fmod, np.fmod, np.array([2.3, -2.3, 5.4, -7.1]),
         np.array([1.1, 1.1, -2.0, -1.9])),
    case("heaviside", lambda x, h: ops.heaviside(np.array([-1.0, 0.0, 2.0, 0.0], "f4"), h) * x,
         lambda x, h: np.heaviside(np.array([-1.0, 0.0, 2.0, 0.0]), h) * x, rn(4), rn(4)),
    case("sinc", ops.sinc, np_sinc, np.array([0.0, 0.3, -1.7, 2.5, 0.0])),
    # The quotient jumps where x2 == 0: differences in x2 are checked away from zero.
    case("divide_no_nan", ops.divide_no_nan,
         lambda a, b: np.where(b == 0, 0.0, a / np.where(b == 0, 1, b)), rn(4),
         np.array([0.7, 0.0, -1.3, 0.0]), wrt=[0], note="zeros"),
    case("divide_no_nan", ops.divide_no_nan, np.divide, rn(3, 1), pos(4)),
    case("ldexp", lambda x: ops.ldexp(x, np.array([3, -2, 0])),
         lambda x: np.ldexp(x, np.array([3, -2, 0])), rn(3)),
    case("nan_to_num", lambda x: ops.nan_to_num(x + np.array([np.nan, np.inf, -np.inf, 0.0], "f4"),
                                                nan=1.5, posinf=9.0, neginf=-9.0),
         lambda x: np.nan_to_num(x + np.array([np.nan, np.inf, -np.inf, 0.0]), nan=1.5,
                                 posinf=9.0, neginf=-9.0), rn(4)),
    case("copy", ops.copy, np.copy, rn(2, 3)),
    case("real", ops.real, np.real, rn(2, 3)),
    case("conj", ops.conj, np.conj, rn(2, 3)),
    case("conjugate", ops.conjugate, np.conjugate, rn(2, 3)),
    # -- statistics ------------------------------------------------------------------
    case("quantile", lambda x: ops.quantile(x, 0.37), lambda x: np.quantile(x, 0.37), D34),
    *[case("quantile", lambda x, m=m: ops.quantile(x, [0.1, 0.5, 0.85], axis=1, method=m),
           lambda x, m=m: np.quantile(x, [0.1, 0.5, 0.85], axis=1, method=m), D34, note=m)
      for m in ("linear", "lower", "higher", "midpoint", "nearest")],
    case("quantile", lambda x: ops.quantile(x, 0.3, axis=(0, 2), keepdims=True),
         lambda x: np.quantile(x, 0.3, axis=(0, 2), keepdims=True), distinct(2, 3, 4),
         note="axes,keepdims"),
    case("nanquantile", lambda x: ops.nanquantile(x, [0.25, 0.6], axis=1),
         lambda x: np.nanquantile(x, [0.25, 0.6], axis=1), with_nan(distinct(4, 5))),
    case("percentile", lambda x: ops.percentile(x, 40, axis=0),
         lambda x: np.percentile(x, 40, axis=0), D34),
    case("nanpercentile", lambda x: ops.nanpercentile(x, [10, 90]),
         lambda x: np.nanpercentile(x, [10, 90]), NANS),
    case("median", ops.median, np.median, D34, note="even"),
    case("median", lambda x: ops.median(x, axis=0), lambda x: np.median(x, axis=0), D34,
         note="odd,axis=0"),
    case("nanmedian", lambda x: ops.nanmedian(x, axis=1), lambda x: np.nanmedian(x, axis=1),
         with_nan(distinct(4, 5))),
    case("nansum", lambda x: ops.nansum(x, axis=1), lambda x: np.nansum(x, axis=1), NAN34),
    case("nanprod", lambda x: ops.nanprod(x, axis=-1, keepdims=True),
         lambda x: np.nanprod(x, axis=-1, keepdims=True), NAN34),
    case("nancumsum", lambda x: ops.nancumsum(x, axis=1), lambda x: np.nancumsum(x, axis=1),
         NAN34),
    case("nancumprod", ops.nancumprod, np.nancumprod, NANS),
    case("nanmean", lambda x: ops.nanmean(x, axis=0), lambda x: np.nanmean(x, axis=0),
         NANS),
    case("nanvar", lambda x: ops.nanvar(x, axis=1), lambda x: np.nanvar(x, axis=1),
         with_nan(distinct(4, 5))),
    case("nanstd", ops.nanstd, np.nanstd, NANS),
    case("nanmax", lambda x: ops.nanmax(x, axis=0), lambda x: np.nanmax(x, axis=0),
         NANS),
    case("nanmin", ops.nanmin, np.nanmin, NANS),
    case("ptp", lambda x: ops.ptp(x, axis=1), lambda x: np.ptp(x, axis=1), D34),
    case("trapezoid", ops.trapezoid, np.trapezoid, rn(3, 4)),
    case("trapezoid", lambda y, x: ops.trapezoid(y, x=x, axis=0),
         lambda y, x: np.trapezoid(y, x=x, axis=0), rn(4, 3), np.cumsum(pos(4)),
         note="sample-points"),
    case("corrcoef", ops.corrcoef, np.corrcoef, rn(3, 6)),
    # -- counting and searching ------------------------------------------------------------
    case("bincount", lambda w: ops.bincount(np.array([0, 3, 3, 1, 0]), weights=w, minlength=6),
         lambda w: np.bincount(np.array([0, 3, 3, 1, 0]), weights=w, minlength=6), rn(5)),
    case("unique", lambda x: ops.unique(ops.concatenate([x, x[:2]])),
         lambda x: np.unique(np.concatenate([x, x[:2]])), rn(5)),
    # -- shapes ----------------------------------------------------------------------
    case("ravel", ops.ravel, np.ravel, rn(2, 3)),
    case("get_item", lambda x: ops.get_item(x, (1, slice(0, 2))), lambda x: x[1, 0:2],
         rn(3, 4)),
    case("append", lambda x, y: ops.append(x, y, axis=1),
         lambda x, y: np.append(x, y, axis=1), rn(2, 3), rn(2, 1)),
    case("append", ops.append, np.append, rn(2, 3), rn(4), note="flat"),
    case("hstack", lambda x, y: ops.hstack([x, y]), lambda x, y: np.hstack([x, y]),
         rn(2, 3), rn(2, 2)),
    case("vstack", lambda x, y: ops.vstack([x, y]), lambda x, y: np.vstack([x, y]),
         rn(3), rn(2, 3)),
    case("dstack", lambda x, y: ops.dstack([x, y]), lambda x, y: np.dstack([x, y]),
         rn(2, 3), rn(2, 3, 2)),
    case("array_split", lambda x: ops.concatenate(
        [p * (i + 1.0) for i, p in enumerate(ops.array_split(x, 3, axis=1))], axis=1),
        lambda x: np.concatenate(
            [p * (i + 1.0) for i, p in enumerate(np.array_split(x, 3, axis=1))], axis=1),
        rn(2, 7)),
    case("hsplit", lambda x: ops.hsplit(x, [1, 3])[1] * 2.0,
         lambda x: np.hsplit(x, [1, 3])[1] * 2.0, rn(2, 5)),
    case("vsplit", lambda x: ops.vsplit(x, 2)[1], lambda x: np.vsplit(x, 2)[1], rn(4, 3)),
    case("dsplit", lambda x: ops.dsplit(x, 2)[0], lambda x: np.dsplit(x, 2)[0], rn(2, 1, 4)),
    case("fliplr", ops.fliplr, np.fliplr, rn(2, 3)),
    case("flipud", ops.flipud, np.flipud, rn(2, 3)),
    case("rot90", ops.rot90, np.rot90, rn(2, 3)),
    case("rot90", lambda x: ops.rot90(x, k=3, axes=(2, 0)),
         lambda x: np.rot90(x, k=3, axes=(2, 0)), rn(2, 3, 4), note="k=3,axes"),
    case("diagonal", lambda x: ops.diagonal(x, 1, 2, 0), lambda x: np.diagonal(x, 1, 2, 0),
         rn(3, 2, 4)),
    case("trace", ops.trace, np.trace, rn(3, 4)),
    case("trace", lambda x: ops.trace(x, -1, 1, 2), lambda x: np.trace(x, -1, 1, 2),
         rn(2, 3, 3), note="offset,axes"),
    case("diagflat", lambda x: ops.diagflat(x, k=-1), lambda x: np.diagflat(x, k=-1),
         rn(2, 2)),
    case("diff", ops.diff, np.diff, rn(3, 5)),
    case("diff", lambda x: ops.diff(x, n=2, axis=0), lambda x: np.diff(x, n=2, axis=0),
         rn(4, 3), note="n=2,axis=0"),
    case("kron", ops.kron, np.kron, rn(2, 3), rn(3, 2)),
    case("kron", ops.kron, np.kron, rn(3), rn(2, 2), note="ranks-differ"),
    case("inner", ops.inner, np.inner, rn(2, 4), rn(3, 4)),
    case("vdot", ops.vdot, np.vdot, rn(2, 3), rn(3, 2)),
    case("cross", ops.cross, np.cross, rn(4, 3), rn(4, 3)),
    case("cross", lambda a, b: ops.cross(a, b, axisa=0, axisb=1, axisc=0),
         lambda a, b: np.cross(a, b, axisa=0, axisb=1, axisc=0), rn(3, 2), rn(2, 3),
         note="axes"),
    case("correlate", ops.correlate, np.correlate, rn(6), rn(3), note="valid"),
    case("correlate", lambda a, v: ops.correlate(a, v, mode="same"),
         lambda a, v: np.correlate(a, v, mode="same"), rn(3), rn(5), note="same,longer-v"),
    case("correlate", lambda a, v: ops.correlate(a, v, mode="full"),
         lambda a, v: np.correlate(a, v, mode="full"), rn(5), rn(3), note="full"),
    case("vander", ops.vander, np.vander, np.array([0.0, 1.5, -0.7])),
    case("vander", lambda x: ops.vander(x, N=4, increasing=True),
         lambda x: np.vander(x, N=4, increasing=True), rn(3), note="N,increasing"),
    case("view", ops.view, lambda x: x, rn(2, 3)),
    case("slogdet", lambda x: ops.slogdet(x)[1], lambda x: np.linalg.slogdet(x)[1], M33),
    case("slogdet", lambda x: ops.slogdet(x)[1] * ops.slogdet(x)[0],
         lambda x: np.prod(np.linalg.slogdet(x), axis=0), M33 - 6 * np.eye(3),
         note="negative-det"),
    case("vectorize", lambda x: ops.vectorize(lambda v: ops.sum(v * v))(x),
         lambda x: x * x, rn(2, 3), note="elementwise"),
    case("vectorize", lambda x, y: ops.vectorize(ops.dot, signature="(n),(n)->()")(x, y),
         lambda x, y: np.einsum("ij,ij->i", x, np.broadcast_to(y, x.shape)), rn(4, 3), rn(3),
         note="signature,bcast"),
    # -- the parameters Keras has that Lamina lacked ------------------------------------------
    *[case("pad", lambda x, m=m: ops.pad(x, [(2, 1), (1, 3)], mode=m),
           lambda x, m=m: np.pad(x, [(2, 1), (1, 3)], mode=m), distinct(3, 4), note=m)
      for m in ("edge", "reflect", "symmetric", "wrap", "maximum", "minimum", "mean",
                "median", "linear_ramp")],
    case("pad", lambda x: ops.pad(x, 1, constant_values=2.5),
         lambda x: np.pad(x, 1, constant_values=2.5), rn(2, 3), note="int-width"),
    case("max", lambda x: ops.max(x, axis=0, initial=0.2),
         lambda x: np.max(x, axis=0, initial=0.2), D34 - 0.6, note="initial"),
    case("min", lambda x: ops.min(x, axis=1, initial=0.5),
         lambda x: np.min(x, axis=1, initial=0.5), D34 - 0.6, note="initial"),
]


def _as_float32(a):
    a = np.asarray(a)
    return a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a


@pytest.mark.parametrize("name,fn,ref,inputs,wrt", CASES)
def test_forward_matches_numpy(name, fn, ref, inputs, wrt):
    arrays = [_as_float32(a) for a in inputs]
    out = fn(*[Tensor(a) for a in arrays])
    assert isinstance(out, Tensor)
    expected = ref(*[a.astype(np.float64) if a.dtype == np.float32 else a for a in arrays])
    assert out.shape == np.shape(expected)
    assert out.dtype == "float32"
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,fn,ref,inputs,wrt", CASES)
def test_float32_gradients_keep_dtype_and_shape(name, fn, ref, inputs, wrt):
    variables = [Variable(_as_float32(a), dtype=_as_float32(a).dtype) for a in inputs]
    out = fn(*variables)
    floats = [v for v in variables if v.dtype == "float32"]
    for v, g in zip(floats, gradients(ops.sum(ops.nan_to_num(out)), floats)):
        assert g.dtype == np.float32
        assert g.shape == v.shape


@pytest.mark.parametrize("name,fn,ref,inputs,wrt", CASES)
def test_gradient_matches_central_differences(name, fn, ref, inputs, wrt):
    assert check_gradients(lambda *a: ops.nan_to_num(fn(*a)), list(inputs), wrt=wrt) <= 1e-6


@pytest.mark.parametrize("name,fn,ref,inputs,wrt", CASES)
def test_symbolic_call_builds_a_model_that_replays_the_op(name, fn, ref, inputs, wrt):
    arrays = [_as_float32(a) for a in inputs]
    symbolic = [keras.Input(batch_shape=a.shape, dtype=a.dtype.name) for a in arrays]
    model = keras.Model(symbolic, fn(*symbolic))
    got = model([Tensor(a) for a in arrays])
    np.testing.assert_allclose(got.data, fn(*[Tensor(a) for a in arrays]).data, rtol=1e-6,
                               atol=1e-6)


# -- ops without a gradient: numpy references, and they never join the graph ------------
X = RNG.standard_normal((3, 4)).astype(np.float32)
INTS = np.array([[4, 6, 12, 7], [9, 0, 3, 5], [1, 2, 8, 8]], dtype=np.int32)
SPECIAL = np.array([1.0, np.nan, np.inf, -np.inf, -0.0], dtype=np.float32)


def _partitioned(x, kth=2):
    idx = np.asarray(ops.argpartition(x, kth).data)
    part = np.take_along_axis(x, idx, -1)
    ok = (np.sort(x, -1)[..., kth] == part[..., kth]) & np.all(
        part[..., :kth] <= part[..., kth:kth + 1], -1) & np.all(
        part[..., kth + 1:] >= part[..., kth:kth + 1], -1)
    return Tensor(ok & (np.sort(idx, -1) == np.arange(x.shape[-1])).all(-1))


NO_GRAD = [
    ("trunc", lambda x: ops.trunc(x * 3), lambda x: np.trunc(x * 3)),
    ("signbit", lambda x: ops.signbit(SPECIAL), lambda x: np.signbit(SPECIAL)),
    ("isneginf", lambda x: ops.isneginf(SPECIAL), lambda x: np.isneginf(SPECIAL)),
    ("isposinf", lambda x: ops.isposinf(SPECIAL), lambda x: np.isposinf(SPECIAL)),
    ("isreal", ops.isreal, np.isreal),
    ("isclose", lambda x: ops.isclose(x, x + 1e-6), lambda x: np.isclose(x, x + 1e-6)),
    ("allclose", lambda x: ops.allclose(x, x * 1.1), lambda x: np.array(False)),
    ("nextafter", lambda x: ops.nextafter(x, 10.0), lambda x: np.nextafter(x, np.float32(10))),
    ("angle", ops.angle, lambda x: np.angle(x).astype(np.float32)),
    ("imag", ops.imag, np.imag),
    ("gcd", lambda x: ops.gcd(INTS, 6), lambda x: np.gcd(INTS, 6)),
    ("lcm", lambda x: ops.lcm(INTS, 4), lambda x: np.lcm(INTS, 4)),
    ("bitwise_and", lambda x: ops.bitwise_and(INTS, 6), lambda x: INTS & 6),
    ("bitwise_or", lambda x: ops.bitwise_or(INTS, 6), lambda x: INTS | 6),
    ("bitwise_xor", lambda x: ops.bitwise_xor(INTS, 6), lambda x: INTS ^ 6),
    ("bitwise_invert", lambda x: ops.bitwise_invert(INTS), lambda x: ~INTS),
    ("bitwise_not", lambda x: ops.bitwise_not(INTS > 4), lambda x: ~(INTS > 4)),
    ("bitwise_left_shift", lambda x: ops.bitwise_left_shift(INTS, 2), lambda x: INTS << 2),
    ("bitwise_right_shift", lambda x: ops.bitwise_right_shift(-INTS, 1), lambda x: -INTS >> 1),
    ("left_shift", lambda x: ops.left_shift(INTS, INTS % 3), lambda x: INTS << (INTS % 3)),
    ("right_shift", lambda x: ops.right_shift(INTS, 1), lambda x: INTS >> 1),
    ("argpartition", lambda x: _partitioned(ops.convert_to_numpy(x)), lambda x: np.ones(3, bool)),
    ("digitize", lambda x: ops.digitize(x, [-1.0, 0.0, 0.5]),
     lambda x: np.digitize(x, [-1.0, 0.0, 0.5]).astype(np.int32)),
    ("searchsorted", lambda x: ops.searchsorted(np.sort(x[0]), x[1], side="right"),
     lambda x: np.searchsorted(np.sort(x[0]), x[1], side="right").astype(np.int32)),
    ("histogram", lambda x: ops.histogram(x, bins=4)[0],
     lambda x: np.histogram(x, bins=4)[0].astype(np.int32)),
    ("histogram", lambda x: ops.histogram(x, bins=3, range=(-1, 1))[1],
     lambda x: np.histogram(x, bins=3, range=(-1, 1))[1].astype(np.float32)),
    ("isin", lambda x: ops.isin(INTS, [8, 0, 3]), lambda x: np.isin(INTS, [8, 0, 3])),
    ("unique", lambda x: ops.unique(INTS, return_inverse=True)[1],
     lambda x: np.unique(INTS, return_inverse=True)[1].astype(np.int32)),
    ("unravel_index", lambda x: ops.stack(ops.unravel_index(INTS.ravel(), (4, 4))),
     lambda x: np.stack(np.unravel_index(INTS.ravel(), (4, 4))).astype(np.int32)),
    ("nanargmax", lambda x: ops.nanargmax(np.where(x > 1, np.nan, x), axis=1),
     lambda x: np.nanargmax(np.where(x > 1, np.nan, x), axis=1).astype(np.int32)),
    ("nanargmin", lambda x: ops.nanargmin(np.where(x < -1, np.nan, x), axis=0, keepdims=True),
     lambda x: np.nanargmin(np.where(x < -1, np.nan, x), axis=0,
                            keepdims=True).astype(np.int32)),
    ("tri", lambda x: ops.tri(3, 5, -1), lambda x: np.tri(3, 5, -1, dtype=np.float32)),
    ("empty", lambda x: ops.empty((2, 3), dtype="int32").shape == (2, 3),
     lambda x: np.array(True)),
    ("empty_like", lambda x: ops.empty_like(x).shape == x.shape, lambda x: np.array(True)),
    ("array", lambda x: ops.array(INTS, dtype="float32"), lambda x: INTS.astype(np.float32)),
    ("geomspace", lambda x: ops.geomspace(2.0, 32.0, 5), lambda x: np.geomspace(2, 32, 5,
                                                                               dtype="f4")),
    ("logspace", lambda x: ops.logspace(0.0, 3.0, 4, base=2.0),
     lambda x: np.logspace(0, 3, 4, base=2.0, dtype="f4")),
    ("bartlett", lambda x: ops.bartlett(6), lambda x: np.bartlett(6).astype("f4")),
    ("blackman", lambda x: ops.blackman(6), lambda x: np.blackman(6).astype("f4")),
    ("hamming", lambda x: ops.hamming(6), lambda x: np.hamming(6).astype("f4")),
    ("hanning", lambda x: ops.hanning(6), lambda x: np.hanning(6).astype("f4")),
    ("kaiser", lambda x: ops.kaiser(6, 4.0), lambda x: np.kaiser(6, 4.0).astype("f4")),
    ("ndim", lambda x: Tensor(np.array(ops.ndim(x))), lambda x: np.array(2)),
    ("size", lambda x: Tensor(np.array(ops.size(x))), lambda x: np.array(12)),
    ("view", lambda x: ops.view(x, "int32"), lambda x: x.view(np.int32)),
    ("slogdet", lambda x: ops.slogdet(x[:, :3])[0],
     lambda x: np.linalg.slogdet(x[:, :3])[0].astype(np.float32)),
]


def _bool_tensor(value):
    return value if isinstance(value, Tensor) else Tensor(np.asarray(value))


@pytest.mark.parametrize("name,fn,ref", NO_GRAD, ids=[c[0] for c in NO_GRAD])
def test_ops_without_gradient(name, fn, ref):
    out = _bool_tensor(fn(Variable(X)))
    expected = np.asarray(ref(X))
    assert out.dtype == expected.dtype.name
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)
    assert not out.requires_grad



def test_every_numpy_name_has_a_row():
    covered = {p.values[0] for p in CASES} | {c[0] for c in NO_GRAD}
    assert set(ops.numpy.NUMPY_ONLY) - covered == set()

