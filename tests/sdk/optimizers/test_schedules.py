"""Learning-rate schedules at given steps, against Keras's formulas."""

from __future__ import annotations

import math

import pytest

from lamina.optimizers import schedules

CASES = [
    (schedules.ExponentialDecay(0.1, 10, 0.5), 5, 0.1 * 0.5**0.5),
    (schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True), 15, 0.05),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 10, 1.0),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 11, 0.5),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 21, 0.1),
    (schedules.InverseTimeDecay(0.1, 10, 0.5), 20, 0.1 / 2.0),
    (schedules.InverseTimeDecay(0.1, 10, 0.5, staircase=True), 19, 0.1 / 1.5),
    (schedules.PolynomialDecay(0.1, 10), 5, (0.1 - 0.0001) * 0.5 + 0.0001),
    (schedules.PolynomialDecay(0.1, 10), 50, 0.0001),
    (schedules.PolynomialDecay(0.1, 10, power=2.0, cycle=True), 15, (0.1 - 0.0001) * 0.25**2
     + 0.0001),
    (schedules.CosineDecay(0.1, 100), 50, 0.05),
    (schedules.CosineDecay(0.1, 100, alpha=0.1), 200, 0.01),
    (schedules.CosineDecay(0.0, 100, warmup_target=0.2, warmup_steps=10), 5, 0.1),
    (schedules.CosineDecay(0.0, 100, warmup_target=0.2, warmup_steps=10), 60,
     0.2 * 0.5 * (1 + math.cos(math.pi * 0.5))),
]


@pytest.mark.parametrize(("schedule", "step", "expected"), CASES)
def test_value_at_step(schedule, step, expected):
    assert schedule(step) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("schedule", [c[0] for c in CASES])
def test_config_round_trip(schedule):
    again = schedules.deserialize(schedules.serialize(schedule))
    assert again.get_config() == schedule.get_config()
    assert again(7) == schedule(7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="decay_steps=0"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="length of boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [1.0])
