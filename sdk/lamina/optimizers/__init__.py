"""Optimizers with Keras's names, defaults and exact update rules.

``get("adam")``, ``get({"class_name": "Adam", "config": {...}})`` or ``get(instance)``.
"""

from __future__ import annotations

from lamina.optimizers import legacy, schedules
from lamina.optimizers.adadelta import Adadelta
from lamina.optimizers.adafactor import Adafactor
from lamina.optimizers.adagrad import Adagrad
from lamina.optimizers.adam import Adam
from lamina.optimizers.adamax import Adamax
from lamina.optimizers.adamw import AdamW
from lamina.optimizers.base import Optimizer
from lamina.optimizers.ftrl import Ftrl
from lamina.optimizers.lamb import Lamb
from lamina.optimizers.lion import Lion
from lamina.optimizers.loss_scale_optimizer import LossScaleOptimizer
from lamina.optimizers.multi_optimizer import MultiOptimizer, OptimizerMap
from lamina.optimizers.muon import Muon
from lamina.optimizers.nadam import Nadam
from lamina.optimizers.rmsprop import RMSprop
from lamina.optimizers.schedule_free_adamw import ScheduleFreeAdamW
from lamina.optimizers.sgd import SGD

ALL_OBJECTS = (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion, Lamb,
               Ftrl, Adafactor, Muon, ScheduleFreeAdamW, LossScaleOptimizer, MultiOptimizer)
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update({cls.__name__.lower(): cls for cls in ALL_OBJECTS})

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam",
    "Lion", "Lamb", "Ftrl", "Adafactor",
    "Muon", "ScheduleFreeAdamW", "LossScaleOptimizer", "MultiOptimizer", "OptimizerMap",
    "legacy", "schedules", "get", "serialize", "deserialize",
]


def serialize(optimizer: Optimizer) -> dict:
    """Return the Keras-style dict ``{"module", "class_name", "config", "registered_name"}``."""
    return {"module": "keras.optimizers", "class_name": optimizer.__class__.__name__,
            "config": optimizer.get_config(), "registered_name": None}


def deserialize(config: dict, custom_objects=None) -> Optimizer:
    """Create an optimizer from :func:`serialize` output or ``{"class_name", "config"}``.

    Args:
        config: the serialized dict.
        custom_objects: optional ``{name: class}`` for user optimizers.

    Raises:
        ValueError: for an unknown class name.
    """
    name = config.get("class_name")
    registry = {**ALL_OBJECTS_DICT, **(custom_objects or {})}
    cls = registry.get(name)
    if cls is None:
        raise ValueError(f"Could not interpret optimizer identifier: {name!r}. "
                         f"Known optimizers: {sorted(ALL_OBJECTS_DICT)}")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier) -> Optimizer:
    """Resolve a string name, a config dict or an instance to an optimizer.

    Args:
        identifier: e.g. ``"adam"``, ``"RMSprop"``, a serialized dict, or an ``Optimizer``.

    Returns:
        An ``Optimizer`` (a new one for names and dicts; the same object for instances).

    Raises:
        ValueError: if the identifier cannot be interpreted.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = ALL_OBJECTS_DICT.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. "
                             f"Known optimizers: {sorted(ALL_OBJECTS_DICT)}")
        return cls()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}")
