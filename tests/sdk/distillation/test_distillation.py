"""lamina.distillation against Keras 3.15.1 (tests/fixtures/distillation/)."""

import json
import pathlib

import numpy as np
import pytest

import lamina
from lamina import distillation as D

FIXTURE = json.loads((pathlib.Path(__file__).parents[2] / "fixtures" / "distillation"
                      / "distillation.json").read_text())


def _models():
    teacher = lamina.Sequential([
        lamina.Input((5,)), lamina.layers.Dense(6, activation="relu", name="t_hidden"),
        lamina.layers.Dense(4, name="t_feat"), lamina.layers.Dense(3, name="t_out")],
        name="teacher")
    student = lamina.Sequential([
        lamina.Input((5,)), lamina.layers.Dense(4, activation="tanh", name="s_feat"),
        lamina.layers.Dense(3, name="s_out")], name="student")
    teacher.set_weights([np.asarray(w, "float32") for w in FIXTURE["teacher_weights"]])
    student.set_weights([np.asarray(w, "float32") for w in FIXTURE["student_weights"]])
    return teacher, student


SETUPS = {
    "logits_kl": lambda: dict(distillation_losses=D.LogitsDistillation(temperature=2.0),
                              student_loss_weight=0.3),
    "logits_kl_instance": lambda: dict(distillation_losses=D.LogitsDistillation(
        temperature=2.5, loss=lamina.losses.KLDivergence()), student_loss_weight=0.0),
    "logits_cce": lambda: dict(distillation_losses=D.LogitsDistillation(
        temperature=3.0, loss=lamina.losses.CategoricalCrossentropy(from_logits=True))),
    "logits_and_feature": lambda: dict(distillation_losses=[
        D.LogitsDistillation(temperature=4.0),
        D.FeatureDistillation(loss="mae", teacher_layer_name="t_feat",
                              student_layer_name="s_feat")],
        distillation_loss_weights=[1.0, 0.25], student_loss_weight=0.6),
}


