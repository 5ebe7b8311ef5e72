"""``keras.applications.imagenet_utils``: ImageNet input scaling and label decoding.

``preprocess_input`` scales a batch of RGB images in ``[0, 255]`` the way a model's
pretrained weights expect ("caffe": BGR minus the ImageNet channel means; "tf": to
``[-1, 1]``; "torch": to ``[0, 1]`` then standardised per channel). A numpy float
array is modified in place, as in Keras. ``decode_predictions`` maps a ``(N, 1000)``
batch of scores to ``(wordnet_id, label, score)`` tuples using
``imagenet_class_index.json``, which :func:`lamina.utils.get_file` fetches once into
``~/.keras/models/``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np

from lamina.backend.config import floatx, image_data_format

__all__ = ["decode_predictions", "preprocess_input"]

CLASS_INDEX = None
CLASS_INDEX_FILE = "imagenet_class_index.json"
CLASS_INDEX_PATH = ("https://storage.googleapis.com/download.tensorflow.org/"
                    "data/imagenet_class_index.json")
CLASS_INDEX_HASH = "c2c37ea517e94d9795004a39431a14cb"

_CAFFE_MEAN = (103.939, 116.779, 123.68)  # BGR order
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def preprocess_input(x, data_format=None, mode="caffe"):
    """Scale a batch of images for a model pretrained on ImageNet.

    Args:
        x: a float numpy array or a tensor, 3D or 4D, with 3 colour channels and values
            in ``[0, 255]``. A numpy float array is overwritten with the result.
        data_format: ``"channels_last"`` or ``"channels_first"``; None uses
            :func:`lamina.backend.image_data_format`.
        mode: ``"caffe"`` (RGB to BGR, minus the ImageNet means, no scaling), ``"tf"``
            (to ``[-1, 1]``) or ``"torch"`` (to ``[0, 1]``, then per-channel
            standardisation with the ImageNet means and deviations).

    Returns:
        The preprocessed array or tensor.

    Raises:
        ValueError: for an unknown ``mode`` or ``data_format``.
    """
    if mode not in {"caffe", "tf", "torch"}:
        raise ValueError("Expected mode to be one of `caffe`, `tf` or `torch`. "
                         f"Received: mode={mode}")
    if data_format is None:
        data_format = image_data_format()
    elif data_format not in {"channels_first", "channels_last"}:
        raise ValueError("Expected data_format to be one of `channels_first` or "
                         f"`channels_last`. Received: data_format={data_format}")
    if isinstance(x, np.ndarray):
        return _preprocess_numpy(x, data_format, mode)
    return _preprocess_tensor(x, data_format, mode)


def _channel_view(x, data_format, channel):
    if data_format == "channels_last":
        return (Ellipsis, channel)
    return (channel,) if x.ndim == 3 else (slice(None), channel)


def _preprocess_numpy(x, data_format, mode):
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(floatx(), copy=False)
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    if mode == "torch":
        x /= 255.0
        mean, std = _TORCH_MEAN, _TORCH_STD
    else:
        flip = (x.ndim == 3 and data_format == "channels_first")
        if data_format == "channels_last":
            x = x[..., ::-1]
        else:
            x = x[::-1] if flip else x[:, ::-1]
        mean, std = _CAFFE_MEAN, None
    for c in range(3):
        index = _channel_view(x, data_format, c)
        x[index] -= mean[c]
        if std is not None:
            x[index] /= std[c]
    return x


def _preprocess_tensor(x, data_format, mode):
    from lamina import ops

    ndim = len(x.shape)
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        x = x / 255.0
        mean, std = _TORCH_MEAN, _TORCH_STD
    else:
        axis = -1 if data_format == "channels_last" else (0 if ndim == 3 else 1)
        x = ops.flip(x, axis=axis)
        mean, std = _CAFFE_MEAN, None
    if data_format == "channels_last":
        shape = (1,) * (ndim - 1) + (3,)
    else:
        shape = (3, 1, 1) if ndim == 3 else (1, 3) + (1,) * (ndim - 2)
    x = x + np.reshape(-np.asarray(mean), shape).astype(x.dtype)
    if std is not None:
        x = x / np.reshape(np.asarray(std), shape).astype(x.dtype)
    return x


def _class_index():
    global CLASS_INDEX
    if CLASS_INDEX is None:
        from lamina.utils import get_file

        path = get_file(CLASS_INDEX_FILE, CLASS_INDEX_PATH, cache_subdir="models",
                        file_hash=CLASS_INDEX_HASH)
        with open(path) as f:
            CLASS_INDEX = json.load(f)
    return CLASS_INDEX


def decode_predictions(preds, top=5):
    """Turn ImageNet scores into the ``top`` best ``(wordnet_id, label, score)`` tuples.

    The class index is read from ``~/.keras/models/imagenet_class_index.json``
    (downloaded there on first use by :func:`lamina.utils.get_file`).

    Args:
        preds: a numpy array or tensor of shape ``(samples, 1000)``.
        top: how many guesses to return per sample.

    Returns:
        One list per sample of ``(class_name, class_description, score)`` tuples,
        best first.

    Raises:
        ValueError: when ``preds`` is not of shape ``(samples, 1000)``.
    """
    if len(preds.shape) != 2 or preds.shape[1] != 1000:
        raise ValueError("`decode_predictions` expects a batch of predictions (i.e. a 2D "
                         f"array of shape (samples, 1000)). Received array with shape: "
                         f"{preds.shape}")
    index = _class_index()
    preds = np.asarray(getattr(preds, "data", preds))
    results = []
    for pred in preds:
        best = pred.argsort()[-top:][::-1]
        row = [(*index[str(i)], pred[i]) for i in best]
        row.sort(key=lambda item: item[2], reverse=True)
        results.append(row)
    return results


def obtain_input_shape(input_shape, default_size, min_size, data_format, require_flatten,
                       weights=None):
    """Check a model's ``input_shape`` argument, or give its default (Keras's rules).

    Raises:
        ValueError: for a shape that is not 3 integers, too small, not 3 channels with
            ImageNet weights, different from the default with ImageNet weights and the
            classifier, or with unknown sizes when the classifier needs them.
    """
    channels_first = data_format == "channels_first"
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        channels = input_shape[0] if channels_first else input_shape[-1]
        if channels not in {1, 3}:
            warnings.warn("This model usually expects 1 or 3 input channels. However, it "
                          f"was passed an input_shape with {channels} input channels.",
                          stacklevel=3)
        size = (default_size, default_size)
        default_shape = (channels, *size) if channels_first else (*size, channels)
    else:
        default_shape = ((3, default_size, default_size) if channels_first
                         else (default_size, default_size, 3))
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and tuple(input_shape) != default_shape:
            raise ValueError("When setting `include_top=True` and loading `imagenet` "
                             f"weights, `input_shape` should be {default_shape}.  "
                             f"Received: input_shape={input_shape}")
        return default_shape
    if input_shape:
        if len(input_shape) != 3:
            raise ValueError("`input_shape` must be a tuple of three integers.")
        channels = input_shape[0] if channels_first else input_shape[-1]
        if channels != 3 and weights == "imagenet":
            raise ValueError(f"The input must have 3 channels; Received "
                             f"`input_shape={input_shape}`")
        sizes = input_shape[1:] if channels_first else input_shape[:2]
        if any(s is not None and s < min_size for s in sizes):
            raise ValueError(f"Input size must be at least {min_size}x{min_size}; "
                             f"Received: input_shape={input_shape}")
    elif require_flatten:
        input_shape = default_shape
    else:
        input_shape = (3, None, None) if channels_first else (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError("If `include_top` is True, you should specify a static "
                         f"`input_shape`. Received: input_shape={input_shape}")
    return input_shape


def correct_pad(inputs, kernel_size):
    """The ``ZeroPadding2D`` padding that makes a strided 'valid' conv act as 'same'."""
    size = inputs.shape[1:3]
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    half = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((half[0] - adjust[0], half[0]), (half[1] - adjust[1], half[1]))


def validate_activation(classifier_activation, weights):
    """Pretrained classifiers allow only ``None`` or ``"softmax"`` as activation.

    Raises:
        ValueError: for another activation when ``weights`` is not None.
    """
    if weights is None:
        return
    from lamina import activations

    fn = activations.get(classifier_activation)
    if fn not in {activations.get("softmax"), activations.get(None)}:
        raise ValueError("Only `None` and `softmax` activations are allowed for the "
                         "`classifier_activation` argument when using pretrained weights, "
                         "with `include_top=True`; Received: "
                         f"classifier_activation={classifier_activation}")
