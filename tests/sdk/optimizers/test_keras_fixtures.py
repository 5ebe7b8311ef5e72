"""Every optimizer case recorded from Keras 3.15.1 (tests/fixtures/optimizers) at 1e-6."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from lamina import optimizers
from lamina.backend import Variable
from lamina.optimizers import schedules

FIXTURES = Path(__file__).parents[2] / "fixtures" / "optimizers"
# Loaded by path under its own name: other fixture folders have a make_fixtures.py too.
_SPEC = importlib.util.spec_from_file_location("optimizer_fixtures", FIXTURES / "make_fixtures.py")
make_fixtures = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(make_fixtures)

CASES = json.loads((FIXTURES / "cases.json").read_text())["cases"]
UPDATES = np.load(FIXTURES / "updates.npz")


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_matches_keras(case, kernels):
    """Keras 3.15.1's updates, on the numpy path and on the compiled kernels (where an
    optimizer has them: ``lamina.optimizers.kernels``)."""
    opt = make_fixtures.make(optimizers, case["class_name"], case["kwargs"])
    variables = [Variable(v, name=f"v{i}") for i, v in enumerate(make_fixtures.initial_values())]
    for step, grads in enumerate(make_fixtures.gradients()):
        opt.apply(grads, variables)
        for i, var in enumerate(variables):
            expected = UPDATES[f"{case['case']}/step{step}/v{i}"]
            np.testing.assert_allclose(var.numpy(), expected, rtol=1e-6, atol=1e-6,
                                       err_msg=f"{case['case']} step {step} v{i}")


def test_lion_config_round_trip_and_get():
    opt = optimizers.get("lion")
    assert isinstance(opt, optimizers.Lion) and opt.beta_2 == 0.99
    again = optimizers.deserialize(optimizers.serialize(optimizers.Lion(beta_1=0.5)))
    assert again.beta_1 == 0.5


def test_lion_rejects_bad_beta_1():
    with pytest.raises(ValueError, match="beta_1=0"):
        optimizers.Lion(beta_1=0)


SCHEDULES = json.loads((FIXTURES / "schedules.json").read_text())


@pytest.mark.parametrize("entry", SCHEDULES["schedules"],
                         ids=[e["class_name"] for e in SCHEDULES["schedules"]])
def test_schedule_matches_keras(entry):
    schedule = getattr(schedules, entry["class_name"])(**entry["config"])
    got = [float(np.float32(schedule(step))) for step in SCHEDULES["steps"]]
    np.testing.assert_allclose(got, entry["values"], rtol=1e-6, atol=1e-7)
    again = schedules.deserialize(schedules.serialize(schedule))
    assert again.get_config() == schedule.get_config()


def test_cosine_decay_restarts_rejects_bad_steps():
    with pytest.raises(ValueError, match="first_decay_steps=0"):
        schedules.CosineDecayRestarts(0.1, 0)
