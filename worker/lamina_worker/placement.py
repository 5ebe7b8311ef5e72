"""Where a job's replicas run, and so how they all-reduce.

Each generation of a job's replicas gets one Ray placement group (one bundle of
``replica_cpus`` CPUs per replica), made by the worker's Ray driver
(:mod:`lamina_worker.raylink`) and removed with the generation. The worker's
``replica_placement`` setting (``LAMINA_REPLICA_PLACEMENT``) picks its strategy:

* ``pack`` (the default): ``STRICT_PACK`` with the worker's own node as the target,
  so every replica shares that node (as before placement groups).
* ``spread``: ``STRICT_SPREAD``, one replica per node of the Ray cluster the worker
  joined (``--ray-address``): a job can use more cores than one node has.

:func:`choose_transport` is the one place the all-reduce is chosen: every replica on
the driver's node -> ``shm`` (:mod:`lamina.distribute.shm`, a shared-memory file: the
fastest), otherwise ``ring`` (:mod:`lamina.distribute.ring`, TCP; each replica binds
on its Ray node's address, reports it, and the driver hands out the ring order, which
is the rank order). Ranks go to bundles in a fixed order (the driver's node first, then
by node id), so the chief (rank 0), which relays the job's events and runs its
callbacks, sits next to the driver whenever a bundle is there (always with ``pack``;
with ``spread`` when the cluster has no more nodes than the job has replicas). Both
transports sum in a fixed order, so the replicas stay bit-identical; the two orders
differ by float32 rounding (both end where local ``fit`` ends, to rtol 1e-5).

**Fewer nodes than replicas, a lost node.** When fewer live nodes can hold a replica
than the job has replicas (or one-per-node is not placed within :data:`SPREAD_WAIT`
seconds: Ray still counts a dead node as alive, or other jobs hold the CPUs), ``spread``
falls back to Ray's best-effort ``SPREAD`` over the nodes there are (several replicas
per node, ``ring``), or with one such node to ``STRICT_PACK`` on the worker's node
(``shm``), and the log says why. A replica whose node dies ends the ring at once (its
peers' sockets see the connection drop), the driver restarts the group from the job's
newest checkpoint (:mod:`lamina_worker.trainer`), and the new generation is placed on
what is left: a two-replica job whose second node died runs both replicas on the
worker's node. An operator gets the job finished, more slowly, rather than a job
parked until the node returns; the next job (or generation) spreads again once the
cluster has the nodes. Ray counts a
killed node alive for ~10-15 s (its health checks), so the new generation starts about
that long after the loss (tests/worker/test_two_node.py: generation 0 ended 2.7-4.0 s
after the kill, the driver first relaying the epochs the chief had finished; generation
1 placed after 14.7-15.1 s).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("lamina_worker")

#: The values of the worker's ``replica_placement`` setting.
PLACEMENTS = ("pack", "spread")
#: Seconds a one-replica-per-node group may take to be placed before the generation
#: is packed on the worker's node instead.
SPREAD_WAIT = 30.0
#: Seconds a packed group may wait for CPUs on the worker's node (busy with other
#: jobs) before the attempt fails (and is retried, as any failed attempt).
PACK_WAIT = 120.0
#: A bundle must hold some resource: replicas of ``replica_cpus=0`` reserve this.
_MIN_BUNDLE_CPUS = 0.01


def choose_transport(nodes: list[str], here: str) -> str:
    """``"shm"`` when every replica is on the driver's node ``here``, else ``"ring"``.

    Args:
        nodes: the node id of each rank's replica.
        here: the node id of the driver (where the shared-memory file is made).
    """
    return "shm" if all(node == here for node in nodes) else "ring"


@dataclass
class Placement:
    """One generation's placement group and the node of each rank.

    Attributes:
        group: the Ray placement group.
        bundles: the bundle index of each rank.
        nodes: the node id (hex) of each rank.
        here: the driver's node id.
        strategy: ``STRICT_PACK`` or ``STRICT_SPREAD``.
        note: why a ``spread`` request was packed (None when it was not).
    """

    group: object
    bundles: list[int]
    nodes: list[str]
    here: str
    strategy: str
    note: str | None = None
    transport: str = field(init=False)

    def __post_init__(self) -> None:
        self.transport = choose_transport(self.nodes, self.here)

    def scheduling(self, rank: int):
        """The Ray scheduling strategy of rank ``rank``'s actor."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(
            placement_group=self.group, placement_group_bundle_index=self.bundles[rank])

    def describe(self) -> dict:
        """What the trainer needs (and logs): plain data, it crosses the driver link."""
        return {"nodes": list(self.nodes), "here": self.here, "strategy": self.strategy,
                "note": self.note, "transport": self.transport}

    def release(self) -> None:
        """Remove the placement group (Ray kills the actors still in it)."""
        from ray.util import remove_placement_group

        try:
            remove_placement_group(self.group)
        except Exception as exc:  # noqa: BLE001 - Ray may be gone; its groups went with it
            log.debug("placement group not removed: %s", exc)


