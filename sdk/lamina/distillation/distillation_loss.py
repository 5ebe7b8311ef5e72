"""Distillation losses: how a student's outputs are compared with a teacher's.

As Keras 3.15.1: a loss given as a string resolves through ``losses.get`` (so
``"kl_divergence"`` is the plain function, compared on temperature-scaled logits);
only a ``KLDivergence`` *instance* takes the softmax branch scaled by ``T**2``.
"""

from __future__ import annotations

from lamina import losses, ops, tree


def _convert_loss_to_function(loss_item):
    if loss_item is None:
        return None
    if isinstance(loss_item, str):
        loss_fn = losses.get(loss_item)
        if loss_fn is None:
            raise ValueError(f"Unknown loss function: '{loss_item}'.")
        return loss_fn
    return loss_item


def _sum_of(values):
    flat = [ops.convert_to_tensor(v, dtype="float32") for v in tree.flatten(values)]
    return ops.sum(ops.stack(flat))


class DistillationLoss:
    """Base class of distillation losses.

    Subclasses override :meth:`compute_loss`; :meth:`validate_outputs` and
    :meth:`validate_model_compatibility` may be overridden to check inputs early.
    """

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        """The distillation loss between teacher and student outputs.

        Args:
            teacher_outputs: the teacher's outputs (a tensor or a structure of them).
            student_outputs: the student's outputs, of the same structure.
            **kwargs: extra arguments for custom losses.

        Returns:
            A scalar loss tensor.

        Raises:
            NotImplementedError: in the base class.
        """
        raise NotImplementedError("Subclasses must implement compute_loss")

    def validate_outputs(self, teacher_outputs, student_outputs):
        """Check that teacher and student outputs have the same structure.

        Raises:
            ValueError: if the structures differ.
        """
        tree.assert_same_structure(teacher_outputs, student_outputs)

    def validate_model_compatibility(self, teacher, student):
        """Check that this loss can be used with ``teacher`` and ``student`` (no-op)."""


class FeatureDistillation(DistillationLoss):
    """Match intermediate features (or final outputs) of teacher and student.

    Args:
        loss: loss name, ``Loss`` instance or function, or a structure of them (with
            ``None`` to skip an output); at least one must not be ``None``.
        teacher_layer_name: the teacher layer whose output is matched (``None``: the
            final output).
        student_layer_name: the student layer whose output is matched.

    Raises:
        ValueError: if every loss is ``None``.
    """

    def __init__(self, loss="mse", teacher_layer_name=None, student_layer_name=None):
        self.teacher_layer_name = teacher_layer_name
        self.student_layer_name = student_layer_name
        self.loss = tree.map_structure(_convert_loss_to_function, loss)
        if all(item is None for item in tree.flatten(self.loss)):
            raise ValueError("The `loss` argument in `FeatureDistillation` must contain at "
                             f"least one non-`None` value. Received: loss={loss!r}")

    def validate_model_compatibility(self, teacher, student):
        """Named layers need functional/Sequential models that have those layers.

        Raises:
            ValueError: for a subclassed model or a layer name that is not found.
        """
        if self.teacher_layer_name is not None or self.student_layer_name is not None:
            subclassed = [role for role, model in (("teacher", teacher), ("student", student))
                          if getattr(model, "inputs", None) is None]
            if subclassed:
                raise ValueError(
                    "FeatureDistillation with specific layer names requires Functional or "
                    f"Sequential models. The {' and '.join(subclassed)} model(s) appear to be "
                    "subclassed (no symbolic inputs/outputs). Either use Functional/Sequential "
                    "models, or use FeatureDistillation without layer names (to distill final "
                    "outputs only), or use LogitsDistillation instead.")
        for role, model, name in (("teacher", teacher, self.teacher_layer_name),
                                  ("student", student, self.student_layer_name)):
            if name is not None:
                try:
                    model.get_layer(name=name)
                except ValueError as exc:
                    raise ValueError(f"In {role} model: {exc}") from None

    def validate_outputs(self, teacher_outputs, student_outputs):
        """Outputs must match each other and the structure of ``loss``.

        Raises:
            ValueError: on a structure mismatch.
        """
        super().validate_outputs(teacher_outputs, student_outputs)
        try:
            tree.assert_same_structure(self.loss, teacher_outputs)
        except ValueError as exc:
            raise ValueError(f"Loss structure mismatch. Loss structure: {self.loss!r}. "
                             f"Error: {exc}") from None

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        """Sum over outputs of the mean of ``loss(teacher_features, student_features)``."""

        def apply_loss(loss_fn, teacher_features, student_features):
            if loss_fn is None:
                return 0.0
            return ops.mean(loss_fn(teacher_features, student_features))

        return _sum_of(tree.map_structure(apply_loss, self.loss, teacher_outputs,
                                          student_outputs))

    def get_config(self):
        """The constructor arguments, the loss serialised as Keras does."""
        return {"loss": losses.serialize(self.loss),
                "teacher_layer_name": self.teacher_layer_name,
                "student_layer_name": self.student_layer_name}

    @classmethod
    def from_config(cls, config):
        """Rebuild from :meth:`get_config`'s dict."""
        config = dict(config)
        config["loss"] = losses.deserialize(config["loss"])
        return cls(**config)


class LogitsDistillation(DistillationLoss):
    """Match the student's final logits to the teacher's, softened by a temperature.

    Both logits are divided by ``temperature``; a ``KLDivergence`` instance then
    compares their softmaxes and the loss is scaled by ``temperature**2``; any other
    loss compares the scaled logits directly.

    Args:
        temperature: positive number; higher gives softer targets.
        loss: loss name, instance or function, or a structure of them (``None`` skips
            an output).

    Raises:
        ValueError: for a non-positive or non-numeric temperature, or all-``None`` loss.
    """

    def __init__(self, temperature=3.0, loss="kl_divergence"):
        self.temperature = temperature
        self.loss = tree.map_structure(_convert_loss_to_function, loss)
        if all(item is None for item in tree.flatten(self.loss)):
            raise ValueError(f"At least one loss must be non-`None`. Received: loss={loss!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValueError(f"temperature must be a number, got {type(temperature)}. "
                             f"Received: temperature={temperature!r}")
        if temperature <= 0.0:
            raise ValueError(f"temperature must be positive. Received: temperature={temperature}")

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        """The distillation loss of temperature-scaled logits, summed over outputs."""
        t = self.temperature
        teacher_scaled = tree.map_structure(lambda x: ops.divide(x, t), teacher_outputs)
        student_scaled = tree.map_structure(lambda x: ops.divide(x, t), student_outputs)

        def apply_loss(loss_fn, teacher_logits, student_logits):
            if loss_fn is None:
                return 0.0
            if isinstance(loss_fn, losses.KLDivergence):
                value = ops.mean(loss_fn(ops.softmax(teacher_logits, axis=-1),
                                         ops.softmax(student_logits, axis=-1)))
                return ops.multiply(value, t ** 2)
            return ops.mean(loss_fn(teacher_logits, student_logits))

        return _sum_of(tree.map_structure(apply_loss, self.loss, teacher_scaled,
                                          student_scaled))

    def get_config(self):
        """The constructor arguments, the loss serialised as Keras does."""
        from lamina.saving import serialize_keras_object

        return {"temperature": self.temperature, "loss": serialize_keras_object(self.loss)}

    @classmethod
    def from_config(cls, config):
        """Rebuild from :meth:`get_config`'s dict."""
        config = dict(config)
        config["loss"] = losses.deserialize(config["loss"])
        return cls(**config)
