"""``import lamina`` loads what training needs and nothing a process may never use.

Every module imported at start-up stays in memory for the process's life (the MLP
benchmark's peak RSS is compared with PyTorch's, goal <= 1/2): the archive, process-pool,
CSV, audio and fuzzy-match modules, h5py, the HTTP client and numba (the compiled
kernels, ~90 MB) load where they are used.
"""

from __future__ import annotations

import json
import subprocess
import sys

LAZY = ("h5py", "httpx", "urllib.request", "tarfile", "multiprocessing", "concurrent.futures",
        "csv", "wave", "difflib", "lamina.client", "lamina.distribute.local", "numba")


def test_import_lamina_leaves_the_rarely_used_modules_unloaded():
    code = ("import json, sys, lamina, lamina.layers, lamina.models; "
            f"print(json.dumps([m for m in {LAZY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert json.loads(out.splitlines()[-1]) == []


def test_the_lazily_imported_modules_load_when_used(tmp_path):
    code = ("import json, sys, lamina, numpy as np; "
            "from lamina.utils import PyDataset; from lamina.callbacks import CSVLogger; "
            "m = lamina.Sequential([lamina.Input((2,)), lamina.layers.Dense(1)]); "
            "m.compile(optimizer='sgd', loss='mse'); "
            f"m.fit(np.zeros((4, 2), 'float32'), np.zeros((4, 1), 'float32'), verbose=0, "
            f"callbacks=[CSVLogger({str(tmp_path / 'log.csv')!r})]); "
            "print(json.dumps([m for m in ('csv',) if m not in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert json.loads(out.splitlines()[-1]) == []
    assert (tmp_path / "log.csv").read_text().splitlines()[0] == "epoch,loss,val_loss"  # as Keras
