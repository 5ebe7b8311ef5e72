"""``Client``: train on a Lamina service with the arguments of local ``fit``."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

from lamina.client import _spec, errors
from lamina.client._http import Transport
from lamina.client.job import STATUSES, Job

DEFAULT_URL = "http://127.0.0.1:8000"


class Client:
    """A connection to a Lamina training service.

    Example::

        client = lamina.Client("http://127.0.0.1:8000")
        job = client.fit(model, x, y, epochs=5, batch_size=32, replicas=2)
        history = job.wait()           # the progress bar of local fit
        trained = job.model()          # a compiled lamina.Model

    Args:
        url: the API's base URL; ``$LAMINA_URL`` or ``http://127.0.0.1:8000`` by default.
        api_key: bearer API key; ``$LAMINA_API_KEY`` by default (None: auth off).
        timeout: seconds for connecting and for each read.
        retries: retries of network errors and 502/503/504, with exponential backoff.
    """

    def __init__(self, url: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0, retries: int = 6) -> None:
        self.url = (url or os.environ.get("LAMINA_URL") or DEFAULT_URL).rstrip("/")
        api_key = api_key if api_key is not None else os.environ.get("LAMINA_API_KEY")
        self._http = Transport(self.url, api_key or None, timeout=timeout, retries=retries)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<lamina.Client {self.url}>"

    # -- datasets ------------------------------------------------------------------------
    def upload(self, arrays: dict[str, Any]) -> dict[str, Any]:
        """Upload a dataset (``{"x": ..., "y": ...}`` or ``x_<name>``/``y_<name>``) once.

        The service names datasets by the sha256 of their bytes; when it already has
        these bytes nothing is sent again.

        Returns:
            The dataset's metadata (``id``, ``samples``, ``arrays``...).
        """
        data = _spec.npz_bytes(arrays)
        dataset_id = "d_" + hashlib.sha256(data).hexdigest()
        try:
            return self._http.json("GET", f"/v1/datasets/{dataset_id}")
        except errors.NotFound:
            pass
        return self._http.json("POST", "/v1/datasets", params={"format": "npz"}, content=data,
                               headers={"Content-Type": "application/octet-stream"})

    # -- jobs ----------------------------------------------------------------------------
    def fit(self, model, x=None, y=None, batch_size: int | None = None, epochs: int = 1,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True,
            callbacks=None, class_weight: dict[int, float] | None = None,
            initial_epoch: int = 0, replicas: int = 1, seed: int | None = None,
            name: str | None = None, initial_weights="model") -> Job:
        """Submit ``model.fit(x, y, ...)`` to the service; returns at once with a :class:`Job`.

        Args:
            model: a compiled ``lamina`` model: its config is sent, and its current
                weights (see ``initial_weights``), so that training continues from them
                as Keras's ``fit`` does.
            x, y: arrays (or lists/dicts of arrays for several inputs/outputs).
            batch_size: samples per step (32 by default, as ``fit``).
            epochs: number of epochs.
            validation_split: fraction of the data (the last samples) held out.
            validation_data: ``(x_val, y_val)``; takes precedence over the split.
            shuffle: shuffle the training data each epoch.
            callbacks: EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN,
                CSVLogger instances (their settings are sent), or ``{class_name, config}``
                dicts (e.g. LearningRateScheduler with a schedule dict).
            class_weight: ``{class index: weight}``.
            initial_epoch: epoch to start from.
            replicas: data-parallel model replicas (synchronous gradient all-reduce).
            seed: seed of the job's initialisation, shuffles and dropout.
            name: a label for the job.
            initial_weights: ``"model"`` (default): start from the model's current
                weights (a model not built yet is initialised by the service);
                ``None``: the service initialises the model, seeded by ``seed``; or a
                list of arrays shaped like ``model.weights``. Uploaded once per content
                (content-addressed, like datasets).

        Returns:
            The queued :class:`Job`; call ``job.wait()`` to follow it.

        Raises:
            ValueError: something that cannot be sent (named in the message).
            InvalidRequest, LimitExceeded: the service refused the job.
        """
        body: dict[str, Any] = {
            "model": _spec.model_config(model),
            "compile": _spec.compile_config(model),
            "callbacks": _spec.callback_configs(callbacks),
        }
        arrays = _spec.arrays_of(model, x, y)
        dataset = self.upload(arrays)
        fit: dict[str, Any] = {"epochs": int(epochs), "batch_size": int(batch_size or 32),
                               "shuffle": bool(shuffle), "initial_epoch": int(initial_epoch)}
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("validation_data must be (x_val, y_val); sample weights are "
                                 f"not supported remotely. Received {len(validation_data)} "
                                 "items.")
            fit["validation_dataset_id"] = self.upload(
                _spec.arrays_of(model, *validation_data))["id"]
        elif validation_split:
            fit["validation_split"] = float(validation_split)
        if seed is not None:
            fit["seed"] = int(seed)
        if class_weight is not None:
            fit["class_weight"] = {int(k): float(v) for k, v in class_weight.items()}
        weights = _spec.initial_weights(model, initial_weights)
        if weights is not None:
            fit["initial_weights_id"] = self.upload({"weights": weights[None, :]})["id"]
        body.update(fit=fit, dataset_id=dataset["id"], replicas=int(replicas),
                    idempotency_key=uuid.uuid4().hex)
        if name is not None:
            body["name"] = name
        created = self._http.json("POST", "/v1/jobs", json=body)
        job = Job(self, {"id": created["id"], "status": created["status"]})
        job._steps_hint = _spec.steps_per_epoch(
            int(dataset["samples"]), fit["batch_size"], fit.get("validation_split", 0.0))
        return job

    def job(self, job_id: str) -> Job:
        """The job ``job_id`` with its current record.

        Raises:
            NotFound: no such job for this API key.
        """
        return Job(self, self._http.json("GET", f"/v1/jobs/{job_id}"))

    def jobs(self, status: str | None = None, limit: int | None = None) -> list[Job]:
        """Your jobs, newest first.

        Args:
            status: only jobs in this state (queued, running, succeeded, failed, cancelled).
            limit: at most this many (all by default).
        """
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; "
                             f"received status={status!r}")
        out: list[Job] = []
        offset: int | None = 0
        while offset is not None and (limit is None or len(out) < limit):
            page_size = 200 if limit is None else min(200, limit - len(out))
            params: dict[str, Any] = {"offset": offset, "limit": page_size}
            if status:
                params["status"] = status
            page = self._http.json("GET", "/v1/jobs", params=params)
            out += [Job(self, item) for item in page["items"]]
            offset = page.get("next_offset")
        return out

    def ready(self) -> bool:
        """True when the service answers and its job store is reachable."""
        try:
            self._http.request("GET", "/readyz")
        except errors.LaminaError:
            return False
        return True
