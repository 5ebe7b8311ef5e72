"""``compile_config`` (Keras 3) and ``training_config`` (Keras 2 ``.h5``): write and apply."""

from __future__ import annotations


def compile_config(model) -> dict:
    """Keras 3's ``compile_config`` of a compiled model."""
    from lamina.saving import serialization

    raw = getattr(model, "_compile_config", None) or {}
    return {
        "optimizer": serialization.serialize_keras_object(model.optimizer),
        "loss": serialization.serialize_keras_object(raw.get("loss")),
        "loss_weights": serialization.serialize_keras_object(raw.get("loss_weights")),
        "metrics": serialization.serialize_keras_object(raw.get("metrics")),
        "weighted_metrics": serialization.serialize_keras_object(raw.get("weighted_metrics")),
        "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False,
    }


def compile_from_config(model, config: dict, custom_objects=None) -> None:
    """Compile ``model`` from a Keras 3 ``compile_config`` or a Keras 2 ``training_config``.

    Args:
        model: the model to compile.
        config: the compile (or training) config dict.
        custom_objects: optional custom losses/metrics/optimizers.
    """
    from lamina.saving import serialization

    optimizer = config.get("optimizer")
    if optimizer is None and "optimizer_config" in config:
        optimizer = config["optimizer_config"]
    if isinstance(optimizer, dict):
        optimizer = serialization._deserialize(optimizer, custom_objects, families=("optimizers",))

    def objects(value, family):
        if isinstance(value, dict) and "class_name" in value:
            return serialization._deserialize(value, custom_objects, families=(family,))
        if isinstance(value, dict):
            return {k: objects(v, family) for k, v in value.items()}
        if isinstance(value, list):
            return [objects(v, family) for v in value]
        return value

    model.compile(optimizer=optimizer if optimizer is not None else "rmsprop",
                  loss=objects(config.get("loss"), "losses"),
                  loss_weights=config.get("loss_weights"),
                  metrics=objects(config.get("metrics"), "metrics"),
                  weighted_metrics=objects(config.get("weighted_metrics"), "metrics"))
