"""Helpers that check numerics: used by Lamina's tests, usable for your own layers.

``check_gradients`` compares the autodiff gradient of any function with float64
central differences; ``run_layer_test`` checks a layer's shapes, weights, config
round trip and one training step.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.autodiff import gradients
from lamina.backend.config import floatx_scope
from lamina.backend.tensor import Tensor, Variable


def numeric_gradient(fn, arrays, index, eps=1e-6):
    """Central-difference gradient of ``sum(fn(*arrays) * weights)`` w.r.t. ``arrays[index]``."""
    base = arrays[index]
    grad = np.zeros_like(base)
    it = np.nditer(base, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        orig = base[i]
        base[i] = orig + eps
        plus = fn(*arrays)
        base[i] = orig - eps
        minus = fn(*arrays)
        base[i] = orig
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(fn, inputs, wrt=None, rtol=1e-6, atol=1e-8, eps=1e-6, seed=0):
    """Check the autodiff gradients of ``fn`` against float64 central differences.

    ``fn`` maps Tensors to a Tensor. The output is reduced to a scalar with fixed
    random weights, so every output element is checked.

    Args:
        fn: callable taking ``len(inputs)`` Tensors and returning a Tensor.
        inputs: list of array-likes (cast to float64) or Variables (their values are
            cast to float64 for the duration of the check).
        wrt: indices of the inputs to check; all floating inputs by default.
        rtol: allowed relative error ``|a - n| / max(|a|, |n|, atol)``, elementwise.
        atol: floor of the denominator above (and absolute tolerance near zero).
        eps: finite-difference step.
        seed: seed of the random output weights.

    Returns:
        The largest relative error found.

    Raises:
        AssertionError: when any gradient element differs by more than ``rtol``.
    """
    with floatx_scope("float64"):
        arrays = []
        for x in inputs:
            value = x.data if isinstance(x, Tensor) else np.asarray(x)
            if np.issubdtype(value.dtype, np.floating):
                value = value.astype(np.float64)
            arrays.append(np.array(value, copy=True))
        if wrt is None:
            wrt = [i for i, a in enumerate(arrays) if np.issubdtype(a.dtype, np.floating)]
        # A Variable passed in is used itself (its value cast to float64 for the check),
        # so that layers holding it see the perturbations; other inputs get new leaves.
        variables = []
        restore = []
        for x, a in zip(inputs, arrays):
            if isinstance(x, Variable):
                restore.append((x, x.data))
                x.data = a.copy()
                variables.append(x)
            else:
                variables.append(Variable(a, dtype=a.dtype))
        try:
            return _check(fn, variables, arrays, wrt, rtol, atol, eps, seed)
        finally:
            for x, data in restore:
                x.data = data


def _check(fn, variables, arrays, wrt, rtol, atol, eps, seed):
    out = fn(*variables)
    weights = np.random.default_rng(seed).standard_normal(np.shape(out.data))

    def scalar(*values):
        for v, a in zip(variables, values):
            v.data[...] = a
        return float(np.sum(np.asarray(fn(*variables).data, dtype=np.float64) * weights))

    for v, a in zip(variables, arrays):
        v.data[...] = a
    out = fn(*variables)
    analytic = gradients(out, [variables[i] for i in wrt], output_gradient=weights)
    worst = 0.0
    for i, got in zip(wrt, analytic):
        expected = numeric_gradient(scalar, [a.copy() for a in arrays], i, eps)
        # A NaN/inf where central differences are finite is an error (max() would skip it).
        if np.any(~np.isfinite(got) & np.isfinite(expected)):
            raise AssertionError(
                f"gradient of input {i} is not finite where central differences are"
                f"\nanalytic:\n{got}\nnumeric:\n{expected}")
        denom = np.maximum(np.maximum(np.abs(got), np.abs(expected)), atol)
        err = np.abs(got - expected) / denom
        err = np.where(np.abs(got - expected) <= atol * 10, 0.0, err)
        worst = max(worst, float(err.max(initial=0.0)))
        if worst > rtol:
            raise AssertionError(
                f"gradient of input {i} differs from central differences: max relative "
                f"error {worst:.3e} > {rtol:.1e}\nanalytic:\n{got}\nnumeric:\n{expected}"
            )
    return worst


def _expect(condition, message) -> None:
    """Raise AssertionError with ``message`` unless ``condition`` (kept under ``python -O``)."""
    if not condition:
        raise AssertionError(message)


def run_layer_test(layer_cls, init_kwargs=None, input_shape=None, input_dtype=None,
                   input_data=None, expected_output_shape=None,
                   expected_num_trainable_weights=None, expected_num_non_trainable_weights=None,
                   expected_num_losses=None, expected_num_params=None, supports_masking=None,
                   run_training_check=True, run_gradient_check=True, gradient_rtol=1e-5,
                   seed=0):
    """Check a layer the way Keras's ``run_layer_test`` does, plus a gradient check.

    Builds the layer on ``input_shape`` (or ``input_data``), then checks: output shape
    (eager and symbolic), weight counts, parameter count, losses, config round trip
    (``from_config(get_config())`` gives an equal config and, with the same weights,
    the same output), a float64 central-difference gradient check of the output with
    respect to the input (for float inputs) and every trainable weight, and one
    training step in a small model that changes the trainable weights.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        input_shape: input shape including the batch dimension (random normal data).
        input_dtype: dtype of generated input data.
        input_data: explicit input data instead of ``input_shape``.
        expected_output_shape: expected output shape (with the batch dimension).
        expected_num_trainable_weights, expected_num_non_trainable_weights: counts.
        expected_num_losses: number of ``layer.losses`` after a call.
        expected_num_params: ``count_params()`` after build (Keras's figure).
        supports_masking: expected value of ``layer.supports_masking``.
        run_training_check: run one ``fit`` step in a one-layer model.
        run_gradient_check: run the float64 gradient check.
        gradient_rtol: tolerance of the gradient check.
        seed: seed of generated data and weights.

    Returns:
        The built layer.
    """
    import lamina
    from lamina.backend.random import set_seed

    init_kwargs = dict(init_kwargs or {})
    rng = np.random.default_rng(seed)
    set_seed(seed)
    if input_data is None:
        if input_shape is None:
            raise ValueError("run_layer_test needs `input_shape` or `input_data`.")
        if input_dtype is not None and np.issubdtype(np.dtype(input_dtype), np.integer):
            input_data = rng.integers(0, 5, size=input_shape).astype(input_dtype)
        else:
            input_data = rng.standard_normal(input_shape).astype(input_dtype or "float32")
    multi = isinstance(input_data, (list, tuple))
    data = list(input_data) if multi else [input_data]

    layer = layer_cls(**init_kwargs)
    out = layer(list(data) if multi else data[0])
    outs = out if isinstance(out, (list, tuple)) else [out]
    if expected_output_shape is not None:
        expected = expected_output_shape
        if not isinstance(expected, list):
            expected = [expected]
        got = [tuple(o.shape) for o in outs]
        _expect(got == [tuple(e) for e in expected],
                f"output shape {got} != {expected}")
    if expected_num_trainable_weights is not None:
        _expect(len(layer.trainable_weights) == expected_num_trainable_weights,
                f"{len(layer.trainable_weights)} trainable weights, expected "
                f"{expected_num_trainable_weights}")
    if expected_num_non_trainable_weights is not None:
        _expect(len(layer.non_trainable_weights) == expected_num_non_trainable_weights,
                f"{len(layer.non_trainable_weights)} non-trainable weights, expected "
                f"{expected_num_non_trainable_weights}")
    if expected_num_params is not None:
        _expect(layer.count_params() == expected_num_params,
                f"count_params() = {layer.count_params()}, expected {expected_num_params}")
    if expected_num_losses is not None:
        _expect(len(layer.losses) == expected_num_losses,
                f"{len(layer.losses)} losses, expected {expected_num_losses}")
    if supports_masking is not None:
        _expect(layer.supports_masking == supports_masking,
                f"supports_masking is {layer.supports_masking}, expected {supports_masking}")

    # Symbolic call gives the same shapes as the eager call.
    symbolic_inputs = [lamina.Input(batch_shape=(None, *d.shape[1:]), dtype=d.dtype.name)
                       for d in data]
    fresh = layer_cls.from_config(layer.get_config())
    sym = fresh(symbolic_inputs if multi else symbolic_inputs[0])
    syms = sym if isinstance(sym, (list, tuple)) else [sym]
    for s, o in zip(syms, outs):
        _expect(tuple(s.shape)[1:] == tuple(o.shape)[1:],
                f"symbolic shape {s.shape} != eager shape {o.shape}")

    # Config round trip: same config, and same outputs with the same weights.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    clone_config = clone.get_config()
    config.pop("name", None)
    clone_config.pop("name", None)
    _expect(clone_config == config,
            f"config round trip differs:\n{config}\n{clone_config}")
    clone(list(data) if multi else data[0])
    clone.set_weights(layer.get_weights())
    out_a = layer(list(data) if multi else data[0], training=False) \
        if layer._call_has_training else layer(list(data) if multi else data[0])
    out_b = clone(list(data) if multi else data[0], training=False) \
        if clone._call_has_training else clone(list(data) if multi else data[0])
    for a, b in zip(out_a if isinstance(out_a, (list, tuple)) else [out_a],
                    out_b if isinstance(out_b, (list, tuple)) else [out_b]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)

    if run_gradient_check:
        _layer_gradient_check(layer_cls, init_kwargs, layer, data, multi, gradient_rtol)
    if run_training_check:
        _layer_training_check(layer_cls, init_kwargs, data, multi)
    return layer


def _layer_gradient_check(layer_cls, init_kwargs, layer, data, multi, rtol):
    with floatx_scope("float64"):
        layer64 = layer_cls(**{**init_kwargs, "dtype": "float64"})
        inputs64 = [d.astype(np.float64) if d.dtype.kind == "f" else d for d in data]
        layer64(list(inputs64) if multi else inputs64[0])
        layer64.set_weights([w.astype(np.float64) if w.dtype.kind == "f" else w
                             for w in layer.get_weights()])
        weights = layer64.trainable_weights
        float_inputs = [i for i, d in enumerate(inputs64) if d.dtype.kind == "f"]

        def fn(*tensors):
            xs = list(inputs64)
            for i, t in zip(float_inputs, tensors[: len(float_inputs)]):
                xs[i] = t
            if layer64._call_has_training:
                out = layer64(list(xs) if multi else xs[0], training=False)
            else:
                out = layer64(list(xs) if multi else xs[0])
            if isinstance(out, (list, tuple)):
                from lamina import ops

                out = ops.concatenate([ops.reshape(o, (-1,)) for o in out], axis=0)
            return out

        check_gradients(fn, [inputs64[i] for i in float_inputs] + list(weights), rtol=rtol)


def _layer_training_check(layer_cls, init_kwargs, data, multi):
    import lamina

    inputs = [lamina.Input(batch_shape=(None, *d.shape[1:]), dtype=d.dtype.name) for d in data]
    layer = layer_cls(**init_kwargs)
    out = layer(inputs if multi else inputs[0])
    outs = out if isinstance(out, (list, tuple)) else [out]
    model = lamina.Model(inputs if multi else inputs[0], outs if len(outs) > 1 else outs[0])
    model.compile(optimizer="sgd", loss="mse")
    preds = model.predict(list(data) if multi else data[0], verbose=0)
    preds = preds if isinstance(preds, list) else [preds]
    targets = [np.random.default_rng(1).standard_normal(p.shape).astype("float32") for p in preds]
    before = [w.numpy() for w in layer.trainable_weights]
    model.fit(list(data) if multi else data[0], targets if len(targets) > 1 else targets[0],
              epochs=1, batch_size=len(data[0]), verbose=0, shuffle=False)
    after = [w.numpy() for w in layer.trainable_weights]
    if before:
        _expect(any(not np.array_equal(b, a) for b, a in zip(before, after)),
                "one training step did not change any trainable weight")
