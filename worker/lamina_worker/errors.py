"""The worker's exceptions: how an attempt ends other than by finishing."""

from __future__ import annotations


class TrainingStopped(Exception):
    """Raised by a callback to leave training without finishing the epoch.

    Attributes:
        checkpoint: write a mid-epoch checkpoint first (SIGTERM); False when the
            attempt must write nothing (fenced out) or the job is cancelled.
    """

    checkpoint = False


class Preempted(TrainingStopped):
    """The worker is shutting down: checkpoint now and give the job back."""

    checkpoint = True


class Cancelled(TrainingStopped):
    """The client cancelled the job."""


class Fenced(TrainingStopped):
    """Another attempt owns the job now; stop without writing anything."""


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite."""


def replica_errors() -> tuple:
    """The Ray exceptions that mean a replica (actor) or its objects are gone."""
    import ray.exceptions as rex

    return tuple(e for e in (getattr(rex, n, None) for n in (
        "RayActorError", "ActorDiedError", "ActorUnavailableError", "WorkerCrashedError",
        "ObjectLostError", "OwnerDiedError")) if e is not None)
