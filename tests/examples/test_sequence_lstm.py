"""The Embedding + LSTM example learns its masked counting task (>= 0.9 test accuracy)."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sequence_lstm.py"


def test_sequence_lstm_reaches_90_percent():
    spec = importlib.util.spec_from_file_location("sequence_lstm", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() >= 0.9
