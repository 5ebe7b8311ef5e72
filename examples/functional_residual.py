"""A functional two-input model with a shared layer and a residual Add, fitting a regression.

Run: python examples/functional_residual.py   (prints the final MSE; < 0.1 expected)
"""

import numpy as np

import lamina as keras
from lamina import layers


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, size=(n, 8)).astype("float32")
    b = rng.uniform(-1, 1, size=(n, 8)).astype("float32")
    y = (np.sin(a[:, :4]).sum(1) + (b[:, :4] ** 2).sum(1) - a[:, 4] * b[:, 5])[:, None]
    return a, b, y.astype("float32")


def build_model() -> keras.Model:
    input_a = keras.Input(shape=(8,), name="a")
    input_b = keras.Input(shape=(8,), name="b")
    shared = layers.Dense(32, activation="tanh", name="shared_encoder")
    encoded_a, encoded_b = shared(input_a), shared(input_b)
    merged = layers.Concatenate()([encoded_a, encoded_b])
    hidden = layers.Dense(32, activation="tanh")(merged)
    residual = layers.Dense(32)(hidden)
    summed = layers.Add()([hidden, residual])
    output = layers.Dense(1, name="y")(summed)
    return keras.Model(inputs=[input_a, input_b], outputs=output, name="two_input_residual")


def main(epochs: int = 60, verbose: int = 0) -> float:
    keras.utils.set_random_seed(0)
    a, b, y = make_data(2000)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3), loss="mse")
    model.fit({"a": a, "b": b}, y, batch_size=64, epochs=epochs, verbose=verbose)
    ta, tb, ty = make_data(500, seed=1)
    mse = model.evaluate([ta, tb], ty, verbose=0)
    print(f"test mse: {mse:.4f}")
    return mse


if __name__ == "__main__":
    main(verbose=2)
