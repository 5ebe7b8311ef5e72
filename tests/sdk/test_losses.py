"""lamina.losses: formulas against numpy, Keras's reference values, reductions,
sample weights, the fused logits paths, gradients, config and registry."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import losses, ops
from lamina.backend import Tensor, Variable, gradients
from lamina.backend.nn import SigmoidCrossEntropy, SoftmaxCrossEntropy
from lamina.testing import check_gradients

EPS = 1e-7
RNG = np.random.default_rng(3)


def dist(*shape):
    p = RNG.uniform(0.05, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


def one_hot(ids, n):
    return np.eye(n)[ids]


def np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_bce(y, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(-1)


def np_cce(y, p):
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -(y * np.log(p)).sum(-1)


def np_huber(y, p, d=1.0):
    e = np.abs(p - y)
    return np.where(e <= d, 0.5 * e**2, d * e - 0.5 * d**2).mean(-1)


def np_hinge_labels(y):
    return 2 * y - 1 if np.all((y == 0) | (y == 1)) else y


def np_cosine(y, p):
    def n(v):
        return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), EPS)

    return -(n(y) * n(p)).sum(-1)


IDS = np.array([0, 3, 2, 2, 1])
YR, PR = RNG.standard_normal((5, 4)), RNG.standard_normal((5, 4))
# Keep |error| away from Huber's delta and hinge margins away from 0 (the kinks).
PR = np.where(np.abs(np.abs(PR - YR) - 1.0) < 0.05, YR + 0.5, PR)
YB = RNG.integers(0, 2, (5, 4)).astype(np.float64)
PB = RNG.uniform(0.05, 0.95, (5, 4))
PM = RNG.standard_normal((5, 4)) * 0.3 + np.where(YB > 0, 0.5, -0.5) * 0.1
YPOS, PPOS = RNG.uniform(0.5, 3.0, (5, 4)), RNG.uniform(0.5, 3.0, (5, 4))

# name, function, numpy reference, y_true, y_pred
CASES = [
    ("mean_squared_error", losses.mean_squared_error, lambda y, p: ((y - p) ** 2).mean(-1),
     YR, PR),
    ("mean_absolute_error", losses.mean_absolute_error, lambda y, p: np.abs(y - p).mean(-1),
     YR, PR),
    ("mean_absolute_percentage_error", losses.mean_absolute_percentage_error,
     lambda y, p: 100 * np.abs((y - p) / np.maximum(np.abs(y), EPS)).mean(-1), YR, PR),
    ("mean_squared_logarithmic_error", losses.mean_squared_logarithmic_error,
     lambda y, p: ((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(y, EPS) + 1)) ** 2)
     .mean(-1), YPOS, PPOS),
    ("huber", losses.huber, np_huber, YR, PR),
    ("huber[delta=0.5]", lambda y, p: losses.huber(y, p, delta=0.5),
     lambda y, p: np_huber(y, p, 0.5), YR, np.where(np.abs(np.abs(PR - YR) - 0.5) < 0.05,
                                                       YR + 0.2, PR)),
    ("log_cosh", losses.log_cosh, lambda y, p: np.log(np.cosh(p - y)).mean(-1), YR, PR),
    ("binary_crossentropy", losses.binary_crossentropy, np_bce, YB, PB),
    ("binary_crossentropy[from_logits]",
     lambda y, p: losses.binary_crossentropy(y, p, from_logits=True),
     lambda y, z: np_bce(y, 1 / (1 + np.exp(-z))), YB, PR),
    ("binary_crossentropy[label_smoothing]",
     lambda y, p: losses.binary_crossentropy(y, p, label_smoothing=0.2),
     lambda y, p: np_bce(y * 0.8 + 0.1, p), YB, PB),
    ("binary_crossentropy[sigmoid-output]",
     lambda y, z: losses.binary_crossentropy(y, ops.sigmoid(z)),
     lambda y, z: np_bce(y, 1 / (1 + np.exp(-z))), YB, PR),
    ("categorical_crossentropy", losses.categorical_crossentropy, np_cce,
     one_hot(IDS, 4), dist(5, 4)),
    ("categorical_crossentropy[unnormalised]", losses.categorical_crossentropy, np_cce,
     dist(5, 4), dist(5, 4) * 3),
    ("categorical_crossentropy[from_logits]",
     lambda y, p: losses.categorical_crossentropy(y, p, from_logits=True),
     lambda y, z: np_cce(y, np_softmax(z)), dist(5, 4), PR),
    ("categorical_crossentropy[label_smoothing]",
     lambda y, p: losses.categorical_crossentropy(y, p, label_smoothing=0.1),
     lambda y, p: np_cce(y * 0.9 + 0.1 / 4, p), one_hot(IDS, 4), dist(5, 4)),
    ("categorical_crossentropy[softmax-output]",
     lambda y, z: losses.categorical_crossentropy(y, ops.softmax(z)),
     lambda y, z: np_cce(y, np_softmax(z)), one_hot(IDS, 4), PR),
    ("categorical_crossentropy[axis=0]",
     lambda y, p: losses.categorical_crossentropy(y, p, axis=0),
     lambda y, p: np_cce(y.T, p.T), one_hot(IDS, 4).T, dist(5, 4).T),
    ("sparse_categorical_crossentropy", losses.sparse_categorical_crossentropy,
     lambda y, p: np_cce(one_hot(y, 4), p), IDS, dist(5, 4)),
    ("sparse_categorical_crossentropy[ids(N,1)]", losses.sparse_categorical_crossentropy,
     lambda y, p: np_cce(one_hot(y[:, 0], 4), p), IDS[:, None], dist(5, 4)),
    ("sparse_categorical_crossentropy[from_logits]",
     lambda y, p: losses.sparse_categorical_crossentropy(y, p, from_logits=True),
     lambda y, z: np_cce(one_hot(y, 4), np_softmax(z)), IDS, PR),
    ("sparse_categorical_crossentropy[softmax-output]",
     lambda y, z: losses.sparse_categorical_crossentropy(y, ops.softmax(z)),
     lambda y, z: np_cce(one_hot(y, 4), np_softmax(z)), IDS, PR),
    ("sparse_categorical_crossentropy[ignore_class]",
     lambda y, p: losses.sparse_categorical_crossentropy(y, p, ignore_class=2),
     lambda y, p: np.where(y == 2, 0.0, np_cce(one_hot(y, 4), p)), IDS, dist(5, 4)),
    ("kl_divergence", losses.kl_divergence,
     lambda y, p: (np.clip(y, EPS, 1) * np.log(np.clip(y, EPS, 1) / np.clip(p, EPS, 1)))
     .sum(-1), dist(5, 4), dist(5, 4)),
    ("poisson", losses.poisson, lambda y, p: (p - y * np.log(p + EPS)).mean(-1), YPOS, PPOS),
    ("hinge", losses.hinge,
     lambda y, p: np.maximum(1 - np_hinge_labels(y) * p, 0).mean(-1), YB, PM),
    ("hinge[-1/1]", losses.hinge, lambda y, p: np.maximum(1 - y * p, 0).mean(-1),
     2 * YB - 1, PM),
    ("squared_hinge", losses.squared_hinge,
     lambda y, p: (np.maximum(1 - np_hinge_labels(y) * p, 0) ** 2).mean(-1), YB, PM),
    ("categorical_hinge", losses.categorical_hinge,
     lambda y, p: np.maximum(((1 - y) * p).max(-1) - (y * p).sum(-1) + 1, 0),
     one_hot(IDS, 4), PR),
    ("cosine_similarity", losses.cosine_similarity, np_cosine, YR, PR),
]


@pytest.mark.parametrize("name,fn,ref,y,p", CASES, ids=[c[0] for c in CASES])
def test_loss_function_matches_numpy(name, fn, ref, y, p):
    out = fn(y, Tensor(p.astype(np.float32)))
    assert out.shape == (p.shape[0],) if "axis=0" not in name else (p.shape[1],)
    assert out.dtype == "float32"
    expected = ref(y, p.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(out.data, expected, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name,fn,ref,y,p", CASES, ids=[c[0] for c in CASES])
def test_loss_gradient_matches_central_differences(name, fn, ref, y, p):
    assert check_gradients(fn, [y, p], wrt=[1]) <= 1e-6


# Keras's documented values: class, kwargs, y_true, y_pred,
# (default, with sample_weight, sum, none), sample_weight.
Y01, P01 = [[0.0, 1.0], [0.0, 0.0]], [[0.6, 0.4], [0.4, 0.6]]
KERAS = [
    (losses.MeanSquaredError, {}, Y01, [[1.0, 1.0], [1.0, 0.0]],
     (0.5, 0.25, 1.0, [0.5, 0.5]), [0.7, 0.3]),
    (losses.MeanAbsoluteError, {}, Y01, [[1.0, 1.0], [1.0, 0.0]],
     (0.5, 0.25, 1.0, [0.5, 0.5]), [0.7, 0.3]),
    (losses.MeanAbsolutePercentageError, {}, [[2.0, 1.0], [2.0, 3.0]],
     [[1.0, 1.0], [1.0, 0.0]], (50.0, 20.0, 100.0, [25.0, 75.0]), [0.7, 0.3]),
    (losses.MeanSquaredLogarithmicError, {}, Y01, [[1.0, 1.0], [1.0, 0.0]],
     (0.240, 0.120, 0.480, [0.240, 0.240]), [0.7, 0.3]),
    (losses.BinaryCrossentropy, {}, Y01, P01, (0.815, 0.458, 1.630, [0.916, 0.714]), [1, 0]),
    (losses.CategoricalCrossentropy, {}, [[0, 1, 0], [0, 0, 1]],
     [[0.05, 0.95, 0], [0.1, 0.8, 0.1]], (1.177, 0.814, 2.354, [0.0513, 2.303]), [0.3, 0.7]),
    (losses.SparseCategoricalCrossentropy, {}, [1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]],
     (1.177, 0.814, 2.354, [0.0513, 2.303]), [0.3, 0.7]),
    (losses.KLDivergence, {}, Y01, P01, (0.458, 0.366, 0.916, [0.916, 0.0]), [0.8, 0.2]),
    (losses.Poisson, {}, Y01, [[1.0, 1.0], [0.0, 0.0]], (0.5, 0.4, 0.999, [0.999, 0.0]),
     [0.8, 0.2]),
    (losses.Hinge, {}, Y01, P01, (1.3, 0.55, 2.6, [1.1, 1.5]), [1, 0]),
    (losses.SquaredHinge, {}, Y01, P01, (1.86, 0.73, 3.72, [1.46, 2.26]), [1, 0]),
    (losses.CategoricalHinge, {}, Y01, P01, (1.4, 0.6, 2.8, [1.2, 1.6]), [1, 0]),
    (losses.CosineSimilarity, {}, [[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]],
     (-0.5, -0.0999, -0.999, [0.0, -0.999]), [0.8, 0.2]),
    (losses.Huber, {}, Y01, P01, (0.155, 0.09, 0.31, [0.18, 0.13]), [1, 0]),
    (losses.LogCosh, {}, Y01, [[1.0, 1.0], [0.0, 0.0]], (0.108, 0.087, 0.217, [0.217, 0.0]),
     [0.8, 0.2]),
]


@pytest.mark.parametrize("cls,kwargs,y,p,expected,sw", KERAS, ids=[c[0].__name__ for c in KERAS])
def test_keras_reference_values(cls, kwargs, y, p, expected, sw):
    y, p = np.array(y), np.array(p)
    default, weighted, total, per_sample = expected
    np.testing.assert_allclose(cls(**kwargs)(y, p).data, default, atol=1.5e-3)
    np.testing.assert_allclose(cls(**kwargs)(y, p, sample_weight=np.array(sw)).data, weighted,
                               atol=1.5e-3)
    np.testing.assert_allclose(cls(reduction="sum", **kwargs)(y, p).data, total, atol=1.5e-3)
    np.testing.assert_allclose(cls(reduction=None, **kwargs)(y, p).data, per_sample,
                               atol=1.5e-3)


def test_reductions_and_sample_weight_follow_keras_3():
    y, p = YR, Tensor(PR.astype(np.float32))
    per_sample = losses.mean_squared_error(y, p).data.astype(np.float64)
    w = np.array([0.0, 1.0, 2.0, 0.5, 0.0])

    def loss(reduction, **kw):
        return float(losses.MeanSquaredError(reduction=reduction)(y, p, **kw).data)

    assert loss("sum_over_batch_size") == pytest.approx(per_sample.mean(), rel=1e-6)
    assert loss("mean") == pytest.approx(per_sample.mean(), rel=1e-6)
    assert loss("sum") == pytest.approx(per_sample.sum(), rel=1e-6)
    # Keras 3 divides by the number of entries even when some weights are zero.
    assert loss("sum_over_batch_size", sample_weight=w) == pytest.approx(
        (per_sample * w).sum() / 5, rel=1e-6)
    assert loss("mean_with_sample_weight", sample_weight=w) == pytest.approx(
        (per_sample * w).sum() / w.sum(), rel=1e-6)
    none = losses.MeanSquaredError(reduction="none")(y, p, sample_weight=w)
    np.testing.assert_allclose(none.data, per_sample * w, rtol=1e-6)
    # (batch, 1) weights and (batch,) weights mean the same thing.
    assert loss("sum", sample_weight=w[:, None]) == pytest.approx(loss("sum", sample_weight=w))


def test_per_sample_weights_apply_to_every_timestep():
    y, p = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 3, 4))
    per = ((y - p) ** 2).mean(-1)
    w = np.array([1.0, 3.0])
    got = losses.MeanSquaredError()(y, p, sample_weight=w)
    assert float(got.data) == pytest.approx((per * w[:, None]).sum() / 6, rel=1e-5)


def test_ignore_class_leaves_masked_samples_out_of_the_mean():
    p = dist(5, 4)
    loss = losses.SparseCategoricalCrossentropy(ignore_class=2)(IDS, p)
    keep = IDS != 2
    expected = np_cce(one_hot(IDS[keep], 4), p[keep]).mean()
    assert float(loss.data) == pytest.approx(expected, rel=1e-5)


def test_rank_alignment_of_targets():
    y = np.array([1.0, 0.0, 1.0])
    p = np.array([[0.8], [0.3], [0.6]])
    assert float(losses.BinaryCrossentropy()(y, p).data) == pytest.approx(
        np_bce(y[:, None], p).mean(), rel=1e-6)


def _node_types(t):
    seen, stack = set(), [t]
    while stack:
        node = stack.pop()
        if node._ctx is not None:
            seen.add(type(node._ctx).__name__)
            stack.extend(p for p in node._ctx.parents if hasattr(p, "_ctx"))
    return seen


def test_softmax_output_uses_the_fused_logits_path():
    z = Variable(PR)
    probs = ops.softmax(z)
    loss = losses.categorical_crossentropy(one_hot(IDS, 4), probs)
    assert isinstance(loss._ctx, SoftmaxCrossEntropy)
    sparse = losses.sparse_categorical_crossentropy(IDS, probs)
    assert isinstance(sparse._ctx, SoftmaxCrossEntropy)
    # The softmax node is not on the loss's path: its gradient is the fused one.
    (g,) = gradients(ops.sum(loss), [z])
    np.testing.assert_allclose(g, np_softmax(PR.astype(np.float32)) - one_hot(IDS, 4),
                               rtol=1e-5, atol=1e-6)


def test_sigmoid_output_uses_the_fused_logits_path():
    z = Variable(PR)
    loss = losses.binary_crossentropy(YB, ops.sigmoid(z))
    nodes = _node_types(loss)
    assert SigmoidCrossEntropy.__name__ in nodes and "Sigmoid" not in nodes


@pytest.mark.parametrize("cls,y,sparse", [
    (losses.CategoricalCrossentropy, one_hot(IDS, 4), False),
    (losses.SparseCategoricalCrossentropy, IDS, True),
])
def test_from_logits_equals_softmax_then_probabilities(cls, y, sparse):
    z = PR.astype(np.float32)
    from_logits = float(cls(from_logits=True)(y, z).data)
    via_softmax = float(cls()(y, ops.softmax(z)).data)
    via_probs = float(cls()(y, np_softmax(z)).data)  # a plain array: the clipped path
    assert from_logits == pytest.approx(via_softmax, rel=1e-6)
    assert from_logits == pytest.approx(via_probs, rel=1e-5)


def test_binary_from_logits_equals_sigmoid_then_probabilities():
    z = PR.astype(np.float32)
    from_logits = float(losses.BinaryCrossentropy(from_logits=True)(YB, z).data)
    via_sigmoid = float(losses.BinaryCrossentropy()(YB, ops.sigmoid(z)).data)
    via_probs = float(losses.BinaryCrossentropy()(YB, 1 / (1 + np.exp(-z))).data)
    assert from_logits == pytest.approx(via_sigmoid, rel=1e-6)
    assert from_logits == pytest.approx(via_probs, rel=1e-5)


def test_fused_path_is_stable_where_probabilities_saturate():
    z = np.array([[100.0, -100.0]], dtype=np.float32)
    loss = losses.categorical_crossentropy(np.array([[0.0, 1.0]]), ops.softmax(z))
    assert float(loss.data[0]) == pytest.approx(200.0)
    clipped = losses.categorical_crossentropy(np.array([[0.0, 1.0]]), np_softmax(z))
    assert float(clipped.data[0]) == pytest.approx(-np.log(1e-7), rel=1e-4)


def test_y_true_is_cast_to_y_pred_dtype():
    p = Tensor(PB.astype(np.float32))
    for fn in (losses.mse, losses.binary_crossentropy, losses.kld, losses.hinge):
        assert fn(YB.astype(np.float64), p).dtype == "float32"
        assert fn(YB.astype(np.int64), p).dtype == "float32"
    p64 = Tensor(PB)
    assert losses.mse(YB.astype(np.float32), p64).dtype == "float64"


ALL_CLASSES = [
    losses.MeanSquaredError(), losses.MeanAbsoluteError(),
    losses.MeanAbsolutePercentageError(), losses.MeanSquaredLogarithmicError(),
    losses.Huber(delta=2.0), losses.LogCosh(reduction="sum"),
    losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
    losses.CategoricalCrossentropy(label_smoothing=0.2, axis=-1, name="cce"),
    losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    losses.KLDivergence(), losses.Poisson(), losses.Hinge(), losses.SquaredHinge(),
    losses.CategoricalHinge(), losses.CosineSimilarity(axis=-1, reduction="none"),
]


@pytest.mark.parametrize("loss", ALL_CLASSES, ids=[type(c).__name__ for c in ALL_CLASSES])
def test_config_round_trip(loss):
    config = loss.get_config()
    clone = type(loss).from_config(config)
    assert clone.get_config() == config
    restored = losses.deserialize(losses.serialize(loss))
    assert type(restored) is type(loss) and restored.get_config() == config


def test_keras_names_and_defaults():
    assert losses.MeanSquaredError().get_config() == {
        "name": "mean_squared_error", "reduction": "sum_over_batch_size"}
    assert losses.Huber().name == "huber_loss"
    assert losses.BinaryCrossentropy().get_config() == {
        "name": "binary_crossentropy", "reduction": "sum_over_batch_size",
        "from_logits": False, "label_smoothing": 0.0, "axis": -1}
    assert losses.SparseCategoricalCrossentropy().get_config() == {
        "name": "sparse_categorical_crossentropy", "reduction": "sum_over_batch_size",
        "from_logits": False, "ignore_class": None}


@pytest.mark.parametrize("name,expected", [
    ("mse", losses.mean_squared_error), ("MSE", losses.mean_squared_error),
    ("mae", losses.mean_absolute_error), ("mape", losses.mean_absolute_percentage_error),
    ("msle", losses.mean_squared_logarithmic_error), ("kld", losses.kl_divergence),
    ("bce", losses.binary_crossentropy), ("huber", losses.huber),
    ("log_cosh", losses.log_cosh), ("poisson", losses.poisson),
    ("categorical_crossentropy", losses.categorical_crossentropy),
    ("sparse_categorical_crossentropy", losses.sparse_categorical_crossentropy),
    ("cosine_similarity", losses.cosine_similarity), ("hinge", losses.hinge),
    ("squared_hinge", losses.squared_hinge), ("categorical_hinge", losses.categorical_hinge),
])
def test_get_resolves_function_names(name, expected):
    assert losses.get(name) is expected
    assert losses.deserialize(losses.serialize(expected)) is expected


def test_get_instantiates_classes_and_passes_objects_through():
    assert isinstance(losses.get("MeanSquaredError"), losses.MeanSquaredError)
    mse = losses.MeanSquaredError()
    assert losses.get(mse) is mse
    assert losses.get(None) is None
    config = {"module": "keras.losses", "class_name": "Huber",
              "config": {"name": "h", "reduction": "sum", "delta": 3.0},
              "registered_name": None}
    huber = losses.get(config)
    assert isinstance(huber, losses.Huber) and huber.get_config()["delta"] == 3.0

    def custom(y_true, y_pred):
        return ops.mean(y_pred, axis=-1)

    assert losses.get(custom) is custom
    assert losses.deserialize("custom", custom_objects={"custom": custom}) is custom


def test_bad_identifiers_and_arguments_name_the_value():
    with pytest.raises(ValueError, match="'msee'"):
        losses.get("msee")
    with pytest.raises(ValueError, match="3"):
        losses.get(3)
    with pytest.raises(ValueError, match="reduction='avg'"):
        losses.MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match="axis"):
        losses.categorical_crossentropy(one_hot(IDS, 4), dist(5, 4), axis=True)
