"""``model.summary()``: Keras 3's table of layers, output shapes and parameter counts."""

from __future__ import annotations

from lamina.layers.input_layer import InputLayer


def _format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"  # pragma: no cover


def _count(weights) -> int:
    return int(sum(w.size for w in weights))


def _bytes(weights) -> int:
    return int(sum(w.data.nbytes for w in weights))


def _shape_str(layer) -> str:
    try:
        shape = layer.output_shape
    except (AttributeError, IndexError):
        return "?"
    return str(shape).replace("None,)", "None)") if shape is not None else "?"


def print_summary(model, line_length=None, print_fn=None, show_trainable=False):
    """Print (or pass to ``print_fn``) the summary table and totals of ``model``."""
    print_fn = print_fn or (lambda line, *a, **k: print(line))
    from lamina.models.functional import Functional

    functional = isinstance(model, Functional)
    rows = []
    for layer in model.layers:
        if isinstance(layer, InputLayer) and not functional:
            continue
        params = _count(layer.weights) if layer.built else 0
        shape = _shape_str(layer) if layer.built or isinstance(layer, InputLayer) else "?"
        row = [f"{layer.name} ({type(layer).__name__})", shape, f"{params:,}"]
        if functional:
            parents = []
            for node in layer._inbound_nodes[:1]:
                for t in node.input_tensors:
                    op = t.node.operation
                    parents.append(f"{op.name}[{op._inbound_nodes.index(t.node)}][{t.index}]")
            row.append(", ".join(parents) if parents else "-")
        rows.append(row)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if functional else [])
    widths = [33, 26, 13, 22][: len(headers)]
    if line_length:
        widths[0] = max(20, line_length - sum(widths[1:]) - 3 * len(widths) - 1)
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell) + 2)

    def line(left, mid, right, fill):
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def cells(values, bar, right_align=(2,)):
        out = []
        for i, (v, w) in enumerate(zip(values, widths)):
            out.append(" " + (v.rjust(w) if i in right_align else v.ljust(w)) + " ")
        return bar + bar.join(out) + bar

    print_fn(f'Model: "{model.name}"')
    print_fn(line("┏", "┳", "┓", "━"))
    print_fn(cells(headers, "┃", right_align=()))
    print_fn(line("┡", "╇", "┩", "━"))
    for i, row in enumerate(rows):
        print_fn(cells(row, "│"))
        if i < len(rows) - 1:
            print_fn(line("├", "┼", "┤", "─"))
    print_fn(line("└", "┴", "┘", "─"))
    trainable = model.trainable_weights
    non_trainable = model.non_trainable_weights
    total = _count(trainable) + _count(non_trainable)
    total_bytes = _bytes(trainable) + _bytes(non_trainable)
    print_fn(f" Total params: {total:,} ({_format_bytes(total_bytes)})")
    print_fn(f" Trainable params: {_count(trainable):,} ({_format_bytes(_bytes(trainable))})")
    print_fn(f" Non-trainable params: {_count(non_trainable):,} "
             f"({_format_bytes(_bytes(non_trainable))})")
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        opt_vars = getattr(optimizer, "variables", [])
        print_fn(f" Optimizer params: {_count(opt_vars):,} ({_format_bytes(_bytes(opt_vars))})")
