"""The worker reads a stored job spec with the API's own schema (one definition)."""

import numpy as np
import pytest

from lamina_service.jobspec import JobCreate
from lamina_worker.spec import SpecError, compile_config, plan

MODEL = {"class_name": "Sequential", "config": {"layers": []}}


def _spec(**overrides):
    body = {"model": MODEL, "compile": {"loss": "mse", "optimizer": {
        "class_name": "Adam", "config": {"learning_rate": 0.01}}},
        "fit": {"epochs": 3, "batch_size": 4, "validation_split": 0.25, "seed": 7},
        "callbacks": [{"class_name": "EarlyStopping", "config": {"patience": 2}}],
        "dataset_id": "d_x", "replicas": 2}
    body.update(overrides)
    # What the API stores: the validated body, dumped as JSON.
    return JobCreate.model_validate(body).model_dump(mode="json",
                                                     exclude={"idempotency_key"})


def _data(n=16):
    x = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    return {"x": x, "y": np.ones((n, 1), np.float32)}


def test_plan_reads_every_field_through_the_schema():
    job_plan = plan("j_1", _spec(), [_data()], max_replicas=None)
    assert (job_plan.epochs, job_plan.batch_size, job_plan.seed) == (3, 4, 7)
    assert job_plan.replicas == 2 and job_plan.shuffle is True
    assert job_plan.train[0].shape == (12, 2) and job_plan.train[0].dtype == np.float32
    assert job_plan.val[0].shape == (4, 2)
    assert job_plan.compile_config == {"optimizer": {"class_name": "Adam", "config": {
        "learning_rate": 0.01}}, "loss": "mse", "metrics": None}
    # Defaults come from the schema, not from a second reading of the dict.
    assert job_plan.callbacks[0]["config"]["monitor"] == "val_loss"
    assert job_plan.callbacks[0]["config"]["patience"] == 2


def test_a_spec_the_schema_refuses_names_the_field():
    spec = _spec()
    spec["fit"]["epochs"] = 0
    with pytest.raises(SpecError, match=r"fit\.epochs"):
        plan("j_1", spec, [_data()], max_replicas=None)
    spec = _spec()
    spec["callbacks"] = [{"class_name": "LambdaCallback", "config": {}}]
    with pytest.raises(SpecError, match="callbacks"):
        plan("j_1", spec, [_data()], max_replicas=None)


def test_compile_config_refuses_a_missing_loss():
    with pytest.raises(SpecError, match=r"compile: loss"):
        compile_config({"compile": {"optimizer": "adam"}})
