"""An update applied in pieces (lamina.optimizers.pieces) has the bits of one ``apply``.

Each elementwise optimizer runs the same steps twice from the same state: once with
``apply``, once with the step begun in pieces (groups of variables in any order,
some from another thread), finished by ``apply``; parameters and every optimizer
variable must be byte-identical after every step (the denormal flush included).
Optimizers that need a step-wide quantity refuse to begin a plan.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lamina import optimizers
from lamina.backend.tensor import Variable

# One variable large enough to be cut in parts (> 2 * PART_ELEMENTS floats).
SHAPES = [(600, 500), (500,), (300, 7), (7,)]

ELEMENTWISE = [
    ("adam", lambda: optimizers.Adam(learning_rate=0.01)),
    ("amsgrad", lambda: optimizers.Adam(learning_rate=0.01, amsgrad=True)),
    ("sgd", lambda: optimizers.SGD(learning_rate=0.1)),
    ("nesterov", lambda: optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("rmsprop", lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.5)),
    ("adagrad", lambda: optimizers.Adagrad(learning_rate=0.1)),
    ("adamax", lambda: optimizers.Adamax(learning_rate=0.01)),
    ("lion", lambda: optimizers.Lion(learning_rate=0.01)),
]


def _variables(seed=0):
    rng = np.random.default_rng(seed)
    return [Variable(rng.normal(size=shape).astype(np.float32), name=f"v{i}")
            for i, shape in enumerate(SHAPES)]


def _grads(step):
    rng = np.random.default_rng(100 + step)
    grads = [rng.normal(size=shape).astype(np.float32) for shape in SHAPES]
    grads[2][:5] = 1e-25  # drives slots towards denormals (the flush must agree)
    return grads


def _state(opt, variables):
    return [np.array(v.data).tobytes() for v in variables] + \
        [np.array(v.data).tobytes() for v in opt.variables]


@pytest.mark.parametrize("name,make", ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
def test_pieces_give_the_bits_of_one_apply(name, make, monkeypatch):
    monkeypatch.setattr(optimizers.Optimizer, "denormal_flush_interval", 2)
    whole, pieces = make(), make()
    a, b = _variables(), _variables()
    whole.build(a)
    pieces.build(b)
    orders = [[[3, 2], [1]], [[1, 3]], [[0], [2]], []]  # the rest: by apply
    for step, groups in enumerate(orders):
        grads = _grads(step)
        whole.apply(grads, a)
        plan = pieces.begin_update_in_pieces()
        assert plan is not None
        for k, group in enumerate(groups):
            args = (group, [grads[i] for i in group])
            if k % 2:  # as the bucket reducer does: from another thread
                worker = threading.Thread(target=plan.apply, args=args)
                worker.start()
                worker.join()
            else:
                plan.apply(*args)
        pieces.apply(grads, b)
        assert _state(whole, a) == _state(pieces, b), f"step {step}"
    assert int(pieces.iterations.data) == len(orders)


@pytest.mark.parametrize("name,make", ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
def test_pieces_read_from_a_source_in_another_layout_give_the_bits_of_one_apply(
        name, make, monkeypatch):
    """``apply_pieces`` updates from ranges of a flat source laid out as the gradient
    buckets lay it out (the last variable first), in several calls of cut pieces, and
    reads the source where it is: it is left as it was, and the optimizer's own flat
    gradient buffer plays no part (filled with NaN here)."""
    monkeypatch.setattr(optimizers.Optimizer, "denormal_flush_interval", 2)
    whole, pieces = make(), make()
    a, b = _variables(), _variables()
    whole.build(a)
    pieces.build(b)
    sizes = [int(np.prod(shape)) for shape in SHAPES]
    flat_at = np.concatenate([[0], np.cumsum(sizes)]).tolist()  # the optimizer's layout
    order = list(reversed(range(len(SHAPES))))  # the source's layout
    source_at, at = {}, 0
    for i in order:
        source_at[i], at = at, at + sizes[i]
    for step in range(3):
        grads = _grads(step)
        source = np.concatenate([grads[i].reshape(-1) for i in order])
        before = source.copy()
        whole.apply(grads, a)
        pieces._segments[0].grad[:] = np.nan
        plan = pieces.begin_update_in_pieces()
        # Variable 0 in two pieces (one in each call), the others whole.
        half = sizes[0] // 2
        calls = [[(source_at[0], source_at[0] + half, 0), (source_at[3], source_at[3] + 7,
                                                           flat_at[3])],
                 [(source_at[0] + half, source_at[0] + sizes[0], half),
                  *[(source_at[i], source_at[i] + sizes[i], flat_at[i]) for i in (1, 2)]]]
        for call in calls:
            plan.apply_pieces(source, call, flush=step % 2 == 1)
        assert np.isnan(pieces._segments[0].grad).all()  # read in place, never copied
        pieces.apply(grads, b)
        assert np.array_equal(source, before)
        assert _state(whole, a) == _state(pieces, b), f"step {step}"


def test_a_missing_gradient_leaves_its_variable_and_slots_alone():
    whole, pieces = optimizers.Adam(), optimizers.Adam()
    a, b = _variables(), _variables()
    whole.build(a)
    pieces.build(b)
    grads = _grads(0)
    grads[1] = None
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        whole.apply(grads, a)
    plan = pieces.begin_update_in_pieces()
    plan.apply([3], [grads[3]])
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        pieces.apply(grads, b)
    assert _state(whole, a) == _state(pieces, b)
    assert np.array_equal(b[1].data, _variables()[1].data)


def test_the_plan_is_used_once_and_only_for_the_same_variables():
    opt = optimizers.Adam()
    variables = _variables()
    opt.build(variables)
    grads = _grads(0)
    plan = opt.begin_update_in_pieces()
    plan.apply([0], [grads[0]])
    with pytest.raises(RuntimeError, match="already updated"):
        plan.apply([0], [grads[0]])
    with pytest.raises(ValueError, match="same variables"):
        opt.apply(grads[1:], variables[1:])
    opt.begin_update_in_pieces()  # replaces (drops) the old plan
    with pytest.raises(RuntimeError, match="ended or replaced"):
        plan.apply([1], [grads[1]])
    opt.cancel_update_in_pieces()
    before = np.array(variables[0].data)
    opt.apply(grads, variables)  # no plan: the whole-step path
    assert not np.array_equal(before, variables[0].data)
    assert int(opt.iterations.data) == 1


def test_an_unbuilt_optimizer_refuses():
    assert optimizers.Adam().begin_update_in_pieces() is None


@pytest.mark.parametrize("kwargs", [
    {"clipnorm": 1.0}, {"global_clipnorm": 1.0}, {"clipvalue": 0.5},
    {"loss_scale_factor": 4.0}, {"gradient_accumulation_steps": 2}, {"use_ema": True},
    {"weight_decay": 0.01},
], ids=lambda kw: next(iter(kw)))
def test_step_wide_options_keep_the_whole_step(kwargs):
    opt = optimizers.Adam(**kwargs)
    opt.build(_variables())
    assert opt.begin_update_in_pieces() is None


@pytest.mark.parametrize("make", [
    lambda: optimizers.Adafactor(), lambda: optimizers.Lamb(), lambda: optimizers.AdamW(),
    lambda: optimizers.LossScaleOptimizer(optimizers.Adam()),
], ids=["adafactor", "lamb", "adamw", "loss_scale"])
def test_optimizers_that_are_not_elementwise_keep_the_whole_step(make):
    opt = make()
    opt.build(_variables())
    assert opt.begin_update_in_pieces() is None


def test_several_dtypes_keep_the_whole_step():
    variables = _variables()
    variables.append(Variable(np.ones(3), dtype="float64", name="wide"))
    assert variables[-1].data.dtype == np.float64
    opt = optimizers.Adam()
    opt.build(variables)
    assert opt.begin_update_in_pieces() is None


def test_range_updates_and_variable_pieces_do_not_mix():
    opt = optimizers.Adam()
    variables = _variables()
    opt.build(variables)
    grads = _grads(0)
    plan = opt.begin_update_in_pieces()
    plan.apply([0], [grads[0]])
    with pytest.raises(RuntimeError, match="a range update must be the step's only piece"):
        plan.apply_range(0, 10, grads)
    with pytest.raises(RuntimeError, match="range updates cannot follow variable pieces"):
        plan.apply_pieces(np.zeros(10, np.float32), [(0, 10, 0)])
    opt.cancel_update_in_pieces()


def test_relocate_needs_a_built_optimizer():
    with pytest.raises(ValueError, match="relocate needs a built optimizer"):
        optimizers.Adam().relocate(np.zeros(3, np.float32), {})

