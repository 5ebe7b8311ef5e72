"""A one-block Transformer encoder learns to reverse short token sequences.

Tokens are embedded (``Embedding``) and given a learned position embedding (a small
custom layer), then one encoder block: ``MultiHeadAttention`` with a residual ``Add`` and
``LayerNormalization``, and a feed-forward ``Dense`` pair with another residual and
normalization. A ``Dense`` softmax predicts, at every position ``i``, the input token at
``length - 1 - i``: each output must attend to one specific other position, which only
attention (not the per-position feed-forward) can do.

Chance is 1 / vocabulary = 0.125 per token; the example expects >= 0.9 on held-out
sequences after 5 epochs (reached: 1.0).

Run: python examples/transformer_toy.py
"""

import numpy as np

import lamina as keras
from lamina import layers

VOCAB, LENGTH, DIM = 8, 8, 32


class PositionEmbedding(layers.Layer):
    """Adds a learned vector per position: ``(batch, length, dim)`` in and out."""

    def build(self, input_shape):
        self.positions = self.add_weight(name="positions", shape=tuple(input_shape[1:]),
                                         initializer="random_normal")
        self.built = True

    def call(self, inputs):
        return keras.ops.add(inputs, self.positions)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def encoder_block(x, num_heads=2, key_dim=16, ff_dim=64):
    attended = layers.MultiHeadAttention(num_heads=num_heads, key_dim=key_dim)(x, x)
    x = layers.LayerNormalization()(layers.Add()([x, attended]))
    ff = layers.Dense(ff_dim, activation="relu")(x)
    ff = layers.Dense(x.shape[-1])(ff)
    return layers.LayerNormalization()(layers.Add()([x, ff]))


def build_model():
    tokens = keras.Input(shape=(LENGTH,), dtype="int32")
    x = PositionEmbedding()(layers.Embedding(VOCAB, DIM)(tokens))
    x = encoder_block(x)
    outputs = layers.Dense(VOCAB, activation="softmax")(x)
    return keras.Model(tokens, outputs)


def make_data(n, seed):
    x = np.random.default_rng(seed).integers(0, VOCAB, size=(n, LENGTH)).astype("int32")
    return x, x[:, ::-1].copy()


def main(epochs: int = 5, verbose: int = 0) -> float:
    keras.utils.set_random_seed(0)
    x_train, y_train = make_data(3200, seed=1)
    x_test, y_test = make_data(500, seed=2)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=verbose)
    predicted = np.argmax(model.predict(x_test, verbose=0), axis=-1)
    accuracy = float((predicted == y_test).mean())
    print(f"held-out per-token accuracy: {accuracy:.4f} (chance {1 / VOCAB:.3f})")
    return accuracy


if __name__ == "__main__":
    main(verbose=2)
