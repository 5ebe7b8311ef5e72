"""Each optimizer against Keras's update formulas, written out by hand in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lamina import optimizers
from lamina.backend import Variable
from lamina.optimizers import schedules

TARGETS = [np.array([[0.5, -1.0], [2.0, 0.25], [-0.5, 1.5]]), np.array([0.3, -0.2])]
INIT = [np.array([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]]), np.array([0.05, -0.05])]


def grads_of(ws):
    """Gradient of sum((w - target)^2 * (1 + |target|)) / 2: a fixed, uneven problem."""
    return [(w - t) * (1 + np.abs(t)) for w, t in zip(ws, TARGETS)]


def _clip(gs, cfg):
    if cfg.get("clipnorm"):
        c = cfg["clipnorm"]
        return [g * c / max(np.sqrt(np.sum(g * g)), c) for g in gs]
    if cfg.get("global_clipnorm"):
        c = cfg["global_clipnorm"]
        norm = np.sqrt(sum(np.sum(g * g) for g in gs))
        return [g * c * min(1 / norm, 1 / c) for g in gs]
    if cfg.get("clipvalue"):
        return [np.clip(g, -cfg["clipvalue"], cfg["clipvalue"]) for g in gs]
    return gs


def reference(kind, cfg, steps=3):
    """Keras's update rules (keras/src/optimizers/*.py) applied to copies of INIT."""
    ws = [w.copy() for w in INIT]
    state = [dict() for _ in ws]
    lr_of = cfg.get("lr_fn", lambda step: cfg.get("learning_rate", 0.01))
    u_product = 1.0
    for step in range(steps):
        t = step + 1
        lr = lr_of(step)
        gs = _clip(grads_of(ws), cfg)
        if cfg.get("weight_decay"):
            ws = [w - w * cfg["weight_decay"] * lr for w in ws]
        if kind == "nadam":
            u_product *= 0.9 * (1 - 0.5 * 0.96**t)
        for i, (w, g, s) in enumerate(zip(ws, gs, state)):
            z = np.zeros_like(w)
            if kind == "sgd":
                mom = cfg.get("momentum", 0.0)
                if mom:
                    s["m"] = mom * s.get("m", z) - lr * g
                    w = w + (mom * s["m"] - lr * g if cfg.get("nesterov") else s["m"])
                else:
                    w = w - lr * g
            elif kind in ("adam", "adamw"):
                b1, b2, eps = 0.9, 0.999, 1e-7
                alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
                s["m"] = s.get("m", z) + (g - s.get("m", z)) * (1 - b1)
                s["v"] = s.get("v", z) + (g * g - s.get("v", z)) * (1 - b2)
                v = s["v"]
                if cfg.get("amsgrad"):
                    s["vh"] = np.maximum(s.get("vh", z), s["v"])
                    v = s["vh"]
                w = w - alpha * s["m"] / (np.sqrt(v) + eps)
            elif kind == "rmsprop":
                rho, eps, mom = 0.9, 1e-7, cfg.get("momentum", 0.0)
                s["v"] = rho * s.get("v", z) + (1 - rho) * g * g
                denom = s["v"] + eps
                if cfg.get("centered"):
                    s["a"] = rho * s.get("a", z) + (1 - rho) * g
                    denom = s["v"] - s["a"] ** 2 + eps
                inc = lr * g / np.sqrt(denom)
                if mom:
                    s["mom"] = mom * s.get("mom", z) + inc
                    inc = s["mom"]
                w = w - inc
            elif kind == "adagrad":
                s["acc"] = s.get("acc", z + 0.1) + g * g
                w = w - lr * g / np.sqrt(s["acc"] + 1e-7)
            elif kind == "adadelta":
                rho, eps = 0.95, 1e-7
                s["ag"] = rho * s.get("ag", z) + (1 - rho) * g * g
                delta = -np.sqrt(s.get("ad", z) + eps) * g / np.sqrt(s["ag"] + eps)
                s["ad"] = rho * s.get("ad", z) + (1 - rho) * delta * delta
                w = w + lr * delta
            elif kind == "adamax":
                s["m"] = s.get("m", z) + (g - s.get("m", z)) * 0.1
                s["u"] = np.maximum(0.999 * s.get("u", z), np.abs(g))
                w = w - lr * s["m"] / ((1 - 0.9**t) * (s["u"] + 1e-7))
            elif kind == "nadam":
                u_t = 0.9 * (1 - 0.5 * 0.96**t)
                u_t1 = 0.9 * (1 - 0.5 * 0.96 ** (t + 1))
                s["m"] = s.get("m", z) + (g - s.get("m", z)) * 0.1
                s["v"] = s.get("v", z) + (g * g - s.get("v", z)) * 0.001
                m_hat = u_t1 * s["m"] / (1 - u_product * u_t1) + (1 - u_t) * g / (1 - u_product)
                v_hat = s["v"] / (1 - 0.999**t)
                w = w - lr * m_hat / (np.sqrt(v_hat) + 1e-7)
            ws[i] = w
    return ws


