"""``MultiOptimizer``: each variable updated by the optimizer its path selects."""

from __future__ import annotations

import re
from collections.abc import MutableMapping

from lamina.optimizers.base import Optimizer
from lamina.optimizers.loss_scale_optimizer import LossScaleOptimizer


def _path(variable) -> str:
    return getattr(variable, "path", None) or variable.name


class OptimizerMap(MutableMapping):
    """Variable paths (exact, else ``re.fullmatch`` patterns) to optimizers.

    Args:
        default_optimizer: the optimizer of every variable no key matches.
        optimizer_map: optional dict ``{path or pattern: optimizer}``.

    Raises:
        TypeError: for a default that is not an ``Optimizer`` or a map that is not a dict.

    Example:
        >>> from lamina import optimizers
        >>> m = OptimizerMap(optimizers.RMSprop(), {"encoder/.*": optimizers.SGD()})
        >>> m["encoder/dense/kernel"].__class__.__name__, m["head/bias"].__class__.__name__
        ('SGD', 'RMSprop')
    """

    def __init__(self, default_optimizer, optimizer_map=None):
        if not isinstance(default_optimizer, Optimizer):
            raise TypeError("default_optimizer must be a Keras Optimizer instance. "
                            f"Received: {default_optimizer!r}")
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError(f"optimizer_map must be a dictionary. Received: {optimizer_map!r}")
        self._default_optimizer = default_optimizer
        self._optimizer_map = {}
        for key, optimizer in (optimizer_map or {}).items():
            self[key] = optimizer

    @property
    def default_optimizer(self):
        return self._default_optimizer

    def __getitem__(self, key):
        if key in self._optimizer_map:
            return self._optimizer_map[key]
        matching = [p for p in self._optimizer_map if re.fullmatch(p, key)]
        if len(matching) > 1:
            raise ValueError(f"Multiple optimizers assigned to variable {key}: patterns "
                             f"{matching} all match.")
        return self._optimizer_map[matching[0]] if matching else self._default_optimizer

    def __setitem__(self, key, optimizer):
        if not isinstance(key, str):
            raise ValueError(f"key must be a string. Received: {key!r}")
        if key in self._optimizer_map:
            raise ValueError(f"'{key}' already exists in the OptimizerMap with value "
                             f"{self._optimizer_map[key]}. Please make sure to not use "
                             "duplicated keys.")
        if not isinstance(optimizer, Optimizer):
            raise ValueError(f"optimizer must be a Keras Optimizer instance. Received: "
                             f"{optimizer!r}")
        if isinstance(optimizer, (LossScaleOptimizer, MultiOptimizer)):
            raise ValueError(f"optimizer cannot be a {type(optimizer).__name__}.")
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key):
        del self._optimizer_map[key]

    def __len__(self):
        return len(self._optimizer_map)

    def __iter__(self):
        return iter(self._optimizer_map)

    def __call__(self, variable):
        return self[_path(variable)]

    def get_config(self):
        from lamina import optimizers

        return {"default_optimizer": optimizers.serialize(self._default_optimizer),
                "optimizer_map": {k: optimizers.serialize(v)
                                  for k, v in self._optimizer_map.items()}}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from lamina import optimizers

        return cls(optimizers.deserialize(config["default_optimizer"], custom_objects),
                   {k: optimizers.deserialize(v, custom_objects)
                    for k, v in config["optimizer_map"].items()})


