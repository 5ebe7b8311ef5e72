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


def topological_nodes(outputs, inputs=()) -> list:
    """Nodes that produce ``outputs`` from ``inputs``, each after the nodes it consumes.

    The walk stops at the tensors of ``inputs``: a graph may start from intermediate
    tensors (``Model(inputs=encoded, outputs=...)``), whose producers it leaves out.
    """
    stop = {id(t) for t in inputs}
    order, seen = [], set()
    stack = [(t.node, False) for t in reversed(outputs) if id(t) not in stop]
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
        for tensor in reversed(node.input_tensors):
            parent = tensor.node
            if parent is not None and id(tensor) not in stop and id(parent) not in seen:
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
        nodes = topological_nodes(self.outputs, self.inputs)
        for node in nodes:
            if not node.input_tensors and not all(id(t) in sources
                                                  for t in flatten(node.outputs)):
                raise ValueError(
                    f"Graph disconnected: cannot obtain the value of input "
                    f"'{node.operation.name}'; pass it in `inputs`.")
        # Source nodes (Input layers) hold no computation.
        self._nodes = [n for n in nodes if n.input_tensors]

    @property
    def operations(self) -> list:
        """Each operation of the graph once (inputs' included), in Keras's order."""
        return keras_order(self.inputs, self.outputs)

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


def keras_order(inputs, outputs) -> list:
    """The graph's operations in the order Keras's functional models list them.

    Keras (``map_graph``) ranks each operation by its depth from the outputs (deepest,
    the inputs, first) and, within a depth, by when a depth-first walk from the outputs
    first met it. ``model.layers``, ``get_weights()`` and legacy ``.h5`` weight files
    follow that order, so Lamina's must too for weights to move between the two.
    """
    input_ids = {id(t) for t in inputs}
    finished, post_order, first_seen = set(), [], {}
    for output in outputs:
        stack = [(output, False)]
        while stack:
            tensor, done = stack.pop()
            node = tensor.node
            if done:
                finished.add(id(node))
                post_order.append(node)
                continue
            if id(node) in finished:
                continue
            if node.input_tensors and id(tensor) in input_ids:
                finished.add(id(node))
                continue
            first_seen.setdefault(id(node.operation), (len(first_seen), node.operation))
            stack.append((tensor, True))
            stack.extend((t, False) for t in reversed(node.input_tensors))
    in_graph = {id(n) for n in post_order}
    node_depth, op_depth = {}, {}
    for node in reversed(post_order):
        depth = max(node_depth.setdefault(id(node), 0), op_depth.get(id(node.operation), 0))
        op_depth[id(node.operation)] = node_depth[id(node)] = depth
        for parent in node.parent_nodes:
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for t in inputs:
        op = t.node.operation
        if t.node.input_tensors:
            continue  # an intermediate tensor as input: its producer is not part of the graph
        if id(op) not in op_depth:
            op_depth[id(op)] = 0
            first_seen[id(op)] = (-1, op)
    ranked = sorted(((-op_depth[key], index, op) for key, (index, op) in first_seen.items()),
                    key=lambda item: item[:2])
    return [op for _, _, op in ranked]
