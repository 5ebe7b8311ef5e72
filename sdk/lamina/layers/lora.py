"""Low-rank adaptation (LoRA) of a layer's main weight, and the ``quantization_config`` check.

``Dense``, ``EinsumDense`` and ``Embedding`` mix in :class:`LoRAMixin`. After
``enable_lora(rank)`` (or ``lora_rank=`` in the constructor) the main weight is frozen
and two trainable factors are added: ``lora_<w>_a`` of shape ``w.shape[:-1] + (rank,)``
(He-uniform) and ``lora_<w>_b`` of shape ``(rank, w.shape[-1])`` (zeros). The layer
computes with ``w + (lora_alpha / rank) * a @ b``. As in Keras, a weights file stores
the merged weight in place of ``w`` (and no factors), and loading one assigns it to
``w`` and zeroes the factors, so files move between Lamina and Keras unchanged.
"""

from __future__ import annotations

import numpy as np

from lamina import initializers, ops


def check_quantization_config(layer_name, quantization_config):
    """Accept ``None`` only: Lamina computes in float and has no quantized kernels."""
    if quantization_config is not None:
        raise ValueError(
            f"Lamina does not quantize layers ({layer_name}): `quantization_config` must be "
            f"None. Received: quantization_config={quantization_config!r}")


def _check_rank(rank, name="lora_rank"):
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank <= 0:
        raise ValueError(f"Argument `{name}` must be a positive integer. "
                         f"Received: {name}={rank!r}")
    return int(rank)


class _MergedWeight:
    """What a weights file holds for a LoRA layer's main weight: ``w + scale * a @ b``.

    Saving reads ``data``; loading ``assign``s the main weight and zeroes the factors.
    """

    def __init__(self, layer):
        self._layer = layer
        self._base = getattr(layer, layer._lora_target)
        self.name = self._base.name
        self.path = self._base.path

    @property
    def shape(self):
        return self._base.shape

    @property
    def data(self):
        return np.asarray(self._layer._lora_merged().data, dtype=self._base.data.dtype)

    def assign(self, value):
        self._base.assign(value)
        for factor in self._layer._lora_factors():
            factor.assign(np.zeros(factor.shape, dtype=factor.data.dtype))


class LoRAMixin:
    """Adds ``enable_lora`` to a layer whose main weight is ``self.<_lora_target>``."""

    _lora_target = "kernel"

    def _init_lora(self, lora_rank, lora_alpha, quantization_config):
        check_quantization_config(type(self).__name__, quantization_config)
        self.lora_rank = None if lora_rank is None else _check_rank(lora_rank)
        if lora_alpha is not None and (isinstance(lora_alpha, bool) or not isinstance(
                lora_alpha, (int, float, np.integer, np.floating)) or lora_alpha <= 0):
            raise ValueError(f"Argument `lora_alpha` must be a positive number. "
                             f"Received: lora_alpha={lora_alpha!r}")
        self.lora_alpha = lora_alpha if lora_alpha is not None else self.lora_rank
        self.lora_enabled = False
        self.quantization_config = None

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform",
                    b_initializer="zeros"):
        """Freeze the main weight and train a rank-``rank`` update of it.

        Args:
            rank: positive int, the rank of the update.
            lora_alpha: scale numerator; the update is ``(lora_alpha / rank) * a @ b``.
                ``rank`` by default.
            a_initializer, b_initializer: initializers of the two factors.

        Raises:
            ValueError: if the layer has a constraint on the weight, is not built, or
                already has LoRA enabled.
        """
        target = self._lora_target
        if getattr(self, f"{target}_constraint", None) is not None:
            raise ValueError(
                "Lora is incompatible with kernel constraints. In order to enable lora on "
                f"this layer, remove the `{target}_constraint` argument.")
        if not self.built:
            raise ValueError("Cannot enable lora on a layer that isn't yet built.")
        if self.lora_enabled:
            raise ValueError("lora is already enabled. This can only be done once per layer.")
        rank = _check_rank(rank, "rank")
        base = getattr(self, target)
        regularizer = getattr(self, f"{target}_regularizer", None)
        self._lora_a = self.add_weight(
            name=f"lora_{target}_a", shape=(*base.shape[:-1], rank),
            initializer=initializers.get(a_initializer), regularizer=regularizer)
        self._lora_b = self.add_weight(
            name=f"lora_{target}_b", shape=(rank, base.shape[-1]),
            initializer=initializers.get(b_initializer), regularizer=regularizer)
        setattr(self, f"lora_{target}_a", self._lora_a)
        setattr(self, f"lora_{target}_b", self._lora_b)
        base.trainable = False
        self.lora_enabled = True
        self.lora_rank = rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else rank

    def _lora_factors(self):
        return [self._lora_a, self._lora_b] if self.lora_enabled else []

    def _lora_merged(self):
        """The weight the layer computes with: the main one, plus the LoRA update."""
        base = getattr(self, self._lora_target)
        if not self.lora_enabled:
            return base
        update = ops.matmul(self._lora_a, self._lora_b)
        scale = np.asarray(self.lora_alpha / self.lora_rank, dtype=base.data.dtype)
        return ops.add(base, ops.multiply(update, scale))

    @property
    def weights(self):
        # Keras lists variables in creation order: the frozen main weight stays first.
        if not getattr(self, "lora_enabled", False):
            return super().weights
        return list(self._own_variables)

    def _saveable_variables(self):
        """The variables a weights file holds, in order (the merged weight, no factors)."""
        own = [v for v in self._own_variables if v.trainable] + [
            v for v in self._own_variables if not v.trainable]
        if not self.lora_enabled:
            return own
        base = getattr(self, self._lora_target)
        factors = {id(v) for v in self._lora_factors()}
        order = [v for v in self._own_variables if id(v) not in factors]
        return [_MergedWeight(self) if v is base else v for v in order]

    def _lora_config(self):
        config = {"quantization_config": None}
        if self.lora_rank:
            config.update(lora_rank=self.lora_rank, lora_alpha=self.lora_alpha)
        return config
