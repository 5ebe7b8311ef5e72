"""Activation functions with Keras's names, composed from :mod:`lamina.ops`.

Every function takes a Tensor (or array-like) and returns a Tensor; gradients come
from the ops. ``get("relu")`` resolves a name, ``serialize(fn)`` gives it back.

Example:
    >>> from lamina import activations
    >>> activations.relu([-10.0, -5.0, 0.0, 5.0, 10.0], negative_slope=0.5).numpy()
    array([-5. , -2.5,  0. ,  5. , 10. ], dtype=float32)
    >>> activations.get("swish") is activations.silu
    True
"""

from __future__ import annotations

from lamina import ops

__all__ = [
    "celu", "deserialize", "elu", "exponential", "gelu", "get", "glu", "hard_sigmoid",
    "hard_silu", "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid",
    "log_softmax", "mish", "relu", "relu6", "selu", "serialize", "sigmoid", "silu",
    "softmax", "softplus", "softsign", "squareplus", "swish", "tanh", "tanh_shrink",
    "hard_shrink", "soft_shrink", "sparse_plus", "sparse_sigmoid", "sparsemax", "threshold",
]


def _tensor(x):
    return ops.convert_to_tensor(x)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit, optionally leaky, capped and thresholded (Keras's formula).

    ``max_value`` if ``x >= max_value``; ``x`` if ``threshold <= x < max_value``;
    ``negative_slope * (x - threshold)`` otherwise.

    Args:
        x: input tensor.
        negative_slope: slope below the threshold.
        max_value: saturation value, or None for no cap.
        threshold: values below it are damped (or set to zero).

    Returns:
        A tensor of the shape and dtype of ``x``.

    Example:
        >>> relu([-10.0, -5.0, 0.0, 5.0, 10.0], max_value=5.0).numpy()
        array([0., 0., 0., 5., 5.], dtype=float32)
        >>> relu([-10.0, -5.0, 0.0, 5.0, 10.0], threshold=5.0).numpy()
        array([-0., -0.,  0.,  0., 10.], dtype=float32)
    """
    x = _tensor(x)
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return ops.leaky_relu(x, negative_slope=negative_slope)
        negative_part = ops.relu(ops.add(ops.negative(x), threshold) if threshold else
                                 ops.negative(x))
    clip_max = max_value is not None
    if threshold != 0:
        x = ops.multiply(x, (x.data > threshold).astype(x.data.dtype))
    elif max_value == 6:
        x = ops.relu6(x)
        clip_max = False
    else:
        x = ops.relu(x)
    if clip_max:
        x = ops.clip(x, 0.0, float(max_value))
    if negative_slope != 0.0:
        x = ops.subtract(x, ops.multiply(negative_part, negative_slope))
    return x


def leaky_relu(x, negative_slope=0.2):
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise.

    Args:
        x: input tensor.
        negative_slope: slope for negative inputs.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.leaky_relu(_tensor(x), negative_slope=negative_slope)


def relu6(x):
    """``min(max(x, 0), 6)``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.relu6(_tensor(x))


def sigmoid(x):
    """``1 / (1 + exp(-x))``; the result remembers ``x`` for a stable binary crossentropy.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.sigmoid(_tensor(x))


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``; the result remembers its logits.

    Args:
        x: input tensor.
        axis: the axis normalised over.

    Returns:
        A tensor of the shape and dtype of ``x``.

    Example:
        >>> softmax([[0.0, 0.0]]).numpy()
        array([[0.5, 0.5]], dtype=float32)
    """
    return ops.softmax(_tensor(x), axis=axis)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``.

    Args:
        x: input tensor.
        axis: the axis normalised over.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.log_softmax(_tensor(x), axis=axis)


def tanh(x):
    """Hyperbolic tangent.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.tanh(_tensor(x))


def linear(x):
    """The identity: returns ``x`` unchanged (as a Tensor).

    Args:
        x: input tensor.

    Returns:
        ``x``.
    """
    return _tensor(x)


def exponential(x):
    """``exp(x)``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.exp(_tensor(x))


def elu(x, alpha=1.0):
    """Exponential linear unit: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``.

    Args:
        x: input tensor.
        alpha: the value approached for large negative inputs is ``-alpha``.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.elu(_tensor(x), alpha=alpha)


def selu(x):
    """Scaled ELU: ``scale * elu(x, alpha)`` with ``alpha=1.67326324``, ``scale=1.05070098``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.selu(_tensor(x))


def celu(x, alpha=1.0):
    """Continuously differentiable ELU: ``max(x, 0) + min(0, alpha * (exp(x / alpha) - 1))``.

    Args:
        x: input tensor.
        alpha: scale of the negative part.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    x = _tensor(x)
    negative = ops.multiply(ops.subtract(ops.exp(ops.divide(ops.minimum(x, 0.0), alpha)), 1.0),
                            alpha)
    return ops.add(ops.relu(x), negative)


def softplus(x):
    """``log(exp(x) + 1)``, computed without overflow.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.softplus(_tensor(x))


def softsign(x):
    """``x / (abs(x) + 1)``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.softsign(_tensor(x))


def squareplus(x, b=4):
    """``(x + sqrt(x**2 + b)) / 2``, a smooth ReLU.

    Args:
        x: input tensor.
        b: smoothness, ``b >= 0``.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    x = _tensor(x)
    return ops.multiply(ops.add(x, ops.sqrt(ops.add(ops.square(x), float(b)))), 0.5)


def silu(x):
    """Swish / SiLU: ``x * sigmoid(x)``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.silu(_tensor(x))


def gelu(x, approximate=False):
    """Gaussian error linear unit: ``x * P(X <= x)`` for ``X ~ N(0, 1)``.

    Args:
        x: input tensor.
        approximate: use the tanh approximation instead of the exact erf form
            (Keras's activation defaults to the exact form).

    Returns:
        A tensor of the shape and dtype of ``x``.

    Example:
        >>> round(float(gelu([1.0]).numpy()[0]), 6)
        0.841345
    """
    return ops.gelu(_tensor(x), approximate=approximate)


def glu(x, axis=-1):
    """Gated linear unit: splits ``x`` in halves ``a, b`` along ``axis``; ``a * sigmoid(b)``.

    Args:
        x: input tensor; its size along ``axis`` must be even.
        axis: the axis split in two.

    Returns:
        A tensor with half the size of ``x`` along ``axis``.

    Raises:
        ValueError: when the size along ``axis`` is odd.
    """
    x = _tensor(x)
    if x.shape[axis] % 2:
        raise ValueError(
            f"glu needs an even size along axis {axis}. Received: x.shape={x.shape}")
    a, b = ops.split(x, 2, axis=axis)
    return ops.multiply(a, ops.sigmoid(b))


def hard_sigmoid(x):
    """Piecewise linear sigmoid: ``clip(x / 6 + 0.5, 0, 1)``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.hard_sigmoid(_tensor(x))


def hard_silu(x):
    """Hard swish: ``x * hard_sigmoid(x)``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.hard_silu(_tensor(x))


def hard_tanh(x):
    """``clip(x, -1, 1)``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.clip(_tensor(x), -1.0, 1.0)


def tanh_shrink(x):
    """``x - tanh(x)``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    x = _tensor(x)
    return ops.subtract(x, ops.tanh(x))


def log_sigmoid(x):
    """``log(sigmoid(x))``, computed as ``-softplus(-x)``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.log_sigmoid(_tensor(x))


def mish(x):
    """``x * tanh(softplus(x))``.

    Args:
        x: input tensor.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return ops.mish(_tensor(x))


def hard_shrink(x, threshold=0.5):
    """``x`` where ``|x| > threshold``, else 0."""
    return ops.hard_shrink(_tensor(x), threshold)


def soft_shrink(x, threshold=0.5):
    """``x`` moved ``threshold`` towards 0, and 0 within ``threshold`` of it."""
    return ops.soft_shrink(_tensor(x), threshold)


def sparse_plus(x):
    """0 below -1, ``(x + 1)**2 / 4`` on [-1, 1], ``x`` above 1."""
    return ops.sparse_plus(_tensor(x))


def sparse_sigmoid(x):
    """0 below -1, ``(x + 1) / 2`` on [-1, 1], 1 above 1."""
    return ops.sparse_sigmoid(_tensor(x))


def sparsemax(x, axis=-1):
    """The Euclidean projection of ``x`` onto the probability simplex along ``axis``."""
    return ops.sparsemax(_tensor(x), axis=axis)


def threshold(x, threshold, default_value):
    """``x`` where ``x > threshold``, else ``default_value``."""
    return ops.threshold(_tensor(x), threshold, default_value)


swish = silu
hard_swish = hard_silu

_ACTIVATIONS = {
    fn.__name__: fn
    for fn in (relu, leaky_relu, relu6, softmax, celu, elu, selu, softplus, softsign,
               squareplus, silu, gelu, glu, tanh, tanh_shrink, sigmoid, exponential,
               hard_sigmoid, hard_silu, hard_tanh, linear, mish, log_softmax, log_sigmoid,
               hard_shrink, soft_shrink, sparse_plus, sparse_sigmoid, sparsemax)
}
_ALIASES = {"swish": silu, "hard_swish": hard_silu}


def serialize(activation):
    """Return the Keras name of an activation function (``silu`` for ``swish``).

    Args:
        activation: a function from this module, or a custom callable with a
            ``__name__``.

    Returns:
        The name string stored in configs; for a function registered with
        ``register_keras_serializable``, Keras's function config dict naming it.

    Raises:
        ValueError: when ``activation`` has no name.
    """
    name = getattr(activation, "__name__", None)
    if name is None or not callable(activation):
        raise ValueError(
            f"Cannot serialize activation: it is not a named function. "
            f"Received: activation={activation!r}")
    for known, fn in _ACTIVATIONS.items():
        if fn is activation:
            return known
    from lamina.saving.registry import get_registered_name

    registered = get_registered_name(activation)
    if ">" in registered:
        # A `register_keras_serializable` function: Keras's function config.
        return {"module": "builtins", "class_name": "function", "config": registered,
                "registered_name": "function"}
    return name


def deserialize(config, custom_objects=None):
    """Return the activation function a config names.

    Args:
        config: a name (``"relu"``) or a Keras config dict
            (``{"class_name": "function", "config": "relu", ...}``).
        custom_objects: optional dict of extra name -> callable.

    Returns:
        The function.

    Raises:
        ValueError: for an unknown name or malformed config.
    """
    name = config
    if isinstance(config, dict):
        name = config.get("config")
        if isinstance(name, dict):
            name = name.get("name")
    if isinstance(name, str):
        custom = custom_objects or {}
        if name in custom:
            return custom[name]
        fn = _ACTIVATIONS.get(name) or _ALIASES.get(name)
        if fn is not None:
            return fn
        from lamina.saving.registry import get_registered_object

        # Registered functions ("package>name"), custom_object_scope entries.
        fn = get_registered_object(name, custom_objects)
        if callable(fn) and not isinstance(fn, type):
            return fn
    raise ValueError(
        f"Unknown activation function: {config!r}. Known names: "
        f"{sorted(set(_ACTIVATIONS) | set(_ALIASES))}")


def get(identifier):
    """Resolve an activation: None -> ``linear``, a name or config -> its function,
    a callable -> itself.

    Args:
        identifier: None, a string, a config dict, or a callable.

    Returns:
        A callable activation.

    Raises:
        ValueError: when ``identifier`` cannot be interpreted.

    Example:
        >>> get(None) is linear, get("relu") is relu
        (True, True)
    """
    if identifier is None:
        return linear
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(
        f"Could not interpret activation function identifier. Received: {identifier!r}")