def exp_decay(step):
    return 0.1 * 0.5 ** (step / 2)


CASES = [
    ("sgd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"learning_rate": 0.1, "clipvalue": 0.3}),
    ("sgd", {"learning_rate": 0.1, "weight_decay": 0.05}),
    ("adam", {"learning_rate": 0.01}),
    ("adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("adam", {"learning_rate": 0.01, "clipnorm": 0.5}),
    ("adam", {"learning_rate": 0.01, "global_clipnorm": 0.5}),
    ("adamw", {"learning_rate": 0.01, "weight_decay": 0.004}),
    ("rmsprop", {"learning_rate": 0.01}),
    ("rmsprop", {"learning_rate": 0.01, "centered": True, "momentum": 0.5}),
    ("adagrad", {"learning_rate": 0.1}),
    ("adadelta", {"learning_rate": 1.0}),
    ("adamax", {"learning_rate": 0.01}),
    ("nadam", {"learning_rate": 0.01}),
]


def make(kind, cfg):
    kwargs = {k: v for k, v in cfg.items() if k != "lr_fn"}
    return optimizers.get({"class_name": kind, "config": kwargs})


@pytest.mark.parametrize(("kind", "cfg"), CASES, ids=[f"{k}-{sorted(c)}" for k, c in CASES])
@pytest.mark.parametrize("per_variable", [False, True], ids=["flat", "per_variable"])
def test_three_steps_match_keras_formulas(kind, cfg, per_variable):
    variables = [Variable(w.astype(np.float32)) for w in INIT]
    opt = make(kind, cfg)
    for _ in range(3):
        grads = grads_of([v.numpy().astype(np.float64) for v in variables])
        if per_variable:  # another variable order takes the per-variable path
            opt.apply(grads[::-1], variables[::-1])
        else:
            opt.apply(grads, variables)
    expected = reference(kind, cfg)
    for var, want in zip(variables, expected):
        np.testing.assert_allclose(var.numpy(), want, rtol=1e-5, atol=1e-6)


def test_schedule_learning_rate_is_evaluated_at_each_step():
    variables = [Variable(w.astype(np.float32)) for w in INIT]
    schedule = schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    opt = optimizers.SGD(learning_rate=schedule, momentum=0.9)
    for _ in range(3):
        opt.apply(grads_of([v.numpy().astype(np.float64) for v in variables]), variables)
    expected = reference("sgd", {"momentum": 0.9, "lr_fn": exp_decay})
    for var, want in zip(variables, expected):
        np.testing.assert_allclose(var.numpy(), want, rtol=1e-5, atol=1e-6)
    # A schedule replaces the learning_rate variable.
    assert [v.name for v in opt.variables] == ["iteration", "variable_momentum",
                                               "variable_momentum"]


@pytest.mark.parametrize(("kind", "cfg", "slots"), [
    ("sgd", {}, []),
    ("sgd", {"momentum": 0.5}, ["momentum"]),
    ("adam", {}, ["momentum", "velocity"]),
    ("adam", {"amsgrad": True}, ["momentum", "velocity", "|velocity_hat"]),
    ("rmsprop", {"momentum": 0.5, "centered": True},
     ["velocity", "|momentum", "|average_gradient"]),
    ("adagrad", {}, ["accumulator"]),
    ("adadelta", {}, ["accumulated_grad", "accumulated_delta_var"]),
    ("adamax", {}, ["momentum", "norm"]),
    ("nadam", {}, ["momentum", "velocity"]),
])
def test_variables_in_keras_order(kind, cfg, slots):
    variables = [Variable(np.zeros((2, 3), np.float32), name="kernel"),
                 Variable(np.zeros(3, np.float32), name="bias")]
    for v in variables:
        v.path = f"dense/{v.name}"
    opt = make(kind, cfg)
    opt.build(variables)
    # Slot names in one group are interleaved per variable; "|" starts a later group.
    expected, group = [], []
    for slot in slots + ["|"]:
        if slot.startswith("|"):
            expected += [f"dense_{v}_{s}" for v in ("kernel", "bias") for s in group]
            group = []
        if slot.strip("|"):
            group.append(slot.strip("|"))
    names = [v.name for v in opt.variables]
    tail = ["u_product"] if kind == "nadam" else []
    assert names == ["iteration", "learning_rate"] + expected + tail
    assert all(v.path.startswith(opt.name + "/") for v in opt.variables)


def test_slot_variables_share_memory_with_flat_buffers_and_round_trip():
    variables = [Variable(w.astype(np.float32)) for w in INIT]
    opt = optimizers.Adam(learning_rate=0.01)
    opt.apply(grads_of(INIT), variables)
    saved = opt.get_weights()
    opt.apply(grads_of(INIT), variables)
    opt.set_weights(saved)
    assert np.array_equal(opt.get_weights()[2], saved[2])
    assert int(opt.iterations.numpy()) == 1
    assert np.shares_memory(variables[0].data, variables[1].data) is False
    assert variables[0].data.base is variables[1].data.base


def test_rebound_variable_data_is_adopted_not_lost():
    variables = [Variable(w.astype(np.float32)) for w in INIT]
    opt = optimizers.SGD(learning_rate=0.1)
    opt.apply([np.zeros((3, 2)), np.zeros(2)], variables)
    variables[1].data = np.array([10.0, 20.0], dtype=np.float32)
    opt.apply([np.zeros((3, 2)), np.ones(2)], variables)
    np.testing.assert_allclose(variables[1].numpy(), [9.9, 19.9], rtol=1e-6)


def test_none_gradient_skips_variable_with_warning():
    variables = [Variable(w.astype(np.float32)) for w in INIT]
    opt = optimizers.SGD(learning_rate=0.1)
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        opt.apply([None, np.ones(2)], variables)
    np.testing.assert_array_equal(variables[0].numpy(), INIT[0].astype(np.float32))


def test_exclude_from_weight_decay_and_constraints():
    from lamina.constraints import NonNeg

    variables = [Variable(w.astype(np.float32), name=n) for w, n in zip(INIT, ["kernel", "bias"])]
    variables[0].constraint = NonNeg()
    opt = optimizers.SGD(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.apply([np.zeros((3, 2)), np.zeros(2)], variables)
    np.testing.assert_allclose(variables[1].numpy(), INIT[1], rtol=1e-6)
    np.testing.assert_allclose(variables[0].numpy(), np.maximum(INIT[0] * 0.95, 0), rtol=1e-6)


def test_denormals_in_slots_are_flushed():
    variables = [Variable(np.ones(4, np.float32))]
    opt = optimizers.Adam()
    opt.build(variables)
    opt._slot("momentum", opt._segments[0].param)[:] = 1e-35
    for _ in range(optimizers.Optimizer.denormal_flush_interval):
        opt.apply([np.zeros(4)], variables)
    assert not np.any(opt.get_weights()[2])


@pytest.mark.parametrize("name", ["sgd", "SGD", "adam", "Adam", "adamw", "rmsprop", "RMSprop",
                                  "adagrad", "adadelta", "adamax", "nadam", "Nadam"])
def test_get_and_config_round_trip(name):
    opt = optimizers.get(name)
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert type(again) is type(opt)
    assert again.get_config() == opt.get_config()


def test_config_round_trip_with_schedule_and_settable_learning_rate():
    opt = optimizers.Adam(learning_rate=schedules.CosineDecay(0.1, 100, warmup_target=0.2,
                                                              warmup_steps=10))
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert again.get_config() == opt.get_config()
    assert [v.name for v in opt.variables] == ["iteration"]
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.5
    plain = optimizers.SGD()
    plain.learning_rate = 0.25
    assert plain.learning_rate == np.float32(0.25)
    assert plain.get_config()["learning_rate"] == 0.25


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"clipnorm": 1.0, "clipvalue": 1.0}, "Only one of"),
    ({"learning_rate": "fast"}, "learning_rate='fast'"),
    ({"bogus": 1}, "not recognized"),
])
def test_bad_arguments_name_what_was_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optimizers.Adam(**kwargs)


def test_unknown_identifier():
    with pytest.raises(ValueError, match="'adamm'"):
        optimizers.get("adamm")
