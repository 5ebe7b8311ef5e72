"""Lamina vs PyTorch train throughput, measured alternately in one run.

    python bench/ratio.py --model mlp       # 60k samples, 3 epochs (first is warm-up)
    python bench/ratio.py --model cnn       # 12k samples, 2 epochs
    python bench/ratio.py --model cnn --threads 1   # 1 BLAS / torch thread: load-robust

Prints each round's samples/s and, last, the ratio of medians (lamina / torch).
PyTorch is looked up in this Python, $LAMINA_BENCH_TORCH_PYTHON, or a side venv.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from common import HERE, run_json, torch_python


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS threads for lamina, torch.set_num_threads for torch")
    args = ap.parse_args()
    samples = args.samples or (60000 if args.model == "mlp" else 12000)
    epochs = args.epochs or (3 if args.model == "mlp" else 2)
    common = ["--model", args.model, "--samples", str(samples), "--epochs", str(epochs)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    tpython = torch_python()
    ours, theirs = [], []
    for _ in range(args.rounds):
        o = run_json([sys.executable, str(HERE / "lamina_models.py"), *common])
        ours.append(o["train_samples_per_s"])
        line = f"lamina {o['train_samples_per_s']:.0f} samples/s"
        if tpython:
            t = run_json([tpython, str(HERE / "torch_models.py"), *common])
            theirs.append(t["train_samples_per_s"])
            line += f"   torch {t['train_samples_per_s']:.0f} samples/s"
        print(line, flush=True)
    if not theirs:
        print("torch not installed: no ratio (pip install torch==2.13.0)")
        return
    print(f"{args.model}: lamina/torch train throughput = "
          f"{statistics.median(ours) / statistics.median(theirs):.3f}")


if __name__ == "__main__":
    main()