@pytest.mark.parametrize("case", sorted(SETUPS))
def test_losses_and_one_step_equal_keras(case):
    expected = FIXTURE["cases"][case]
    x = np.asarray(FIXTURE["x"], "float32")
    y = np.asarray(FIXTURE["y"], "int32")
    teacher, student = _models()
    distiller = D.Distiller(teacher=teacher, student=student, **SETUPS[case]())
    distiller.compile(optimizer=lamina.optimizers.SGD(0.1),
                      loss="sparse_categorical_crossentropy")
    total = distiller.compute_loss(x=x, y=y, y_pred=distiller(x))
    np.testing.assert_allclose(float(total.data), expected["total"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(distiller.student_loss_tracker.result()),
                               expected["student_loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(distiller.distillation_loss_tracker.result()),
                               expected["distillation_loss"], rtol=1e-5, atol=1e-6)
    distiller.reset_metrics()
    history = distiller.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert sorted(history.history) == sorted(expected["history"])
    for key, values in expected["history"].items():
        np.testing.assert_allclose(history.history[key], values, rtol=1e-5, atol=1e-6)
    for got, want in zip(student.get_weights(), expected["student_after"]):
        np.testing.assert_allclose(got, np.asarray(want, "float32"), rtol=1e-5, atol=1e-6)
    for got, want in zip(teacher.get_weights(), FIXTURE["teacher_weights"]):
        np.testing.assert_array_equal(got, np.asarray(want, "float32"))


def test_distilling_trains_the_student_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 5)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32") + (x[:, 2] > 1).astype("int32")
    lamina.utils.set_random_seed(0)
    teacher, student = _models()
    teacher.compile(optimizer=lamina.optimizers.Adam(0.01),
                    loss=lamina.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x, y, batch_size=32, epochs=20, verbose=0)
    student = lamina.Sequential([lamina.Input((5,)), lamina.layers.Dense(4, activation="tanh"),
                                 lamina.layers.Dense(3)])
    before = [w.copy() for w in teacher.get_weights()]
    distiller = D.Distiller(teacher, student, D.LogitsDistillation(temperature=2.0),
                            student_loss_weight=0.5)
    distiller.compile(optimizer=lamina.optimizers.Adam(0.02),
                      loss=lamina.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert len(distiller.trainable_weights) == len(student.trainable_weights) == 4
    history = distiller.fit(x, y, batch_size=32, epochs=15, verbose=0)
    assert history.history["student_loss"][-1] < 0.8 * history.history["student_loss"][0]
    assert history.history["loss"][-1] < history.history["loss"][0]
    for got, want in zip(teacher.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    assert distiller.predict(x[:4], verbose=0).shape == (4, 3)
    logs = distiller.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "student_loss", "distillation_loss", "total_loss"}


def test_validation_errors_name_the_argument():
    teacher, student = _models()
    with pytest.raises(ValueError, match="student_loss_weight=1.5"):
        D.Distiller(teacher, student, D.LogitsDistillation(), student_loss_weight=1.5)
    with pytest.raises(ValueError, match="cannot be `None`"):
        D.Distiller(teacher, student, None)
    with pytest.raises(ValueError, match="must match number"):
        D.Distiller(teacher, student, [D.LogitsDistillation()], distillation_loss_weights=[1, 2])
    with pytest.raises(ValueError, match="temperature"):
        D.LogitsDistillation(temperature=0)
    with pytest.raises(ValueError, match="non-`None`"):
        D.FeatureDistillation(loss=[None, None])
    with pytest.raises(ValueError, match="In teacher model"):
        D.Distiller(teacher, student, D.FeatureDistillation(teacher_layer_name="nope"))
    wide = lamina.Sequential([lamina.Input((5,)), lamina.layers.Dense(7)])
    with pytest.raises(ValueError, match="output shapes are incompatible"):
        D.Distiller(teacher, wide, D.LogitsDistillation())
    distiller = D.Distiller(teacher, student, D.LogitsDistillation())
    with pytest.raises(ValueError, match="'loss' cannot be `None`"):
        distiller.compile(optimizer="sgd")
    with pytest.raises(NotImplementedError):
        D.DistillationLoss().compute_loss(None, None)


def test_configs_round_trip():
    loss = D.FeatureDistillation(loss="mae", teacher_layer_name="t_feat",
                                 student_layer_name="s_feat")
    again = D.FeatureDistillation.from_config(loss.get_config())
    assert (again.teacher_layer_name, again.student_layer_name) == ("t_feat", "s_feat")
    logits = D.LogitsDistillation.from_config(D.LogitsDistillation(temperature=5.0).get_config())
    assert logits.temperature == 5.0
    teacher, student = _models()
    distiller = D.Distiller(teacher, student, [loss, logits], [0.5, 0.5], 0.2)
    rebuilt = D.Distiller.from_config(distiller.get_config())
    assert rebuilt.student_loss_weight == 0.2
    assert [type(x).__name__ for x in rebuilt.distillation_losses] == [
        "FeatureDistillation", "LogitsDistillation"]
    assert not rebuilt.teacher.trainable


class _Subclassed(lamina.Model):
    def __init__(self):
        super().__init__()
        self.dense = lamina.layers.Dense(3)

    def call(self, inputs, training=None):
        return self.dense(inputs)


def test_subclassed_models_distill_final_outputs_only():
    teacher, _ = _models()
    student = _Subclassed()
    with pytest.raises(ValueError, match="student model\\(s\\) appear to be subclassed"):
        D.Distiller(teacher, student, D.FeatureDistillation(teacher_layer_name="t_feat",
                                                            student_layer_name="dense"))
    x = np.asarray(FIXTURE["x"], "float32")
    y = np.asarray(FIXTURE["y"], "int32")
    distiller = D.Distiller(teacher, student, [D.FeatureDistillation(loss="mse"),
                                               D.LogitsDistillation(temperature=2.0)],
                            student_loss_weight=0.0)
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    y_pred = distiller(x)
    total = float(distiller.compute_loss(x=x, y=y, y_pred=y_pred).data)
    t, s = teacher(x).data, y_pred.data
    mse = np.mean((t - s) ** 2)
    kl_fn = lamina.losses.get("kl_divergence")
    logits = float(np.mean(kl_fn(t / 2.0, s / 2.0).data))
    np.testing.assert_allclose(total, mse + logits, rtol=1e-5)
    assert float(distiller.student_loss_tracker.result()) == 0.0
