"""Running one ``fit`` as N synchronous replicas (SPMD data parallelism).

Every replica runs the same ``Model.fit``; :func:`set_strategy` with a
:class:`DataParallel` makes it compute its slice of each global batch, all-reduce the
gradients through a collective before the optimizer update, and (on the chief, rank 0)
run the callbacks on the global logs. ``lamina_worker`` drives replicas as Ray actors;
the collective (:mod:`lamina.distribute.shm`) needs only a shared-memory file.
"""

from lamina.distribute.keys import batch_keys
from lamina.distribute.shm import CollectiveAborted, SharedMemoryCollective
from lamina.distribute.strategy import (
    Aborted,
    DataParallel,
    Strategy,
    get_strategy,
    set_strategy,
)

__all__ = ["Aborted", "CollectiveAborted", "DataParallel", "SharedMemoryCollective",
           "Strategy", "batch_keys", "get_strategy", "set_strategy"]
