"""The optimizers' one-pass numba kernels (lamina.optimizers.kernels) give exactly the bits
of their numpy paths, the reference."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import layers, optimizers
from lamina.backend import compiled, gemm
from lamina.optimizers import kernels as optimizer_kernels

pytest.importorskip("numba")

OPTIONS = [
    ("adam", {}), ("adam", {"amsgrad": True}), ("adamw", {}), ("adamw", {"amsgrad": True}),
    ("sgd", {}), ("sgd", {"momentum": 0.9}), ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("rmsprop", {}), ("rmsprop", {"centered": True}), ("rmsprop", {"momentum": 0.5}),
    ("rmsprop", {"centered": True, "momentum": 0.5}), ("adagrad", {}), ("adamax", {}),
    ("lion", {}),
]
IDS = [name + "".join(f"-{k}" for k in kwargs) for name, kwargs in OPTIONS]
# Large enough for the flat buffer to be updated in parts (> 2 * PART_ELEMENTS).
SHAPES = [(600, 500), (7,), (0, 3), (300, 10), (1,)]


def awkward(rng, shape, dtype, scale=1.0):
    """Normal values with zeros, -0, denormals, huge values (their squares overflow
    float32) and tiny ones, at fixed strides."""
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    flat = x.reshape(-1)
    flat[::7] = 0
    flat[3::29] = -0.0
    flat[1::11] = np.finfo(dtype).smallest_subnormal * 3
    flat[2::13] *= 1e25 if dtype == np.float32 else 1e160
    flat[4::17] *= 1e-30
    return x


def train(choice, name, kwargs, dtype, steps=4, subset=False):
    """Variables and optimizer state after ``steps`` applies on the kernel path
    ``choice``; ``subset`` leaves out one gradient (the per-variable ``_apply_each``)."""
    rng = np.random.default_rng(0)
    with compiled.use_kernels(choice), np.errstate(all="ignore"):
        variables = [lamina.Variable(awkward(rng, s, dtype)) for s in SHAPES]
        opt = optimizers.get({"class_name": name, "config": dict(kwargs,
                                                                  learning_rate=0.01)})
        for step in range(steps):
            grads = [awkward(rng, s, dtype, scale=step + 1) for s in SHAPES]
            if subset:
                grads[1] = None
            if subset:
                with pytest.warns(UserWarning, match="Gradients do not exist"):
                    opt.apply(grads, variables)
            else:
                opt.apply(grads, variables)
    return [v.numpy() for v in variables] + [v.numpy() for v in opt.variables]


def assert_same_bits(a, b):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.dtype == y.dtype and x.shape == y.shape, i
        assert x.tobytes() == y.tobytes(), f"array {i} differs"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", OPTIONS, ids=IDS)
def test_kernel_is_bit_identical_on_flat_buffers_in_parts(name, kwargs, dtype):
    reference = train("numpy", name, kwargs, dtype)
    got = train("numba", name, kwargs, dtype)
    assert_same_bits(got, reference)


@pytest.mark.parametrize("name, kwargs", OPTIONS, ids=IDS)
def test_kernel_is_bit_identical_per_variable(name, kwargs):
    assert_same_bits(train("numba", name, kwargs, np.float32, subset=True),
                     train("numpy", name, kwargs, np.float32, subset=True))


@pytest.mark.parametrize("name, kernel", [("adam", "_adam"), ("adagrad", "_adagrad"),
                                          ("adamax", "_adamax"), ("lion", "_lion")])
def test_parts_run_the_kernel(monkeypatch, name, kernel):
    """The flat buffer is updated in several parts, each by one kernel call."""
    calls = []
    original = getattr(optimizer_kernels, kernel)

    monkeypatch.setattr(optimizer_kernels, kernel,
                        lambda *a: calls.append(a[1].size) or original(*a))
    train("numba", name, {}, np.float32, steps=1)
    total = sum(int(np.prod(s)) for s in SHAPES)
    assert len(calls) > 1 and sum(calls) == total
    calls.clear()
    train("numpy", name, {}, np.float32, steps=1)
    assert calls == []


def _adam_args(dtype=np.float32, n=5):
    rng = np.random.default_rng(3)
    g, w = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    return [g, w, np.zeros(n, dtype), np.zeros(n, dtype), None, 0.1, 0.001, 0.01, 1e-7]


@pytest.mark.parametrize("change, why", [
    ({0: np.arange(5, dtype=np.float64)}, "gradient of another dtype"),
    ({1: np.arange(5, dtype=np.float16), 2: np.zeros(5, np.float16),
      3: np.zeros(5, np.float16), 0: np.ones(5, np.float16)}, "float16"),
    ({8: np.float64(1e-7)}, "a float64 scalar promotes float32 arithmetic"),
    ({7: np.ones(1, np.float32)}, "an array constant"),
    ({0: np.ones((5, 2), np.float32)[:, 0]}, "non-contiguous"),
    ({0: np.ones(4, np.float32)}, "shapes differ"),
])
def test_kernel_declines_what_it_cannot_reproduce(change, why):
    args = _adam_args()
    for k, value in change.items():
        args[k] = value
    before = [a.copy() for a in args[1:4]]
    with compiled.use_kernels("numba"):
        assert optimizer_kernels.adam(*args) is False, why
    assert_same_bits(args[1:4], before)  # nothing written


def test_kernel_takes_weak_and_same_dtype_scalars():
    args = _adam_args()
    args[7], args[8] = np.float32(0.01), 1  # a float32 scalar, a Python int
    with compiled.use_kernels("numba"):
        assert optimizer_kernels.adam(*args) is True
    with compiled.use_kernels("numpy"):
        assert optimizer_kernels.adam(*_adam_args()) is False


def test_numpy_scalar_hyperparameters_take_the_numpy_path():
    """epsilon given as a numpy float64 makes numpy compute ``s += eps`` in float64:
    the kernel declines and both choices give the same bits."""
    results = []
    for choice in ("numpy", "numba"):
        with compiled.use_kernels(choice):
            var = lamina.Variable(np.linspace(-1, 1, 50, dtype=np.float32))
            opt = optimizers.Adam(epsilon=np.float64(1e-3), learning_rate=0.1)
            for step in range(3):
                opt.apply([np.cos(var.numpy() * step)], [var])
            results.append([var.numpy()] + opt.get_weights())
    assert_same_bits(results[1], results[0])


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad", "adamax", "lion"])
def test_seeded_fit_is_bit_identical_on_both_paths(optimizer):
    """The optimizers' kernels give the numpy path's bits (numpy's BLAS on both paths:
    Lamina's own GEMM runs only with compiled kernels, and has other bits)."""
    rng = np.random.default_rng(0)
    x = rng.random((384, 784), dtype=np.float32)
    y = rng.integers(0, 10, 384)
    results = []
    for choice in ("numpy", "numba"):
        with compiled.use_kernels(choice), gemm.use_gemm("blas"):
            lamina.utils.set_random_seed(0)
            model = lamina.Sequential([
                lamina.Input((784,)), layers.Dense(512, activation="relu"),
                layers.Dropout(0.2), layers.Dense(10, activation="softmax")])
            model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
            history = model.fit(x, y, batch_size=128, epochs=2, verbose=0)
            results.append((history.history["loss"], [w.copy() for w in model.get_weights()]
                            + model.optimizer.get_weights()))
    assert results[1][0] == results[0][0]
    assert_same_bits(results[1][1], results[0][1])


@pytest.mark.parametrize("name, kwargs, exclude", [
    ("adamw", {}, None), ("adamw", {"amsgrad": True}, ["bias"]),
    ("adam", {"weight_decay": 0.05}, None), ("sgd", {"weight_decay": 0.1, "momentum": 0.9},
                                             ["bias"]),
    ("rmsprop", {"weight_decay": 0.1}, None),
])
def test_weight_decay_in_parts_is_the_whole_buffer_decay(name, kwargs, exclude):
    """With weight decay the parts also decay their slices (by ``kernels.decay`` or
    numpy): the bits of decaying the whole buffer first (a subclass whose update_step is
    not allow-listed takes that path), on both kernel choices."""
    cls = type(optimizers.get({"class_name": name, "config": {}}))

    class WholeBuffer(cls):
        def update_step(self, gradient, variable, learning_rate):
            super().update_step(gradient, variable, learning_rate)

    rng = np.random.default_rng(5)
    names = ["kernel", "bias", "kernel_1", "bias_1"]
    values = [awkward(rng, s, np.float32) for s in [(600, 500), (500,), (500, 10), (10,)]]
    results = []
    for choice in ("numpy", "numba"):
        for klass in (cls, WholeBuffer):
            variables = [lamina.Variable(v.copy(), name=n) for v, n in zip(values, names)]
            opt = klass(learning_rate=0.01, **kwargs)
            if exclude:
                opt.exclude_from_weight_decay(var_names=exclude)
            with compiled.use_kernels(choice), np.errstate(all="ignore"):
                for step in range(3):
                    opt.apply([np.cos(v * (step + 1)) for v in values], variables)
            results.append([v.numpy() for v in variables] + opt.get_weights())
            if klass is cls:
                assert len(next(iter(opt._parts_cache.values()))[1]) > 1  # in parts
    for result in results[1:]:
        assert_same_bits(result, results[0])


def test_decay_kernel_is_the_numpy_decay():
    rng = np.random.default_rng(6)
    for dtype in (np.float32, np.float64):
        w = awkward(rng, (1000,), dtype)
        expected = w - w * (0.004 * 0.01)
        with compiled.use_kernels("numba"):
            assert optimizer_kernels.decay(w, 0.004 * 0.01) is True
            assert optimizer_kernels.decay(w[::2], 0.1) is False  # not contiguous
            # a float64 scalar would make numpy compute a float32 decay in float64
            assert optimizer_kernels.decay(w.copy(), np.float64(0.1)) is (dtype == np.float64)
        assert_same_bits([w], [expected])
