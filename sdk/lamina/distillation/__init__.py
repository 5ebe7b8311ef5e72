"""``keras.distillation``: train a small student model from a frozen teacher."""

from lamina.distillation.distillation_loss import (
    DistillationLoss,
    FeatureDistillation,
    LogitsDistillation,
)
from lamina.distillation.distiller import Distiller

__all__ = ["DistillationLoss", "Distiller", "FeatureDistillation", "LogitsDistillation"]