class MultiOptimizer(Optimizer):
    """Delegate each variable to the optimizer an ``OptimizerMap`` (or a function) picks.

    Args:
        optimizer_map: an ``OptimizerMap``, or a callable ``variable -> Optimizer``.
        loss_scale_factor: overrides the sub-optimizers' ``loss_scale_factor``.
        name: the optimizer's name.

    The learning rate lives on the sub-optimizers (``optimizers``): reading or setting
    ``learning_rate`` here raises ``AttributeError``, as in Keras.

    Example:
        >>> from lamina import optimizers
        >>> opt = MultiOptimizer(OptimizerMap(optimizers.SGD(0.1), {"v1": optimizers.Adam()}))
    """

    def __init__(self, optimizer_map, loss_scale_factor=None, name=None):
        super().__init__(learning_rate=0.0, loss_scale_factor=loss_scale_factor, name=name)
        if not callable(optimizer_map):
            raise ValueError("optimizer_map must be an OptimizerMap or a callable returning an "
                             f"optimizer for a variable. Received: {optimizer_map!r}")
        self._optimizer_map = optimizer_map
        self._inner_optimizers = []
        for opt in list(getattr(optimizer_map, "values", lambda: [])()) + [
                getattr(optimizer_map, "default_optimizer", None)]:
            if opt is not None and opt not in self._inner_optimizers:
                opt.loss_scale_factor = loss_scale_factor
                self._inner_optimizers.append(opt)

    def build(self, var_list):
        """Build each sub-optimizer on the variables it owns."""
        if self.built:
            return
        var_list = list(var_list)
        self._owner = {}
        for var in var_list:
            opt = self._optimizer_map(var)
            if not isinstance(opt, Optimizer):
                raise ValueError(f"Optimizer for variable {_path(var)} is not an Optimizer "
                                 f"instance. Received: {opt!r}")
            if isinstance(opt, (LossScaleOptimizer, MultiOptimizer)):
                raise ValueError(f"{type(opt).__name__} cannot be used inside a MultiOptimizer.")
            if opt not in self._inner_optimizers:
                opt.loss_scale_factor = self.loss_scale_factor
                self._inner_optimizers.append(opt)
            self._owner[id(var)] = self._inner_optimizers.index(opt)
        for index, opt in enumerate(self._inner_optimizers):
            owned = [v for v in var_list if self._owner[id(v)] == index]
            if owned:
                opt.build(owned)
        self._trainable_variables = var_list
        self._index = {id(v): i for i, v in enumerate(var_list)}
        self.built = True

    @property
    def optimizers(self):
        """The sub-optimizers, in the order they were first met."""
        return self._inner_optimizers

    @property
    def variables(self):
        out = self._variables[:]
        for opt in self._inner_optimizers:
            out.extend(opt.variables)
        return out

    @property
    def learning_rate(self):
        raise AttributeError("Learning rate cannot be accessed on a MultiOptimizer. Access the "
                             "learning rate on the individual sub-optimizers instead.")

    @learning_rate.setter
    def learning_rate(self, value):
        raise AttributeError("Learning rate cannot be set on a MultiOptimizer. Set the "
                             "learning rate on the individual sub-optimizers instead.")

    @property
    def loss_scale_factor(self):
        return getattr(self, "_loss_scale_factor", None)

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        self._loss_scale_factor = value
        for opt in getattr(self, "_inner_optimizers", []):
            opt.loss_scale_factor = value

    def apply(self, grads, trainable_variables=None) -> None:
        """Split the gradients by owner and let each sub-optimizer apply its share."""
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When passing `grads` without `variables`, the optimizer must "
                                 "already be built on a list of variables. Call "
                                 "`optimizer.build(trainable_variables)` first.")
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            self.build(trainable_variables)
        if len(grads) != len(self._owner):
            raise ValueError("Gradients must match trainable variables one-to-one. Received "
                             f"{len(grads)} gradients and {len(self._owner)} variables.")
        shares = [([], []) for _ in self._inner_optimizers]
        for grad, var in zip(grads, trainable_variables):
            if id(var) not in self._owner:
                raise ValueError(f"Unknown variable: {_path(var)}. This optimizer can only be "
                                 "called for the variables it was originally built with.")
            share = shares[self._owner[id(var)]]
            share[0].append(grad)
            share[1].append(var)
        for opt, (sub_grads, sub_vars) in zip(self._inner_optimizers, shares):
            if sub_vars:
                opt.apply(sub_grads, sub_vars)
        self._iterations.data += 1

    def finalize_variable_values(self, var_list) -> None:
        for index, opt in enumerate(self._inner_optimizers):
            owned = [v for v in var_list if self._owner.get(id(v)) == index]
            if owned:
                opt.finalize_variable_values(owned)

    def set_weights(self, weights) -> None:
        if not self.built:
            raise ValueError("You are calling `set_weights()` on an optimizer that has not yet "
                             "been built. Call `optimizer.build(trainable_variables)` first.")
        variables = self.variables
        if len(weights) != len(variables):
            raise ValueError(f"Expected {len(variables)} weights, received {len(weights)}.")
        for var, value in zip(variables, weights):
            var.assign(value)

    def get_weights(self) -> list:
        return [v.numpy() for v in self.variables]

    def save_own_variables(self, store) -> None:
        for i, var in enumerate(self.variables):
            store[str(i)] = var.numpy()

    def load_own_variables(self, store) -> None:
        variables = self.variables
        for i, var in enumerate(variables):
            var.assign(store[str(i)])

    def get_config(self):
        if not isinstance(self._optimizer_map, OptimizerMap):
            raise ValueError(
                "A MultiOptimizer built on a function cannot be serialized: use an "
                f"OptimizerMap to save it. Received: optimizer_map={self._optimizer_map!r}")
        return {"optimizer_map": {"class_name": "OptimizerMap",
                                  "config": self._optimizer_map.get_config()},
                "loss_scale_factor": self.loss_scale_factor, "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        spec = config["optimizer_map"]
        if not isinstance(spec, dict) or spec.get("class_name") != "OptimizerMap":
            raise ValueError(f"MultiOptimizer's optimizer_map must be a serialized "
                             f"OptimizerMap. Received: {spec!r}")
        config["optimizer_map"] = OptimizerMap.from_config(spec["config"], custom_objects)
        return cls(**config)
