"""``Distiller``: a model that trains a student from a frozen teacher (Keras 3.15.1).

The total loss is ``w * student_loss + (1 - w) * sum_i(weight_i * distillation_i)``
with ``w = student_loss_weight``; ``fit`` logs ``loss`` (the total), ``student_loss``,
``distillation_loss`` and ``total_loss`` as Keras does. Only the student's weights
are trainable: the teacher is set ``trainable = False`` at construction.
"""

from __future__ import annotations

from lamina import metrics, ops, tree
from lamina.distillation.distillation_loss import (
    DistillationLoss,
    FeatureDistillation,
    LogitsDistillation,
    _convert_loss_to_function,
)
from lamina.models.model import Model

_LOSS_CLASSES = {cls.__name__: cls for cls in
                 (DistillationLoss, FeatureDistillation, LogitsDistillation)}


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _assert_shapes_compatible(shape1, shape2, context):
    if len(shape1) != len(shape2):
        raise ValueError(f"Teacher and student {context} shapes have different dimensions. "
                         f"Teacher: {shape1}, Student: {shape2}.")
    for a, b in zip(shape1, shape2):
        if a is not None and b is not None and a != b:
            raise ValueError(f"Teacher and student {context} shapes are incompatible. "
                             f"Teacher: {shape1}, Student: {shape2}. All dimensions must match.")


def _validate_models(teacher, student):
    for role, model in (("Teacher", teacher), ("Student", student)):
        if not isinstance(model, Model):
            raise ValueError(f"{role} must be a keras.Model, got {type(model)}. "
                             f"Received: {role.lower()}={model!r}")
    for attr, context in (("inputs", "input"), ("outputs", "output")):
        t, s = getattr(teacher, attr, None), getattr(student, attr, None)
        if t is None or s is None:
            continue
        tree.map_structure(
            lambda a, b, c=context: _assert_shapes_compatible(tuple(a.shape), tuple(b.shape), c),
            t, s)

        def same_dtype(a, b, c=context):
            if a.dtype != b.dtype:
                raise ValueError(f"Teacher and student {c} dtypes must match. "
                                 f"Teacher: {a.dtype}, Student: {b.dtype}.")

        tree.map_structure(same_dtype, t, s)


def _feature_extractor(model, layer_names):
    if not layer_names:
        return None
    if getattr(model, "inputs", None) is None:
        raise ValueError(f"Cannot create feature extractor for {model.name}. "
                         "The model has no symbolic inputs attribute.")
    outputs = {"final_output": model.layers[-1].output if hasattr(model, "add")
               else model.output}
    for name in layer_names:
        outputs[name] = model.get_layer(name=name).output
    return Model(inputs=model.inputs, outputs=outputs,
                 name=f"{model.name}_multi_feature_extractor")


