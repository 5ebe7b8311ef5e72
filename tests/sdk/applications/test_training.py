"""Application models run forward and train (the issue's acceptance lines)."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import applications


@pytest.mark.slow
def test_resnet50_forward_and_one_training_step_at_224():
    lamina.backend.clear_session()
    model = applications.ResNet50(weights=None)
    assert model.count_params() == 25_636_712
    rng = np.random.default_rng(0)
    x = applications.resnet50.preprocess_input(
        rng.uniform(0, 255, (2, 224, 224, 3)).astype("float32"))
    probs = model.predict(x, verbose=0)
    assert probs.shape == (2, 1000)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = [np.array(w.data) for w in model.trainable_weights]
    moving = np.array(model.get_layer("conv1_bn").moving_mean.data)
    loss = model.train_on_batch(x, np.array([3, 7]))
    assert np.isfinite(loss)
    changed = [not np.array_equal(b, w.data) for b, w in zip(before, model.trainable_weights)]
    assert all(changed[:2])  # the stem conv kernel and bias moved
    assert sum(changed) > 0.9 * len(changed)
    assert not np.array_equal(moving, model.get_layer("conv1_bn").moving_mean.data)


def test_mobilenet_v2_trains_one_epoch_on_64_small_images():
    lamina.backend.clear_session()
    lamina.utils.set_random_seed(0)
    model = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None,
                                     classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = applications.mobilenet_v2.preprocess_input(
        rng.uniform(0, 255, (64, 32, 32, 3)).astype("float32"))
    y = rng.integers(0, 10, 64)
    kernel = np.array(model.get_layer("Conv1").kernel.data)
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert len(history.history["loss"]) == 1
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(kernel, model.get_layer("Conv1").kernel.data)
    assert model.predict(x[:4], verbose=0).shape == (4, 10)


@pytest.mark.parametrize("fn,kwargs,shape", [
    ("MobileNetV3Small", {"input_shape": (32, 32, 3), "classes": 5, "minimalistic": True,
                          "alpha": 0.75}, (5,)),
    ("EfficientNetB0", {"input_shape": (32, 32, 3), "include_top": False,
                        "pooling": "max"}, (1280,)),
    ("ConvNeXtTiny", {"input_shape": (32, 32, 3), "include_top": False, "pooling": "avg"},
     (768,)),
])
def test_in_model_preprocessing_families_run_on_pixels(fn, kwargs, shape):
    lamina.backend.clear_session()
    model = getattr(applications, fn)(weights=None, **kwargs)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    out = model.predict(x, verbose=0)
    assert out.shape == (2, *shape)
    assert np.all(np.isfinite(out))


def test_input_tensor_and_pooling_arguments():
    lamina.backend.clear_session()
    inputs = lamina.Input((32, 32, 3))
    scaled = lamina.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    model = applications.ResNet50V2(weights=None, include_top=False, input_tensor=scaled,
                                    pooling="avg")
    assert model.inputs[0] is inputs
    assert model.output_shape == (None, 2048)
    out = model.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0)
    assert out.shape == (1, 2048)