def _capable_nodes(cpus: float) -> int:
    """Live nodes with at least ``cpus`` CPUs in all (not counting what is in use)."""
    import ray

    return sum(1 for node in ray.nodes()
               if node.get("Alive") and node.get("Resources", {}).get("CPU", 0.0) >= cpus)


def _create(replicas: int, cpus: float, strategy: str, target: str | None, wait: float,
            hopeless=None):
    """A ready placement group, or None (removed again) when not placed within ``wait``
    seconds or as soon as ``hopeless()`` says it cannot be (checked every second)."""
    import time

    from ray.util import placement_group, remove_placement_group

    group = placement_group([{"CPU": cpus}] * replicas, strategy=strategy,
                            _soft_target_node_id=target)
    deadline = time.monotonic() + wait
    while True:
        if group.wait(max(0.0, min(1.0, deadline - time.monotonic()))):
            return group
        if time.monotonic() >= deadline or (hopeless is not None and hopeless()):
            remove_placement_group(group)
            return None


def _ranked(group, here: str, strategy: str, note: str | None) -> Placement:
    from ray.util import placement_group_table

    table = placement_group_table(group)["bundles_to_node_id"]
    order = sorted(table, key=lambda index: (table[index] != here, table[index], index))
    return Placement(group, order, [table[index] for index in order], here, strategy,
                     note)


def place(replicas: int, cpus: float, mode: str, *, spread_wait: float = SPREAD_WAIT,
          pack_wait: float = PACK_WAIT) -> Placement:
    """Place one generation of ``replicas`` (call it in the Ray driver; module doc).

    Args:
        replicas: the job's number of replicas.
        cpus: the CPUs of each replica (its actor's ``num_cpus``).
        mode: ``"pack"`` or ``"spread"`` (:data:`PLACEMENTS`).
        spread_wait: seconds one replica per node may take before the fallback.
        pack_wait: seconds the fallback (or ``pack``) may wait for CPUs.

    Returns:
        The :class:`Placement` (its ``release`` removes the group).

    Raises:
        ValueError: for an unknown ``mode`` (naming it).
        TimeoutError: when not even the fallback was placed within ``pack_wait``.
    """
    import ray

    if mode not in PLACEMENTS:
        raise ValueError(f"replica_placement must be one of {PLACEMENTS}. Received: "
                         f"{mode!r}")
    here = ray.get_runtime_context().get_node_id()
    cpus = max(float(cpus), _MIN_BUNDLE_CPUS)
    strategy, note = "STRICT_PACK", None
    if mode == "spread" and replicas > 1:
        capable = _capable_nodes(cpus)
        if capable >= replicas:
            group = _create(replicas, cpus, "STRICT_SPREAD", None, spread_wait,
                            hopeless=lambda: _capable_nodes(cpus) < replicas)
            if group is not None:
                return _ranked(group, here, "STRICT_SPREAD", None)
            capable = _capable_nodes(cpus)
            note = f"one replica per node was not placed within {spread_wait:g}s ("
        else:
            note = "("
        note += f"{capable} live node(s) can hold a replica of {cpus:g} CPUs)"
        if capable >= 2:  # as evenly as Ray can over the nodes there are
            strategy, note = "SPREAD", note + "; spread over the live nodes"
        else:
            note += "; packed on the worker's node"
    group = _create(replicas, cpus, strategy, here if strategy == "STRICT_PACK" else None,
                    pack_wait)
    if group is None:
        raise TimeoutError(f"{replicas} replicas of {cpus:g} CPUs were not placed "
                           f"({strategy}) within {pack_wait:g}s (other jobs hold the CPUs)")
    return _ranked(group, here, strategy, note)