class Distiller(Model):
    """Knowledge distillation: train ``student`` on labels and on ``teacher``'s outputs.

    Args:
        teacher: a trained model; frozen (``trainable = False``) by the distiller.
        student: the model to train; read it back as ``distiller.student``.
        distillation_losses: a ``DistillationLoss`` or a list of them.
        distillation_loss_weights: one weight per distillation loss (default all 1.0).
        student_loss_weight: weight in ``[0, 1]`` of the supervised student loss; the
            distillation losses get ``1 - student_loss_weight``.
        name: the model's name.
        **kwargs: passed to ``Model``.

    Raises:
        ValueError: for non-models, incompatible input/output shapes or dtypes, a weight
            outside ``[0, 1]``, ``distillation_losses=None`` or mismatched weights.

    Example:

    >>> import numpy as np, lamina as keras
    >>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> distiller = keras.distillation.Distiller(
    ...     teacher, student, keras.distillation.LogitsDistillation(temperature=3.0))
    >>> distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    >>> history = distiller.fit(np.ones((4, 4)), np.zeros(4), verbose=0)
    >>> sorted(history.history)
    ['distillation_loss', 'loss', 'student_loss', 'total_loss']
    """

    def __new__(cls, *args, **kwargs):
        # Two positional models are not ``Model(inputs, outputs)``: skip Model's
        # functional dispatch.
        return super(Model, cls).__new__(cls)

    def __init__(self, teacher, student, distillation_losses, distillation_loss_weights=None,
                 student_loss_weight=0.5, name="distiller", **kwargs):
        super().__init__(name=name, **kwargs)
        _validate_models(teacher, student)
        self.teacher = teacher
        self.student = student
        if not _number(student_loss_weight):
            raise ValueError(f"student_loss_weight must be a number, got "
                             f"{type(student_loss_weight)}. "
                             f"Received: student_loss_weight={student_loss_weight!r}")
        if not 0.0 <= student_loss_weight <= 1.0:
            raise ValueError("student_loss_weight must be between 0.0 and 1.0. "
                             f"Received: student_loss_weight={student_loss_weight}")
        self.student_loss_weight = student_loss_weight
        if distillation_losses is None:
            raise ValueError(
                "'distillation_losses' cannot be `None`. Provide a distillation loss (e.g., "
                "LogitsDistillation or FeatureDistillation) or a list of distillation losses.")
        if not isinstance(distillation_losses, (list, tuple)):
            self.distillation_losses = [distillation_losses]
            self.distillation_loss_weights = [1.0]
        else:
            self.distillation_losses = list(distillation_losses)
            if distillation_loss_weights is None:
                distillation_loss_weights = [1.0] * len(distillation_losses)
            elif len(distillation_loss_weights) != len(distillation_losses):
                raise ValueError(
                    f"Number of distillation_loss_weights ({len(distillation_loss_weights)}) "
                    f"must match number of distillation_losses ({len(distillation_losses)}). "
                    f"Received: distillation_loss_weights={distillation_loss_weights!r}")
            self.distillation_loss_weights = list(distillation_loss_weights)
        for loss in self.distillation_losses:
            loss.validate_model_compatibility(teacher, student)
        teacher_names, student_names = [], []
        for loss in self.distillation_losses:
            for attr, names in (("teacher_layer_name", teacher_names),
                                ("student_layer_name", student_names)):
                value = getattr(loss, attr, None)
                if value and value not in names:
                    names.append(value)
        self._teacher_feature_extractor = _feature_extractor(teacher, teacher_names)
        self._student_feature_extractor = _feature_extractor(student, student_names)
        self.teacher.trainable = False
        self.student_loss_tracker = metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = metrics.Mean(name="distillation_loss")
        self.total_loss_tracker = metrics.Mean(name="total_loss")

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Compile for training the student.

        Args:
            optimizer: optimizer (name, config or instance) for the student's weights.
            loss: the student's supervised loss (name, instance, or a structure of them).
            metrics: a list or tuple of metrics, or ``None``.
            **kwargs: passed to ``Model.compile``.

        Raises:
            ValueError: for ``loss=None`` or ``metrics`` that is not a list/tuple.
        """
        if loss is None:
            raise ValueError("'loss' cannot be `None`. Received: loss=None")
        self._student_loss = tree.map_structure(_convert_loss_to_function, loss)
        self._student_loss_for_serialization = loss
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise ValueError(f"metrics must be a list or tuple, got {type(metrics)}. "
                             f"Received: metrics={metrics!r}")
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)

    def call(self, inputs, training=None, **kwargs):
        """The student's predictions."""
        return self.student(inputs, training=training, **kwargs)

    def _features(self, loss, features, role, default):
        name = getattr(loss, f"{role}_layer_name", None) or "final_output"
        if name == "final_output" and default is not None:
            return default
        if name not in features:
            raise ValueError(f"Layer '{name}' not found in extracted features. "
                             f"Available: {list(features)}")
        return features[name]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The weighted sum of the student loss and the distillation losses.

        Args:
            x: the inputs (the teacher and feature extractors read them).
            y: the labels (``None`` skips the student loss).
            y_pred: the student's predictions (computed from ``x`` when ``None``).
            sample_weight: unused, as in Keras.
            training: whether the student runs in training mode.

        Returns:
            The scalar total loss; the three loss trackers are updated with it.

        Raises:
            ValueError: if a distillation loss is not scalar.
        """
        if y_pred is None:
            y_pred = self(x, training=training)
        student_loss = 0.0
        if self.student_loss_weight > 0.0 and y is not None:
            values = tree.flatten(tree.map_structure(lambda fn, o, p: fn(o, p),
                                                     self._student_loss, y, y_pred))
            student_loss = ops.sum(ops.stack(values)) if len(values) > 1 else values[0]
            if len(getattr(student_loss, "shape", ())) > 0:
                student_loss = ops.mean(student_loss)
        distillation_loss = 0.0
        if self.student_loss_weight < 1.0:
            if self._teacher_feature_extractor is not None:
                teacher_features = self._teacher_feature_extractor(x, training=False)
            else:
                teacher_features = {"final_output": self.teacher(x, training=False)}
            if self._student_feature_extractor is not None:
                student_features = self._student_feature_extractor(x, training=training)
            else:
                student_features = {"final_output": y_pred}
            for loss_fn, weight in zip(self.distillation_losses, self.distillation_loss_weights):
                if getattr(loss_fn, "teacher_layer_name", None) is not None:
                    try:
                        teacher_out = self._features(loss_fn, teacher_features, "teacher", None)
                        student_out = self._features(loss_fn, student_features, "student", None)
                    except ValueError as exc:
                        raise RuntimeError(
                            f"Failed to extract features for {type(loss_fn).__name__} "
                            f"targeting teacher layer '{loss_fn.teacher_layer_name}' and "
                            f"student layer '{loss_fn.student_layer_name}'. "
                            f"Original error: {exc}") from exc
                else:
                    teacher_out, student_out = teacher_features["final_output"], y_pred
                loss_fn.validate_outputs(teacher_out, student_out)
                value = loss_fn.compute_loss(teacher_out, student_out)
                if len(getattr(value, "shape", ())) > 0:
                    raise ValueError(
                        f"Distillation loss {type(loss_fn).__name__} returned a non-scalar "
                        f"loss with shape {tuple(value.shape)}. The compute_loss method must "
                        "return a scalar tensor.")
                distillation_loss = ops.add(distillation_loss, ops.multiply(weight, value))
        w = self.student_loss_weight
        total_loss = ops.add(ops.multiply(w, student_loss),
                             ops.multiply(1.0 - w, distillation_loss))
        self.student_loss_tracker.update_state(student_loss)
        self.distillation_loss_tracker.update_state(distillation_loss)
        self.total_loss_tracker.update_state(total_loss)
        return ops.convert_to_tensor(total_loss, dtype="float32")

    def reset_metrics(self):
        """Reset the compiled metrics and the three loss trackers."""
        super().reset_metrics()
        for tracker in (self.student_loss_tracker, self.distillation_loss_tracker,
                        self.total_loss_tracker):
            tracker.reset_state()

    def get_config(self):
        """Teacher, student and losses serialised, with the weights."""
        from lamina.saving import serialize_keras_object

        return {
            "name": self.name, "trainable": self.trainable,
            "teacher": serialize_keras_object(self.teacher),
            "student": serialize_keras_object(self.student),
            "distillation_losses": [{"class_name": type(loss).__name__,
                                     "config": loss.get_config()}
                                    for loss in self.distillation_losses],
            "distillation_loss_weights": self.distillation_loss_weights,
            "student_loss_weight": self.student_loss_weight,
        }

    @classmethod
    def from_config(cls, config):
        """Rebuild from :meth:`get_config`'s dict (built-in distillation losses only).

        Raises:
            ValueError: for a distillation loss class that is not Lamina's.
        """
        from lamina.saving import deserialize_keras_object

        config = dict(config)
        config["teacher"] = deserialize_keras_object(config["teacher"])
        config["student"] = deserialize_keras_object(config["student"])
        built = []
        for item in config["distillation_losses"]:
            loss_cls = _LOSS_CLASSES.get(item.get("class_name"))
            if loss_cls is None or loss_cls is DistillationLoss:
                raise ValueError("Unknown distillation loss. Received: "
                                 f"class_name={item.get('class_name')!r}")
            built.append(loss_cls.from_config(item["config"]))
        config["distillation_losses"] = built
        return cls(**config)
