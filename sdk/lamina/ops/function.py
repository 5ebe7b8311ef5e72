"""``Function``: a graph of operations from symbolic inputs to outputs, callable on data.

``keras.Function(inputs, outputs)`` replays the nodes recorded between ``inputs`` and
``outputs`` (layers and ops alike) in topological order. The functional ``Model`` is a
``Function`` that is also a layer with weights and training.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.keras_tensor import KerasTensor
from lamina.backend.tensor import Tensor
from lamina.ops.operation import Operation
from lamina.tree import flatten, map_structure


def topological_nodes(outputs) -> list:
    """Nodes that produce ``outputs``, each after the nodes it consumes."""
    order, seen = [], set()
    stack = [(t.node, False) for t in reversed(outputs)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            if id(node) not in seen:
                seen.add(id(node))
                order.append(node)
            continue
        if id(node) in seen:
            continue
        stack.append((node, True))
        for parent in reversed(node.parent_nodes):
            if id(parent) not in seen:
                stack.append((parent, False))
    return order


class Function(Operation):
    """A callable graph of operations (``keras.Function``).

    Args:
        inputs: a KerasTensor or a list/dict of them (the graph's sources).
        outputs: a KerasTensor or a list/dict of them, computed from ``inputs``.
        name: the function's name.

    Raises:
        ValueError: for non-symbolic inputs/outputs, or an output that needs a tensor
            not among ``inputs`` (a disconnected graph).

    Example:
        >>> import lamina as keras
        >>> x = keras.Input(shape=(2,))
        >>> f = keras.Function(x, keras.ops.multiply(keras.ops.add(x, 1.0), 2.0))
        >>> f(keras.ops.ones((1, 2))).numpy().tolist()
        [[4.0, 4.0]]
    """

    def __init__(self, inputs, outputs, name=None):
        super().__init__(name=name)
        self._setup_graph(inputs, outputs)

    def _setup_graph(self, inputs, outputs) -> None:
        for t in flatten(inputs) + flatten(outputs):
            if not isinstance(t, KerasTensor):
                raise ValueError(
                    "All `inputs` and `outputs` of a functional graph must be symbolic tensors "
                    f"(from `Input` and layer/op calls). Received: {t!r}")
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        self.inputs = flatten(inputs)
        self.outputs = flatten(outputs)
        sources = {id(t) for t in self.inputs}
        nodes = topological_nodes(self.outputs)
        for node in nodes:
            if not node.input_tensors and not all(id(t) in sources
                                                  for t in flatten(node.outputs)):
                raise ValueError(
                    f"Graph disconnected: cannot obtain the value of input "
                    f"'{node.operation.name}'; pass it in `inputs`.")
        # Source nodes (inputs) hold no computation.
        self._nodes = [n for n in nodes if n.input_tensors or not all(
            id(t) in sources for t in flatten(n.outputs))]

    @property
    def operations(self) -> list:
        """Each operation of the graph once, in topological order."""
        out = []
        for node in self._nodes:
            if all(node.operation is not o for o in out):
                out.append(node.operation)
        return out

    def call(self, inputs):
        """Run the graph on concrete ``inputs`` (the structure of the symbolic inputs)."""
        flat = flatten(inputs) if isinstance(inputs, (list, tuple, dict)) else [inputs]
        if len(flat) != len(self.inputs):
            raise ValueError(f"Function '{self.name}' expects {len(self.inputs)} input(s), but "
                             f"it received {len(flat)}.")
        values = {id(spec): x if isinstance(x, Tensor) else Tensor(np.asarray(x))
                  for spec, x in zip(self.inputs, flat)}
        return self._run_through_graph(values, lambda op, args, kwargs: op(*args, **kwargs))

    def _run_through_graph(self, values: dict, call):
        """Replay the nodes: ``values`` maps input KerasTensor ids to data; ``call(op, args,
        kwargs)`` calls one operation. Returns the outputs in their structure."""

        def lookup(t):
            return values[id(t)] if isinstance(t, KerasTensor) else t

        for node in self._nodes:
            outs = call(node.operation, map_structure(lookup, node.call_args),
                        map_structure(lookup, node.call_kwargs))
            for spec, out in zip(flatten(node.outputs), flatten(outs)):
                values[id(spec)] = out
        return map_structure(lambda t: values[id(t)], self._outputs_struct)
