"""Embedding + LSTM on variable-length token sequences: does token 1 outnumber token 2?

Sequences of 4-24 tokens from a vocabulary of 20 are padded with 0 at the end;
``Embedding(mask_zero=True)`` marks the padding, and the LSTM skips those steps (its
state carries through), so the answer depends only on the real tokens.

Run: python examples/sequence_lstm.py   (prints the test accuracy; >= 0.9 expected)
"""

import numpy as np

import lamina as keras
from lamina import layers

VOCAB, MAX_LEN = 20, 24


def make_data(n, seed=0):
    """Token ids (n, MAX_LEN) padded with 0, labels (n, 1): 1 when count(1) > count(2)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, MAX_LEN), dtype="int32")
    y = np.zeros((n, 1), dtype="int32")
    for i in range(n):
        length = rng.integers(4, MAX_LEN + 1)
        while True:
            tokens = rng.integers(1, VOCAB, size=length)
            # Tokens 1 and 2 are frequent so counting them matters; ties are redrawn.
            tokens[rng.random(length) < 0.3] = rng.integers(1, 3)
            ones, twos = np.sum(tokens == 1), np.sum(tokens == 2)
            if ones != twos:
                break
        x[i, :length] = tokens
        y[i, 0] = ones > twos
    return x, y


def build_model():
    return keras.Sequential([
        keras.Input(shape=(MAX_LEN,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.LSTM(32),
        layers.Dense(1, activation="sigmoid"),
    ])


def main(epochs: int = 3, verbose: int = 0) -> float:
    keras.utils.set_random_seed(0)
    x_train, y_train = make_data(2000, seed=0)
    x_test, y_test = make_data(500, seed=1)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=verbose)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main(verbose=2)
