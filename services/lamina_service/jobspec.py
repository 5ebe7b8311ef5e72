"""The job spec: the body of ``POST /v1/jobs``, one schema for the API and the worker.

The API validates submissions with :class:`JobCreate` and stores
``model_dump(mode="json")``; the worker parses the stored spec with the same class
(:func:`lamina_worker.spec.plan`), so a field means the same on both sides. Unknown
fields are refused; callbacks are a discriminated union over an allowlist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Priority = Literal["high", "normal", "low"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class Strict(BaseModel):
    """Base: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class OptimizerConfig(Strict):
    """An optimizer by class name with its hyper-parameters."""

    class_name: Name
    config: dict[str, float | int | bool | str | None] = Field(default_factory=dict)


class CompileConfig(Strict):
    """Arguments of ``model.compile``."""

    optimizer: Name | OptimizerConfig = "rmsprop"
    loss: Name | dict[Name, Name] | list[Name]
    metrics: list[Name] | dict[Name, Name | list[Name]] = Field(default_factory=list)
    loss_weights: list[float] | dict[Name, float] | None = None


class FitConfig(Strict):
    """Arguments of ``model.fit`` (epochs is checked against the configured limit)."""

    epochs: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=1)
    validation_split: float = Field(0.0, ge=0.0, lt=1.0)
    validation_dataset_id: str | None = Field(None, min_length=1, max_length=80)
    shuffle: bool = True
    seed: int | None = Field(None, ge=0, lt=2**32)
    class_weight: dict[int, float] | None = None
    initial_epoch: int = Field(0, ge=0)
    initial_weights_id: str | None = Field(None, min_length=1, max_length=80, description=(
        "A weights upload (POST /v1/datasets with one float32 array `weights` of shape "
        "(1, parameters): all of `model.weights`, flattened in order): training starts from "
        "them, as Keras's fit continues from the model's current weights. None: the "
        "service initialises the model, seeded by `seed`."))

    @model_validator(mode="after")
    def _one_validation_source(self) -> FitConfig:
        if self.validation_split and self.validation_dataset_id:
            raise ValueError("give validation_split or validation_dataset_id, not both")
        return self


Monitor = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
Mode = Literal["auto", "min", "max"]


class EarlyStoppingConfig(Strict):
    monitor: Monitor = "val_loss"
    min_delta: float = 0.0
    patience: int = Field(0, ge=0, le=10_000)
    mode: Mode = "auto"
    baseline: float | None = None
    restore_best_weights: bool = False
    start_from_epoch: int = Field(0, ge=0)
    verbose: int = Field(0, ge=0, le=2)


class ModelCheckpointConfig(Strict):
    """The file name is chosen by the service; only the policy is configurable."""

    monitor: Monitor = "val_loss"
    save_best_only: bool = False
    save_weights_only: bool = False
    mode: Mode = "auto"
    save_freq: Literal["epoch"] = "epoch"
    verbose: int = Field(0, ge=0, le=2)


class ReduceLROnPlateauConfig(Strict):
    monitor: Monitor = "val_loss"
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    patience: int = Field(10, ge=0, le=10_000)
    mode: Mode = "auto"
    min_delta: float = 1e-4
    cooldown: int = Field(0, ge=0)
    min_lr: float = Field(0.0, ge=0.0)
    verbose: int = Field(0, ge=0, le=2)


class ExponentialSchedule(Strict):
    """lr = initial_learning_rate * decay_rate ** (epoch / decay_epochs)."""

    type: Literal["exponential"]
    initial_learning_rate: float = Field(gt=0.0)
    decay_rate: float = Field(gt=0.0)
    decay_epochs: int = Field(1, ge=1)


class StepSchedule(Strict):
    """lr = initial_learning_rate * drop ** floor(epoch / every)."""

    type: Literal["step"]
    initial_learning_rate: float = Field(gt=0.0)
    drop: float = Field(gt=0.0)
    every: int = Field(ge=1)


class PiecewiseSchedule(Strict):
    """lr = values[i] for boundaries[i-1] <= epoch < boundaries[i]."""

    type: Literal["piecewise"]
    boundaries: list[int] = Field(max_length=100)
    values: list[float] = Field(max_length=101)

    @model_validator(mode="after")
    def _lengths(self) -> PiecewiseSchedule:
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(f"values needs len(boundaries)+1={len(self.boundaries) + 1} "
                             f"entries; received {len(self.values)}")
        return self


class LearningRateSchedulerConfig(Strict):
    schedule: Annotated[ExponentialSchedule | StepSchedule | PiecewiseSchedule,
                        Field(discriminator="type")]
    verbose: int = Field(0, ge=0, le=2)


class EmptyConfig(Strict):
    pass


class CSVLoggerConfig(Strict):
    """The log file lives next to the checkpoints; only the separator is configurable."""

    separator: Literal[",", ";", "\t"] = ","
    append: bool = False


def _callback(name: str, config: type[BaseModel]) -> type[BaseModel]:
    return type(name, (Strict,), {
        "__annotations__": {"class_name": Literal[name], "config": config},
        "config": Field(default_factory=config),
        "__doc__": f"The {name} callback.",
    })


EarlyStopping = _callback("EarlyStopping", EarlyStoppingConfig)
ModelCheckpoint = _callback("ModelCheckpoint", ModelCheckpointConfig)
ReduceLROnPlateau = _callback("ReduceLROnPlateau", ReduceLROnPlateauConfig)
TerminateOnNaN = _callback("TerminateOnNaN", EmptyConfig)
CSVLogger = _callback("CSVLogger", CSVLoggerConfig)


class LearningRateScheduler(Strict):
    """The LearningRateScheduler callback with a schedule from a fixed set."""

    class_name: Literal["LearningRateScheduler"]
    config: LearningRateSchedulerConfig


Callback = Annotated[
    EarlyStopping | ModelCheckpoint | ReduceLROnPlateau | LearningRateScheduler  # type: ignore[valid-type]
    | TerminateOnNaN | CSVLogger,  # type: ignore[valid-type]
    Field(discriminator="class_name"),
]


class JobCreate(Strict):
    """Body of ``POST /v1/jobs``."""

    model: dict[str, Any] = Field(description="The Keras JSON config of the model.")
    compile: CompileConfig
    fit: FitConfig = Field(default_factory=FitConfig)
    callbacks: list[Callback] = Field(default_factory=list, max_length=20)
    dataset_id: str = Field(min_length=1, max_length=80)
    replicas: int = Field(1, ge=1)
    priority: Priority = Field("normal", description=(
        "Claim order: every queued high job before any normal one, normal before low; "
        "within a priority, tenants take turns."))
    name: str | None = Field(None, max_length=200)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
