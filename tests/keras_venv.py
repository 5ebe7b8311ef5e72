"""The side interpreter with real Keras 3.15.1 (JAX backend): the oracle that opens the
files Lamina writes. Found at ``$LAMINA_KERAS_PYTHON``, ``build/keras-venv`` (made by
``.ci/run``), ``/work/kvenv`` or ``/work/venv-keras``; None when there is none (the
tests that need it skip). Lamina itself never imports Keras."""

from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KERAS_PYTHON = next((p for p in (os.environ.get("LAMINA_KERAS_PYTHON"),
                                 os.path.join(ROOT, "build", "keras-venv", "bin", "python"),
                                 "/work/kvenv/bin/python", "/work/venv-keras/bin/python")
                     if p and os.path.exists(p)), None)

#: The environment to run it with: Keras 3 picks its backend from it, and our
#: PYTHONPATH (if any) stays out of the other interpreter.
KERAS_ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
             "KERAS_BACKEND": "jax"}
