"""One Transformer encoder block: Lamina vs PyTorch (and Keras on JAX) train throughput,
in the same run.

    python bench/transformer.py                 # every framework found, in turn each round
    python bench/transformer.py --worker lamina # one JSON line (used internally)

Model, on (batch 128, 64 steps, 32 features): x + MultiHeadAttention(4 heads, key_dim 32)
-> LayerNorm -> + Dense(32)(Dense(128, relu)) -> LayerNorm -> GlobalAveragePooling1D ->
Dense(10) softmax; Adam (Keras defaults), sparse categorical crossentropy. PyTorch's
block is written out (q/k/v projections 32 -> 4x32, ``scaled_dot_product_attention``,
output 4x32 -> 32) so that both do the same arithmetic; ``nn.MultiheadAttention`` would
use 8-wide heads. PyTorch runs in a subprocess from this Python,
$LAMINA_BENCH_TORCH_PYTHON or a side venv. Keras 3 (JAX backend) runs the very builder
Lamina runs (:func:`build` takes the module: ``keras`` instead of ``lamina``) with its own
``fit``, in a subprocess from $LAMINA_BENCH_KERAS_PYTHON, this Python or ``/work/kvenv``
(``KERAS_BACKEND=jax``); without it one line says so. The first epoch of each run is a
warm-up (for Keras it holds XLA's compilation).

Each round line gives each framework's samples/s, its child's peak RSS (``wait4``) and the
load after it; last the ratios of the medians: lamina/torch, lamina/keras, keras/torch.
Threads, as each framework sets them: Lamina its pool plus OpenBLAS's threads, torch
``torch.get_num_threads()`` (the visible cores), XLA its own intra-op pool over the
visible CPUs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics

import numpy as np
from common import HERE, fit_epochs, print_keras_ratios, side_by_side, torch_epochs, train_rate

STEPS, FEATURES, HEADS, KEY_DIM, HIDDEN, CLASSES = 64, 32, 4, 32, 128, 10


def sequences(n: int, seed: int = 0):
    """Learnable sequences: the class is the feature (of the first 10) with the largest
    sum over the second half of the steps (attention has to find it)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, STEPS, FEATURES)).astype(np.float32)
    y = x[:, STEPS // 2:, :CLASSES].sum(axis=1).argmax(axis=1).astype(np.int64)
    return x, y


def build(keras):
    """The block built and compiled with ``keras``, a Keras-API module (``lamina`` or
    ``keras``), seeded."""
    layers = keras.layers
    keras.utils.set_random_seed(0)
    inputs = keras.Input((STEPS, FEATURES))
    attended = layers.MultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM)(inputs, inputs)
    h = layers.LayerNormalization()(layers.Add()([inputs, attended]))
    ff = layers.Dense(FEATURES)(layers.Dense(HIDDEN, activation="relu")(h))
    h = layers.LayerNormalization()(layers.Add()([h, ff]))
    outputs = layers.Dense(CLASSES, activation="softmax")(layers.GlobalAveragePooling1D()(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def build_lamina():
    """The block in Lamina, compiled, seeded (also used by transformer_kernels_ab.py)."""
    import lamina

    return build(lamina)


def run_fit(args) -> dict:
    """``args.worker`` ("lamina" or "keras") trains the block with its own ``fit``."""
    keras = importlib.import_module(args.worker)
    model = build(keras)
    x, y = sequences(args.samples)
    times, losses = fit_epochs(model, x, y, args.epochs, args.batch_size)
    result = {"framework": args.worker,
              "train_samples_per_s": train_rate(args.samples, times),
              "epoch_seconds": times, "loss": losses, "params": model.count_params()}
    if args.worker == "lamina":
        from lamina.backend.threads import pool_stats

        # stalls > 0: a neighbour took a core and the pool ran solo for a while (not a
        # quiet figure)
        result["pool"] = pool_stats()
    return result


def run_torch(args) -> dict:
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(0)
    x, y = sequences(args.samples)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            inner = HEADS * KEY_DIM
            self.q, self.k, self.v = (nn.Linear(FEATURES, inner) for _ in range(3))
            self.o = nn.Linear(inner, FEATURES)
            self.norm1, self.norm2 = nn.LayerNorm(FEATURES, eps=1e-3), nn.LayerNorm(
                FEATURES, eps=1e-3)
            self.ff1, self.ff2 = nn.Linear(FEATURES, HIDDEN), nn.Linear(HIDDEN, FEATURES)
            self.head = nn.Linear(FEATURES, CLASSES)

        def forward(self, inputs):
            b = inputs.shape[0]

            def heads(t):
                return t.view(b, STEPS, HEADS, KEY_DIM).transpose(1, 2)

            att = F.scaled_dot_product_attention(heads(self.q(inputs)), heads(self.k(inputs)),
                                                 heads(self.v(inputs)))
            att = self.o(att.transpose(1, 2).reshape(b, STEPS, HEADS * KEY_DIM))
            h = self.norm1(inputs + att)
            h = self.norm2(h + self.ff2(torch.relu(self.ff1(h))))
            return self.head(h.mean(dim=1))

    net = Block()
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    times, losses = torch_epochs(net, opt, loss_fn, xt, yt, args.epochs, args.batch_size)
    return {"framework": "torch", "threads": torch.get_num_threads(),
            "train_samples_per_s": train_rate(args.samples, times),
            "epoch_seconds": times, "loss": losses}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=["lamina", "keras", "torch"])
    ap.add_argument("--samples", type=int, default=128 * 24)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if args.worker:
        run = run_torch if args.worker == "torch" else run_fit
        print(json.dumps({"model": "transformer", **run(args)}))
        return
    child_args = ["--samples", str(args.samples), "--epochs", str(args.epochs),
                  "--batch-size", str(args.batch_size)]

    def stalls(name, result):
        if name != "lamina":
            return ""
        return f"pool stalls {result.get('pool', {}).get('stalls', '?')}"

    # The machine may be shared: the 1-minute load average is printed with each figure.
    results = side_by_side(
        args.rounds, lambda name, python: [python, str(HERE / "transformer.py"), "--worker",
                                           name, *child_args], stalls)
    speed = {name: statistics.median(r["train_samples_per_s"] for r in rs)
             for name, rs in results.items()}
    if "torch" not in speed:
        print("torch not installed: no ratio (pip install torch==2.13.0)")
    else:
        print(f"medians: lamina {speed['lamina']:.0f}, torch {speed['torch']:.0f} samples/s")
        print(f"transformer: lamina/torch train throughput = "
              f"{speed['lamina'] / speed['torch']:.3f}")
    if "keras" in speed:
        print(f"medians: keras {speed['keras']:.0f} samples/s")
    print_keras_ratios("transformer", speed)

if __name__ == "__main__":
    main()
