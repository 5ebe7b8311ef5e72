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
        variables = [Variable(a, dtype=a.dtype) for a in arrays]
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
            denom = np.maximum(np.maximum(np.abs(got), np.abs(expected)), atol)
            err = np.abs(got - expected) / denom
            close = np.abs(got - expected) <= atol * 10
            err = np.where(close, 0.0, err)
            worst = max(worst, float(err.max(initial=0.0)))
            if worst > rtol:
                raise AssertionError(
                    f"gradient of input {i} differs from central differences: max relative "
                    f"error {worst:.3e} > {rtol:.1e}\nanalytic:\n{got}\nnumeric:\n{expected}"
                )
        return worst
